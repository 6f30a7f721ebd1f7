"""What chapter 1's checks share: picking users, a foreign clock for the learner's code, and calls that must not
take over the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from course.checks.base import CheckDB, LearnerCodeError, call_learner, fail
from course.checks.clock import machine_zone
from course.checks.sessions import caller_owns_transaction
from course.domain.models import User

# UTC+09:30 as a POSIX TZ string (no tz database needed): far enough from UTC that a local time labelled UTC is
# hours off, whatever zone the machine itself runs in.
FOREIGN_ZONE = "CHK-09:30"

OWN_TRANSACTION = (
    "your function opened a transaction of its own (session.begin()), but the caller's transaction was already "
    "open: the caller owns the transaction, and a data-access function works inside it"
)


def foreign_clock() -> AbstractContextManager[None]:
    """Run the learner's code with the process's local time zone far from UTC, then put the old one back."""
    return machine_zone(FOREIGN_ZONE)


async def call_in_callers_transaction(
    session: AsyncSession, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Call fn inside the caller's open transaction; committing, ending or re-opening it fails the check."""
    if not session.in_transaction():
        await session.begin()
    async with caller_owns_transaction(session):
        try:
            with foreign_clock():
                return await call_learner(fn, session, *args, **kwargs)
        except LearnerCodeError as exc:
            if isinstance(exc.original, InvalidRequestError) and "already begun" in str(exc.original):
                fail(OWN_TRANSACTION)
            raise


async def count_users(db: CheckDB, where: Any) -> int:
    async with db.Session() as session:
        return (await session.execute(select(func.count()).select_from(User).where(where))).scalar_one()


async def deleted_count(session: AsyncSession) -> int:
    """How many users the session sees as soft-deleted, its own uncommitted changes included."""
    return (
        await session.execute(select(func.count()).select_from(User).where(User.deleted_at.is_not(None)))
    ).scalar_one()


async def pick_users(db: CheckDB) -> tuple[User, User]:
    """A live user and a soft-deleted one."""
    async with db.Session() as session:
        alive = (
            await session.execute(select(User).where(User.deleted_at.is_(None)).order_by(User.id).limit(1))
        ).scalar_one()
        gone = (
            await session.execute(select(User).where(User.deleted_at.is_not(None)).order_by(User.id).limit(1))
        ).scalar_one()
    return alive, gone


async def live_suspended(db: CheckDB) -> User:
    """A user who is suspended but not deleted: status and deletion are different things."""
    async with db.Session() as session:
        stmt = select(User).where(User.deleted_at.is_(None), User.status == "suspended").order_by(User.id)
        return (await session.execute(stmt.limit(1))).scalar_one()
