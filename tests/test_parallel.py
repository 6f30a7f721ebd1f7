"""What `make test`'s parallel workers (and two kernels started at once) share is safe to share, and cheap to copy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

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


def test_a_test_stuck_after_its_timeout_is_reported_and_the_run_goes_on() -> None:
    # pytest-timeout alone cannot end it (CI once waited 90 minutes for such a test): the hang guard in conftest.py.
    env = {**os.environ, "COURSE_TEST_HANG_GRACE": "2"}
    for name in ("COURSE_TEST_HANG_DIR", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT"):
        env.pop(name, None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "1", "-p", "no:cacheprovider", "tests/hang_probe.py"],
        env=env,
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    from tests.conftest import _sweep_abandoned_data_folders

    _sweep_abandoned_data_folders()  # the crashed worker's
    assert run.returncode == 1, run.stdout + run.stderr
    assert "crashed while running 'tests/hang_probe.py::test_stuck_in_cleanup'" in run.stdout, run.stdout
    assert "1 failed, 1 passed" in run.stdout, run.stdout
    assert "still running 3 s after it started" in run.stdout and "in test_stuck_in_cleanup" in run.stdout
