"""Seeding throughput, measured in one run: the course's loaders against raw executemany / COPY, and ORM-per-row.

Run: .venv/bin/python benchmarks/seed.py [--scale large] [--skip-postgres]
Prints rows/s and the ratios DESIGN.md targets (SQLite >= 0.7 of raw executemany; PostgreSQL >= 0.5 of COPY;
ORM-per-row >= 20x slower than the bulk path).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine
from targets import finish, verdict

from course import db, seed
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.domain.models import Base, Tag
from course.errors import CourseError
from course.seed.generate import TableRows, build_tables
from course.settings import get_settings


def materialise(scale: str, backend: str) -> list[TableRows]:
    """Generate every row once, so both contenders load the very same data and generation is not timed."""
    tables = []
    for t in build_tables(scale, backend):
        rows = list(t.rows())
        tables.append(TableRows(t.table, t.columns, len(rows), lambda rows=rows: iter(rows)))
    return tables


def raw_sqlite(path: Path, tables: list[TableRows]) -> None:
    engine = create_engine(db.sync_url(db.sqlite_url(path)))
    Base.metadata.create_all(engine)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    for t in tables:
        marks = ", ".join("?" * len(t.columns))
        con.executemany(f"INSERT INTO {t.table} ({', '.join(t.columns)}) VALUES ({marks})", list(t.rows()))
    con.execute("COMMIT")
    con.close()


def bench_sqlite(scale: str, folder: Path) -> None:
    tables = materialise(scale, "sqlite")
    total = sum(t.count for t in tables)
    start = time.perf_counter()
    raw_sqlite(folder / "raw.sqlite3", tables)
    raw = time.perf_counter() - start
    start = time.perf_counter()
    seed.load_sqlite(folder / "course.sqlite3", tables)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    seed.seed(get_settings(scale=scale), url=db.sqlite_url(folder / "full.sqlite3").render_as_string())
    full = time.perf_counter() - start
    print(f"SQLite  {scale}: {total:,} rows")
    print(f"  raw executemany, one transaction : {total / raw:>12,.0f} rows/s ({raw:.1f} s)")
    print(f"  course loader (same rows)        : {total / ours:>12,.0f} rows/s ({ours:.1f} s)")
    print(f"  ratio course/raw                 : {raw / ours:>12.2f}   (target >= 0.70)")
    print(f"  `course seed` incl. generation   : {total / full:>12,.0f} rows/s ({full:.1f} s)")


async def raw_copy(url: str, tables: list[TableRows]) -> None:
    engine = db.make_engine(url=url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    conn = await pg_admin.connect(url)
    try:
        async with conn.transaction():
            for t in tables:
                await conn.copy_records_to_table(t.table, records=list(t.rows()), columns=list(t.columns))
    finally:
        await conn.close()


def bench_postgres(scale: str) -> None:
    settings = get_settings(scale=scale, backend="postgres")
    admin = pg_admin.admin_url(settings)
    raw_url = db.parse_url(admin).set(database="course_bench_raw").render_as_string(hide_password=False)
    ours_url = db.parse_url(admin).set(database="course_bench_ours").render_as_string(hide_password=False)
    aio.run(pg_admin.create_database_if_missing(raw_url))
    tables = materialise(scale, "postgres")
    total = sum(t.count for t in tables)
    try:
        start = time.perf_counter()
        aio.run(raw_copy(raw_url, tables))
        raw = time.perf_counter() - start
        original = seed.build_tables
        seed.build_tables = lambda scale, backend: tables  # the same rows, already generated
        try:
            start = time.perf_counter()
            seed.seed(settings, url=ours_url)
            ours = time.perf_counter() - start
        finally:
            seed.build_tables = original
    finally:
        for url in (raw_url, ours_url):
            aio.run(pg_admin.drop_database(url))
    print(f"PostgreSQL {scale}: {total:,} rows")
    print(f"  raw COPY (asyncpg), one transaction: {total / raw:>10,.0f} rows/s ({raw:.1f} s)")
    print(f"  course seed (same rows, + ANALYZE) : {total / ours:>10,.0f} rows/s ({ours:.1f} s)")
    print(f"  ratio course/raw                   : {raw / ours:>10.2f}   (target >= 0.50)")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large", choices=("tiny", "small", "large"))
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="course-bench-") as tmp:
        folder = Path(tmp)
        bench_sqlite(args.scale, folder)
        bench_orm(folder)
        if not args.skip_postgres:
            try:
                bench_postgres(args.scale)
            except CourseError as exc:
                print(f"PostgreSQL skipped: {exc}")
    finish()


if __name__ == "__main__":
    main()
