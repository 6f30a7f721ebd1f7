"""Build, verify and locate the seeded database on SQLite (a file) or PostgreSQL (a template database)."""

from __future__ import annotations

import gc
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import sqlite as sqlite_dialect
from tqdm import tqdm

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.domain.models import DOMAIN_TABLES, SCHEMA_VERSION, Base
from course.seed import ddl, pg_build, verify
from course.seed.drawing import drawing_beside
from course.seed.generate import SEED_VERSION, TableRows, build_tables
from course.seed.pg_load import Timings
from course.settings import Settings, get_settings

CHUNK = 20_000
# SQLite loads the tables in this order. The two costliest to draw are drawn by a second process (drawing.py),
# from the start; the others are drawn here and loaded meanwhile, post_tags first (drawn with the shared shapes).
SQLITE_ORDER = (
    "post_tags",
    "users",
    "profiles",
    "orders",
    "order_items",
    "transfers",
    "accounts",
    "products",
    "tags",
    "comments",
    "posts",
)
DRAWN_BESIDE = ("comments", "posts")


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


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off while open: the seed's millions of row tuples hold no cycles, and collecting
    (every 700 new tuples, each time walking the young ones) cost ~1 s of the Python side's ~6 s at `large`."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _chunks(rows: Iterator[tuple], size: int = CHUNK) -> Iterator[list[tuple]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def _progress(total: int, enabled: bool) -> tqdm:
    return tqdm(total=total, unit=" rows", unit_scale=True, disable=not enabled, desc="seeding", leave=False)


# --- SQLite -----------------------------------------------------------------------------------------------


def load_sqlite(
    path: Path, tables: list[TableRows], *, progress: bool = False, timings: Timings | None = None
) -> dict[str, int]:
    """Create the tables in a new file at path, bulk-load the rows in one transaction, then build the indexes.

    SQLite cannot add constraints to a table afterwards, so UNIQUE and FOREIGN KEY stay in CREATE TABLE (foreign
    keys cost nothing while `PRAGMA foreign_keys` is off); each table's secondary indexes come after its rows.
    timings: filled per table (draw: getting the rows, drawing-process waits included; copy: inserting them;
    build: the table's indexes) and after (commit, ANALYZE), for benchmarks/seed.py.
    """
    plan = ddl.plan(Base.metadata, sqlite_dialect.dialect())
    timings = timings or Timings()
    counts: dict[str, int] = {}
    con = sqlite3.connect(path, isolation_level=None)
    try:
        # A throw-away file being built: no journal, no fsync; it is swapped in only when complete.
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-200000")
        con.execute("BEGIN")
        for statement in plan.bare:
            con.execute(statement)
        with _progress(sum(t.count for t in tables), progress) as bar:
            for t in tables:
                sql = f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({', '.join('?' * len(t.columns))})"
                start = time.perf_counter()
                data = t.data()
                timings.draw[t.table] = time.perf_counter() - start
                counts[t.table] = 0
                for chunk in _chunks(zip(*data, strict=True)):
                    con.executemany(sql, chunk)
                    counts[t.table] += len(chunk)
                    bar.update(len(chunk))
                del data
                timings.copy[t.table] = time.perf_counter() - start - timings.draw[t.table]
                # Each table's indexes as soon as its rows are in: the same single build after its load, done
                # while the drawing process still works on the tables to come (instead of waiting for them).
                start = time.perf_counter()
                for statement in plan.per_table.get(t.table, []):
                    con.execute(statement)
                timings.build[t.table] = time.perf_counter() - start
        for table in plan.per_table.keys() - counts.keys():  # tables without rows, if any
            for statement in plan.per_table[table]:
                con.execute(statement)
        start = time.perf_counter()
        con.execute("COMMIT")
        # Planner statistics, as a real database would have after some use.
        # Sampled statistics (as `PRAGMA optimize` gathers them) are enough for the planner and cost far less.
        con.execute("PRAGMA analysis_limit=1000")
        con.execute("ANALYZE")
        con.execute("PRAGMA journal_mode=DELETE")
        timings.after = time.perf_counter() - start
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


def seed_sqlite(url: str, scale: str, *, progress: bool = False, timings: Timings | None = None) -> SeedReport:
    """Build into a temporary file beside the target and swap it in only when complete."""
    path = db.sqlite_path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        with drawing_beside(scale, "sqlite", DRAWN_BESIDE) as beside:
            tables = sorted(build_tables(scale, "sqlite"), key=lambda t: SQLITE_ORDER.index(t.table))
            counts = load_sqlite(tmp, beside(tables), progress=progress, timings=timings)
        _write_sqlite_meta(tmp, {**expected_meta(scale), "complete": "yes"})
        # A -wal file left by the old seed would be replayed into the new one: it goes first.
        for stale in ("-wal", "-shm"):
            path.with_name(path.name + stale).unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return SeedReport(url=url, scale=scale, rows=counts, seconds=time.perf_counter() - start)


# --- PostgreSQL -------------------------------------------------------------------------------------------


def seed_postgres(url: str, scale: str, *, progress: bool = False, timings: Timings | None = None) -> SeedReport:
    meta = {**expected_meta(scale), "complete": "yes"}

    async def run() -> SeedReport:
        start = time.perf_counter()
        counts, digest = await pg_build.build(
            url, scale, meta, bar=lambda total: _progress(total, progress), timings=timings
        )
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

    timings: filled with the seconds each table's parts took, for benchmarks/seed.py.
    """
    settings = settings or get_settings()
    target = url or seed_url(settings)
    parsed = db.parse_url(target)
    with gc_paused():
        if parsed.get_backend_name() == "sqlite":
            report = seed_sqlite(target, settings.scale, progress=progress, timings=timings)
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
