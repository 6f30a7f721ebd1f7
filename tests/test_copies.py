"""A copy is a real, separate database: damage done to it never reaches the seed, and it is removed after."""

from pathlib import Path

import pytest
from sqlalchemy import text

from course import db, seed
from course.db import copies
from course.db.postgres import admin as pg_admin
from course.db.postgres import owners
from course.seed import fresh
from course.settings import Settings, get_settings


async def _count_users(url: str) -> int:
    engine = db.make_engine(url=url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
    finally:
        await engine.dispose()


async def test_drop_table_in_a_copy_leaves_the_seed_intact(tiny: Settings) -> None:
    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE comments"))
            await conn.execute(text("DELETE FROM order_items"))
        await engine.dispose()
        copy_url = copy.url
    seed_url = seed.seed_url(tiny)
    assert copy_url != seed_url
    before = await seed.content_checksum(seed_url)
    async with fresh.fresh_copy(tiny) as again:
        assert await seed.content_checksum(again.url) == before
        assert await _count_users(again.url) == 200


async def test_copy_is_removed_afterwards(tiny: Settings) -> None:
    async with fresh.fresh_copy(tiny) as copy:
        url = copy.url
        assert await _count_users(url) == 200
    if tiny.backend == "sqlite":
        assert not Path(db.sqlite_path(url)).exists()
    else:
        name = db.parse_url(url).database
        assert not await pg_admin.database_exists(pg_admin.admin_url(tiny), name)


async def test_copy_is_removed_when_the_body_fails(tiny: Settings) -> None:
    with pytest.raises(ZeroDivisionError):
        async with fresh.fresh_copy(tiny) as copy:
            url = copy.url
            1 / 0  # noqa: B018
    assert copy.dropped
    if tiny.backend == "sqlite":
        assert not Path(db.sqlite_path(url)).exists()


async def test_copies_of_dead_processes_are_cleaned_up(pg_admin_url: str) -> None:
    tiny = get_settings(scale="tiny", backend="postgres")
    seed_url = seed.seed_url(tiny)
    # A killed kernel's copy: its owner, on this machine, is gone.
    dead = owners.Owner(owners.this_machine(), 999999, "1.00")
    orphan = await pg_admin.copy_database(seed_url, f"{copies.COPY_PREFIX}p999999_dead", owner=dead)
    async with fresh.fresh_copy(tiny):
        pass
    assert not await pg_admin.database_exists(pg_admin_url, db.parse_url(orphan).database)
