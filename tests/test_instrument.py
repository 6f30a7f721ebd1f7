"""Tests for course.tools.instrument: the statement counter and the timers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload

from course.db import make_engine, make_sessionmaker
from course.domain.models import Base, Post, User
from course.tools.instrument import Timing, compare, compiled_sql, count_queries, timeit_async, timeit_sync


async def _seeded(url: str) -> AsyncEngine:
    """The course schema with 5 users, each with 2 posts."""
    engine = make_engine(url=url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with make_sessionmaker(engine).begin() as session:
        for n in range(5):
            user = User(email=f"user{n}@example.com", name=f"User {n}", password_hash="x")
            user.posts = [Post(title=f"Post {n}.{i}", body="...") for i in range(2)]
            session.add(user)
    return engine


@pytest.fixture
async def engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    engine = await _seeded(f"sqlite+aiosqlite:///{tmp_path / 'course.sqlite3'}")
    yield engine
    await engine.dispose()


async def _n_plus_one(engine: AsyncEngine) -> int:
    """Load the users, then each user's posts one statement at a time; return how many posts were loaded."""
    loaded = 0
    async with make_sessionmaker(engine)() as session:
        users = (await session.scalars(select(User))).all()
        for user in users:
            loaded += len((await session.scalars(select(Post).where(Post.author_id == user.id))).all())
    return loaded


async def test_n_plus_one_sends_one_statement_per_user(engine: AsyncEngine) -> None:
    with count_queries(engine) as q:
        assert await _n_plus_one(engine) == 10
    assert q.count == 6
    assert len(q.statements) == len(q.params) == 6
    assert all("FROM posts" in s for s in q.statements[1:])


async def test_selectinload_sends_two_statements(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        with count_queries(engine) as q:
            users = (await session.scalars(select(User).options(selectinload(User.posts)))).all()
            total_posts = sum(len(user.posts) for user in users)
    assert total_posts == 10
    assert q.count == 2
    q.assert_count(2)


@pytest.mark.postgres
async def test_postgres_counts_the_same_statements(pg_url: str) -> None:
    engine = await _seeded(pg_url)
    try:
        with count_queries(engine) as q:
            assert await _n_plus_one(engine) == 10
        assert q.count == 6
        assert "WHERE posts.author_id = $1::INTEGER" in q.statements[1]
    finally:
        await engine.dispose()


async def test_parameters_are_recorded_with_statements(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with count_queries(engine) as q:
            await conn.execute(select(User.name).where(User.email == "user3@example.com"))
    assert q.count == 1
    assert "WHERE users.email = ?" in q.statements[0]
    assert "user3@example.com" in q.params[0]


async def test_savepoints_are_skipped_not_counted(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        with count_queries(session) as q:
            async with session.begin_nested():
                await session.execute(text("SELECT 1"))
    assert q.count == 1
    assert any(s.startswith("SAVEPOINT") for s in q.skipped)
    assert any(s.startswith("RELEASE") for s in q.skipped)


async def test_listener_is_removed_even_when_the_block_raises(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError), count_queries(engine) as q:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        raise RuntimeError("boom")
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 2"))
    assert q.count == 1


async def test_assert_count_lists_the_statements_sent(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with count_queries(engine) as q:
            await conn.execute(text("SELECT 1"))
            await conn.execute(text("SELECT 2"))
    with pytest.raises(AssertionError, match=r"expected 1 statements, 2 were sent:\n  1. SELECT 1\n  2. SELECT 2"):
        q.assert_count(1)
    assert str(q) == "2 statements"


def test_sync_engine_is_accepted(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sync.sqlite3'}")
    with count_queries(engine) as q, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        conn.execute(text("SELECT 2"))
    engine.dispose()
    assert q.count == 2


def test_other_targets_are_refused() -> None:
    with pytest.raises(TypeError, match="not str"), count_queries("sqlite://"):  # type: ignore[arg-type]
        pass


async def test_timeit_async_times_each_call_after_warm_up() -> None:
    calls = 0

    async def job() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)

    timing = await timeit_async(job, repeat=3, number=2, warmup=1)
    assert calls == 1 + 3 * 2
    assert len(timing.samples) == 3
    assert 0.009 <= timing.best <= timing.median < 0.5
    assert timing.best_ms == pytest.approx(timing.best * 1000)
    assert "over 3 runs" in str(timing)


def test_timeit_sync_times_a_plain_function() -> None:
    timing = timeit_sync(lambda: time.sleep(0.005), repeat=4, warmup=0)
    assert isinstance(timing, Timing)
    assert len(timing.samples) == 4
    assert 0.004 <= timing.best <= timing.median < 0.5


def test_timers_refuse_zero_runs() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        timeit_sync(lambda: None, repeat=0)


async def test_compare_reports_ratios_against_the_fastest_case() -> None:
    async def slow() -> None:
        await asyncio.sleep(0.03)

    async def fast() -> None:
        await asyncio.sleep(0.001)

    frame = await compare({"slow": slow, "fast": fast, "sync": lambda: None}, repeat=3)
    assert list(frame.columns) == ["case", "best_ms", "median_ms", "ratio"]
    assert list(frame["case"]) == ["slow", "fast", "sync"]
    ratios = dict(zip(frame["case"], frame["ratio"], strict=True))
    assert ratios["sync"] == pytest.approx(1.0)
    assert ratios["slow"] > ratios["fast"] > 1
    slow_row = frame.set_index("case").loc["slow"]
    assert 25 <= slow_row["best_ms"] <= slow_row["median_ms"]


async def test_compare_against_a_named_baseline() -> None:
    async def slow() -> None:
        await asyncio.sleep(0.02)

    async def fast() -> None:
        await asyncio.sleep(0.002)

    frame = (await compare({"slow": slow, "fast": fast}, repeat=3, baseline="slow")).set_index("case")
    assert frame.loc["slow", "ratio"] == pytest.approx(1.0)
    assert frame.loc["fast", "ratio"] < 0.5
    with pytest.raises(ValueError, match="baseline 'nope' is not one of the cases"):
        await compare({"slow": slow}, baseline="nope")


async def test_compiled_sql_is_what_the_engine_sends(engine: AsyncEngine) -> None:
    stmt = select(User.id).where(User.name == "User 1").order_by(User.id).limit(3)
    shown = compiled_sql(stmt, engine)
    # SQLite's dialect: qmark placeholders, and an OFFSET after every LIMIT; the generic str() has neither.
    assert "?" in shown and "OFFSET ?" in shown and ":param" not in shown and "\n" not in shown
    assert "OFFSET" not in str(stmt)
    async with make_sessionmaker(engine)() as session:
        with count_queries(session) as q:
            await session.execute(stmt)
        assert compiled_sql(stmt, session) == " ".join(q.statements[0].split())
