"""Backfill a large table in keyset batches against one UPDATE, with a concurrent writer (the numbers of lesson 8).

    .venv/bin/python benchmarks/migrations.py                                   # SQLite
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/migrations.py --rows 100000 1000000

For each table size it fills `email_lower = lower(email)` in every row, first with one UPDATE (one transaction),
then in keyset batches over the primary key with a commit per batch, while another connection updates one row at a
time all over the table. It prints each backfill's duration and the longest a one-row write waited, and on
PostgreSQL the time to add a NOT NULL column with a constant default against a volatile one (a table rewrite).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sqlalchemy import text

from course.chapters.ch08_migrations import backfill
from course.tools.lesson import setup


async def _timed(lesson, sql: str) -> float:
    started = time.perf_counter()
    async with lesson.engine.begin() as conn:
        await conn.execute(text(sql))
    return 1000 * (time.perf_counter() - started)


async def main(sizes: list[int], batch: int, pause: float | None) -> None:
    lesson = await setup(scale="tiny", quiet=True)
    postgres = lesson.dialect == "postgresql"
    # SQLite has no lock queue: a waiting writer polls, so batches leave it a short gap (see the lesson).
    gap = pause if pause is not None else (0 if postgres else 0.02)
    print(f"backend: {lesson.dialect} · batches of {batch:,} · pause between batches {gap * 1000:.0f} ms")
    print(f"{'rows':>10} {'method':>12} {'seconds':>8} {'writes':>7} {'longest wait ms':>16} {'wait ratio':>11}")
    try:
        for rows in sizes:
            await backfill.make_signups(lesson.engine, rows)
            single = await backfill.with_writer(lesson.engine, backfill.one_update(lesson.engine), rows=rows)
            await backfill.reset_backfill(lesson.engine)
            batched = await backfill.with_writer(
                lesson.engine, backfill.in_batches(lesson.engine, batch_size=batch, pause=gap), rows=rows
            )
            assert single.rows == batched.rows == rows
            for name, r in (("one UPDATE", single), ("batches", batched)):
                ratio = f"{single.longest_wait_ms / batched.longest_wait_ms:.0f}×" if r is batched else ""
                print(
                    f"{rows:>10,} {name:>12} {r.seconds:>8.2f} {r.writes:>7} {r.longest_wait_ms:>16.0f} {ratio:>11}"
                )
            if postgres:
                constant = await _timed(
                    lesson, "ALTER TABLE signups ADD COLUMN flag BOOLEAN NOT NULL DEFAULT false"
                )
                volatile = await _timed(
                    lesson, "ALTER TABLE signups ADD COLUMN seen TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()"
                )
                print(
                    f"{rows:>10,} ADD COLUMN NOT NULL: constant default {constant:.1f} ms, "
                    f"volatile default {volatile:.0f} ms ({volatile / constant:.0f}×)"
                )
    finally:
        await lesson.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument(
        "--pause", type=float, default=None, help="seconds between batches (default: 0.02 on SQLite)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.batch, args.pause))
