"""The check of exercise 1.6, a search that is safe against injection, with the users and payloads it tries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, text

from course.chapters.ch01_crud.common import call_in_callers_transaction
from course.checks.base import CheckDB, LearnerCodeError, expect, fail
from course.checks.sessions import as_entities, bound_values
from course.domain.models import User

# Users the search check adds to its copy: LIKE's special characters, a quote, "ada" in lower case inside a name,
# and a deleted user whose name matches.
_SEARCH_PEOPLE = (
    ("Rosa Sadat", False),
    ("Zoe 100% Natural", False),
    ("Sam snake_case", False),
    ("Bo Back\\slash", False),
    ("Mary O'Hara", False),
    ("Ada Gone", True),
)
# The empty term last: every name contains it, so an empty search box lists every live user.
_TERMS = ("ada", "LOPEZ", "a n", "example", "")
PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "%' OR name LIKE '%",
    "x'; DROP TABLE users; --",
    "' UNION SELECT * FROM users --",
    "O'H",
    "%",
    "_",
    "\\",
]


def _case_sensitive_like(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA case_sensitive_like = ON")
    cursor.close()


async def _search_setup(db: CheckDB) -> list[Any]:
    """Add the search's test users; return every user as (id, name, email, deleted_at)."""
    if db.dialect == "sqlite":
        # SQLite's LIKE ignores ASCII case and PostgreSQL's does not: the check holds SQLite to the stricter rule.
        event.listen(db.engine.sync_engine, "connect", _case_sensitive_like)
        await db.engine.dispose()
    async with db.Session() as session, session.begin():
        gone = datetime.now(UTC)
        session.add_all(
            User(
                email=f"search.{i}@example.com", name=name, password_hash="-", deleted_at=gone if deleted else None
            )
            for i, (name, deleted) in enumerate(_SEARCH_PEOPLE)
        )
    async with db.Session() as session:
        return list(await session.execute(select(User.id, User.name, User.email, User.deleted_at)))


async def check_search(search_users: Callable[..., Any], db: CheckDB) -> None:
    people = await _search_setup(db)

    def matching(term: str, *, fold: bool = True) -> set[int]:
        if fold:
            return {p.id for p in people if p.deleted_at is None and term.lower() in p.name.lower()}
        return {p.id for p in people if p.deleted_at is None and term in p.name}

    async with db.Session() as session:
        for term in _TERMS:
            with db.count_queries() as q:
                users = as_entities(await call_in_callers_transaction(session, search_users, term), "search_users")
            got, want = {u.id for u in users}, matching(term)
            if term == _TERMS[0]:
                sent = [value for params in q.params for value in bound_values(params)]
            if got == want:
                continue
            extra = {p for p in people if p.id in got - want}
            if any(p.deleted_at is not None for p in extra):
                fail(f"search_users({term!r}) returned soft-deleted users: a user whose deleted_at is set is gone")
            if extra and all(term.lower() in p.email.lower() for p in extra):
                fail(
                    f"search_users({term!r}) returned users whose email contains it, not their name: search names"
                )
            if got and got == matching(term, fold=False):
                fail(
                    f"search_users({term!r}) only found names written in that exact case: the search must ignore "
                    "case (SQLite's LIKE ignores ASCII case, PostgreSQL's does not: the check holds both to that)"
                )
            if not term:
                fail(
                    f"search_users('') gave {len(got)} users, expected {len(want)}: every name contains the empty "
                    "text, so an empty term matches every live user (a term is searched as written, no special case)"
                )
            fail(
                f"search_users({term!r}) gave {len(got)} users, expected {len(want)} "
                "(case-insensitive, part of the name, not deleted)"
            )
        for payload in PAYLOADS:
            try:
                result = await call_in_callers_transaction(session, search_users, payload)
            except LearnerCodeError:  # a crash on hostile input is itself the finding
                fail(
                    f"the input {payload!r} broke the query: user input reached the SQL text — bind it as a parameter"
                )
            got, want = {u.id for u in as_entities(result, "search_users")}, matching(payload)
            if got != want:
                if payload == "\\":
                    hint = (
                        "a backslash is LIKE's escape character on PostgreSQL (and wherever ESCAPE '\\' is used), "
                        "so it must be escaped too, along with the wildcards"
                    )
                elif payload in ("%", "_"):
                    hint = "LIKE wildcards in user input must be escaped, so that they match only themselves"
                else:
                    hint = "user input was spliced into the SQL: bind it as a parameter"
                wrong = f"{len(got)} users, not {len(want)}" if len(got) != len(want) else "other users"
                fail(f"the input {payload!r} got through: it matched {wrong}: {hint}")
        expect(
            any(_TERMS[0] in value.lower() for value in sent),
            f"search_users({_TERMS[0]!r}) never sent the term to the database: it fetched users and filtered "
            "them in Python. Let the database search, with the term bound as a parameter",
        )
    async with db.Session() as session:
        count = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
        expect(count > 0, "the users table was emptied by one of the inputs")
