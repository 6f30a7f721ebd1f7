"""Checks for chapter 1 (CRUD): they run the learner's functions on a fresh copy and judge rows and statements."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from course.chapters.registry import chapter
from course.checks.base import CheckDB, LearnerCodeError, Registry, call_learner, expect, fail
from course.checks.sessions import (
    as_entities,
    bound_values,
    caller_owns_transaction,
    flush_learner_changes,
)
from course.domain.models import User
from course.domain.schemas import UserUpdate
from course.domain.security import needs_rehash

registry = Registry(chapter(1))
check = registry.check


async def _count(db: CheckDB, where: Any) -> int:
    async with db.Session() as session:
        return (await session.execute(select(func.count()).select_from(User).where(where))).scalar_one()


async def _deleted(session: AsyncSession) -> int:
    """How many users the session sees as soft-deleted, its own uncommitted changes included."""
    return (
        await session.execute(select(func.count()).select_from(User).where(User.deleted_at.is_not(None)))
    ).scalar_one()


def _is_argon2_of(stored: str, plain: str) -> bool:
    try:
        return PasswordHasher().verify(stored, plain)
    except (InvalidHashError, VerificationError):
        return False


@registry.exercise("1.1")
async def _check_create_user(create_user: Callable[..., Any], db: CheckDB) -> None:
    email, password = "new.learner@example.com", "correct horse battery"
    async with db.Session() as session, session.begin():
        async with caller_owns_transaction(session):
            user = await call_learner(create_user, session, email=email, name="New Learner", password=password)
        expect(isinstance(user, User), f"create_user should return the new User, got {type(user).__name__}")
        expect(user.id is not None, "the returned user has no id yet: flush() sends the INSERT and fills it in")
        expect(
            user.email == email and user.name == "New Learner", "the user's email or name is not what was given"
        )
        expect(user.password_hash != password, "the password is stored as plain text: store a hash instead")
        expect(password not in user.password_hash, "the stored hash contains the password itself")
        expect(
            _is_argon2_of(user.password_hash, password),
            "password_hash is not an argon2 hash of the password: use course.domain.security.hash_password",
        )
        # A hash that verifies can still be too cheap: fewer passes or less memory make guessing faster.
        expect(
            not needs_rehash(user.password_hash),
            "password_hash is an argon2 hash, but made with other settings than the course's (a different variant, "
            "fewer passes or less memory), which makes guessing cheaper: use course.domain.security.hash_password",
        )
        twin = await call_learner(create_user, session, email="twin@example.com", name="Twin", password=password)
        expect(
            twin.password_hash != user.password_hash,
            "two users with the same password got the same hash: the hash needs a random salt",
        )
        # A second connection must not see an uncommitted row.
        expect(
            await _count(db, User.email == email) == 0, "another session already sees the user: was it committed?"
        )
        await session.rollback()
    expect(
        await _count(db, User.email == email) == 0, "the user survived the caller's rollback: do not commit inside"
    )


async def _pick_users(db: CheckDB) -> tuple[User, User]:
    async with db.Session() as session:
        alive = (
            await session.execute(select(User).where(User.deleted_at.is_(None)).order_by(User.id).limit(1))
        ).scalar_one()
        gone = (
            await session.execute(select(User).where(User.deleted_at.is_not(None)).order_by(User.id).limit(1))
        ).scalar_one()
    return alive, gone


async def _live_suspended(db: CheckDB) -> User:
    """A user who is suspended but not deleted: status and deletion are different things."""
    async with db.Session() as session:
        stmt = select(User).where(User.deleted_at.is_(None), User.status == "suspended").order_by(User.id)
        return (await session.execute(stmt.limit(1))).scalar_one()


@registry.exercise("1.2")
async def _check_get_by_email(get_user_by_email: Callable[..., Any], db: CheckDB) -> None:
    alive, gone = await _pick_users(db)
    suspended = await _live_suspended(db)
    async with db.Session() as session:
        with db.count_queries() as q:
            found = await call_learner(get_user_by_email, session, alive.email)
        expect(found is not None, f"no user returned for {alive.email!r}, which exists")
        expect(
            isinstance(found, User),
            f"get_user_by_email should return the User itself, got {type(found).__name__}: select the entity "
            "(select(User)) and take one scalar",
        )
        expect(found.id == alive.id, f"asked for {alive.email!r}, got a different user")
        expect(q.count == 1, f"{q.count} statements for one lookup: one SELECT ... WHERE email = :email is enough")
        expect(
            alive.email not in q.statements[0],
            "the email was pasted into the SQL text: pass it as a bound parameter (User.email == email)",
        )
        expect(
            any(alive.email in value.lower() for value in bound_values(q.params[0])),
            "the SELECT never receives the email: it reads every user and the search happens in Python. "
            "Put the comparison in the WHERE clause so the database finds the row",
        )
        # Near misses: the end of a real address, and the address with `_` (a LIKE wildcard) for one character.
        for probe, why in (
            (alive.email[1:], "an email lookup matches the whole address, not a part of it"),
            (
                alive.email.replace(".", "_", 1),
                "`_` and `%` are wildcards in LIKE/ilike patterns; an email lookup compares the exact address",
            ),
        ):
            near = await call_learner(get_user_by_email, session, probe)
            expect(near is None, f"looking up {probe!r} returned {getattr(near, 'email', near)!r}: {why}")
        missing = await call_learner(get_user_by_email, session, "nobody@example.com")
        expect(missing is None, "a missing email should give None (scalar_one_or_none), not a user")
        deleted = await call_learner(get_user_by_email, session, gone.email)
        expect(deleted is None, "a soft-deleted user was returned: filter on deleted_at.is_(None)")
        other = await call_learner(get_user_by_email, session, suspended.email)
        expect(
            getattr(other, "id", None) == suspended.id,
            f"no user returned for {suspended.email!r}, a suspended user: suspended is a status, not a deletion, "
            "and only deleted_at marks a user as gone",
        )


@registry.exercise("1.3")
async def _check_list_users(list_users: Callable[..., Any], db: CheckDB) -> None:
    async def expected(**filters: Any) -> list[int]:
        limit, offset = filters.pop("limit", 20), filters.pop("offset", 0)
        stmt = select(User.id).where(User.deleted_at.is_(None)).order_by(User.id).limit(limit).offset(offset)
        for column, value in filters.items():
            stmt = stmt.where(getattr(User, column) == value)
        async with db.Session() as s:
            return list((await s.execute(stmt)).scalars())

    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "with no filters"),
        ({"status": "suspended"}, "with status='suspended'"),
        ({"role": "moderator", "limit": 5}, "with role='moderator', limit=5"),
        (
            {"status": "active", "role": "member", "limit": 7, "offset": 14},
            "with status, role, limit=7, offset=14",
        ),
    ]
    async with db.Session() as session:
        for filters, label in cases:
            with db.count_queries() as q:
                users = as_entities(await call_learner(list_users, session, **filters), "list_users")
            got = [u.id for u in users]
            want = await expected(**dict(filters))
            expect(q.count == 1, f"{q.count} statements {label}: filter, order and limit in one SELECT")
            if set(got) - set(want) and any(u.deleted_at is not None for u in users):
                fail(f"{label}: the list includes soft-deleted users (deleted_at is set): filter them out")
            limit = filters.get("limit", 20)
            expect(len(got) <= limit, f"{label}: {len(got)} users returned for limit={limit}: is limit applied?")
            expect(set(got) == set(want), f"{label}: not the expected users — is every filter applied, in SQL?")
            expect(got == want, f"{label}: right users, wrong order: order by id so pages are stable")
            expect(
                re.search(r"\b(LIMIT|FETCH)\b", q.statements[0], re.IGNORECASE),
                f"{label}: the SELECT has no LIMIT, so every matching user was fetched and the page was cut in "
                "Python: let the database send one page",
            )


async def _apply(update_user: Callable[..., Any], session: AsyncSession, user_id: int, changes: UserUpdate) -> Any:
    """Call update_user and flush what it changed; NULLs in fields nobody sent get their own hint."""
    try:
        user = await call_learner(update_user, session, user_id, changes)
        await session.flush()
    except (LearnerCodeError, StatementError) as exc:
        if "null" in str(getattr(exc, "original", exc)).lower():
            fail("fields the client did not send were set to NULL: use model_dump(exclude_unset=True)")
        if isinstance(exc, StatementError):
            fail(f"your changes could not be saved: {str(exc.orig).splitlines()[0]}")
        raise
    return user


@registry.exercise("1.4")
async def _check_update_user(update_user: Callable[..., Any], db: CheckDB) -> None:
    alive, _ = await _pick_users(db)
    start = datetime.now(UTC) - timedelta(seconds=1)
    columns = text("SELECT name, email, role, status FROM users WHERE id = :id")
    async with db.Session() as session, session.begin():
        async with caller_owns_transaction(session):
            user = await _apply(update_user, session, alive.id, UserUpdate(name="Renamed Person"))
        expect(isinstance(user, User), f"update_user should return the User, got {type(user).__name__}")
        row = (await session.execute(columns, {"id": alive.id})).one()
        expect(row.name == "Renamed Person", "the name was not changed in the database")
        expect(
            (row.email, row.role, row.status) == (alive.email, alive.role, alive.status),
            "fields the client did not send were changed: use model_dump(exclude_unset=True)",
        )
        session.expire_all()
        fresh = await session.get_one(User, alive.id)
        expect(fresh.updated_at >= start, "updated_at was not moved forward by the update")
        async with caller_owns_transaction(session):
            two = await _apply(update_user, session, alive.id, UserUpdate(role="moderator", status="suspended"))
        expect(
            (two.role, two.status, two.name) == ("moderator", "suspended", "Renamed Person"),
            "a second partial update lost a field",
        )
        # Every field of UserUpdate can be sent, email included: the function must not know a fixed list.
        await _apply(update_user, session, alive.id, UserUpdate(email="renamed.person@example.com"))
        row = (await session.execute(columns, {"id": alive.id})).one()
        expect(
            (row.email, row.name, row.status) == ("renamed.person@example.com", "Renamed Person", "suspended"),
            "a change of email was not saved (or it undid earlier changes): apply whichever fields the client sent",
        )
        missing = await call_learner(update_user, session, 10**9, UserUpdate(name="Ghost"))
        expect(missing is None, "updating a user that does not exist should return None")


@registry.exercise("1.5")
async def _check_soft_delete(
    soft_delete_user: Callable[..., Any], restore_user: Callable[..., Any], db: CheckDB
) -> None:
    alive, _ = await _pick_users(db)
    suspended = await _live_suspended(db)
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with db.Session() as session, session.begin():
        deleted_before = await _deleted(session)
        async with caller_owns_transaction(session):
            try:
                await call_learner(soft_delete_user, session, alive.id)
            except LearnerCodeError as exc:
                statement = str(getattr(exc.original, "statement", "")).lstrip().upper()
                if isinstance(exc.original, IntegrityError) and statement.startswith("DELETE"):
                    fail(
                        "the row was deleted from the table (the database refused: orders and accounts point to "
                        "it): a soft delete only sets deleted_at"
                    )
                raise
            await flush_learner_changes(session)
        row = (
            await session.execute(text("SELECT status FROM users WHERE id = :id"), {"id": alive.id})
        ).one_or_none()
        expect(row is not None, "the row was deleted from the table: a soft delete only sets deleted_at")
        session.expire_all()
        user = await session.get_one(User, alive.id)
        deleted_at = user.deleted_at
        expect(deleted_at is not None, "deleted_at is still empty after the soft delete")
        expect(
            deleted_at is not None and before <= deleted_at <= datetime.now(UTC) + timedelta(seconds=5),
            "deleted_at should be the current time (datetime.now(UTC))",
        )
        expect(user.status == alive.status, "the soft delete changed status: deleted_at alone marks a deletion")
        marked = await _deleted(session) - deleted_before
        expect(
            marked == 1, f"deleting one user marked {marked} users as deleted: change only the row with that id"
        )
        async with caller_owns_transaction(session):
            await call_learner(restore_user, session, alive.id)
            await flush_learner_changes(session)
        session.expire_all()
        user = await session.get_one(User, alive.id)
        expect(user.deleted_at is None, "restore_user left deleted_at set: clear it (set it to None)")
        expect(
            await _deleted(session) == deleted_before,
            "restoring one user brought back other deleted users too: change only the row with that id",
        )
        # Deleting and restoring a suspended user must give back a suspended user, not an active one.
        async with caller_owns_transaction(session):
            await call_learner(soft_delete_user, session, suspended.id)
            await call_learner(restore_user, session, suspended.id)
            await flush_learner_changes(session)
        session.expire_all()
        back = await session.get_one(User, suspended.id)
        expect(
            back.status == "suspended",
            f"a suspended user came back from delete and restore with status {back.status!r}: "
            "restoring undoes the deletion only, and leaves every other column as it was",
        )


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
_TERMS = ("ada", "LOPEZ", "a n", "example")
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


@registry.exercise("1.6")
async def _check_search(search_users: Callable[..., Any], db: CheckDB) -> None:
    people = await _search_setup(db)

    def matching(term: str, *, fold: bool = True) -> set[int]:
        if fold:
            return {p.id for p in people if p.deleted_at is None and term.lower() in p.name.lower()}
        return {p.id for p in people if p.deleted_at is None and term in p.name}

    async with db.Session() as session:
        for term in _TERMS:
            with db.count_queries() as q:
                users = as_entities(await call_learner(search_users, session, term), "search_users")
            got, want = {u.id for u in users}, matching(term)
            if term == _TERMS[0]:
                sent = [value for params in q.params for value in bound_values(params)]
            if got == want:
                continue
            extra = {p for p in people if p.id in got - want}
            if any(p.deleted_at is not None for p in extra):
                fail(f"search_users({term!r}) returned soft-deleted users: leave out rows whose deleted_at is set")
            if extra and all(term.lower() in p.email.lower() for p in extra):
                fail(
                    f"search_users({term!r}) returned users whose email contains it, not their name: search names"
                )
            if got and got == matching(term, fold=False):
                fail(
                    f"search_users({term!r}) only found names written in that exact case: the search must ignore "
                    "case (SQLite's LIKE ignores ASCII case, PostgreSQL's does not: the check holds both to that)"
                )
            fail(
                f"search_users({term!r}) gave {len(got)} users, expected {len(want)} "
                "(case-insensitive, part of the name, not deleted)"
            )
        for payload in PAYLOADS:
            try:
                result = await call_learner(search_users, session, payload)
            except Exception:  # noqa: BLE001 - a crash on hostile input is itself the finding
                fail(
                    f"the input {payload!r} broke the query: user input reached the SQL text — bind it as a parameter"
                )
            got, want = {u.id for u in as_entities(result, "search_users")}, matching(payload)
            if got != want:
                if payload == "\\":
                    hint = (
                        "a backslash is LIKE's escape character on PostgreSQL (and wherever ESCAPE '\\' is used), "
                        "so it must be escaped too — icontains(term, autoescape=True) escapes everything"
                    )
                elif payload in ("%", "_"):
                    hint = "LIKE wildcards in user input must be escaped (icontains(term, autoescape=True))"
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
