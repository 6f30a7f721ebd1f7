"""A copy is a real, separate database: damage done to it never reaches the seed, and it is removed after."""

import os
import subprocess
import sys
import tempfile
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


# --- who cleans up: the runner's run folder and run tag, and the reaping of dead processes' folders -----------------


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def test_sqlite_copies_go_into_the_runners_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = get_settings(scale="tiny", backend="sqlite")
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv(copies.RUN_DIR_ENV, str(run))
    copy = await fresh.create_copy(tiny)
    assert copy.folder is not None and copy.folder.parent == run
    assert copy.folder.name.startswith(f"course-run-{os.getpid()}-")
    await copy.drop()
    assert list(run.iterdir()) == []


def test_folders_of_ended_processes_are_reaped_and_no_others(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    names = [f"course-run-{dead}-abc", f"course-run-{alive}-def", f"course-run-{os.getpid()}-ghi", "course-run-x1"]
    names += [f"course-check-{dead}-jkl", f"course-check-{alive}-mno"]  # runners' work folders
    names += [f"course-broker-{dead}-pqr", f"course-broker-{alive}-stu"]  # copy brokers' socket folders
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "course.sqlite3").write_bytes(b"x")
    (tmp_path / f"course-run-{dead}-file").write_text("a file, not a copy folder")
    reaped = copies.reap_abandoned_folders(tmp_path)
    dead_ones = (f"course-broker-{dead}-pqr", f"course-check-{dead}-jkl", f"course-run-{dead}-abc")
    assert sorted(reaped) == [tmp_path / name for name in dead_ones]
    left = [f"course-run-{alive}-def", f"course-run-{os.getpid()}-ghi", "course-run-x1", f"course-run-{dead}-file"]
    expected = [*left, f"course-check-{alive}-mno", f"course-broker-{alive}-stu"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)


async def test_a_lesson_without_a_runner_reaps_dead_processes_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(copies.RUN_DIR_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    orphan = tmp_path / f"course-run-{_dead_pid()}-zzz"
    orphan.mkdir()
    copy = await fresh.create_copy(get_settings(scale="tiny", backend="sqlite"))
    assert not orphan.exists() and copy.folder is not None and copy.folder.parent == tmp_path
    await copy.drop()


async def test_the_runner_drops_exactly_the_copies_with_its_tag(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = get_settings(scale="tiny", backend="postgres")
    ours, theirs = copies.new_run_tag(), copies.new_run_tag()
    made = {}
    for tag in (ours, theirs, None):
        if tag:
            monkeypatch.setenv(copies.RUN_TAG_ENV, tag)
        else:
            monkeypatch.delenv(copies.RUN_TAG_ENV)
        made[tag] = await fresh.create_copy(tiny)
    assert db.parse_url(made[ours].url).database.endswith(f"_{ours}")
    try:
        dropped = await copies.drop_run_copies(pg_admin_url, ours)
        assert dropped == [db.parse_url(made[ours].url).database]
        for tag, copy in made.items():
            exists = await pg_admin.database_exists(pg_admin_url, db.parse_url(copy.url).database)
            assert exists is (tag != ours)
    finally:
        for copy in made.values():
            await copy.drop()
    with pytest.raises(ValueError, match="not a run tag"):
        await copies.drop_run_copies(pg_admin_url, "%")
