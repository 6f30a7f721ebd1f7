"""Workshop mode on the course's PostgreSQL: each learner reaches their own database and nothing else."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from course import db
from course.cli.main import main
from course.db.postgres import admin as pg_admin
from course.errors import CourseError
from course.grading import workshop
from course.seed import fresh
from course.settings import get_settings


@pytest.fixture(scope="module")
def seats(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[workshop.Seat]]:
    folder = tmp_path_factory.mktemp("workshop")
    tag = secrets.token_hex(3)
    (folder / "names.txt").write_text(f"ana_{tag}\n\nben_{tag}\n")
    out = folder / "urls.csv"
    argv = [
        "workshop",
        "provision",
        "--names",
        str(folder / "names.txt"),
        "--learners",
        "2",
        "--url",
        pg_admin_url,
    ]
    assert main([*argv, "--out", str(out), "--scale", "tiny"]) == 0
    assert out.stat().st_mode & 0o077 == 0
    try:
        yield workshop.read_seats(out)
    finally:
        assert main(["workshop", "teardown", str(out), "--url", pg_admin_url]) == 0
    names = [f"{workshop.PREFIX}ana_{tag}", f"{workshop.PREFIX}ben_{tag}"]
    assert asyncio.run(_left(pg_admin_url, names)) == (0, 0)


async def _left(admin: str, names: list[str]) -> tuple[int, int]:
    conn = await pg_admin.connect(admin)
    try:
        role_ids = "SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[])"
        roles = await conn.fetchval(f"SELECT count(*) FROM ({role_ids}) AS r", names)
        databases = await conn.fetchval(
            f"SELECT count(*) FROM pg_database WHERE datname = ANY($1::text[]) OR datdba IN ({role_ids})", names
        )
        return roles, databases
    finally:
        await conn.close()


async def _connect_fails(url: str) -> str:
    with pytest.raises(CourseError) as info:
        conn = await pg_admin.connect(url)
        await conn.close()
    return str(info.value)


async def test_a_learner_reaches_their_own_database_and_no_other(
    seats: list[workshop.Seat], pg_admin_url: str
) -> None:
    ana, ben = seats
    template = workshop.template_url(pg_admin_url, "tiny")
    conn = await pg_admin.connect(ana.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") > 0
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
        await conn.execute("UPDATE users SET name = 'ana was here'")  # their own data: theirs to change
    finally:
        await conn.close()
    ana_url = db.parse_url(ana.url)
    # Ben's database and the seed template refuse Ana's login outright.
    assert "permission denied" in await _connect_fails(ana_url.set(database=ben.database))
    assert "permission denied" in await _connect_fails(ana_url.set(database=db.parse_url(template).database))
    conn = await pg_admin.connect(ana_url.set(database="postgres"))
    try:
        name = db.parse_url(template).database
        for statement in (
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            f'ALTER DATABASE "{name}" RENAME TO stolen',
            f'DROP DATABASE "{name}"',
            f'DROP DATABASE "{ben.database}"',
            f'CREATE DATABASE ana_steals TEMPLATE "{ben.database}"',
            f'CREATE DATABASE ana_steals TEMPLATE "{name}"',
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
    conn = await pg_admin.connect(ben.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE name = 'ana was here'") == 0
    finally:
        await conn.close()


async def test_a_learner_makes_copies_of_their_own_database_that_others_cannot_enter(
    seats: list[workshop.Seat],
) -> None:
    ana, ben = seats
    copy = await fresh.create_copy(get_settings(scale="tiny", database_url=ana.url))
    try:
        conn = await pg_admin.connect(copy.url)
        try:
            assert await conn.fetchval("SELECT current_user") == ana.role
            assert await conn.fetchval("SELECT count(*) FROM posts") > 0
        finally:
            await conn.close()
        ben_url = db.parse_url(ben.url).set(database=db.parse_url(copy.url).database)
        assert "permission denied" in await _connect_fails(ben_url)
    finally:
        await copy.drop()


def test_provision_refuses_bad_names_and_an_existing_csv(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("Robert'); DROP TABLE students;--\n")
    with pytest.raises(CourseError, match="lower-case"):
        workshop.learner_names(count=None, names_file=tmp_path / "names.txt")
    (tmp_path / "urls.csv").write_text("keep")
    with pytest.raises(CourseError, match="exists"):
        workshop.provision("postgresql+asyncpg://x@127.0.0.1:1/postgres", ["ana"], out=tmp_path / "urls.csv")
    assert (tmp_path / "urls.csv").read_text() == "keep"
