"""PostgreSQL's seed loader: one table at a time, the server finishing each table while Python draws the next.

Inside the one transaction that builds the seed, each table is drawn (in a worker thread), sent with a binary COPY,
and then finished by the server alone: its unique constraints and indexes, ANALYZE, and its digest for
course/seed/verify.py. That server work runs while the next table is drawn, so the two cores work at once (a
drawing thread that competes with the COPY's encoding for the GIL was slower; waiting for the server does not).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import islice

import asyncpg

from course.domain.models import Base
from course.seed import verify
from course.seed.ddl import Plan
from course.seed.generate import TableRows

# The order the tables are loaded in (foreign keys come last, so any order is valid): the first table's drawing
# cannot overlap anything, so it is post_tags (drawn while the row counts are settled); each big table's server
# work then hides behind the next big table's drawing, and a small table ends the run.
LOAD_ORDER = (
    "post_tags",
    "posts",
    "comments",
    "users",
    "orders",
    "profiles",
    "order_items",
    "transfers",
    "accounts",
    "products",
    "tags",
)


@dataclass
class Timings:
    """Seconds per part, table by table: drawing the rows, COPY, the server's finishing work, and what remains."""

    draw: dict[str, float] = field(default_factory=dict)
    copy: dict[str, float] = field(default_factory=dict)
    finish: dict[str, float] = field(default_factory=dict)
    waited: float = 0.0  # drawing done, server still finishing the previous table
    record: float = 0.0  # verify.record after the load: lock the template, fingerprint (the digest is known)

    def lines(self) -> list[str]:
        return [
            f"{t}: draw {self.draw[t]:.2f} s, COPY {self.copy.get(t, 0):.2f} s, "
            f"constraints+indexes+ANALYZE+digest {self.finish.get(t, 0):.2f} s"
            for t in self.draw
        ] + [
            f"waiting for the server after drawing: {self.waited:.2f} s; verify.record (digest already known): "
            f"{self.record:.2f} s"
        ]


@asynccontextmanager
async def binary_timestamps(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """While open, conn sends timestamptz values given as PostgreSQL's own binary form (int64 microseconds since
    2000-01-01 UTC, as generate.build_tables(..., "postgres") draws them) without converting them."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_INT64.pack, decoder=_INT64.unpack, format="binary"
    )
    try:
        yield
    finally:
        await conn.reset_type_codec("timestamptz", schema="pg_catalog")


_INT64 = struct.Struct("!q")


def ordered(tables: list[TableRows]) -> list[TableRows]:
    """tables in LOAD_ORDER (any table it does not name goes last, in its given order)."""
    rank = {name: i for i, name in enumerate(LOAD_ORDER)}
    return sorted(tables, key=lambda t: rank.get(t.table, len(rank)))


async def load_tables(
    conn: asyncpg.Connection,
    tables: list[TableRows],
    plan: Plan,
    on_rows: Callable[[int], None],
    timings: Timings | None = None,
) -> dict[str, str]:
    """COPY every table into its bare table on conn (inside the caller's transaction); each table's digest.

    Returns {table: digest} (verify.table_digest_sql) for the tables loaded. The foreign keys are left to the
    caller: they need every table full.
    """
    timings = timings or Timings()
    digests: dict[str, str] = {}
    finishing: asyncio.Task[None] | None = None
    try:
        async with binary_timestamps(conn):
            for t in ordered(tables):
                start = time.perf_counter()
                data = await asyncio.to_thread(t.data)
                timings.draw[t.table] = time.perf_counter() - start
                if finishing is not None:
                    start = time.perf_counter()
                    await finishing
                    timings.waited += time.perf_counter() - start
                start = time.perf_counter()
                await conn.copy_records_to_table(
                    t.table, records=_counted(zip(*data, strict=True), on_rows), columns=list(t.columns)
                )
                timings.copy[t.table] = time.perf_counter() - start
                del data
                work = plan.per_table.get(t.table, [])
                finishing = asyncio.create_task(_finish(conn, t.table, work, digests, timings))
            if finishing is not None:
                await finishing
    finally:
        if finishing is not None and not finishing.done():
            finishing.cancel()
    return digests


async def _finish(
    conn: asyncpg.Connection, table: str, statements: list[str], digests: dict[str, str], timings: Timings
) -> None:
    """A loaded table's constraints and indexes, its planner statistics, then its digest: all server work."""
    start = time.perf_counter()
    for statement in statements:
        await conn.execute(statement)
    # Statistics gathered inside the building transaction count its own rows, and commit with them.
    await conn.execute(f"ANALYZE {table}")
    digests[table] = await conn.fetchval(verify.table_digest_sql(Base.metadata.tables[table]))
    timings.finish[table] = time.perf_counter() - start


def _counted(rows: Iterator[tuple], on_rows: Callable[[int], None], size: int = 20_000) -> Iterator[tuple]:
    """rows unchanged, reporting progress every `size` rows."""
    while chunk := list(islice(rows, size)):
        yield from chunk
        on_rows(len(chunk))
