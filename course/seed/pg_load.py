"""PostgreSQL's seed loader: one table at a time, servers finishing loaded tables while Python draws the next.

Each table is drawn (in a worker thread), created on one of the build's connections (in that connection's open
transaction, see pg_build.py) and sent with a binary COPY; then that connection's server alone finishes it: its
unique constraints and indexes, ANALYZE, and its digest for course/seed/verify.py. That work waits in the
connection's queue and runs, statement by statement, whenever the connection is not sending rows; the next table
goes to the connection with the least work queued. So Python draws and sends while the servers build (a drawing
thread that competes with the COPY's encoding for the GIL was slower; a thread that only waits is not).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import asyncpg

from course.domain.models import Base
from course.errors import CourseError
from course.seed import verify
from course.seed.ddl import Plan
from course.seed.generate import TableRows

# The order the tables are loaded in (foreign keys come last, so any order is valid): the first table's drawing
# cannot overlap anything, so it is post_tags (drawn while the row counts are settled); the server's work on the
# biggest tables then hides behind the drawing of the next ones, and small tables end the run.
LOAD_ORDER = (
    "post_tags",
    "comments",
    "posts",
    "users",
    "orders",
    "profiles",
    "order_items",
    "transfers",
    "accounts",
    "products",
    "tags",
)
# Tables whose rows cost Python little to send (a few integer columns, drawn up front): while one is sent, the next
# table is drawn in the worker thread (elsewhere the drawing and the COPY's encoding would fight over the GIL).
DRAW_NEXT_DURING = frozenset({"post_tags"})


@dataclass
class Timings:
    """Seconds per part, table by table: drawing the rows, COPY, the server's finishing work, and what remains."""

    draw: dict[str, float] = field(default_factory=dict)
    copy: dict[str, float] = field(default_factory=dict)
    build: dict[str, float] = field(default_factory=dict)
    analyze: dict[str, float] = field(default_factory=dict)
    digest: dict[str, float] = field(default_factory=dict)
    waited: float = 0.0  # rows drawn (or all sent), the server still busy with earlier tables
    before: float = 0.0  # reopen, drop the old tables, create the bare ones
    after: float = 0.0  # foreign keys, sequences, the completion marker, the schema's lines
    commit: float = 0.0
    record: float = 0.0  # verify.record after the load: lock the template, fingerprint (the digest is known)

    def lines(self) -> list[str]:
        return [
            f"{t}: draw {self.draw[t]:.2f} s, COPY {self.copy.get(t, 0):.2f} s, "
            f"constraints+indexes {self.build.get(t, 0):.2f} s, ANALYZE {self.analyze.get(t, 0):.2f} s, "
            f"digest {self.digest.get(t, 0):.2f} s"
            for t in self.draw
        ] + [
            f"waiting for the server's queued work: {self.waited:.2f} s",
            f"before the rows (reopen, drop, bare tables): {self.before:.2f} s; after them (foreign keys, sequences, "
            f"marker, schema): {self.after:.2f} s; commit {self.commit:.2f} s; verify.record (digest already known): "
            f"{self.record:.2f} s",
        ]


@asynccontextmanager
async def binary_timestamps(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """While open, conn sends timestamptz values given as PostgreSQL's own binary form (int64 microseconds since
    2000-01-01 UTC, as generate.build_tables(..., "postgres") draws them) without converting them."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=_INT64.pack, decoder=_INT64.unpack, format="binary"
    )
    yield
    # Not after an error: resetting queries the catalog, which an aborted transaction refuses, and that refusal
    # would hide the error itself (the loader's engine is disposed right after anyway).
    await conn.reset_type_codec("timestamptz", schema="pg_catalog")


_INT64 = struct.Struct("!q")


def ordered(tables: list[TableRows]) -> list[TableRows]:
    """tables in LOAD_ORDER (any table it does not name goes last, in its given order)."""
    rank = {name: i for i, name in enumerate(LOAD_ORDER)}
    return sorted(tables, key=lambda t: rank.get(t.table, len(rank)))


async def load_tables(
    conns: Sequence[asyncpg.Connection],
    tables: list[TableRows],
    plan: Plan,
    on_rows: Callable[[int], None],
    timings: Timings | None = None,
) -> dict[str, str]:
    """Create and COPY every table on one of conns (each inside its caller's transaction); each table's digest.

    Each table goes to the connection with the least server work still queued, and is created there (so its
    transaction holds it): one connection's server finishes a table while another receives the next.
    Returns {table: digest} (verify.table_digest_sql) for the tables loaded, every queued statement done. The
    foreign keys are left to the caller: they need every table full.
    """
    timings = timings or Timings()
    digests: dict[str, str] = {}
    async with AsyncExitStack() as stack:
        servers = []
        for conn in conns:
            await stack.enter_async_context(binary_timestamps(conn))
            servers.append(await stack.enter_async_context(_ServerWork(conn, timings)))
        queue = ordered(tables)
        ahead: asyncio.Future[Sequence[list[Any]]] | None = None
        try:
            for i, t in enumerate(queue):
                data = await (ahead or asyncio.to_thread(_drawn, t, timings))
                ahead = None
                if t.table in DRAW_NEXT_DURING and i + 1 < len(queue):
                    ahead = asyncio.ensure_future(asyncio.to_thread(_drawn, queue[i + 1], timings))
                server = min(servers, key=lambda s: s.backlog)
                async with server.connection() as copying:
                    start = time.perf_counter()
                    await copying.execute(plan.create[t.table])
                    rows = _counted(zip(*data, strict=True), on_rows)
                    await unless_lost(
                        copying, copying.copy_records_to_table(t.table, records=rows, columns=list(t.columns))
                    )
                    timings.copy[t.table] = time.perf_counter() - start
                del data
                for statement in plan.per_table.get(t.table, []):
                    server.add(timings.build, t.table, copying.execute, statement)
                # Statistics gathered inside the building transaction count its own rows, and commit with them.
                server.add(timings.analyze, t.table, copying.execute, f"ANALYZE {t.table}")
                fetch = _store_in(digests, t.table, copying.fetchval)
                digest_sql = verify.table_digest_sql(Base.metadata.tables[t.table])
                server.add(timings.digest, t.table, fetch, digest_sql, rows=t.count)
        finally:
            if ahead is not None:  # a failed COPY: the drawing thread cannot be stopped, only waited for
                await asyncio.wait([ahead])
                ahead.exception()
        start = time.perf_counter()
    timings.waited += time.perf_counter() - start
    return digests


SESSION_LOST = (
    "PostgreSQL ended the seeding session (the server restarted, or the session was ended); the old seed is kept: "
    "run `course seed` again"
)
# How asyncpg reports a session the server ended, outside a COPY.
SESSION_ENDED = (asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError, ConnectionError)


async def unless_lost(conn: asyncpg.Connection, step: Awaitable[Any]) -> Any:
    """step's result, or a CourseError as soon as conn's session ends under it (asyncpg's COPY from records waited
    forever when the server ended its session mid-COPY: a terminated backend, a restarted server)."""
    lost = asyncio.get_running_loop().create_future()

    def on_lost(_: object) -> None:
        if not lost.done():
            lost.set_result(None)

    conn.add_termination_listener(on_lost)
    work = asyncio.ensure_future(step)
    try:
        await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        conn.remove_termination_listener(on_lost)
        if not work.done():
            work.cancel()
            await asyncio.wait({work}, timeout=5)  # a step stuck on a dead socket is abandoned, not awaited
    if work.done() and not work.cancelled() and work.exception() is None:
        return work.result()
    if lost.done():
        raise CourseError(SESSION_LOST)
    return work.result()  # the step's own error


def _drawn(t: TableRows, timings: Timings) -> Sequence[list[Any]]:
    start = time.perf_counter()
    data = t.data()
    timings.draw[t.table] = time.perf_counter() - start
    return data


Run = Callable[[str], Awaitable[Any]]


def _store_in(into: dict[str, str], key: str, fetch: Run) -> Run:
    async def run(sql: str) -> None:
        into[key] = await fetch(sql)

    return run


class _ServerWork:
    """Statements queued for the server, run one at a time whenever the loader is not using the connection."""

    def __init__(self, conn: asyncpg.Connection, timings: Timings) -> None:
        self._conn = conn
        self._timings = timings
        # asyncio.Lock is fair: a COPY waiting for it goes before the queue's next statement.
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[tuple[dict[str, float], str, Run, str, int] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.backlog = 0  # rows whose tables still have work queued here

    def add(self, seconds: dict[str, float], table: str, run: Run, sql: str, *, rows: int = 0) -> None:
        """Queue run(sql); its time is added to seconds[table]. rows: counted in backlog until it is done."""
        self.backlog += rows
        self._queue.put_nowait((seconds, table, run, sql, rows))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection, as soon as the statement running now (not the whole queue) is done."""
        start = time.perf_counter()
        async with self._lock:
            if self._task is not None and self._task.done():
                self._task.result()  # a queued statement failed: its error, not COPY's "transaction is aborted"
            self._timings.waited += time.perf_counter() - start
            yield self._conn

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            seconds, table, run, sql, rows = item
            async with self._lock:
                start = time.perf_counter()
                await run(sql)
                seconds[table] = seconds.get(table, 0.0) + time.perf_counter() - start
            self.backlog -= rows

    async def __aenter__(self) -> _ServerWork:
        self._task = asyncio.create_task(self._work())
        return self

    async def __aexit__(self, kind: object, error: object, tb: object) -> None:
        assert self._task is not None
        if error is None:
            self._queue.put_nowait(None)
            await self._task  # everything queued is done; a failed statement raises here
            return
        self._task.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await self._task


def _counted(rows: Iterator[tuple], on_rows: Callable[[int], None], size: int = 20_000) -> Iterator[tuple]:
    """rows unchanged, reporting progress every `size` rows."""
    while chunk := list(islice(rows, size)):
        yield from chunk
        on_rows(len(chunk))
