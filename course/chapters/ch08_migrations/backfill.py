"""A large table to backfill, the two ways to backfill it, and a concurrent writer that measures how long it waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

TABLE = "signups"


async def make_signups(engine: AsyncEngine, rows: int) -> None:
    """A table of `rows` signups whose new column email_lower is still NULL, generated inside the database."""
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        await conn.execute(
            text(
                f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, email VARCHAR(255) NOT NULL, email_lower VARCHAR(255))"
            )
        )
        # Rows made by the database itself: millions in seconds, without sending them over the wire.
        numbers = (
            "SELECT n FROM generate_series(1, :rows) AS n"
            if engine.dialect.name == "postgresql"
            else "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :rows) SELECT n FROM s"
        )
        await conn.execute(
            text(f"INSERT INTO {TABLE} (id, email) SELECT n, 'User' || n || '@Example.COM' FROM ({numbers}) AS g"),
            {"rows": rows},
        )
        if engine.dialect.name == "postgresql":
            # The lesson times statements on this table right after backfills, which would wake autovacuum on it;
            # a timed ALTER TABLE then waited for the vacuum's lock (1 s: deadlock_timeout, when the vacuum gives
            # way), as one CI run showed. The lesson says so; the demo table keeps its timings to itself.
            await conn.execute(text(f"ALTER TABLE {TABLE} SET (autovacuum_enabled = false)"))
    async with engine.begin() as conn:
        await conn.execute(text(f"ANALYZE {TABLE}"))


async def reset_backfill(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {TABLE} SET email_lower = NULL"))


async def one_update(engine: AsyncEngine) -> int:
    """The whole backfill in one UPDATE, one transaction: every row stays locked until the very end."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text(f"UPDATE {TABLE} SET email_lower = lower(email) WHERE email_lower IS NULL")
        )
    return result.rowcount


async def in_batches(
    engine: AsyncEngine,
    *,
    batch_size: int,
    pause: float = 0.0,
    table: str = TABLE,
    assign: str = "email_lower = lower(email)",
    pending: str = "email_lower IS NULL",
) -> int:
    """Keyset batches over the primary key, one transaction each: a writer waits for one batch at most.

    `UPDATE table SET assign WHERE pending`, batch by batch (the defaults fill signups.email_lower).
    """
    done, last_id = 0, 0
    while True:
        # On SQLite a transaction that reads and then writes must take the write lock at BEGIN (chapter 5): a
        # deferred one is refused with "database is locked" when the application wrote in between.
        async with engine.connect() as conn:
            await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                # The batch's last id: a seek on the primary key, so batch 1 and batch 1,000 cost the same.
                upper = (
                    await conn.execute(
                        text(
                            f"SELECT max(id) FROM (SELECT id FROM {table} WHERE id > :last ORDER BY id LIMIT :size) AS b"
                        ),
                        {"last": last_id, "size": batch_size},
                    )
                ).scalar()
                if upper is None:
                    return done
                result = await conn.execute(
                    text(f"UPDATE {table} SET {assign} WHERE id > :last AND id <= :upper AND {pending}"),
                    {"last": last_id, "upper": upper},
                )
        done += result.rowcount
        last_id = upper
        # SQLite has no lock queue: a waiting writer polls, so a short pause between batches lets it in.
        await asyncio.sleep(pause)


@dataclass
class Contention:
    """What a backfill cost: its own duration, and the longest a concurrent one-row write had to wait."""

    seconds: float
    rows: int
    writes: int
    longest_wait_ms: float


async def with_writer(engine: AsyncEngine, backfill: Awaitable[int], *, rows: int) -> Contention:
    """Run a backfill while another connection updates one row at a time (as the application does), timing each."""
    stop = asyncio.Event()
    waits: list[float] = []

    async def writer() -> None:
        target = 1
        async with engine.connect() as conn:
            while not stop.is_set():
                started = time.perf_counter()
                async with conn.begin():
                    await conn.execute(
                        text(f"UPDATE {TABLE} SET email = email WHERE id = :id"),
                        {"id": target},
                    )
                waits.append(time.perf_counter() - started)
                # Rows spread over the table: the first, the middle, the last batch all get written to.
                target = (target + rows // 7) % rows + 1
                await asyncio.sleep(0.005)

    task = asyncio.create_task(writer())
    # Let the writer connect and write once before the backfill starts.
    while not waits:
        await asyncio.sleep(0.005)
    started = time.perf_counter()
    try:
        done = await backfill
    finally:
        seconds = time.perf_counter() - started
        stop.set()
        await task
    return Contention(seconds=seconds, rows=done, writes=len(waits), longest_wait_ms=1000 * max(waits))
