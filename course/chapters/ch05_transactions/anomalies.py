"""The Hermitage schedules (hermitage.py) run for real over several connections, and the table they give.

Each run records what each connection saw, which steps waited for a lock and which failed; the schedule's judge
then says "allowed" or "prevented". The published PostgreSQL results these runs must reproduce are in
PUBLISHED_POSTGRES.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from course import db
from course.chapters.ch05_transactions.hermitage import (
    ALL,
    ANOMALIES,
    NAMES,
    POSTGRES_LEVELS,
    PUBLISHED_POSTGRES,
    SCHEDULES,
    SQLITE_LEVELS,
    Run,
    Schedule,
    Step,
)
from course.chapters.ch05_transactions.retry import error_code

__all__ = [
    "ANOMALIES",
    "NAMES",
    "PUBLISHED_POSTGRES",
    "SCHEDULES",
    "Run",
    "Schedule",
    "Step",
    "Table",
    "anomaly_table",
]

# How long a step may run before the schedule moves on and counts it as waiting for a lock.
BLOCK_AFTER = 0.15
# On SQLite a waiting step gives up with SQLITE_BUSY after this long (the schedules want an answer, not a wait).
SQLITE_BUSY_MS = 400


async def _reset(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS anomaly_test"))
        await conn.execute(text("CREATE TABLE anomaly_test (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO anomaly_test (id, value) VALUES (1, 10), (2, 20)"))


async def _open(engine: AsyncEngine, level: str) -> AsyncConnection:
    conn = await engine.connect()
    if engine.dialect.name == "sqlite":
        # Short waits: a step that cannot get the lock fails with SQLITE_BUSY quickly instead of after 5 s.
        await conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        await conn.commit()
    else:
        conn = await conn.execution_options(isolation_level=level.upper())
    await conn.begin()
    return conn


async def run_schedule(engine: AsyncEngine, schedule: Schedule, level: str) -> Run:
    """Run one schedule at one isolation level on fresh data; return what happened."""
    await _reset(engine)
    run = Run()
    txs = sorted({step.tx for step in schedule.steps})
    conns = {tx: await _open(engine, level) for tx in txs}
    pending: dict[int, asyncio.Task] = {}

    async def execute(tx: int, number: int, sql: str) -> None:
        conn = conns[tx]
        try:
            if sql == "commit":
                await conn.commit()
                run.committed.add(tx)
            elif sql == "rollback":
                await conn.rollback()
            else:
                result = await conn.execute(text(sql))
                if result.returns_rows:
                    run.reads.append((tx, number, {row.id: row.value for row in result}))
        except DBAPIError as exc:
            run.errors[tx] = error_code(exc) or type(exc.orig).__name__
            await conn.rollback()

    try:
        for number, step in enumerate(schedule.steps):
            # A transaction whose earlier step is still waiting must finish it first; one that failed is over.
            if step.tx in pending:
                await pending.pop(step.tx)
            if step.tx in run.errors:
                continue
            task = asyncio.create_task(execute(step.tx, number, step.sql))
            done, _ = await asyncio.wait({task}, timeout=BLOCK_AFTER)
            if not done:
                run.blocked.append(number)
                pending[step.tx] = task
        for task in pending.values():
            await task
    finally:
        for conn in conns.values():
            await conn.close()
    async with engine.connect() as conn:
        run.final = {row.id: row.value for row in await conn.execute(text(ALL))}
    return run


@dataclass
class Table:
    """Outcome per level and anomaly ("prevented" / "allowed"), and how each run went."""

    backend: str
    outcomes: dict[str, dict[str, str]]
    notes: dict[tuple[str, str], str]

    def tsv(self) -> str:
        lines = ["\t".join(("level", *ANOMALIES))]
        lines += ["\t".join((level, *(row[a] for a in ANOMALIES))) for level, row in self.outcomes.items()]
        return "\n".join(lines)

    def rows(self) -> list[dict[str, str]]:
        """One dict per level, for a DataFrame."""
        return [{"level": level, **row} for level, row in self.outcomes.items()]


async def anomaly_table(url: str, levels: tuple[str, ...] | None = None) -> Table:
    """Run every schedule at every level the backend has, on the database at url; build the table from what happened.

    The schedules get their own engine without a pool: the connections they change (isolation level, busy timeout)
    are closed afterwards, never handed back to a lesson's pool.
    """
    engine = db.make_engine(url=url, poolclass=NullPool)
    backend = engine.dialect.name
    levels = levels or (POSTGRES_LEVELS if backend == "postgresql" else SQLITE_LEVELS)
    outcomes: dict[str, dict[str, str]] = {}
    notes: dict[tuple[str, str], str] = {}
    try:
        for level in levels:
            outcomes[level] = {}
            for schedule in SCHEDULES:
                run = await run_schedule(engine, schedule, level)
                outcomes[level][schedule.anomaly] = "allowed" if schedule.allowed(run) else "prevented"
                notes[(level, schedule.anomaly)] = run.how
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS anomaly_test"))
    finally:
        await engine.dispose()
    return Table(backend, outcomes, notes)
