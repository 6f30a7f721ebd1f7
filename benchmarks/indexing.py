"""Index lookup against a full scan at several table sizes, on the current backend (the numbers of lesson 2).

    .venv/bin/python benchmarks/indexing.py                       # SQLite: 10k, 100k, 1M rows
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/indexing.py --sizes 10000 100000 1000000 3000000

On a fresh copy of the seed it grows a table lookup_demo (id, code, amount) to each size and times a lookup by
`code` without an index (a scan) and with one, on one open connection, then prints both and their ratio, and
whether the ratio at the largest size of 1M rows or more reaches DESIGN.md's target (targets.py; exit status 1
if not). The lesson itself only asserts the direction, with a floor far below the target.
"""

from __future__ import annotations

import argparse
import asyncio
from functools import partial

from sqlalchemy import text
from targets import finish, verdict

from course.chapters.ch02_indexing import catalogue as indexing
from course.tools.instrument import timeit_async
from course.tools.lesson import setup

LOOKUP = text("SELECT id, amount FROM lookup_demo WHERE code = :code")


async def main(sizes: list[int], scan_repeat: int, index_repeat: int) -> None:
    lesson = await setup(quiet=True)
    print(f"backend {lesson.dialect}; lookup by an unindexed column vs the same with an index")
    print(f"{'rows':>11}  {'scan (ms)':>10}  {'index (ms)':>10}  {'ratio':>7}")
    ratio = 0.0
    try:
        for size in sorted(sizes):
            await indexing.fill_lookup_table(lesson.engine, size)
            wanted = {"code": f"code-{size // 2}"}
            async with lesson.engine.connect() as conn:
                scan = await timeit_async(partial(conn.execute, LOOKUP, wanted), repeat=scan_repeat)
            await indexing.run_ddl(lesson.engine, "CREATE INDEX ix_lookup_demo_code ON lookup_demo (code)")
            async with lesson.engine.connect() as conn:
                seek = await timeit_async(partial(conn.execute, LOOKUP, wanted), repeat=index_repeat)
            await indexing.run_ddl(lesson.engine, "DROP INDEX ix_lookup_demo_code")
            ratio = scan.best / seek.best
            print(f"{size:>11,}  {scan.best_ms:>10.2f}  {seek.best_ms:>10.3f}  {ratio:>6.0f}×")
    finally:
        await lesson.close()
    if max(sizes) >= 1_000_000:
        print(verdict("index", ratio))
    else:
        print("target index: not judged (it applies from 1M rows; pass --sizes ... 1000000)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--scan-repeat", type=int, default=5)
    parser.add_argument("--index-repeat", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sizes, arguments.scan_repeat, arguments.index_repeat))
    finish()
