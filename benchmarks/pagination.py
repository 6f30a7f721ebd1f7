"""Keyset against OFFSET pagination at several page depths, on the current backend (the numbers of lesson 4).

    .venv/bin/python benchmarks/pagination.py                 # SQLite, default scale
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/pagination.py --scale large

It pages through the live-posts feed (created_at DESC, id DESC, 20 per page) on a fresh copy of the seed with an
index on (created_at, id), and prints, for each depth, the best time of OFFSET and keyset and their ratio, then
whether the ratio at the last page reaches DESIGN.md's target (targets.py; exit status 1 if not).
"""

from __future__ import annotations

import argparse
import asyncio

from sqlalchemy import func, select, text, tuple_
from targets import finish, verdict

from course.domain.models import Post
from course.tools.instrument import timeit_async
from course.tools.lesson import setup

PAGE_SIZE = 20
LIVE = Post.deleted_at.is_(None)
FEED_ORDER = (Post.created_at.desc(), Post.id.desc())
FEED_COLUMNS = (Post.id, Post.title, Post.author_id, Post.created_at)


def offset_page(page: int):
    return select(*FEED_COLUMNS).where(LIVE).order_by(*FEED_ORDER).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)


def keyset_page(after):
    stmt = select(*FEED_COLUMNS).where(LIVE).order_by(*FEED_ORDER).limit(PAGE_SIZE)
    return stmt if after is None else stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))


async def main(scale: str | None, repeat: int) -> None:
    lesson = await setup(scale=scale)
    try:
        async with lesson.engine.begin() as conn:
            await conn.execute(text("CREATE INDEX ix_posts_created_at_id ON posts (created_at, id)"))
            await conn.execute(text("ANALYZE posts"))
        async with lesson.engine.connect() as conn:
            live = await conn.scalar(select(func.count()).select_from(Post).where(LIVE))
            last = live // PAGE_SIZE
            pages = sorted(
                page for page in {1, 10, 100, last // 10, last // 4, last // 2, last} if 0 < page <= last
            )
            print(f"{live:,} live posts, {last:,} pages of {PAGE_SIZE}; best of {repeat} runs each")
            print(f"{'page':>8} {'OFFSET ms':>10} {'keyset ms':>10} {'ratio':>7}")
            for page in pages:
                after = None
                if page > 1:
                    previous = select(Post.created_at, Post.id).where(LIVE).order_by(*FEED_ORDER)
                    after = tuple((await conn.execute(previous.offset((page - 1) * PAGE_SIZE - 1).limit(1))).one())
                by_offset, by_keyset = offset_page(page), keyset_page(after)

                async def run(stmt=None) -> list:
                    return (await conn.execute(stmt)).all()

                same = await run(by_offset) == await run(by_keyset)
                # Each method in its own loop: a heavy OFFSET query right before slows the next keyset call.
                best = {}
                for name, stmt in (("offset", by_offset), ("keyset", by_keyset)):
                    best[name] = (await timeit_async(lambda s=stmt: run(s), repeat=repeat)).best_ms
                ratio = best["offset"] / best["keyset"]
                flag = "" if same else "  (pages differ!)"
                print(f"{page:>8,} {best['offset']:>10.2f} {best['keyset']:>10.2f} {ratio:>6.1f}×{flag}")
            print(verdict("keyset", ratio))
    finally:
        await lesson.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["tiny", "small", "large"], help="data size (default: COURSE_SCALE)")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per case (the best is kept)")
    args = parser.parse_args()
    asyncio.run(main(args.scale, args.repeat))
    finish()
