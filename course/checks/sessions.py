"""How a learner's data-access function treats the caller's session: transaction ownership, flushing, results."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import SAWarning, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from course.checks.base import expect, fail
from course.domain.models import User

COMMITTED = (
    "your function committed the transaction: the caller decides when to commit "
    "(use flush() to get ids and send the SQL, and leave commit() out)"
)


@asynccontextmanager
async def caller_owns_transaction(session: AsyncSession) -> AsyncIterator[None]:
    """Fail if the block ends the caller's transaction: a commit or rollback, through the session or its connection."""
    sync = session.sync_session
    root = sync.get_transaction()
    commits: list[object] = []

    def on_commit(committed: Any) -> None:
        # Releasing a SAVEPOINT (begin_nested) leaves the caller's transaction open: only the outer commit counts.
        if not committed.in_nested_transaction():
            commits.append(committed)

    event.listen(sync, "after_commit", on_commit)
    try:
        yield
    finally:
        event.remove(sync, "after_commit", on_commit)
    expect(not commits, COMMITTED)
    expect(
        sync.get_transaction() is root,
        "your function ended the caller's transaction (rollback or close): leave the transaction to the caller",
    )
    # COMMIT sent on session.connection() goes around the session's events, but leaves no transaction behind.
    if not (await session.connection()).in_transaction():
        with warnings.catch_warnings():
            # Closing the session's transaction now, quietly: its connection has nothing left to roll back.
            warnings.simplefilter("ignore", SAWarning)
            await session.rollback()
        fail(COMMITTED)


async def flush_learner_changes(session: AsyncSession) -> None:
    """Send the learner's pending changes; a value the database or a column type refuses is their mistake."""
    try:
        await session.flush()
    except StatementError as exc:
        fail(f"your changes could not be saved: {str(exc.orig).splitlines()[0]}")


def bound_values(params: Any) -> list[str]:
    """The values a statement sent as parameters, as text (drivers hand them over as a tuple or a dict)."""
    values = params.values() if isinstance(params, dict) else params if isinstance(params, list | tuple) else ()
    return [str(value) for value in values]


def as_entities(result: Any, what: str, model: type = User) -> list[Any]:
    """The learner's result as a list of `model` objects, or a failure that says what came back instead."""
    try:
        items = list(result)
    except TypeError:
        fail(f"{what} should return a list of {model.__name__} objects, got {type(result).__name__}")
    odd = next((item for item in items if not isinstance(item, model)), None)
    expect(
        odd is None,
        f"{what} should return {model.__name__} objects, got {type(odd).__name__}: select the entity itself "
        f"(select({model.__name__})) "
        "and take its scalars, so callers get objects they can read and change",
    )
    return items
