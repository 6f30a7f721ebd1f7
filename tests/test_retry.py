"""Retryable means SQLSTATE 40001 or 40P01, read from real server errors (the retry loop itself is exercise 5.2's,
judged by its check, and the lesson's inline one, asserted in the lesson)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from course import db
from course.chapters.ch05_transactions.retry import error_code, is_retryable


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
