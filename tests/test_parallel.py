"""What `make test`'s parallel workers (and two kernels started at once) share is safe to share, and cheap to copy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from course import seed
from course.db.postgres import admin as pg_admin
from course.settings import get_settings

# What a kernel's setup cell or a test worker does first: make sure the seed exists.
ENSURE = "from course.seed import ensure_seed; ensure_seed(progress=False)"


def test_two_processes_that_need_one_seed_build_it_once(empty_url: str) -> None:
    env = {**os.environ, "COURSE_DATABASE_URL": empty_url, "COURSE_SCALE": "tiny"}
    env.pop("COURSE_BACKEND", None)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", ENSURE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    builds = [out for out, _ in outputs if "Building the tiny seed" in out]
    # The second process waits for the first one's build and then uses it, instead of building over it.
    assert len(builds) == 1, outputs
    assert seed.status(get_settings(scale="tiny", database_url=empty_url)).ok


def test_importing_conftest_again_keeps_this_workers_data_folder() -> None:
    before = os.environ["COURSE_DATA_DIR"]
    import tests.conftest as again

    assert os.environ["COURSE_DATA_DIR"] == before == str(again._DATA)


async def test_the_local_server_copies_seeds_file_by_file(pg_admin_url: str) -> None:
    # Every check and lesson on PostgreSQL starts with a copy; on the course's own server (no fsync) copying the
    # files is several times cheaper than PostgreSQL's default of writing each page to the WAL.
    conn = await pg_admin.connect(pg_admin_url)
    try:
        assert await pg_admin._copy_strategy(conn) == " STRATEGY FILE_COPY"
    finally:
        await conn.close()
    seed_url = seed.seed_url(get_settings(scale="tiny", backend="postgres"))
    await asyncio.to_thread(seed.ensure_seed, get_settings(scale="tiny", backend="postgres"), progress=False)
    copy = await pg_admin.copy_database(seed_url, f"course_test_copy_{os.getpid()}")
    try:
        assert await seed.content_checksum(copy) == await seed.content_checksum(seed_url)
    finally:
        await pg_admin.drop_database(copy)
