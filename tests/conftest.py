"""Shared fixtures: an isolated data folder, tiny seeds, and a real PostgreSQL server (or a one-line skip).

Under pytest-xdist (`make test` runs `pytest -n auto`) each worker is its own process: it gets its own data folder
(so its SQLite seeds are its own), while all workers share the course's local PostgreSQL server (started under a
file lock) and its seed templates (built under a file lock by whichever worker needs one first, see
course/seed/status.py).
"""

from __future__ import annotations

import faulthandler
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# Tests never touch the learner's data/ folder; subprocesses (CLI, kernels) inherit this too. One folder per
# process: a second import of this module (e.g. as `tests.conftest`) reuses it rather than pointing the process
# at a new, empty one halfway through the run; an xdist worker (another pid) makes its own.
_OWNER = "COURSE_TEST_DATA_PID"
if os.environ.get(_OWNER) == str(os.getpid()) and os.environ.get("COURSE_DATA_DIR"):
    _DATA = Path(os.environ["COURSE_DATA_DIR"])
else:
    _DATA = Path(tempfile.mkdtemp(prefix=f"course-test-data-{os.getpid()}-"))
    os.environ["COURSE_DATA_DIR"], os.environ[_OWNER] = str(_DATA), str(os.getpid())
for name in ("COURSE_DATABASE_URL", "COURSE_BACKEND", "COURSE_SCALE"):
    os.environ.pop(name, None)
# The tests, and the kernels and servers they start, run in a zone whose offset is neither zero nor whole hours
# (+05:45, no daylight saving): code that takes a local time for UTC fails here, where on a UTC machine it passes.
TEST_TZ, TEST_TZ_OFFSET = "Asia/Kathmandu", 5 * 3600 + 45 * 60
os.environ["TZ"] = TEST_TZ
time.tzset()

from course import db  # noqa: E402
from course.db import aio  # noqa: E402
from course.db.postgres import admin as pg_admin  # noqa: E402
from course.errors import CourseError  # noqa: E402
from course.settings import Settings, get_settings  # noqa: E402

REQUIRE_POSTGRES = os.environ.get("COURSE_REQUIRE_POSTGRES", "") not in ("", "0", "false")
REQUIRE_SYSTEM_PACKAGES = os.environ.get("COURSE_REQUIRE_SYSTEM_PACKAGES", "") not in ("", "0", "false")
# A whole notebook in a kernel, on a busy 2-core machine: far above the < 60 s a lesson takes, far below a hang.
NOTEBOOK_TIMEOUT = 600
# pytest-timeout fails a test once, by an exception in the main thread; a test whose cleanup then waits for a
# stuck thread (a thread pool's shutdown, an event loop's default executor) hangs for good, and CI's run with it.
# Past its timeout by HANG_GRACE, the worker writes every thread's stack to a file in the _HANGS folder and exits:
# xdist reports the test as crashed and goes on with a new worker, and the summary prints the stacks (a worker's
# stderr is not shown). The folder is made by the first pytest process; xdist's workers inherit it.
HANG_GRACE = float(os.environ.get("COURSE_TEST_HANG_GRACE", 60))
_HANGS = "COURSE_TEST_HANG_DIR"
_HANGS_MADE_HERE = not os.environ.get(_HANGS)
if _HANGS_MADE_HERE:
    os.environ[_HANGS] = tempfile.mkdtemp(prefix=f"course-test-data-{os.getpid()}-hangs-")  # swept like _DATA


def pytest_configure(config: pytest.Config) -> None:
    # Without the zone's data (Debian: tzdata, in .ci/apt-packages) the C library silently falls back to UTC: the
    # tests still run (in UTC) on a laptop, not in CI, which must prove the non-UTC case.
    if time.localtime().tm_gmtoff != TEST_TZ_OFFSET:
        message = f"TZ={TEST_TZ} is unknown here (no tzdata package): the tests run in UTC"
        if REQUIRE_SYSTEM_PACKAGES:
            raise pytest.UsageError(f"COURSE_REQUIRE_SYSTEM_PACKAGES=1 but {message}")
        config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)


def pytest_sessionstart(session: pytest.Session) -> None:
    # The container test's Debian root file system takes minutes to build on a machine with no cache (CI): the
    # controller starts the build at once, in the background, and the test waits on the script's lock for it.
    if hasattr(session.config, "workerinput") or os.geteuid() != 0:
        return
    script = Path(__file__).parent / "containers" / "build-postgres-rootfs"
    if shutil.which("debootstrap") and shutil.which("dockerd") and script.exists():
        subprocess.Popen(
            [str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )


def _sweep_abandoned_data_folders() -> None:
    """Remove the data folders of test runs that were killed before pytest_unconfigure (their process is gone)."""
    for folder in Path(tempfile.gettempdir()).glob("course-test-data-*"):
        pid = folder.name.split("-")[3]
        if folder == _DATA or not folder.is_dir():
            continue
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
                continue  # a run still going
            except ProcessLookupError:
                pass
            except PermissionError:
                continue  # another user's live process
        elif time.time() - folder.stat().st_mtime < 3600:
            continue  # an older run's folder (no pid in its name): only once it is an hour old
        shutil.rmtree(folder, ignore_errors=True)


_sweep_abandoned_data_folders()


def pytest_unconfigure(config: pytest.Config) -> None:
    # The data folder holds seeds of tens of MB at the small scale: a run leaves nothing in the temp folder.
    shutil.rmtree(_DATA, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # Mark every test that needs the server (directly or as the PostgreSQL half of a parametrised test) so `-m "not postgres"` leaves it out.
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("backend") == "postgres"
        if on_postgres or {"pg_admin_url", "pg_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
        # pytest-timeout's default (pyproject) suits in-process tests; a kernel run gets longer unless it says otherwise.
        if item.get_closest_marker("notebooks") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(NOTEBOOK_TIMEOUT))
    # Kernel runs are the longest tests: started first, they spread over the xdist workers and the short tests
    # fill the gaps, instead of one worker finishing a long notebook alone at the end. Among them the costliest
    # go first: `@pytest.mark.notebooks(cost=N)` is a rough weight (default 1; a lesson is about 3 course-check
    # runs of an exercise notebook). A stable sort: every worker computes the same order, as xdist requires.
    items.sort(key=_schedule)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A hang guard behind pytest-timeout (see HANG_GRACE)."""
    marker = item.get_closest_marker("timeout")
    limit = float(marker.args[0] if marker and marker.args else item.config.getini("timeout") or 0)
    stacks = None
    if limit > 0:
        stacks = (Path(os.environ[_HANGS]) / f"{os.getpid()}.txt").open("w")
        stacks.write(f"{item.nodeid} still running {limit + HANG_GRACE:.0f} s after it started:\n")
        stacks.flush()
        faulthandler.dump_traceback_later(limit + HANG_GRACE, exit=True, file=stacks)
    try:
        yield
    finally:
        if stacks is not None:
            faulthandler.cancel_dump_traceback_later()
            stacks.close()
            Path(stacks.name).unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _HANGS_MADE_HERE:
        return  # an xdist worker (they have a summary too, never shown): the folder is the controller's
    folder = Path(os.environ[_HANGS])
    for dump in sorted(folder.glob("*.txt")):
        terminalreporter.section(f"hung test (stacks of worker pid {dump.stem})")
        terminalreporter.write(dump.read_text())
    shutil.rmtree(folder, ignore_errors=True)


def _schedule(item: pytest.Item) -> tuple[bool, float]:
    marker = item.get_closest_marker("notebooks")
    return marker is None, -float(marker.kwargs.get("cost", 1)) if marker else 0.0


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _DATA


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL of the course's local PostgreSQL, started if needed; skip (or fail in CI) without one."""
    try:
        return pg_admin.admin_url(get_settings(backend="postgres"))
    except CourseError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"COURSE_REQUIRE_POSTGRES=1 but no PostgreSQL: {exc}")
        pytest.skip(f"no PostgreSQL server can be had here: {exc}")


@pytest.fixture(scope="session")
def private_pg_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The cache folder of a PostgreSQL server of this worker's own, for tests that stop and restart it.

    Restarting the shared server would cut off every other test's connections (other workers run at the same time).
    """
    from course.db.postgres import provider

    folder = tmp_path_factory.mktemp("private-pg")
    folder.chmod(0o755)
    yield folder
    provider.stop(get_settings(backend="postgres", cache_dir=folder))


@pytest.fixture
def private_pg(private_pg_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Tiny PostgreSQL settings on a server of this worker's own; kernels started by the test inherit it."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(private_pg_cache))
    settings = get_settings(scale="tiny", backend="postgres")
    try:
        pg_admin.admin_url(settings)
    except CourseError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"COURSE_REQUIRE_POSTGRES=1 but no PostgreSQL: {exc}")
        pytest.skip(f"no PostgreSQL server can be had here: {exc}")
    return settings


async def _new_pg_database(admin_url: str) -> str:
    url = db.parse_url(admin_url).set(database=f"course_test_{secrets.token_hex(4)}")
    await pg_admin.create_database_if_missing(url)
    return url.render_as_string(hide_password=False)


@pytest.fixture
async def pg_url(pg_admin_url: str) -> AsyncIterator[str]:
    """An async URL to a new, empty PostgreSQL database, dropped afterwards."""
    url = await _new_pg_database(pg_admin_url)
    try:
        yield url
    finally:
        await pg_admin.drop_database(url)


@pytest.fixture
async def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """An async URL to a new, empty database on the parametrised backend, removed afterwards."""
    if backend == "sqlite":
        yield db.sqlite_url(tmp_path / "empty.sqlite3").render_as_string()
        return
    url = await _new_pg_database(request.getfixturevalue("pg_admin_url"))
    try:
        yield url
    finally:
        await pg_admin.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a test on both backends; the PostgreSQL half needs the server."""
    if request.param == "postgres":
        request.getfixturevalue("pg_admin_url")
    return request.param


@pytest.fixture
def tiny(backend: str) -> Settings:
    """Settings for the tiny scale on the parametrised backend."""
    return get_settings(scale="tiny", backend=backend)


@pytest.fixture(scope="session")
def run_async() -> Iterator[object]:
    yield aio.run
