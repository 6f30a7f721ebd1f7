"""What the lesson does with its PgBouncer: many concurrent clients, the admin console (SHOW ...), interleaved timings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from course import db
from course.chapters.ch06_pooling.pgbouncer import PgBouncer
from course.domain.models import User


async def _client(engine: AsyncEngine, user_id: int, transactions: int, hold_s: float) -> None:
    # One connection, several transactions: what one request of a web app does, and where a pooler may switch
    # server connections (between transactions, in transaction mode).
    async with engine.connect() as conn:
        for _ in range(transactions):
            await conn.execute(select(User.id).where(User.id == user_id))
            await conn.execute(select(func.pg_sleep(hold_s)))
            await conn.commit()


async def clients(
    engine: AsyncEngine, *, n: int = 50, transactions: int = 2, hold_s: float = 0.01
) -> list[BaseException]:
    """Run n concurrent clients of `transactions` short transactions each; return the errors (one per failed client)."""
    outcomes = await asyncio.gather(
        *(_client(engine, i % 100 + 1, transactions, hold_s) for i in range(n)), return_exceptions=True
    )
    return [outcome for outcome in outcomes if isinstance(outcome, BaseException)]


def first_line(error: BaseException) -> str:
    """asyncpg's own error on one line: SQLAlchemy wraps it twice (DBAPIError, then its dialect's Error)."""
    inner = getattr(error, "orig", None) or error
    inner = inner.__cause__ or inner
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}"


async def interleaved_ms(
    requests: Mapping[str, Callable[[], Awaitable[object]]], n: int
) -> dict[str, list[float]]:
    """Milliseconds of n calls of each request, taken in turns (A, B, C, A, B, C...) after one warm-up call each.

    Taking turns keeps the comparison fair on a shared machine whose load changes from one second to the next.
    """
    for request in requests.values():
        await request()
    samples: dict[str, list[float]] = {name: [] for name in requests}
    for _ in range(n):
        for name, request in requests.items():
            began = time.perf_counter()
            await request()
            samples[name].append((time.perf_counter() - began) * 1000)
    return samples


async def console(bouncer: PgBouncer) -> psycopg.AsyncConnection[Any]:
    """A connection to PgBouncer's admin console: the virtual database `pgbouncer`, same login (in admin_users)."""
    url = db.parse_url(bouncer.url).set(drivername="postgresql", database="pgbouncer")
    return await psycopg.AsyncConnection.connect(url.render_as_string(False), autocommit=True)


async def show(
    bouncer: PgBouncer, what: str = "POOLS", *, conn: psycopg.AsyncConnection[Any] | None = None
) -> list[dict[str, Any]]:
    """The bouncer's database's rows of an admin console command (SHOW POOLS, SHOW STATS...); conn reuses a console."""
    if conn is None:
        async with await console(bouncer) as own:
            return await show(bouncer, what, conn=own)
    # The console speaks only the simple query protocol: psycopg's client-side cursor uses it, asyncpg cannot.
    cursor = psycopg.AsyncClientCursor(conn, row_factory=dict_row)
    await cursor.execute(f"SHOW {what}")
    database = db.parse_url(bouncer.url).database
    return [row for row in await cursor.fetchall() if row.get("database", database) == database]


@asynccontextmanager
async def peaks(bouncer: PgBouncer, *, every: float = 0.02) -> AsyncIterator[dict[str, int]]:
    """Poll SHOW POOLS while the block runs: the dict ends with the most clients and server connections seen at once."""
    seen = {"clients": 0, "servers": 0}
    done = asyncio.Event()
    # One console connection for the whole block: a login per poll would load PgBouncer more than the clients do.
    async with await console(bouncer) as conn:

        async def poll() -> None:
            while not done.is_set():
                for row in await show(bouncer, "POOLS", conn=conn):
                    seen["clients"] = max(seen["clients"], row["cl_active"] + row["cl_waiting"])
                    servers = sum(row[key] for key in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
                    seen["servers"] = max(seen["servers"], servers)
                with suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), every)

        poller = asyncio.create_task(poll())
        try:
            yield seen
        finally:
            done.set()
            await poller
