"""course/chapters/ch03_n_plus_one/loads.py: the object and row counters and the simulated delay, on real databases."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from course import db
from course.chapters.ch03_n_plus_one.loads import count_loads, simulated_latency
from course.domain.models import Post, User
from course.seed import fresh
from course.seed.generate import SIZES
from course.settings import Settings
from course.tools.instrument import timeit_async


async def test_count_loads_sees_objects_rows_and_join_multiplication(tiny: Settings) -> None:
    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        Session = db.make_sessionmaker(engine)
        try:
            async with Session() as session:
                want_posts = len((await session.scalars(select(Post).where(Post.author_id.in_([1, 2])))).all())
            assert want_posts > 2, "the tiny seed gives users 1 and 2 several posts between them"
            page = select(User).where(User.id.in_([1, 2])).order_by(User.id)
            async with Session() as session:
                with count_loads(session) as selectin:
                    users = (await session.scalars(page.options(selectinload(User.posts)))).all()
            assert selectin.objects == {"User": 2, "Post": want_posts}
            # The post load runs while the users' result is read, so its count is recorded first.
            assert sorted(selectin.rows) == sorted([2, want_posts]) and selectin.total_rows == 2 + want_posts
            async with Session() as session:
                with count_loads(session) as joined:
                    users = (await session.scalars(page.options(joinedload(User.posts)))).unique().all()
            # One row per post (each user has at least one here): the join repeats the users.
            assert joined.rows == [want_posts] and joined.objects["User"] == len(users) == 2
            async with Session() as session:
                conn = await session.connection()
                with count_loads(session) as core:
                    await conn.execute(select(Post.id))
                    await session.execute(select(User.id).limit(3))
                # The listeners went with the block: a query after it changes nothing.
                await session.execute(select(User.id).limit(3))
            # Rows through the connection count too; no objects were built.
            assert core.fetched == _seeded_posts(tiny) + 3 and core.total_objects == 0
        finally:
            await engine.dispose()


def _seeded_posts(settings: Settings) -> int:
    return SIZES[settings.scale].posts


async def test_simulated_latency_waits_per_statement_and_goes_away(tiny: Settings) -> None:
    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        try:

            async def five_statements() -> None:
                async with engine.connect() as conn:
                    for _ in range(5):
                        await conn.execute(select(User.id).limit(1))

            listeners = len(engine.sync_engine.dispatch.before_cursor_execute)
            with simulated_latency(engine, ms=20):
                delayed = await timeit_async(five_statements, repeat=2)
            # Five statements, 20 ms each (BEGIN and the like are not delayed); the listener goes with the block.
            assert delayed.best >= 0.1
            assert len(engine.sync_engine.dispatch.before_cursor_execute) == listeners
        finally:
            await engine.dispose()
