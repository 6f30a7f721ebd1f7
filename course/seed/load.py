"""Build, verify and locate the seeded database on SQLite (a file) or PostgreSQL (a template database)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from tqdm import tqdm

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.domain.models import DOMAIN_TABLES, SCHEMA_VERSION, Base, CourseMeta
from course.seed import ddl, pg_load, verify
from course.seed.generate import SEED_VERSION, TableRows, build_tables
from course.seed.pg_load import Timings
from course.settings import Settings, get_settings

CHUNK = 20_000


@dataclass
class SeedReport:
    """What `course seed` did: where, how many rows per table, how long."""

    url: str
    scale: str
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # PostgreSQL: the digest the loader computed (course/seed/verify.py), recorded without reading the rows again.
    digest: str | None = None

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def seed_url(settings: Settings, *, start_server: bool = True) -> str:
    """Where the seed for these settings lives (it may not exist yet); start_server=False never starts one."""
    if settings.database_url:
        return settings.database_url
    if settings.backend == "sqlite":
        path = settings.data_dir / f"course_{settings.scale}.sqlite3"
        return db.sqlite_url(path).render_as_string(hide_password=False)
    admin = pg_admin.admin_url(settings, start_server=start_server)
    return db.parse_url(admin).set(database=f"course_seed_{settings.scale}").render_as_string(hide_password=False)


def expected_meta(scale: str) -> dict[str, str]:
    return {"scale": scale, "schema_version": str(SCHEMA_VERSION), "seed_version": str(SEED_VERSION)}


def _chunks(rows: Iterator[tuple], size: int = CHUNK) -> Iterator[list[tuple]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _progress(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, unit=" rows", unit_scale=True, disable=not enabled, desc="seeding", leave=False)


# --- SQLite -----------------------------------------------------------------------------------------------


def load_sqlite(path: Path, tables: list[TableRows], *, progress: bool = False) -> dict[str, int]:
    """Create the tables in a new file at path, bulk-load the rows in one transaction, then build the indexes.

    SQLite cannot add constraints to a table afterwards, so UNIQUE and FOREIGN KEY stay in CREATE TABLE (foreign
    keys cost nothing while `PRAGMA foreign_keys` is off); the secondary indexes come after the rows.
    """
    before, after = ddl.phases(Base.metadata, sqlite_dialect.dialect())
    counts: dict[str, int] = {}
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # A throw-away file being built: no journal, no fsync; it is swapped in only when complete.
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-200000")
        con.execute("BEGIN")
        for statement in before:
            con.execute(statement)
        with _progress(sum(t.count for t in tables), progress) as bar:
            for t in tables:
                sql = f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({', '.join('?' * len(t.columns))})"
                counts[t.table] = 0
                for chunk in _chunks(t.rows()):
                    con.executemany(sql, chunk)
                    counts[t.table] += len(chunk)
                    bar.update(len(chunk))
        for statement in after:
            con.execute(statement)
        con.execute("COMMIT")
        # Planner statistics, as a real database would have after some use.
        # Sampled statistics (as `PRAGMA optimize` gathers them) are enough for the planner and cost far less.
        con.execute("PRAGMA analysis_limit=1000")
        con.execute("ANALYZE")
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    return counts


def _write_sqlite_meta(path: Path, meta: dict[str, str]) -> None:
    con = sqlite3.connect(path)
    try:
        with con:
            con.executemany("INSERT OR REPLACE INTO course_meta (key, value) VALUES (?, ?)", meta.items())
    finally:
        con.close()


def seed_sqlite(url: str, scale: str, *, progress: bool = False) -> SeedReport:
    """Build into a temporary file beside the target and swap it in only when complete."""
    path = db.sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        counts = load_sqlite(tmp, build_tables(scale, "sqlite"), progress=progress)
        _write_sqlite_meta(tmp, {**expected_meta(scale), "complete": "yes"})
        # A -wal file left by the old seed would be replayed into the new one: it goes first.
        for stale in ("-wal", "-shm"):
            path.with_name(path.name + stale).unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return SeedReport(url=url, scale=scale, rows=counts, seconds=time.perf_counter() - start)


# --- PostgreSQL -------------------------------------------------------------------------------------------


async def _seed_postgres(
    url: str, scale: str, *, progress: bool, timings: Timings | None = None
) -> tuple[dict[str, int], str]:
    """Bare tables, COPY, then constraints and indexes: everything, the completion marker included, in one transaction.

    Returns the row counts and the seed's digest (course/seed/verify.py), computed by the server as it loaded.
    """
    # The shapes the tables share are drawn (in a worker thread) while the server clears the way.
    drawing = asyncio.ensure_future(asyncio.to_thread(build_tables, scale, "postgres"))
    try:
        return await _build_postgres(url, scale, drawing, progress=progress, timings=timings)
    finally:
        if not drawing.done():
            await asyncio.wait([drawing])  # a thread cannot be cancelled: never leave it behind
        if not drawing.cancelled():
            drawing.exception()  # seen here, whichever error is raised


async def _build_postgres(
    url: str, scale: str, drawing: asyncio.Future[list[TableRows]], *, progress: bool, timings: Timings | None
) -> tuple[dict[str, int], str]:
    started, timings = time.perf_counter(), timings or Timings()
    from course.db.postgres import roles

    # A template left refusing connections (ALTER DATABASE ... ALLOW_CONNECTIONS false) is opened again first.
    await roles.reopen(url)
    await pg_admin.create_database_if_missing(url)
    engine = db.make_engine(url=url)
    plan = ddl.plan(Base.metadata, engine.dialect)
    try:
        # One transaction: if anything fails, the database keeps what it had (PostgreSQL DDL is transactional).
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            raw: Any = (await conn.get_raw_connection()).driver_connection
            for statement in plan.bare:
                await raw.execute(statement)
            tables = await drawing
            with _progress(sum(t.count for t in tables), progress) as bar:
                # One binary COPY per table. (COPY's text format from a second process that draws the rows was
                # tried: the server's slower parsing of text ate the overlap, 14.7 s against 15.7 s at large.)
                timings.before = time.perf_counter() - started
                digests = await pg_load.load_tables(raw, tables, plan, bar.update, timings)
                started = time.perf_counter()
            # Foreign keys are validated here, once, over the loaded rows.
            for statement in plan.foreign_keys:
                await raw.execute(statement)
            for t in tables:
                if "id" in t.columns:
                    # COPY with explicit ids leaves the sequences at 1: move them past the seeded rows.
                    await raw.execute(
                        f"SELECT setval(pg_get_serial_sequence('{t.table}', 'id'), "
                        f"(SELECT coalesce(max(id), 0) + 1 FROM {t.table}), false)"
                    )
            meta = {**expected_meta(scale), "complete": "yes"}
            await conn.execute(insert(CourseMeta), [{"key": k, "value": v} for k, v in meta.items()])
            for table in Base.metadata.sorted_tables:
                if table.name not in digests:
                    await raw.execute(f"ANALYZE {table.name}")
                    digests[table.name] = await raw.fetchval(verify.table_digest_sql(table))
            digest = verify.combine(await verify.schema_lines(raw), digests)
            timings.after = time.perf_counter() - started
            started = time.perf_counter()
    finally:
        await engine.dispose()
    timings.commit = time.perf_counter() - started
    return {t.table: t.count for t in tables}, digest


def seed_postgres(url: str, scale: str, *, progress: bool = False, timings: Timings | None = None) -> SeedReport:
    async def run() -> SeedReport:
        start = time.perf_counter()
        counts, digest = await _seed_postgres(url, scale, progress=progress, timings=timings)
        return SeedReport(url=url, scale=scale, rows=counts, seconds=time.perf_counter() - start, digest=digest)

    return aio.run(run())


# --- Both -------------------------------------------------------------------------------------------------


def seed(
    settings: Settings | None = None,
    *,
    url: str | None = None,
    progress: bool = False,
    timings: Timings | None = None,
) -> SeedReport:
    """Build the seed for settings (or exactly the database at url), replacing what is there.

    timings (PostgreSQL): filled with the seconds each table's parts took, for benchmarks/seed.py.
    """
    settings = settings or get_settings()
    target = url or seed_url(settings)
    parsed = db.parse_url(target)
    if parsed.get_backend_name() == "sqlite":
        report = seed_sqlite(target, settings.scale, progress=progress)
    else:
        report = seed_postgres(target, settings.scale, progress=progress, timings=timings)
    # What later copies and grading runs compare the seed with (course/seed/verify.py).
    start = time.perf_counter()
    verify.record(settings, target, known_digest=report.digest)
    if timings is not None:
        timings.record = time.perf_counter() - start
    return report


def row_counts(url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        engine = db.make_engine(url=url)
        try:
            async with engine.connect() as conn:
                return {
                    t.name: (await conn.execute(text(f"SELECT count(*) FROM {t.name}"))).scalar_one()
                    for t in DOMAIN_TABLES
                }
        finally:
            await engine.dispose()

    return aio.run(run())
