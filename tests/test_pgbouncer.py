"""course/chapters/ch06_pooling/pgbouncer.py: a real PgBouncer in transaction mode on the course's PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from course import db
from course.chapters.ch06_pooling import pgbouncer as module
from course.chapters.ch06_pooling.pgbouncer import find_binary, not_run_reason, pgbouncer
from course.chapters.ch06_pooling.traffic import clients, first_line, peaks, show
from course.db.postgres import admin as pg_admin
from course.db.postgres.admin import dsn
from course.domain.models import User
from course.errors import CourseError
from course.settings import get_settings
from tests.needs import missing


@pytest.fixture(scope="module")
def installed() -> None:
    try:
        find_binary()
    except CourseError as exc:
        missing(str(exc))


async def _create_users_database(url: str) -> None:
    await pg_admin.create_database_if_missing(url)
    engine = db.make_engine(url=url)
    async with engine.begin() as conn:
        await conn.run_sync(User.__table__.create)  # type: ignore[attr-defined]
    await engine.dispose()


@pytest.fixture(scope="module")
def users_url(installed: None, pg_admin_url: str) -> Iterator[str]:
    """A new database holding an empty users table (all the client workload reads), shared by this module's tests."""
    url = db.parse_url(pg_admin_url).set(database=f"course_test_{secrets.token_hex(4)}")
    asyncio.run(_create_users_database(url.render_as_string(hide_password=False)))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        asyncio.run(pg_admin.drop_database(url))


def behind_pgbouncer(url: str, **pool_options: Any) -> AsyncEngine:
    """The lesson's configuration for transaction mode: no statement caches, unique names, NullPool unless told."""
    return db.make_engine(
        url=db.parse_url(url).update_query_dict({"prepared_statement_cache_size": "0"}),
        connect_args={"statement_cache_size": 0, "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__"},
        **(pool_options or {"poolclass": NullPool}),
    )


def _uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]


async def test_starts_in_front_of_the_database_and_leaves_nothing_behind(users_url: str) -> None:
    async with pgbouncer(users_url, pool_size=2) as bouncer:
        pid, folder = bouncer.process.pid, bouncer.folder
        assert _uid(pid) != 0, "PgBouncer must never run as root"
        assert (folder / "userlist.txt").stat().st_mode & 0o777 == 0o600
        assert (folder / "pgbouncer.ini").stat().st_mode & 0o777 == 0o600
        assert "pool_mode = transaction" in (folder / "pgbouncer.ini").read_text()
        conn = await asyncpg.connect(dsn(bouncer.url), statement_cache_size=0)
        try:
            assert await conn.fetchval("SELECT current_database()") == db.parse_url(users_url).database
        finally:
            await conn.close()
        assert db.parse_url(bouncer.url).port != db.parse_url(users_url).port
    assert bouncer.process.poll() is not None
    assert not Path(f"/proc/{pid}").exists()
    assert not folder.exists()


async def test_the_fixed_configuration_serves_many_clients_on_few_server_connections(users_url: str) -> None:
    async with pgbouncer(users_url, pool_size=2) as bouncer:
        for options in ({}, {"pool_size": 3, "max_overflow": 0}):
            engine = behind_pgbouncer(bouncer.url, **options)
            async with peaks(bouncer) as seen:
                errors = await clients(engine, n=12, transactions=2, hold_s=0.005)
            await engine.dispose()
            assert [first_line(error) for error in errors] == []
            assert seen["servers"] <= 2
        # With NullPool every task was a client of its own; PgBouncer still used at most 2 server connections.
        stats = await show(bouncer, "STATS")
        assert stats[0]["total_xact_count"] >= 2 * 12 * 2


async def _second_transaction_on_another_server(engine: AsyncEngine) -> None:
    """Run a lookup in two transactions of one client, the second on a server connection other than the first's."""
    lookup = select(User.id).where(User.id == 1)
    async with engine.connect() as first, engine.connect() as second:
        await first.execute(lookup)
        await first.commit()
        # PgBouncer reuses the server connection released last (LIFO): the second client's open transaction now
        # holds the one where the first prepared its statement, so the first's next transaction runs on the other
        # one. The lesson's 30 clients do this to each other by chance.
        await second.execute(select(1))
        try:
            await first.execute(lookup)
        finally:
            await second.rollback()


async def test_asyncpg_defaults_fail_the_way_the_lesson_says(users_url: str) -> None:
    async with pgbouncer(users_url, pool_size=2) as bouncer:
        variants: list[dict[str, Any]] = [{}, {"poolclass": NullPool}]
        for options in variants:
            engine = db.make_engine(url=bouncer.url, **options)
            with pytest.raises(DBAPIError) as caught:
                await _second_transaction_on_another_server(engine)
            await engine.dispose()
            pattern = r'InvalidSQLStatementNameError: prepared statement "__asyncpg_stmt_\w+__" does not exist'
            assert re.fullmatch(pattern, first_line(caught.value)), first_line(caught.value)
        # The same moves with the lesson's settings succeed.
        fixed = behind_pgbouncer(bouncer.url)
        await _second_transaction_on_another_server(fixed)
        await fixed.dispose()


def test_a_missing_binary_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(module, "SBIN", ())
    with pytest.raises(CourseError) as caught:
        find_binary()
    assert "\n" not in str(caught.value) and "apt-get install pgbouncer" in str(caught.value)
    assert not_run_reason(get_settings(backend="postgres")) == str(caught.value)
    assert "SQLite" in (not_run_reason(get_settings(backend="sqlite")) or "")


async def test_a_failed_start_says_why_in_one_line(
    installed: None, pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(module.tempfile, "mkdtemp", lambda **kw: made.append(real_mkdtemp(**kw)) or made[-1])
    with socket.socket() as taken:
        # Bound, not listening: PgBouncer's bind() fails, and nothing answers on the port meanwhile.
        taken.bind(("127.0.0.1", 0))
        monkeypatch.setattr(module, "free_port", lambda: taken.getsockname()[1])
        with pytest.raises(CourseError, match="PgBouncer did not start: ") as caught:
            async with pgbouncer(pg_admin_url):
                pass
    assert "\n" not in str(caught.value) and "Address already in use" in str(caught.value)
    assert made and not any(Path(folder).exists() for folder in made)
