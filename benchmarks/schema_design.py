"""The numbers of lesson 7 (schema design), on the current backend: primary key kinds, FK indexes, passive deletes.

    .venv/bin/python benchmarks/schema_design.py                          # SQLite, 100k and 1M keys
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/schema_design.py --rows 100000 1000000

For each row count it inserts the same rows into tables keyed by an integer, a UUID v4 and a UUID v7 (committed
batches, keys made before the clock starts) and prints time and primary key index size, and the v4/v7 ratios.
Then, on a fresh copy of the seed, the delete of 20 posts with and without the index on comments.post_id, and
the delete of a parent with 2,000 children by an ORM cascade against ON DELETE CASCADE with passive_deletes.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sqlalchemy import delete, insert, select, text

from course.chapters.ch07_schema_design import demo
from course.chapters.ch07_schema_design.keys import KEY_KINDS, compare_keys
from course.domain.models import Post
from course.tools.instrument import count_queries, timeit_async
from course.tools.lesson import setup


async def keys(lesson, rows: list[int], batch: int) -> None:
    print(f"primary keys ({lesson.dialect}), batches of {batch:,} rows, one commit each, tables filled in turn")
    print(f"{'rows':>10} {'key':>8} {'insert s':>9} {'µs/row':>7} {'pk index MB':>12}")
    for n in rows:
        runs = {r.kind: r for r in await compare_keys(lesson.engine, KEY_KINDS, rows=n, batch=batch)}
        for kind, run in runs.items():
            print(
                f"{n:>10,} {kind:>8} {run.seconds:>9.2f} {run.seconds / n * 1e6:>7.1f} {run.index_bytes / 2**20:>12.2f}"
            )
        v4, v7 = runs["uuid4"], runs["uuid7"]
        print(
            f"{'':>10} v4/v7: {v4.seconds / v7.seconds:.2f}× insert time, "
            f"{v4.index_bytes / max(v7.index_bytes, 1):.2f}× index size"
        )
        async with lesson.engine.begin() as conn:
            for kind in runs:
                await conn.execute(text(f"DROP TABLE keys_{kind}"))


async def fk_index(lesson, repeat: int) -> None:
    async with lesson.engine.connect() as conn:
        victims = list((await conn.execute(select(Post.id).order_by(Post.id.desc()).limit(20))).scalars())

    async def delete_posts() -> None:
        async with lesson.engine.connect() as conn:
            await conn.execute(delete(Post).where(Post.id.in_(victims)))
            await conn.rollback()

    indexed = await timeit_async(delete_posts, repeat=repeat)
    async with lesson.engine.begin() as conn:
        await conn.execute(text("DROP INDEX ix_comments_post_id"))
    bare = await timeit_async(delete_posts, repeat=max(3, repeat // 2))
    async with lesson.engine.begin() as conn:
        await conn.execute(text("CREATE INDEX ix_comments_post_id ON comments (post_id)"))
    print(
        f"delete 20 posts (comments cascade): indexed FK {indexed.best_ms:.1f} ms, unindexed {bare.best_ms:.1f} ms "
        f"→ {bare.best / indexed.best:.0f}×"
    )


async def passive(lesson, children: int) -> None:
    await demo.create_demo_tables(lesson.engine)
    results = {}
    for parent, child, fk in ((demo.Folder, demo.File, "folder_id"), (demo.Album, demo.Photo, "album_id")):
        async with lesson.engine.begin() as conn:
            await conn.execute(insert(parent), [{"id": 1}])
            await conn.execute(insert(child), [{fk: 1, "name": f"item {i}"} for i in range(children)])
        async with lesson.Session() as session:
            loaded = await session.get(parent, 1)
            with count_queries(lesson.engine) as sent:
                start = time.perf_counter()
                await session.delete(loaded)
                await session.commit()
                results[parent.__name__] = (sent.count, time.perf_counter() - start)
    (orm_n, orm_s), (db_n, db_s) = results["Folder"], results["Album"]
    print(
        f"delete a parent with {children:,} children: ORM cascade {orm_n} statements {orm_s * 1000:.0f} ms, "
        f"ON DELETE CASCADE + passive_deletes {db_n} statements {db_s * 1000:.0f} ms → {orm_s / db_s:.1f}×"
    )


async def main(scale: str | None, rows: list[int], batch: int, repeat: int) -> None:
    lesson = await setup(scale=scale)
    try:
        await keys(lesson, rows, batch)
        print()
        await fk_index(lesson, repeat)
        await passive(lesson, 2_000)
    finally:
        await lesson.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=["tiny", "small", "large"], help="data size (default: COURSE_SCALE)")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="key table sizes")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per committed batch")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per delete case (the best is kept)")
    args = parser.parse_args()
    asyncio.run(main(args.scale, args.rows, args.batch, args.repeat))
