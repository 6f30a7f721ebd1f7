"""1 + N statements against 2: lazy loading in a loop against selectinload, at several N, on both backends (lesson 3).

    .venv/bin/python benchmarks/n_plus_one.py                       # both backends, default scale
    .venv/bin/python benchmarks/n_plus_one.py --backend sqlite --repeat 9

For each backend it loads the first N users (by id) with a relationship, once the N+1 way (`await
user.awaitable_attrs.<rel>` in a loop: 1 + N statements) and once eagerly (`selectinload`: 2 statements), on a fresh
copy of the seed, and prints the best time of each and their ratio. Two relationships: `profile` (one row per user,
so round trips are nearly all the work) and `posts` (about eight per user, so building objects is a large share of
both). Then the posts page at N = 100 with a SIMULATED delay before every statement (no real network), to show how
the gap grows with latency. PostgreSQL is reached over TCP on 127.0.0.1: real round trips, the shortest there are.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from course import db
from course.chapters.ch03_n_plus_one.loads import simulated_latency
from course.domain.models import User
from course.errors import CourseError
from course.seed import fresh
from course.settings import get_settings
from course.tools.instrument import count_queries, timeit_async

SIZES = (10, 50, 100, 250, 500)
DELAYS_MS = (0.0, 0.5, 1.0, 2.0)
# The lesson's target (DESIGN.md): eager loading at least 10× faster, 2 statements instead of 1 + N.
TARGET = 10.0


def loaders(Session, relation: str, n: int) -> tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[int]]]:
    page = select(User).order_by(User.id).limit(n)

    def size(value: object) -> int:
        return len(value) if isinstance(value, list) else int(value is not None)

    async def one_plus_n() -> int:
        async with Session() as session:
            return sum(
                [size(await getattr(u.awaitable_attrs, relation)) for u in (await session.scalars(page)).all()]
            )

    async def eager() -> int:
        async with Session() as session:
            users = (await session.scalars(page.options(selectinload(getattr(User, relation))))).all()
            return sum(size(getattr(u, relation)) for u in users)

    return one_plus_n, eager


async def run_backend(backend: str, scale: str | None, repeat: int) -> list[tuple[str, int, float]]:
    settings = get_settings(backend=backend, **({"scale": scale} if scale else {}))
    copy = await fresh.create_copy(settings)
    engine = db.make_engine(url=copy.url)
    Session = db.make_sessionmaker(engine)
    results: list[tuple[str, int, float]] = []
    try:
        print(f"\n== {engine.dialect.name} · scale {settings.scale} · best of {repeat} runs")
        print(
            f"{'relation':>9} {'N':>5} {'1+N stmts':>9} {'1+N ms':>9} {'2 stmts':>7} {'eager ms':>9} {'ratio':>7}"
        )
        for relation in ("profile", "posts"):
            for n in SIZES:
                one_plus_n, eager = loaders(Session, relation, n)
                with count_queries(engine) as lazy_q:
                    lazy_found = await one_plus_n()
                with count_queries(engine) as eager_q:
                    eager_found = await eager()
                if lazy_found != eager_found:
                    raise AssertionError(f"{relation} N={n}: the two versions disagree")
                lazy_t = await timeit_async(one_plus_n, repeat=repeat)
                eager_t = await timeit_async(eager, repeat=repeat)
                ratio = lazy_t.best / eager_t.best
                results.append((relation, n, ratio))
                print(
                    f"{relation:>9} {n:>5} {lazy_q.count:>9} {lazy_t.best_ms:>9.1f} {eager_q.count:>7} "
                    f"{eager_t.best_ms:>9.1f} {ratio:>6.1f}×"
                )
        print(f"\n   posts page, N = 100, SIMULATED delay before every statement (best of {repeat})")
        print(f"{'delay ms':>9} {'1+N ms':>9} {'eager ms':>9} {'ratio':>7}")
        one_plus_n, eager = loaders(Session, "posts", 100)
        for ms in DELAYS_MS:
            with simulated_latency(engine, ms=ms):
                lazy_t = await timeit_async(one_plus_n, repeat=repeat)
                eager_t = await timeit_async(eager, repeat=repeat)
            print(f"{ms:>9.1f} {lazy_t.best_ms:>9.1f} {eager_t.best_ms:>9.1f} {lazy_t.best / eager_t.best:>6.1f}×")
    finally:
        await engine.dispose()
        await copy.drop()
    return results


async def main(backends: list[str], scale: str | None, repeat: int) -> None:
    for backend in backends:
        try:
            results = await run_backend(backend, scale, repeat)
        except CourseError as exc:
            print(f"\n== {backend}: skipped ({exc})")
            continue
        for relation in ("profile", "posts"):
            ratio = next(r for rel, n, r in results if rel == relation and n == max(SIZES))
            verdict = "meets" if ratio >= TARGET else "below"
            print(
                f"{backend} {relation}, N = {max(SIZES)}: eager {ratio:.1f}× faster — {verdict} the {TARGET:.0f}× target"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--scale", choices=["tiny", "small", "large"], help="data size (default: COURSE_SCALE)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (the best is kept)")
    args = parser.parse_args()
    asyncio.run(main(args.backend, args.scale, args.repeat))
