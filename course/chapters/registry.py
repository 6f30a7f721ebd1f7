"""The chapter registry: every chapter's number, slug, title, exercises (with points) and backends.

It is the single source that `course build`, `course check`, `course grade`, the tests and the start notebook's
chapter table read. A chapter appears here once its lesson exists; its checks live in `checks_module`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from course.errors import CourseError

BOTH = ("sqlite", "postgres")


@dataclass(frozen=True)
class ExerciseSpec:
    """One exercise: `names` are the notebook's top-level names its check receives, in order."""

    id: str
    title: str
    points: int
    names: tuple[str, ...]
    # Where the check can run; on another backend the exercise is skipped with a message, not failed.
    backends: tuple[str, ...] = BOTH


@dataclass(frozen=True)
class Chapter:
    number: int
    slug: str
    title: str
    minutes: int
    exercises: tuple[ExerciseSpec, ...] = ()
    backends: tuple[str, ...] = BOTH
    # Its lesson and checks stop and start the course's local PostgreSQL: tests give it a server of its own.
    restarts_server: bool = False

    @property
    def stem(self) -> str:
        """The notebook name without .ipynb, the same in notebooks/, exercises/ and solutions/."""
        return f"{self.number:02d}_{self.slug}"

    @property
    def notebook(self) -> str:
        return f"{self.stem}.ipynb"

    @property
    def checks_module(self) -> str:
        return f"course.chapters.ch{self.stem}.checks"

    @property
    def max_points(self) -> int:
        return sum(e.points for e in self.exercises)

    def checks(self) -> ModuleType:
        """The chapter's checks module (its `registry` holds a checker for every exercise)."""
        if not self.exercises:
            raise CourseError(f"chapter {self.stem} has no exercises")
        return importlib.import_module(self.checks_module)

    def exercise(self, exercise_id: str) -> ExerciseSpec:
        for spec in self.exercises:
            if spec.id == exercise_id:
                return spec
        known = ", ".join(e.id for e in self.exercises) or "none"
        raise CourseError(f"chapter {self.stem} has no exercise {exercise_id} (it has: {known})")


def _ex(id: str, title: str, points: int, *names: str, backends: tuple[str, ...] = BOTH) -> ExerciseSpec:
    return ExerciseSpec(id, title, points, names, backends)


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(0, "start_here", "Start here", 20),
    Chapter(
        1,
        "crud",
        "CRUD",
        60,
        (
            _ex("1.1", "Create a user", 2, "create_user"),
            _ex("1.2", "Look a user up by email", 2, "get_user_by_email"),
            _ex("1.3", "List users with filters", 3, "list_users"),
            _ex("1.4", "Partial update", 3, "update_user"),
            _ex("1.5", "Soft delete and restore", 3, "soft_delete_user", "restore_user"),
            _ex("1.6", "A search that is safe against injection", 3, "search_users"),
            _ex("1.7", "Insert or update products in one statement", 3, "upsert_products"),
        ),
    ),
    Chapter(
        2,
        "indexing",
        "Indexing",
        50,
        (
            _ex("2.1", "Make a lookup use an index", 2, "add_name_index"),
            _ex("2.2", "An index that also sorts", 3, "add_author_feed_index"),
            _ex("2.3", "A partial index for the public feed", 3, "add_feed_index"),
            _ex("2.4", "Foreign keys without an index", 3, "missing_fk_indexes"),
            _ex("2.5", "Redundant indexes (stretch)", 3, "redundant_indexes"),
        ),
    ),
    Chapter(
        3,
        "n_plus_one",
        "The N+1 problem",
        45,
        (
            _ex("3.1", "Users with their posts", 3, "users_with_posts"),
            _ex("3.2", "Users, posts and comments in three statements", 3, "users_posts_comments"),
            _ex("3.3", "Post counts without loading posts", 3, "post_counts"),
            _ex("3.4", "A test helper that counts statements", 3, "at_most"),
        ),
    ),
    Chapter(
        4,
        "pagination",
        "Pagination",
        35,
        (
            _ex("4.1", "Keyset pages over the timeline", 3, "posts_page"),
            _ex("4.2", "Cursors that cannot be forged", 3, "encode_cursor", "decode_cursor"),
            _ex("4.3", "A page that costs the same at any depth", 3, "add_comments_index", "comments_page"),
            _ex("4.4", "Is there a next page?", 2, "user_orders_page"),
            _ex("4.5", "A previous link (stretch)", 3, "posts_page_before"),
        ),
    ),
    Chapter(
        5,
        "transactions",
        "Transactions and concurrency",
        50,
        (
            _ex("5.1", "A transfer that survives 16 tasks", 4, "transfer"),
            _ex(
                "5.2",
                "Retry serialization failures and deadlocks, nothing else",
                3,
                "run_in_transaction",
                backends=("postgres",),
            ),
            _ex("5.3", "Import a batch, skip the bad rows", 3, "import_products"),
            _ex("5.4", "An optimistic update with a clear conflict", 3, "withdraw", "Conflict"),
        ),
    ),
    Chapter(
        6,
        "pooling",
        "Connection pooling",
        45,
        (
            _ex("6.1", "The session-per-request dependency", 3, "get_session"),
            _ex("6.2", "An engine that survives a restart", 3, "make_app_engine", backends=("postgres",)),
            _ex("6.3", "Fan out with one session per task", 3, "post_counts"),
            _ex("6.4", "A pool that fits the server", 2, "pool_settings"),
        ),
        restarts_server=True,
    ),
    Chapter(
        7,
        "schema_design",
        "Schema design",
        45,
        (
            _ex("7.1", "Models from a written spec", 4, "project_models"),
            _ex("7.2", "A soft-delete filter that cannot be forgotten", 4, "soft_delete_sessionmaker"),
            _ex("7.3", "Money that cannot go negative", 3, "wallet_models", "withdraw", "InsufficientFunds"),
            _ex("7.4", "ON DELETE rules for a help desk", 3, "helpdesk_models"),
        ),
    ),
    Chapter(
        8,
        "migrations",
        "Migrations with Alembic",
        60,
        (
            _ex("8.1", "A migration that reaches the models", 3, "upgrade_8_1", "downgrade_8_1"),
            _ex("8.2", "A rename that keeps the data", 3, "upgrade_8_2", "downgrade_8_2"),
            _ex("8.3", "A backfill in batches", 3, "backfill_email_lower"),
            _ex(
                "8.4",
                "An index that does not block writers",
                3,
                "upgrade_8_4",
                "downgrade_8_4",
                backends=("postgres",),
            ),
        ),
    ),
)


def chapter(key: int | str) -> Chapter:
    """A chapter by number (4), two-digit string ("04") or stem ("04_pagination")."""
    number = key if isinstance(key, int) else int(str(key)[:2]) if str(key)[:2].isdigit() else -1
    for ch in CHAPTERS:
        if ch.number == number:
            return ch
    known = ", ".join(ch.stem for ch in CHAPTERS)
    raise CourseError(f"the course has no chapter {key!r} (it has: {known})")


def with_exercises() -> tuple[Chapter, ...]:
    return tuple(ch for ch in CHAPTERS if ch.exercises)
