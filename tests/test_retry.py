"""Retryable means SQLSTATE 40001 or 40P01, read from real server errors; run_transaction retries those, bounded."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from course import db
from course.chapters.ch05_transactions.retry import Attempts, error_code, is_retryable, run_transaction


def _raise(sqlstate: str) -> str:
    return f"DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '{sqlstate}'; END $$"


@pytest.fixture
async def pg(pg_url: str):
    engine = db.make_engine(url=pg_url)
    yield engine, db.make_sessionmaker(engine)
    await engine.dispose()


@pytest.mark.parametrize(
    ("sqlstate", "retryable"), [("40001", True), ("40P01", True), ("23505", False), ("57014", False)]
)
async def test_sqlstate_read_from_the_server_error(pg, sqlstate: str, retryable: bool) -> None:
    engine, _ = pg
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError) as info:
            await conn.execute(text(_raise(sqlstate)))
    assert error_code(info.value) == sqlstate
    assert is_retryable(info.value) is retryable


async def test_run_transaction_retries_40001_then_succeeds_and_gives_up_when_bounded(pg) -> None:
    _, Session = pg
    stats = Attempts()

    async def flaky(session):
        if stats.count < 3:
            await session.execute(text(_raise("40001")))
        return "done"

    assert await run_transaction(Session, flaky, attempts=5, base_delay=0.001, stats=stats) == "done"
    assert (stats.count, stats.retried) == (3, 2)

    stats = Attempts()

    async def always(session):
        await session.execute(text(_raise("40P01")))

    with pytest.raises(DBAPIError):
        await run_transaction(Session, always, attempts=3, base_delay=0.001, stats=stats)
    assert stats.count == 3


async def test_run_transaction_does_not_retry_other_errors(pg) -> None:
    _, Session = pg
    stats = Attempts()

    async def broken(session):
        await session.execute(text(_raise("23505")))

    with pytest.raises(DBAPIError):
        await run_transaction(Session, broken, attempts=5, stats=stats)
    assert stats.count == 1


def test_sqlite_busy_is_named(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "busy.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        other.close()
    assert error_code(info.value) == "SQLITE_BUSY" and not is_retryable(info.value)
