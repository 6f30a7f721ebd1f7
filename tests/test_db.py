"""Engines and URLs: foreign keys on SQLite, aware timestamps on both backends, readable URL errors."""

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError

from course import db
from course.domain.models import Base, Post, User
from course.errors import CourseError


async def _schema(url: str) -> None:
    engine = db.make_engine(url=url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


@pytest.fixture
async def schema_url(empty_url: str) -> str:
    await _schema(empty_url)
    return empty_url


def test_url_conversions() -> None:
    assert str(db.sync_url("sqlite+aiosqlite:///x.db")) == "sqlite:///x.db"
    assert db.sync_url("postgresql+asyncpg://u@h/d").drivername == "postgresql+psycopg"
    assert db.async_url("postgresql://u@h/d").drivername == "postgresql+asyncpg"
    assert db.sqlite_path("sqlite+aiosqlite:///a/b.sqlite3") == Path("a/b.sqlite3")


@pytest.mark.parametrize("bad", ["not a url", "mysql+aiomysql://u@h/d"])
def test_bad_url_is_one_line(bad: str) -> None:
    with pytest.raises(CourseError) as info:
        db.parse_url(bad)
    assert "\n" not in str(info.value)


async def test_foreign_keys_are_enforced(schema_url: str) -> None:
    sessions = db.make_sessionmaker(db.make_engine(url=schema_url))
    async with sessions() as session:
        session.add(Post(author_id=999, title="t", body="b"))
        with pytest.raises(IntegrityError):
            await session.flush()


async def test_timestamps_round_trip_aware_in_utc(schema_url: str) -> None:
    engine = db.make_engine(url=schema_url)
    sessions = db.make_sessionmaker(engine)
    oslo = timezone(timedelta(hours=1))
    async with sessions() as session:
        session.add(
            User(
                email="a@example.com",
                name="A",
                password_hash="x",
                created_at=datetime(2024, 5, 1, 12, tzinfo=oslo),
            )
        )
        await session.commit()
    async with sessions() as session:
        user = (await session.execute(select(User))).scalar_one()
        assert user.created_at == datetime(2024, 5, 1, 11, tzinfo=UTC)
        assert user.created_at.utcoffset() == timedelta(0)
        assert user.updated_at.tzinfo is not None
    await engine.dispose()


async def test_naive_datetimes_are_refused(schema_url: str) -> None:
    sessions = db.make_sessionmaker(db.make_engine(url=schema_url))
    async with sessions() as session:
        session.add(User(email="b@example.com", name="B", password_hash="x", created_at=datetime(2024, 5, 1)))
        with pytest.raises(StatementError, match="naive datetime"):
            await session.flush()


async def test_a_time_limit_stops_the_statement_itself(backend: str, schema_url: str) -> None:
    # No asyncio timeout here: the database must stop the work on its own.
    limit = db.TimeLimit(1.0)
    engine = db.limited_engine(url=schema_url, limit=limit)
    endless = {
        "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
        "postgres": "SELECT pg_sleep(30)",
    }[backend]
    try:
        limit.start()
        started = time.monotonic()
        with pytest.raises(OperationalError if backend == "sqlite" else DBAPIError) as info:
            async with engine.connect() as conn:
                await conn.execute(text(endless))
        elapsed = time.monotonic() - started
    finally:
        await engine.dispose()
    assert elapsed < 2.5, f"stopped after {elapsed:.1f} s"
    assert ("interrupted" if backend == "sqlite" else "statement timeout") in str(info.value)


async def test_without_a_time_limit_statements_run_to_the_end(schema_url: str) -> None:
    engine = db.make_engine(url=schema_url)
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(
                text(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000) SELECT count(*) FROM n"
                )
            )
    finally:
        await engine.dispose()
    assert total == 300000
