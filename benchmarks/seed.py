"""Seeding against the fastest known load path, in one run: `course seed` end to end, and ORM-per-row.

Run: .venv/bin/python benchmarks/seed.py [--scale large] [--skip-postgres]
The limit: rows generated beforehand (not timed), loaded into tables that have only their primary keys (SQLite:
one transaction, executemany, the loader's PRAGMAs; PostgreSQL: COPY), then indexes, unique constraints and foreign
keys built afterwards. `course seed` is timed end to end, generation included. DESIGN.md's target: course seed
takes at most twice the limit (ratio limit/course >= 0.5) on both backends at `large`; `small` seeds in < 3 s
(timed last, on both backends).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import ForeignKeyConstraint, MetaData, UniqueConstraint, create_engine
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from targets import finish, verdict

from course import db, seed
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.domain.models import Base, Tag
from course.errors import CourseError
from course.seed import ddl
from course.seed.generate import TableRows, build_tables
from course.seed.pg_load import Timings, binary_timestamps
from course.settings import get_settings


def materialise(scale: str, backend: str) -> tuple[list[TableRows], dict[str, float]]:
    """Every row generated once (so the limit does not pay for generation), and each table's generation time."""
    start = time.perf_counter()
    built = build_tables(scale, backend)
    seconds = {"(shared set-up)": time.perf_counter() - start}
    tables = []
    for t in built:
        start = time.perf_counter()
        columns = [list(c) for c in t.data()]
        seconds[t.table] = time.perf_counter() - start
        tables.append(TableRows(t.table, t.columns, t.count, lambda columns=columns: columns))
    return tables, seconds


def _bare_sqlite_ddl() -> tuple[list[str], list[str]]:
    """Tables with their primary keys only, then every index (unique ones as unique indexes) afterwards."""
    dialect = sqlite_dialect.dialect()
    copy = MetaData()
    before, after = [], []
    for table in Base.metadata.sorted_tables:
        bare = table.to_metadata(copy)
        unique = [c for c in bare.constraints if isinstance(c, UniqueConstraint)]
        bare.constraints = {
            c for c in bare.constraints if not isinstance(c, UniqueConstraint | ForeignKeyConstraint)
        }
        before.append(str(CreateTable(bare, include_foreign_key_constraints=[]).compile(dialect=dialect)))
        after += [str(CreateIndex(i).compile(dialect=dialect)) for i in bare.indexes]
        after += [
            f"CREATE UNIQUE INDEX bench_uq_{table.name}_{n} ON {table.name} ({', '.join(col.name for col in c.columns)})"
            for n, c in enumerate(unique)
        ]
    return before, after


def limit_sqlite(path: Path, tables: list[TableRows]) -> float:
    start = time.perf_counter()
    before, after = _bare_sqlite_ddl()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-200000")
    con.execute("BEGIN")
    for statement in before:
        con.execute(statement)
    for t in tables:
        marks = ", ".join("?" * len(t.columns))
        con.executemany(f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({marks})", t.rows())
    for statement in after:
        con.execute(statement)
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - start


def report(backend: str, scale: str, total: int, limit: float, full: float, gen: dict[str, float]) -> None:
    print(f"{backend} {scale}: {total:,} rows")
    print(
        f"  limit: pre-generated rows into bare tables, indexes after : {limit:6.1f} s ({total / limit:,.0f} rows/s)"
    )
    print(
        f"  `course seed` end to end, generation included            : {full:6.1f} s ({total / full:,.0f} rows/s)"
    )
    print(f"  {verdict('seed', limit / full)}")
    print("  generation alone, per table: " + ", ".join(f"{k} {v:.2f} s" for k, v in gen.items()))


def bench_sqlite(scale: str, folder: Path) -> None:
    tables, gen = materialise(scale, "sqlite")
    total = sum(t.count for t in tables)
    limit = limit_sqlite(folder / "limit.sqlite3", tables)
    del tables
    start = time.perf_counter()
    timings = Timings()
    seed.seed(
        get_settings(scale=scale), url=db.sqlite_url(folder / "full.sqlite3").render_as_string(), timings=timings
    )
    report("SQLite", scale, total, limit, time.perf_counter() - start, gen)
    print(
        "  `course seed`, table by table, in load order (posts and comments drawn by a second process meanwhile):"
    )
    for table, seconds in timings.copy.items():
        print(
            f"    {table}: rows ready after {timings.draw[table]:.2f} s, insert {seconds:.2f} s, "
            f"indexes {timings.build.get(table, 0):.2f} s"
        )
    print(
        f"    commit, ANALYZE: {timings.after:.2f} s; verify.record (digest of the file): {timings.record:.2f} s"
    )


async def limit_postgres(url: str, tables: list[TableRows]) -> float:
    conn = await pg_admin.connect(url)
    try:
        # The seed's own two phases are exactly "bare tables, then constraints and indexes".
        before, after = ddl.phases(Base.metadata, _pg_dialect())
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        start = time.perf_counter()
        async with conn.transaction():
            for statement in before:
                await conn.execute(statement)
            # The rows' timestamps are drawn in PostgreSQL's binary form, sent as they are (as the seed does).
            async with binary_timestamps(conn):
                for t in tables:
                    await conn.copy_records_to_table(t.table, records=t.rows(), columns=list(t.columns))
            for statement in after:
                await conn.execute(statement)
        return time.perf_counter() - start
    finally:
        await conn.close()


def _pg_dialect():  # noqa: ANN202 - SQLAlchemy's dialect class
    from sqlalchemy.dialects.postgresql import asyncpg

    return asyncpg.dialect()


def bench_postgres(scale: str) -> None:
    settings = get_settings(scale=scale, backend="postgres")
    admin = pg_admin.admin_url(settings)
    limit_url = db.parse_url(admin).set(database="course_bench_limit").render_as_string(hide_password=False)
    full_url = db.parse_url(admin).set(database="course_bench_full").render_as_string(hide_password=False)
    aio.run(pg_admin.create_database_if_missing(limit_url))
    try:
        tables, gen = materialise(scale, "postgres")
        total = sum(t.count for t in tables)
        limit = aio.run(limit_postgres(limit_url, tables))
        del tables
        # Dropped now: autovacuum would otherwise work on its 3.5M fresh rows while `course seed` is timed.
        aio.run(pg_admin.drop_database(limit_url))
        start = time.perf_counter()
        timings = Timings()
        seed.seed(settings, url=full_url, timings=timings)
        report("PostgreSQL", scale, total, limit, time.perf_counter() - start, gen)
        print("  `course seed`, table by table (two connections; drawing overlaps the servers' work):")
        print("\n".join(f"    {line}" for line in timings.lines()))
    finally:
        for url in (limit_url, full_url):
            aio.run(pg_admin.drop_database(url))


async def orm_per_row(url: str, n: int) -> float:
    engine = db.make_engine(url=url)
    sessions = db.make_sessionmaker(engine)
    start = time.perf_counter()
    for i in range(n):
        async with sessions() as session:
            session.add(Tag(name=f"bench-orm-{i}"))
            await session.commit()
    elapsed = time.perf_counter() - start
    await engine.dispose()
    return elapsed


def bench_orm(folder: Path, n: int = 2_000) -> None:
    path = folder / "orm.sqlite3"
    url = db.sqlite_url(path).render_as_string()
    engine = create_engine(db.sync_url(url))
    Base.metadata.create_all(engine)
    engine.dispose()
    orm = aio.run(orm_per_row(url, n))
    con = sqlite3.connect(path, isolation_level=None)
    start = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("INSERT INTO tags (name) VALUES (?)", [(f"bench-bulk-{i}",) for i in range(n)])
    con.execute("COMMIT")
    bulk = time.perf_counter() - start
    print(f"ORM add+commit per row vs bulk, {n:,} rows on SQLite")
    print(
        f"  ORM per row: {n / orm:>10,.0f} rows/s;  bulk: {n / bulk:>10,.0f} rows/s;  bulk is {orm / bulk:,.0f}x faster"
    )
    print(f"  {verdict('bulk', orm / bulk)}")


def bench_small(folder: Path, postgres: bool) -> None:
    """`course seed` at small, as a learner's first `make lab` runs it (the second of two runs: a warm cache)."""
    targets = {"SQLite": db.sqlite_url(folder / "small.sqlite3").render_as_string()}
    if postgres:
        admin = pg_admin.admin_url(get_settings(backend="postgres"))
        targets["PostgreSQL"] = (
            db.parse_url(admin).set(database="course_bench_small").render_as_string(hide_password=False)
        )
    try:
        for name, url in targets.items():
            for _ in range(2):
                start = time.perf_counter()
                seed.seed(get_settings(scale="small"), url=url)
                seconds = time.perf_counter() - start
            print(f"{name} small: `course seed` {seconds:.2f} s; {verdict('seed-small', 3 / seconds)}")
    finally:
        if "PostgreSQL" in targets:
            aio.run(pg_admin.drop_database(targets["PostgreSQL"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large", choices=("tiny", "small", "large"))
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        folder = Path(tmp)
        bench_sqlite(args.scale, folder)
        bench_orm(folder)
        postgres = not args.skip_postgres
        if postgres:
            try:
                bench_postgres(args.scale)
            except CourseError as exc:
                print(f"PostgreSQL skipped: {exc}")
                postgres = False
        bench_small(folder, postgres)
    finish()


if __name__ == "__main__":
    main()
