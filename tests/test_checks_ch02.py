"""Chapter 2 checks have teeth: the solution passes; the stub and plausible wrong indexes fail with the right hint."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from sqlalchemy import text

from course.chapters.ch02_indexing.checks import check
from course.chapters.ch02_indexing.fk_indexes import _MISSING_2_4
from course.settings import Settings, get_settings
from tests import teeth

SOURCE = "solutions/02_indexing.ipynb"
SOLVED = teeth.solved(SOURCE)


fails_with = partial(teeth.fails_with, check)


def ddl(*statements: str) -> Any:
    """A learner's answer that runs these statements."""

    async def create(conn: Any) -> None:
        for statement in statements:
            await conn.execute(text(statement))

    return create


# --- 2.1 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (ddl(), "no new index on users"),
        (ddl("CREATE INDEX ix_users_status ON users (status)"), "does not help a filter on name"),
        (ddl("CREATE INDEX ix_users_lower_name ON users (lower(name))"), "the very same expression"),
        (ddl("CREATE INDEX ix_users_role_name ON users (role, name)"), "does not start with it"),
        (ddl("CREATE INDEX ix_users_live_name ON users (name) WHERE deleted_at IS NULL"), "is partial"),
    ],
    ids=["nothing", "other column", "expression", "not leading", "partial"],
)
async def test_2_1_wrong_indexes(tiny: Settings, answer: Any, fragment: str) -> None:
    await fails_with(tiny, "2.1", fragment, answer)


async def test_2_1_a_composite_led_by_name_passes(tiny: Settings) -> None:
    await check("2.1", ddl("CREATE INDEX ix_users_name_email ON users (name, email)"), settings=tiny)


async def test_2_1_an_index_that_compares_another_way_is_explained() -> None:
    # SQLite's catalog drops COLLATE from the key, so the index looks like one on name: the message says why not.
    sqlite = get_settings(scale="tiny", backend="sqlite")
    answer = ddl("CREATE INDEX ix_users_name_nocase ON users (name COLLATE NOCASE)")
    await fails_with(sqlite, "2.1", "compare names the way the query does", answer)


async def test_2_1_a_hash_index_passes_on_postgres(pg_admin_url: str) -> None:
    # PostgreSQL's hash indexes serve equality: a legitimate answer there (SQLite has none).
    postgres = get_settings(scale="tiny", backend="postgres")
    await check("2.1", ddl("CREATE INDEX ix_users_name_hash ON users USING hash (name)"), settings=postgres)


async def test_2_1_learner_errors_are_reported(tiny: Settings) -> None:
    # DDL the database rejects is reported as the learner's error, with their line, not as a crash.
    await fails_with(tiny, "2.1", "your code raised", ddl("CREATE INDEX broken ON no_such_table (name)"))


# --- 2.2 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (ddl(), "no new index on posts"),
        (ddl("CREATE INDEX ix_posts_created_author ON posts (created_at, author_id)"), "starts with created_at"),
        (ddl("CREATE INDEX ix_posts_created ON posts (created_at)"), "starts with created_at"),
        (
            ddl(
                "CREATE INDEX ix_posts_author_only ON posts (author_id)",
                "CREATE INDEX ix_posts_status ON posts (status)",
            ),
            "not both",
        ),
        (ddl("CREATE INDEX ix_posts_author_title ON posts (author_id, title)"), "still sorts"),
    ],
    ids=["nothing", "wrong order", "created_at alone", "single columns", "wrong second column"],
)
async def test_2_2_wrong_indexes(tiny: Settings, answer: Any, fragment: str) -> None:
    await fails_with(tiny, "2.2", fragment, answer)


async def test_2_2_descending_index_passes(tiny: Settings) -> None:
    await check(
        "2.2", ddl("CREATE INDEX ix_posts_author_newest ON posts (author_id, created_at DESC)"), settings=tiny
    )


# --- 2.3 ------------------------------------------------------------------------------------------------------

_FEED = "WHERE status = 'published' AND deleted_at IS NULL"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (ddl(), "no new index on posts"),
        (ddl("CREATE INDEX ix_posts_published ON posts (published_at)"), "is not partial"),
        (ddl("CREATE INDEX ix_posts_drafts ON posts (published_at) WHERE status = 'draft'"), "does not use"),
        (ddl("CREATE INDEX ix_posts_pub ON posts (published_at) WHERE status = 'published'"), "never reads"),
        (ddl("CREATE INDEX ix_posts_live ON posts (published_at) WHERE deleted_at IS NULL"), "never reads"),
        (
            ddl(f"CREATE INDEX ix_posts_feed_created ON posts (created_at) {_FEED}"),
            "the column the feed orders by",
        ),
    ],
    ids=["nothing", "full index", "wrong predicate", "deleted kept", "drafts kept", "wrong column"],
)
async def test_2_3_wrong_indexes(tiny: Settings, answer: Any, fragment: str) -> None:
    await fails_with(tiny, "2.3", fragment, answer)


async def test_2_3_descending_partial_index_passes(tiny: Settings) -> None:
    await check("2.3", ddl(f"CREATE INDEX ix_posts_feed_desc ON posts (published_at DESC) {_FEED}"), settings=tiny)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE INDEX ix_posts_feed_swapped ON posts (published_at) WHERE deleted_at IS NULL AND status = 'published'",
        f"CREATE INDEX ix_posts_feed_status ON posts (status, published_at) {_FEED}",
    ],
    ids=["conditions swapped", "constant leading column"],
)
async def test_2_3_equivalent_partial_indexes_pass(tiny: Settings, statement: str) -> None:
    await check("2.3", ddl(statement), settings=tiny)


# --- 2.4 ------------------------------------------------------------------------------------------------------


def only_get_indexes(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    """Forgets the primary key and unique constraints."""
    missing = set()
    for table in inspector.get_table_names():
        leading = [ix["column_names"] for ix in inspector.get_indexes(table)]
        for fk in inspector.get_foreign_keys(table):
            columns = tuple(fk["constrained_columns"])
            if not any(list(columns) == existing[: len(columns)] for existing in leading):
                missing.add((table, columns))
    return missing


def contained_anywhere(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    """Counts a column as indexed when any index, key or constraint contains it, wherever it stands."""
    missing = set()
    for table in inspector.get_table_names():
        indexed = {c for ix in inspector.get_indexes(table) for c in ix["column_names"]}
        indexed |= set(inspector.get_pk_constraint(table)["constrained_columns"])
        indexed |= {c for uq in inspector.get_unique_constraints(table) for c in uq["column_names"]}
        for fk in inspector.get_foreign_keys(table):
            columns = tuple(fk["constrained_columns"])
            if not set(columns) <= indexed:
                missing.add((table, columns))
    return missing


def first_column_only(inspector: Any) -> set[tuple[str, str]]:
    """Treats every foreign key as if it had one column."""
    missing = set()
    for table in inspector.get_table_names():
        leading = [ix["column_names"][:1] for ix in inspector.get_indexes(table)]
        leading.append(inspector.get_pk_constraint(table)["constrained_columns"][:1])
        leading += [uq["column_names"][:1] for uq in inspector.get_unique_constraints(table)]
        for fk in inspector.get_foreign_keys(table):
            column = fk["constrained_columns"][0]
            if [column] not in leading:
                missing.add((table, column))
    return missing


async def async_version(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    return set()


def returns_list_of_names(inspector: Any) -> list[str]:
    return ["comments.author_id"]


def _column_lists(inspector: Any, table: str) -> list[list[str]]:
    lists = [ix["column_names"] for ix in inspector.get_indexes(table)]
    lists.append(inspector.get_pk_constraint(table)["constrained_columns"])
    return lists + [uq["column_names"] for uq in inspector.get_unique_constraints(table)]


def order_sensitive(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    """Wants an index listing a composite key's columns in the foreign key's own order."""
    missing = set()
    for table in inspector.get_table_names():
        lists = _column_lists(inspector, table)
        for fk in inspector.get_foreign_keys(table):
            columns = tuple(fk["constrained_columns"])
            if not any(tuple(existing[: len(columns)]) == columns for existing in lists):
                missing.add((table, columns))
    return missing


def any_leading_column(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    """Counts a composite foreign key as served by an index that starts with just one of its columns."""
    missing = set()
    for table in inspector.get_table_names():
        leaders = {existing[0] for existing in _column_lists(inspector, table) if existing}
        for fk in inspector.get_foreign_keys(table):
            if not leaders & set(fk["constrained_columns"]):
                missing.add((table, tuple(fk["constrained_columns"])))
    return missing


def sorted_columns(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    return {(table, tuple(sorted(columns))) for table, columns in SOLVED["missing_fk_indexes"](inspector)}


def the_checks_answer(inspector: Any) -> set[tuple[str, tuple[str, ...]]]:
    """Hard-codes what the check's messages revealed instead of reading the catalog."""
    return set(_MISSING_2_4)


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (only_get_indexes, "Primary keys and unique constraints count too"),
        (contained_anywhere, "merely contains a column"),
        (first_column_only, "report a composite foreign key once"),
        (async_version, "must be a plain `def`"),
        (returns_list_of_names, "is not a (table, columns) pair"),
        (lambda inspector: set(), "comments (author_id) has no usable index"),
        (order_sensitive, "in another order"),
        (any_leading_column, "starts with both of them, not only one"),
        (sorted_columns, "in the foreign key's order"),
        (the_checks_answer, "did not follow the change"),
    ],
    ids=[
        "pk ignored",
        "not leading",
        "composite split",
        "async",
        "wrong shape",
        "empty",
        "order-sensitive",
        "one column of a composite",
        "sorted columns",
        "hard-coded",
    ],
)
async def test_2_4_wrong_answers(tiny: Settings, answer: Any, fragment: str) -> None:
    await fails_with(tiny, "2.4", fragment, answer)


async def test_2_4_bare_column_names_are_accepted(tiny: Settings) -> None:
    solved = SOLVED["missing_fk_indexes"]

    def with_strings(inspector: Any) -> set[tuple[str, Any]]:
        return {(table, cols[0] if len(cols) == 1 else cols) for table, cols in solved(inspector)}

    await check("2.4", with_strings, settings=tiny)


async def test_2_4_a_list_of_lists_is_accepted(tiny: Settings) -> None:
    solved = SOLVED["missing_fk_indexes"]
    await check("2.4", lambda inspector: [[table, list(cols)] for table, cols in solved(inspector)], settings=tiny)


# --- 2.5 (stretch) redundant indexes ---------------------------------------------------------------------------


def _redundant(
    inspector: Any,
    *,
    prefix: bool = True,
    skip_unique: bool = True,
    partial_covers: bool = False,
    skip_partial: bool = True,
    duplicates: str = "first",
    unique_covers: bool = True,
) -> set:
    """The reference rule with one knob turned: each knob is a plausible misreading of the exercise text."""
    found = set()
    for table in inspector.get_table_names():
        indexes = inspector.get_indexes(table)

        def partial_(ix: Any) -> bool:
            return any(key.endswith("_where") for key in ix.get("dialect_options", {}))

        for ix in indexes:
            if (skip_unique and ix["unique"]) or (skip_partial and partial_(ix)):
                continue
            cols = ix["column_names"]
            for other in indexes:
                if other is ix or (partial_(other) and not partial_covers):
                    continue
                if not unique_covers and other["unique"]:
                    continue
                starts = (
                    other["column_names"][: len(cols)] == cols
                    if prefix
                    else set(cols) <= set(other["column_names"])
                )
                if not starts:
                    continue
                longer = len(other["column_names"]) > len(cols)
                same = other["column_names"] == cols
                tie = {
                    "first": same and (other["unique"] or other["name"] < ix["name"]),
                    "both": same,
                    "none": False,
                }
                if longer or tie[duplicates]:
                    found.add((table, ix["name"]))
                    break
    return found


def _fixed_answer(inspector: Any) -> set:
    from course.chapters.ch02_indexing.redundant import EXPECTED

    return set(EXPECTED)


async def _async_answer(inspector: Any) -> set:
    return set()


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (partial(_redundant, prefix=False), "but not first, in the same order"),
        (partial(_redundant, skip_unique=False), "is unique: it enforces a rule"),
        (partial(_redundant, partial_covers=True), "covered only by the partial index"),
        (partial(_redundant, skip_partial=False), "is partial: it holds other rows"),
        (partial(_redundant, duplicates="none"), "ix_order_items_order_id (order_id) is redundant but missing"),
        (partial(_redundant, duplicates="both"), "of two identical indexes keep the one whose name sorts first"),
        (partial(_redundant, unique_covers=False), "a unique index serves lookups as well as a plain one"),
        (_fixed_answer, "did not follow the change"),
        (_async_answer, "must be a plain `def`"),
    ],
    ids=[
        "contains",
        "unique",
        "partial-covers",
        "partial-reported",
        "no-duplicates",
        "both-duplicates",
        "unique-does-not-cover",
        "fixed",
        "async",
    ],  # fmt: skip
)
async def test_2_5_wrong_answers(tiny: Settings, answer: Any, fragment: str) -> None:
    await fails_with(tiny, "2.5", fragment, answer)


async def test_2_5_a_list_of_lists_is_accepted(tiny: Settings) -> None:
    await check("2.5", lambda inspector: [[t, name] for t, name in _redundant(inspector)], settings=tiny)
