"""Server chores give one-line answers when the server is down, the database is missing or the name is odd."""

import pytest

from course.db.postgres import admin as pg_admin
from course.errors import CourseError


async def test_unreachable_server_is_one_line() -> None:
    with pytest.raises(CourseError, match="not answering") as info:
        await pg_admin.connect("postgresql+asyncpg://x@127.0.0.1:1/db", timeout=2)
    assert "\n" not in str(info.value)


async def test_missing_database_is_named(pg_admin_url: str) -> None:
    url = pg_admin_url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(CourseError, match="no_such_database_here"):
        await pg_admin.connect(url)


async def test_create_copy_and_drop_odd_names(pg_admin_url: str) -> None:
    odd = 'course "quoted" name'
    url = pg_admin_url.rsplit("/", 1)[0] + "/" + odd
    await pg_admin.create_database_if_missing(url)
    await pg_admin.create_database_if_missing(url)  # idempotent
    assert await pg_admin.database_exists(pg_admin_url, odd)
    copy = await pg_admin.copy_database(url, odd + " copy")
    assert await pg_admin.database_exists(pg_admin_url, odd + " copy")
    for target in (copy, url):
        await pg_admin.drop_database(target)
    assert not await pg_admin.database_exists(pg_admin_url, odd)
