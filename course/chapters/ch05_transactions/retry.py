"""Which database errors mean "run the whole transaction again", and a bounded retry with backoff and jitter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")

# PostgreSQL's two "not your fault, try again" SQLSTATEs: serialization_failure and deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# SQLite's result codes for a lock it could not get: SQLITE_BUSY (5) and SQLITE_BUSY_SNAPSHOT (517).
SQLITE_BUSY_CODES = {5: "SQLITE_BUSY", 517: "SQLITE_BUSY_SNAPSHOT", 6: "SQLITE_LOCKED"}


def error_code(exc: BaseException) -> str | None:
    """The SQLSTATE (PostgreSQL) or SQLITE_* name behind an error SQLAlchemy wrapped, or None."""
    orig = getattr(exc, "orig", exc)
    # asyncpg's exceptions carry .sqlstate; SQLAlchemy's adapter exposes .pgcode on its wrapper too.
    for attr in ("sqlstate", "pgcode"):
        code = getattr(orig, attr, None)
        if isinstance(code, str):
            return code
    # Some adapters keep the driver's own exception as __cause__.
    cause = getattr(orig, "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    if isinstance(code, str):
        return code
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return SQLITE_BUSY_CODES.get(sqlite_code, f"SQLITE_{sqlite_code}")
    return None


def is_retryable(exc: BaseException) -> bool:
    """True for a serialization failure or a deadlock (SQLSTATE 40001, 40P01), and nothing else."""
    return isinstance(exc, DBAPIError) and error_code(exc) in RETRYABLE_SQLSTATES


@dataclass
class Attempts:
    """How many times a transaction ran, and the retryable errors that made it run again."""

    count: int = 0
    retried: int = 0


async def run_transaction(
    Session: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 8,
    base_delay: float = 0.005,
    max_delay: float = 0.2,
    stats: Attempts | None = None,
    rng: random.Random | None = None,
) -> T:
    """Run work(session) in its own transaction; on 40001/40P01 roll back and run it again, at most `attempts` times."""
    rng = rng or random.Random()
    for attempt in range(1, attempts + 1):
        if stats is not None:
            stats.count += 1
        try:
            # A new session per attempt: the failed one is rolled back and closed by the `async with`.
            async with Session() as session, session.begin():
                return await work(session)
        except DBAPIError as exc:
            if not is_retryable(exc) or attempt == attempts:
                raise
            if stats is not None:
                stats.retried += 1
        # Exponential backoff with full jitter: colliding transactions spread out instead of colliding again.
        await asyncio.sleep(rng.uniform(0, min(max_delay, base_delay * 2**attempt)))
    raise AssertionError("unreachable")  # pragma: no cover
