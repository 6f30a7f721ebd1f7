"""PostgreSQL's lock queue, live: who waits for whom (pg_stat_activity and pg_blocking_pids), for the lesson."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

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
