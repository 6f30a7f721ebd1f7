"""Checks for chapter 1 (CRUD): they run the learner's functions on a fresh copy and judge rows and statements."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from course.checks.base import CheckDB, LearnerCodeError, Registry, call_learner, expect, fail
from course.models import User
from course.schemas import UserUpdate

registry = Registry("01")
check = registry.check


@contextmanager
def _watch_commits(session: AsyncSession) -> Iterator[list[str]]:
    """Record commits made through the session: a data-access function must leave that to its caller."""
    commits: list[str] = []

    def on_commit(_session: object) -> None:
        commits.append("commit")

    event.listen(session.sync_session, "after_commit", on_commit)
    try:
        yield commits
    finally:
        event.remove(session.sync_session, "after_commit", on_commit)


def _no_commit(commits: list[str]) -> None:
    expect(
        not commits,
        "your function committed the transaction: the caller decides when to commit "
        "(use flush() to get ids and send the SQL, and leave commit() out)",
    )


async def _count(db: CheckDB, where: Any) -> int:
    async with db.Session() as session:
        return (await session.execute(select(func.count()).select_from(User).where(where))).scalar_one()


def _is_argon2_of(stored: str, plain: str) -> bool:
    try:
        return PasswordHasher().verify(stored, plain)
    except (InvalidHashError, VerificationError):
        return False


@registry.exercise("1.1", points=2)
async def _check_create_user(create_user: Callable[..., Any], db: CheckDB) -> None:
    email, password = "new.learner@example.com", "correct horse battery"
    async with db.Session() as session, session.begin():
        with _watch_commits(session) as commits:
            user = await call_learner(create_user, session, email=email, name="New Learner", password=password)
        _no_commit(commits)
        expect(isinstance(user, User), f"create_user should return the new User, got {type(user).__name__}")
        expect(user.id is not None, "the returned user has no id yet: flush() sends the INSERT and fills it in")
        expect(
            user.email == email and user.name == "New Learner", "the user's email or name is not what was given"
        )
        expect(user.password_hash != password, "the password is stored as plain text: store a hash instead")
        expect(password not in user.password_hash, "the stored hash contains the password itself")
        expect(
            _is_argon2_of(user.password_hash, password),
            "password_hash is not an argon2 hash of the password: use course.security.hash_password",
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


@registry.exercise("1.2", points=2)
async def _check_get_by_email(get_user_by_email: Callable[..., Any], db: CheckDB) -> None:
    alive, gone = await _pick_users(db)
    async with db.Session() as session:
        with db.count_queries() as q:
            found = await call_learner(get_user_by_email, session, alive.email)
        expect(found is not None, f"no user returned for {alive.email!r}, which exists")
        expect(getattr(found, "id", None) == alive.id, f"asked for {alive.email!r}, got a different user")
        expect(q.count == 1, f"{q.count} statements for one lookup: one SELECT ... WHERE email = :email is enough")
        expect(
            alive.email not in q.statements[0],
            "the email was pasted into the SQL text: pass it as a bound parameter (User.email == email)",
        )
        missing = await call_learner(get_user_by_email, session, "nobody@example.com")
        expect(missing is None, "a missing email should give None (scalar_one_or_none), not a user")
        deleted = await call_learner(get_user_by_email, session, gone.email)
        expect(deleted is None, "a soft-deleted user was returned: filter on deleted_at.is_(None)")


@registry.exercise("1.3", points=3)
async def _check_list_users(list_users: Callable[..., Any], db: CheckDB) -> None:
    async def expected(**filters: Any) -> list[int]:
        limit, offset = filters.pop("limit", 20), filters.pop("offset", 0)
        stmt = select(User.id).where(User.deleted_at.is_(None)).order_by(User.id).limit(limit).offset(offset)
        for column, value in filters.items():
            stmt = stmt.where(getattr(User, column) == value)
        async with db.Session() as s:
            return list((await s.execute(stmt)).scalars())

    cases = [
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
                users = await call_learner(list_users, session, **filters)
            got = [u.id for u in users]
            want = await expected(**dict(filters))
            expect(q.count == 1, f"{q.count} statements {label}: filter, order and limit in one SELECT")
            if set(got) - set(want) and any(u.deleted_at is not None for u in users):
                fail(f"{label}: the list includes soft-deleted users (deleted_at is set): filter them out")
            limit = filters.get("limit", 20)
            expect(len(got) <= limit, f"{label}: {len(got)} users returned for limit={limit}: is limit applied?")
            expect(set(got) == set(want), f"{label}: not the expected users — is every filter applied, in SQL?")
            expect(got == want, f"{label}: right users, wrong order: order by id so pages are stable")


@registry.exercise("1.4", points=3)
async def _check_update_user(update_user: Callable[..., Any], db: CheckDB) -> None:
    alive, _ = await _pick_users(db)
    start = datetime.now(UTC) - timedelta(seconds=1)
    async with db.Session() as session, session.begin():
        with _watch_commits(session) as commits:
            try:
                user = await call_learner(update_user, session, alive.id, UserUpdate(name="Renamed Person"))
                await session.flush()
            except (LearnerCodeError, IntegrityError) as exc:
                if "null" in str(getattr(exc, "original", exc)).lower():
                    fail("fields the client did not send were set to NULL: use model_dump(exclude_unset=True)")
                raise
        _no_commit(commits)
        expect(isinstance(user, User), f"update_user should return the User, got {type(user).__name__}")
        row = (
            await session.execute(
                text("SELECT name, email, role, status FROM users WHERE id = :id"), {"id": alive.id}
            )
        ).one()
        expect(row.name == "Renamed Person", "the name was not changed in the database")
        expect(
            (row.email, row.role, row.status) == (alive.email, alive.role, alive.status),
            "fields the client did not send were changed: use model_dump(exclude_unset=True)",
        )
        session.expire_all()
        fresh = await session.get(User, alive.id)
        expect(fresh.updated_at >= start, "updated_at was not moved forward by the update")
        two = await call_learner(update_user, session, alive.id, UserUpdate(role="moderator", status="suspended"))
        expect(
            (two.role, two.status, two.name) == ("moderator", "suspended", "Renamed Person"),
            "a second partial update lost a field",
        )
        missing = await call_learner(update_user, session, 10**9, UserUpdate(name="Ghost"))
        expect(missing is None, "updating a user that does not exist should return None")


@registry.exercise("1.5", points=3)
async def _check_soft_delete(
    soft_delete_user: Callable[..., Any], restore_user: Callable[..., Any], db: CheckDB
) -> None:
    alive, _ = await _pick_users(db)
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with db.Session() as session, session.begin():
        with _watch_commits(session) as commits:
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
        _no_commit(commits)
        await session.flush()
        row = (
            await session.execute(text("SELECT status FROM users WHERE id = :id"), {"id": alive.id})
        ).one_or_none()
        expect(row is not None, "the row was deleted from the table: a soft delete only sets deleted_at")
        session.expire_all()
        user = await session.get(User, alive.id)
        expect(user.deleted_at is not None, "deleted_at is still empty after the soft delete")
        expect(user.deleted_at >= before, "deleted_at should be the current time (datetime.now(UTC))")
        expect(user.status == alive.status, "the soft delete changed status: deleted_at alone marks a deletion")
        await call_learner(restore_user, session, alive.id)
        await session.flush()
        session.expire_all()
        user = await session.get(User, alive.id)
        expect(user.deleted_at is None, "restore_user left deleted_at set: clear it (set it to None)")


PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "%' OR name LIKE '%",
    "x'; DROP TABLE users; --",
    "' UNION SELECT * FROM users --",
    "%",
    "_",
]


@registry.exercise("1.6", points=3)
async def _check_search(search_users: Callable[..., Any], db: CheckDB) -> None:
    async def names_containing(term: str) -> set[int]:
        async with db.Session() as s:
            rows = await s.execute(select(User.id, User.name).where(User.deleted_at.is_(None)))
            return {uid for uid, name in rows if term.lower() in name.lower()}

    async with db.Session() as session:
        for term in ("ada", "LOPEZ", "a n"):
            users = await call_learner(search_users, session, term)
            want = await names_containing(term)
            got = {u.id for u in users}
            expect(
                got == want,
                f"search_users({term!r}) gave {len(got)} users, expected {len(want)} (case-insensitive, part of the name, not deleted)",
            )
        for payload in PAYLOADS:
            try:
                users = await call_learner(search_users, session, payload)
            except Exception:  # noqa: BLE001 - a crash on hostile input is itself the finding
                fail(
                    f"the input {payload!r} broke the query: user input reached the SQL text — bind it as a parameter"
                )
            got = {u.id for u in users}
            if got != await names_containing(payload):
                hint = (
                    "LIKE wildcards in user input must be escaped (icontains(term, autoescape=True))"
                    if payload in ("%", "_")
                    else "user input was spliced into the SQL: bind it as a parameter"
                )
                fail(f"the input {payload!r} got through and matched {len(got)} users: {hint}")
    async with db.Session() as session:
        count = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
        expect(count > 0, "the users table was emptied by one of the inputs")
