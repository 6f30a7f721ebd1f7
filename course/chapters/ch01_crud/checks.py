"""Checks for chapter 1 (CRUD): they run the learner's functions on a fresh copy and judge rows and statements.

This module holds the registry and the checks of exercises 1.1-1.3; the writes (1.4, 1.5), the search (1.6) and
the upsert (1.7) have modules of their own and are registered here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import insert, select, text, update

from course.chapters.ch01_crud import search, upsert, writes
from course.chapters.ch01_crud.common import (
    call_in_callers_transaction,
    count_users,
    live_suspended,
    pick_users,
)
from course.chapters.ch01_crud.writes import expect_now
from course.chapters.registry import chapter
from course.checks.base import CheckDB, Registry, expect, fail
from course.checks.sessions import as_entities, bound_values
from course.domain.models import User
from course.domain.security import needs_rehash

registry = Registry(chapter(1))
check = registry.check
registry.exercise("1.4")(writes.check_update_user)
registry.exercise("1.5")(writes.check_soft_delete)
registry.exercise("1.6")(search.check_search)
registry.exercise("1.7")(upsert.check_upsert)


def _is_argon2_of(stored: str, plain: str) -> bool:
    try:
        return PasswordHasher().verify(stored, plain)
    except (InvalidHashError, VerificationError):
        return False


@registry.exercise("1.1")
async def _check_create_user(create_user: Callable[..., Any], db: CheckDB) -> None:
    email, password = "New.Learner@Example.com", "correct horse battery"
    started = datetime.now(UTC) - timedelta(seconds=1)
    async with db.Session() as session, session.begin():
        user = await call_in_callers_transaction(
            session, create_user, email=email, name="New Learner", password=password
        )
        expect(isinstance(user, User), f"create_user should return the new User, got {type(user).__name__}")
        expect(user.id is not None, "the returned user has no id yet: the INSERT must reach the database first")
        expect(
            user.email == email and user.name == "New Learner",
            "the user's email or name is not exactly what was given (keep them as they are)",
        )
        expect(
            (user.role, user.status, user.deleted_at, user.display_name) == ("member", "active", None, None),
            f"the new user has role={user.role!r}, status={user.status!r}, deleted_at={user.deleted_at!r}, "
            f"display_name={user.display_name!r}: only email, name and the password's hash are given; every other "
            "column keeps the model's default",
        )
        # The defaults of the timestamps too: a local time labelled UTC is hours off (the clock runs at UTC+09:30).
        stored = (await session.execute(select(User.created_at, User.updated_at).where(User.id == user.id))).one()
        for column, value in zip(("created_at", "updated_at"), stored, strict=True):
            expect_now(value, started, column)
        expect(user.password_hash != password, "the password is stored as plain text: store a hash instead")
        expect(password not in user.password_hash, "the stored hash contains the password itself")
        expect(
            _is_argon2_of(user.password_hash, password),
            "password_hash is not an argon2 hash of the password: the course's security module makes those",
        )
        # A hash that verifies can still be too cheap: fewer passes or less memory make guessing faster.
        expect(
            not needs_rehash(user.password_hash),
            "password_hash is an argon2 hash, but made with other settings than the course's (a different variant, "
            "fewer passes or less memory), which makes guessing cheaper: let the course's security module hash it",
        )
        twin = await call_in_callers_transaction(
            session, create_user, email="twin@example.com", name="Twin", password=password
        )
        expect(
            twin.password_hash != user.password_hash,
            "two users with the same password got the same hash: the hash needs a random salt",
        )
        # A second connection must not see an uncommitted row.
        expect(await count_users(db, User.email == email) == 0, "another session already sees the user")
        await session.rollback()
    expect(
        await count_users(db, User.email == email) == 0,
        "the user survived the caller's rollback: the caller decides about the transaction",
    )


@registry.exercise("1.2")
async def _check_get_by_email(get_user_by_email: Callable[..., Any], db: CheckDB) -> None:
    alive, gone = await pick_users(db)
    suspended = await live_suspended(db)
    # The seed stores addresses in lower case; this one is stored as typed, and an exact lookup must find it.
    mixed = "Mixed.Case@Example.org"
    async with db.Session() as session, session.begin():
        session.add(User(email=mixed, name="Mixed Case", password_hash="-"))
    async with db.Session() as session:
        with db.count_queries() as q:
            found = await call_in_callers_transaction(session, get_user_by_email, alive.email)
        expect(found is not None, f"no user returned for {alive.email!r}, which exists")
        expect(
            isinstance(found, User),
            f"get_user_by_email should return the User itself, got {type(found).__name__}: select the entity, "
            "not some of its columns",
        )
        expect(found.id == alive.id, f"asked for {alive.email!r}, got a different user")
        expect(q.count == 1, f"{q.count} statements for one lookup: one SELECT with a WHERE clause is enough")
        expect(
            alive.email not in q.statements[0],
            "the email was pasted into the SQL text: it must travel as a bound parameter",
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
                "`_` and `%` are wildcards in LIKE patterns; an email lookup compares the exact address",
            ),
            (
                alive.email.upper(),
                "an email lookup compares the address exactly as stored, and this one is stored in lower case",
            ),
        ):
            near = await call_in_callers_transaction(session, get_user_by_email, probe)
            expect(near is None, f"looking up {probe!r} returned {getattr(near, 'email', near)!r}: {why}")
        stored = await call_in_callers_transaction(session, get_user_by_email, mixed)
        expect(
            getattr(stored, "email", None) == mixed,
            f"looking up {mixed!r}, stored exactly so, returned {getattr(stored, 'email', stored)!r}: compare the "
            "address as it is stored, with no lower() on either side",
        )
        missing = await call_in_callers_transaction(session, get_user_by_email, "nobody@example.com")
        expect(missing is None, "a missing email should give None, not a user and not an exception")
        deleted = await call_in_callers_transaction(session, get_user_by_email, gone.email)
        expect(deleted is None, "a soft-deleted user was returned: deleted_at set means the user is gone")
        other = await call_in_callers_transaction(session, get_user_by_email, suspended.email)
        expect(
            getattr(other, "id", None) == suspended.id,
            f"no user returned for {suspended.email!r}, a suspended user: suspended is a status, not a deletion, "
            "and only deleted_at marks a user as gone",
        )


# Users 1.3 adds to its copy: admins whose names run against their ids, so any order but id order shows.
_LISTED = 36


async def _list_setup(db: CheckDB) -> None:
    """Add users whose name and created_at order differ from id order, and make the database's own order differ."""
    async with db.Session() as session, session.begin():
        first = (await session.execute(text("SELECT max(id) FROM users"))).scalar_one() + 1
        now = datetime.now(UTC)
        # Inserted from the highest id down: PostgreSQL's heap (what a scan without ORDER BY reads) runs backwards.
        rows = [
            {
                "id": first + i,
                "email": f"listed.{i}@example.com",
                "name": f"Admin {chr(ord('Z') - i % 26)}{i:02d}",
                "password_hash": "-",
                "role": "admin",
                "status": "suspended" if i % 3 else "active",
                "created_at": now - timedelta(days=i),
                "updated_at": now,
                "deleted_at": now if i % 7 == 3 else None,
            }
            for i in reversed(range(_LISTED))
        ]
        await session.execute(insert(User), rows)
        # Rewritten rows move to the end of a PostgreSQL table: the first live users are no longer read first.
        await session.execute(update(User).where(User.id <= 12).values(name=User.name))
        if db.dialect == "sqlite":
            # SQLite scans in id order; with this index a filtered query without ORDER BY comes back in name order.
            await session.execute(
                text("CREATE INDEX ix_check_users_role_status_name ON users (role, status, name)")
            )


@registry.exercise("1.3")
async def _check_list_users(list_users: Callable[..., Any], db: CheckDB) -> None:
    await _list_setup(db)

    async def expected(**filters: Any) -> list[int]:
        limit, offset = filters.pop("limit", 20), filters.pop("offset", 0)
        stmt = select(User.id).where(User.deleted_at.is_(None)).order_by(User.id).limit(limit).offset(offset)
        for column, value in filters.items():
            stmt = stmt.where(getattr(User, column) == value)
        async with db.Session() as s:
            return list((await s.execute(stmt)).scalars())

    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "with no filters"),
        ({"role": "admin", "status": "suspended"}, "with role='admin', status='suspended'"),
        ({"role": "admin", "limit": 6, "offset": 4}, "with role='admin', limit=6, offset=4"),
        ({"status": "suspended", "limit": 5}, "with status='suspended', limit=5"),
        (
            {"status": "active", "role": "member", "limit": 7, "offset": 14},
            "with status, role, limit=7, offset=14",
        ),
        ({"role": "moderator", "status": None, "limit": 3}, "with role='moderator', status=None, limit=3"),
    ]
    async with db.Session() as session:
        for filters, label in cases:
            with db.count_queries() as q:
                result = await call_in_callers_transaction(session, list_users, **filters)
            users = as_entities(result, "list_users")
            got = [u.id for u in users]
            wanted = {k: v for k, v in filters.items() if v is not None}
            want = await expected(**wanted)
            expect(q.count == 1, f"{q.count} statements {label}: filter, order and limit in one SELECT")
            if set(got) - set(want) and any(u.deleted_at is not None for u in users):
                fail(f"{label}: the list includes soft-deleted users (deleted_at is set): leave them out")
            limit = filters.get("limit", 20)
            expect(len(got) <= limit, f"{label}: {len(got)} users returned for limit={limit}: is limit applied?")
            if got != want and not re.search(r"\bORDER BY\b", q.statements[0], re.IGNORECASE):
                fail(
                    f"{label}: not the expected page, and the SELECT has no ORDER BY. Without one a database returns "
                    "rows in whatever order it finds them (through an index, after a row was rewritten), so pages "
                    "differ from call to call and can overlap: order by id"
                )
            if set(got) == set(want):
                expect(got == want, f"{label}: right users, wrong order: the list is in id order, ascending")
            matching = await expected(**{**wanted, "limit": 10**6, "offset": 0})
            if got != want and len(got) == len(want) and set(got) <= set(matching):
                fail(
                    f"{label}: these users match the filters, but they are not this page: is the list in id order, "
                    "ascending, and are the first `offset` of them skipped?"
                )
            expect(set(got) == set(want), f"{label}: not the expected users — is every filter applied, in SQL?")
            expect(
                re.search(r"\b(LIMIT|FETCH)\b", q.statements[0], re.IGNORECASE),
                f"{label}: the SELECT has no LIMIT, so every matching user was fetched and the page was cut in "
                "Python: let the database send one page",
            )
