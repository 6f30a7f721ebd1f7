"""PostgreSQL's lock queue, live: who waits for whom, whether a statement is stuck, and whether a writer gets through."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_WAITING = text(
    """
    SELECT pid, state, wait_event_type AS waits_for, pg_blocking_pids(pid) AS blocked_by, left(query, 60) AS query
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%'
    ORDER BY backend_start
    """
)


async def lock_queue(conn: AsyncConnection) -> pd.DataFrame:
    """One row per other session on this database: what it runs, and which sessions block it."""
    rows = (await conn.execute(_WAITING)).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=["pid", "state", "waits_for", "blocked_by", "query"])


async def backend_pid(conn: AsyncConnection) -> int:
    return (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()


async def index_is_valid(conn: AsyncConnection, name: str) -> bool | None:
    """True/False for an index that exists (a failed CONCURRENTLY build leaves an INVALID one); None if missing."""
    return (
        await conn.execute(
            text(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = :n"
            ),
            {"n": name},
        )
    ).scalar()


async def waits_for_a_lock(
    engine: AsyncEngine, task: asyncio.Task[Any], query_like: str, *, within: float = 10
) -> bool:
    """True once a session running a statement LIKE query_like waits for a lock; False if task ended first."""
    deadline = time.monotonic() + within
    async with engine.connect() as conn:
        while time.monotonic() < deadline and not task.done():
            waiting = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query ILIKE :q AND pid <> pg_backend_pid()"
                    ),
                    {"q": query_like},
                )
            ).scalar_one()
            if waiting:
                return True
            # pg_stat_activity is read once per transaction: end it, so the next look is fresh.
            await conn.rollback()
            await asyncio.sleep(0.05)
    return False


async def insert_waits(engine: AsyncEngine, statement: str, *, patience: str = "1s") -> float | None:
    """Seconds a one-row write took, or None if it waited for a lock longer than `patience` (its lock_timeout)."""
    started = time.perf_counter()
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{patience}'"))
            await conn.execute(text(statement))
    except DBAPIError as exc:
        if "lock timeout" in str(exc.orig):
            return None
        raise
    return time.perf_counter() - started
