"""Copies made by the grader's broker belong to a role of their own that reaches nothing else on the server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from course import db
from course.db.postgres import admin as pg_admin
from course.db.postgres import broker
from course.errors import CourseError
from course.seed import fresh
from course.seed.load import seed_url
from course.settings import Settings, get_settings


@pytest.fixture(scope="module")
def service(pg_admin_url: str) -> Iterator[Settings]:
    settings = get_settings(scale="tiny", backend="postgres")
    with fresh.copy_service(settings) as where:
        assert where is not None
        yield settings


async def _fails_to_connect(url: str) -> str:
    with pytest.raises(CourseError) as info:
        conn = await pg_admin.connect(url)
        await conn.close()
    return str(info.value)


async def test_a_brokered_copy_logs_in_as_its_own_role_with_no_power_beyond_it(service: Settings) -> None:
    a = await fresh.create_copy(service)
    b = await fresh.create_copy(service)
    try:
        url_a, url_b = db.parse_url(a.url), db.parse_url(b.url)
        assert url_a.username == url_a.database and url_a.username != url_b.username
        conn = await pg_admin.connect(url_a)
        try:
            me = await conn.fetchrow(
                "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
            )
            assert tuple(me) == (False, False, False)
            # It owns its tables: lessons create indexes, checks alter and drop tables.
            await conn.execute("CREATE INDEX ix_probe ON users (name)")
            await conn.execute("DROP TABLE post_tags")
            assert await conn.fetchval("SELECT count(*) FROM users") > 0
            template = db.parse_url(seed_url(service)).database
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'ALTER DATABASE "{template}" ALLOW_CONNECTIONS false')
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f'DROP DATABASE "{url_b.database}"')
        finally:
            await conn.close()
        # Neither the template nor the other copy lets it in.
        assert "permission denied" in await _fails_to_connect(url_a.set(database=url_b.database))
        assert "permission denied" in await _fails_to_connect(
            url_a.set(database=db.parse_url(seed_url(service)).database)
        )
    finally:
        await a.drop()
        await b.drop()
    admin = await pg_admin.connect(pg_admin.admin_url(service))
    try:
        left = await admin.fetchval(
            "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1::text[])", [url_a.username, url_b.username]
        )
        assert left == 0
    finally:
        await admin.close()


async def test_a_kernel_cannot_drop_another_kernels_copy_or_hoard_copies(
    service: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker, "MAX_LIVE", 2)
    a = await fresh.create_copy(service)
    try:
        where = broker.address()
        assert where is not None
        with pytest.raises(CourseError, match="not yours"):
            await broker.request_drop(where, "0" * 32)
        held = []
        with pytest.raises(CourseError, match="already holds"):
            for _ in range(broker.MAX_LIVE):
                held.append(await fresh.create_copy(service))
        await asyncio.gather(*(copy.drop() for copy in held))
        # Inventing run tags does not get around the cap: the broker holds only so many copies in all.
        monkeypatch.setattr(broker, "MAX_LIVE_TOTAL", 2)
        b = await broker.request_copy(where, tag="r00000001")
        with pytest.raises(CourseError, match="already holds"):
            await broker.request_copy(where, tag="r00000002")
        await broker.request_drop(where, b[1])
    finally:
        await a.drop()


def test_a_broker_leaves_no_folder_even_when_the_server_is_gone() -> None:
    # Nothing listens on port 1: the copy still alive at close cannot be dropped, and the close says so.
    service = broker.CopyBroker(
        "postgresql+asyncpg://nobody@127.0.0.1:1/postgres", lambda: "unused", name_for=lambda tag: "unused"
    )
    folder = Path(service.path).parent
    assert folder.is_dir() and folder.name.startswith(f"{broker.FOLDER_PREFIX}{os.getpid()}-")
    service._live["key"] = ("course_run_gone", None)
    with pytest.raises(CourseError, match="not answering"):
        service.close()
    assert not folder.exists()
