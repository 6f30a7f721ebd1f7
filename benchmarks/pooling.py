"""Connection pooling, measured: new connection vs pooled checkout, the app under load, a server restart (lesson 6).

    .venv/bin/python benchmarks/pooling.py                                  # SQLite (no restart part)
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/pooling.py          # the numbers lesson 6 claims
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/pooling.py --requests 500 --sizes 1 4 16

It prints: the per-request cost of a new connection (NullPool) against a pooled checkout (median and p99, target:
pooled at least 5× cheaper on PostgreSQL); the demo app served by uvicorn on 127.0.0.1 under a bounded load
(--requests at --concurrency, each request holding its connection for --hold-ms) against pool size: throughput,
p50 and p99; failed requests during and after a real restart of the course's PostgreSQL, with and without
pool_pre_ping, under traffic and after a quiet restart; asyncpg's pool against SQLAlchemy's.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg
from sqlalchemy import select
from sqlalchemy.pool import NullPool

from course import db
from course.chapters.ch06_pooling.app import captured_log, create_app
from course.chapters.ch06_pooling.load import run_load, serve
from course.chapters.ch06_pooling.measure import latencies_ms, percentile
from course.chapters.ch06_pooling.server import restart_reason, restart_server
from course.db.postgres.admin import dsn
from course.tools.instrument import compare
from course.tools.lesson import Lesson, setup


async def one_request(engine) -> None:
    async with engine.connect() as conn:
        await conn.execute(select(1))


async def connect_cost(lesson: Lesson) -> None:
    fresh = db.make_engine(url=lesson.url, poolclass=NullPool)
    try:
        new = await latencies_ms(lambda: one_request(fresh), 200)
    finally:
        await fresh.dispose()
    pooled = await latencies_ms(lambda: one_request(lesson.engine), 1000)
    ratio = percentile(new, 50) / percentile(pooled, 50)
    print("\n1. One SELECT 1 per request")
    for name, values in (("new connection (NullPool)", new), ("pooled checkout (QueuePool)", pooled)):
        print(f"   {name:<28} median {percentile(values, 50):7.2f} ms   p99 {percentile(values, 99):7.2f} ms")
    verdict = (
        ""
        if lesson.dialect != "postgresql"
        else ("  (target ≥ 5×: met)" if ratio >= 5 else "  (target ≥ 5×: NOT met)")
    )
    print(f"   pooled is {ratio:.1f}× cheaper per request (medians){verdict}")


async def load_by_pool_size(
    lesson: Lesson, sizes: list[int], requests: int, concurrency: int, hold_ms: int
) -> None:
    print(
        f"\n2. uvicorn on 127.0.0.1: {requests} requests, {concurrency} in flight, {hold_ms} ms of database time each"
    )
    print(f"   {'pool_size':>9} {'failed':>7} {'seconds':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for size in sizes:
        app = create_app(lesson.url, pool_size=size, max_overflow=0, pool_timeout=60)
        async with serve(app) as base_url:
            load = await run_load(
                base_url,
                lambda n: f"/users/{n % 500 + 1}/report?hold_ms={hold_ms}",
                requests=requests,
                concurrency=concurrency,
                time_limit=600,
            )
        row = load.row()
        print(
            f"   {size:>9} {row['failed']:>7} {row['seconds']:>8.2f} {row['req_per_s']:>8.1f} "
            f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}  {dict(load.failures()) or ''}"
        )


async def restarts(lesson: Lesson) -> None:
    print("\n3. A real restart of the course's PostgreSQL")
    reason = restart_reason(lesson.settings)
    if reason is not None:
        print(f"   skipped: {reason}")
        return
    apps = {
        "no pre-ping": create_app(lesson.url, pool_size=5),
        "pre-ping": create_app(lesson.url, pool_size=5, pool_pre_ping=True),
    }
    async with serve(apps["no pre-ping"]) as plain_url, serve(apps["pre-ping"]) as pinged_url:
        urls = {"no pre-ping": plain_url, "pre-ping": pinged_url}
        # Under traffic: 4 clients per app, a request every ~20 ms each, the server stopped 1 s in.
        began = time.perf_counter()
        with captured_log():
            loads = {
                name: asyncio.create_task(
                    run_load(
                        url,
                        lambda n: f"/users/{n % 50 + 1}",
                        requests=100_000,
                        concurrency=4,
                        time_limit=5,
                        pause=0.02,
                        origin=began,
                    )
                )
                for name, url in urls.items()
            }
            await asyncio.sleep(1.0)
            down_from = time.perf_counter() - began
            up_at = down_from + await restart_server(lesson.settings)
            results = {name: await task for name, task in loads.items()}
        print(f"   under traffic (server down {down_from:.2f}–{up_at:.2f} s):")
        for name, load in results.items():
            phases = load.failed_around(down_from, up_at)
            print(
                f"     {name:<12} {load.requests:>4} requests: failed before {phases['before']}, during {phases['during']}, "
                f"after recovery {phases['after']}"
            )
        # Quiet: every pool warm and idle, the server restarted, then 20 requests at once per app.
        for url in urls.values():
            await run_load(url, "/users/1", requests=20, concurrency=10)
        await restart_server(lesson.settings)
        with captured_log():
            after = {
                name: await run_load(url, "/users/1", requests=20, concurrency=10) for name, url in urls.items()
            }
        print("   quiet restart, then 20 requests (10 in flight) per app:")
        for name, load in after.items():
            print(f"     {name:<12} failed {load.failed} of {load.requests} {dict(load.failures())}")
    await lesson.engine.dispose()


async def asyncpg_vs_sqlalchemy(lesson: Lesson) -> None:
    print("\n4. asyncpg's pool vs SQLAlchemy's: checkout + SELECT 1 (best of 5 rounds of 200)")
    if lesson.dialect != "postgresql":
        print("   skipped: PostgreSQL only")
        return
    raw = await asyncpg.create_pool(dsn(lesson.url), min_size=1, max_size=5)

    async def via_asyncpg() -> None:
        async with raw.acquire() as conn:
            await conn.fetchval("SELECT 1")

    try:
        table = await compare(
            {"asyncpg pool": via_asyncpg, "SQLAlchemy pool": lambda: one_request(lesson.engine)},
            repeat=5,
            number=200,
        )
    finally:
        await raw.close()
    for row in table.itertuples():
        print(f"   {row.case:<16} best {row.best_ms:6.3f} ms  median {row.median_ms:6.3f} ms  ({row.ratio:.1f}×)")


async def main(args: argparse.Namespace) -> None:
    lesson = await setup(scale=args.scale)
    try:
        await connect_cost(lesson)
        await load_by_pool_size(lesson, args.sizes, args.requests, args.concurrency, args.hold_ms)
        await restarts(lesson)
        await asyncpg_vs_sqlalchemy(lesson)
    finally:
        await lesson.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["tiny", "small", "large"], help="data size (default: COURSE_SCALE)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per load run")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--hold-ms", type=int, default=20, help="database time per request (ms)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 5, 10, 20], help="pool sizes to load")
    asyncio.run(main(parser.parse_args()))
