"""Seed status decides from what it understands: an error it does not recognise is reported, never "no seed"."""

import asyncio
from pathlib import Path

import pytest

from course import db, seed
from course.db.postgres import admin as pg_admin
from course.errors import CourseError
from course.settings import get_settings


async def test_an_error_status_does_not_recognise_is_reported_and_nothing_is_dropped(pg_url: str) -> None:
    # A course_meta of another shape: reading it fails with an error that means neither "no seed" nor "not ours".
    conn = await pg_admin.connect(pg_url)
    await conn.execute("CREATE TABLE course_meta (name text)")
    await conn.execute("CREATE TABLE users (id int, email text)")
    await conn.execute("INSERT INTO users VALUES (1, 'precious@example.com')")
    await conn.close()
    settings = get_settings(scale="tiny", database_url=pg_url)
    for action in (seed.status, lambda s: seed.ensure_seed(s, progress=False, announce=False)):
        with pytest.raises(CourseError, match="cannot read the seed") as info:
            await asyncio.to_thread(action, settings)
        assert "\n" not in str(info.value)
    conn = await pg_admin.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT email FROM users") == "precious@example.com"
    finally:
        await conn.close()


async def test_a_missing_postgres_database_is_no_seed(pg_admin_url: str) -> None:
    url = (
        db.parse_url(pg_admin_url).set(database="course_never_created_here").render_as_string(hide_password=False)
    )
    current = await asyncio.to_thread(seed.status, get_settings(scale="tiny"), url=url)
    assert not current.ok and not current.foreign and "no seed" in current.reason


def test_an_unreadable_seed_file_is_an_error_not_damage(tmp_path: Path) -> None:
    # A folder where the file should be: SQLite cannot open it, but nothing says the seed is damaged.
    path = tmp_path / "seed.sqlite3"
    path.mkdir()
    with pytest.raises(CourseError, match="cannot read the seed file") as info:
        seed.status(get_settings(scale="tiny"), url=db.sqlite_url(path).render_as_string())
    assert "--force" not in str(info.value)
    assert path.is_dir()
