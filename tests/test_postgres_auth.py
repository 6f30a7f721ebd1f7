"""The course's local PostgreSQL is private: logins need the generated secret, and old `trust` clusters are upgraded."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from course import db
from course.db import aio
from course.db.postgres import local as postgres_local
from course.db.postgres import provider as postgres
from course.db.postgres import secret as postgres_secret
from course.settings import Settings

BINARIES = postgres.find_binaries()
REQUIRED = os.environ.get("COURSE_REQUIRE_POSTGRES", "") not in ("", "0", "false")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(BINARIES is None and not REQUIRED, reason="no PostgreSQL binaries found"),
]
# What pg_hba.conf said before logins needed a password.
OLD_TRUST_HBA = """local   all   all                  trust
host    all   all   127.0.0.1/32   trust
host    all   all   ::1/128        trust
"""


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(cache_dir=tmp_path)
    yield settings
    postgres.stop(settings)


async def _login(port: int, password: str | None) -> str:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user="postgres", password=password, database="postgres", timeout=10
    )
    try:
        return str(await conn.fetchval("SELECT current_user"))
    finally:
        await conn.close()


def _assert_private(info: postgres.ServerInfo) -> None:
    assert info.data_dir is not None
    secret = postgres_secret.secret_path(info.data_dir)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.stat().st_uid == os.geteuid()
    assert "trust" not in (info.data_dir / "pg_hba.conf").read_text()
    # Another OS user has the port but not the secret: without it, or with a guess, the server says no.
    for wrong in (None, "", "postgres"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            aio.run(_login(info.port, wrong))
    # The URL handed to the course carries the secret, and printing it hides it.
    password = db.parse_url(info.url).password
    assert password == postgres_secret.read_secret(info.data_dir)
    assert aio.run(_login(info.port, str(password))) == "postgres"
    assert str(password) not in db.describe(info.url)


def test_a_server_is_private_when_new_and_after_a_lost_secret_or_an_old_trust_setup(settings: Settings) -> None:
    """One cluster (initdb costs seconds) through each way a server could end up open; each step sets up its own."""
    # New: it needs its secret. status() reads files only, and still hands out a URL that logs in.
    info = postgres.start(settings)
    _assert_private(info)
    assert postgres.status(settings) == info
    assert info.data_dir is not None and BINARIES is not None

    # A lost secret (the server running) is replaced.
    postgres_secret.secret_path(info.data_dir).unlink()
    _assert_private(postgres.start(settings))

    # A running server that trusts everyone is restarted private.
    (info.data_dir / "pg_hba.conf").write_text(OLD_TRUST_HBA)
    reload = postgres_local._run([str(BINARIES[0] / "pg_ctl"), "-D", str(info.data_dir), "reload"])
    assert reload.returncode == 0, reload.stdout
    # The precondition holds: anyone on the machine gets in without a password.
    assert aio.run(_login(info.port, None)) == "postgres"
    _assert_private(postgres.start(settings))

    # A stopped cluster from before (trust everywhere, no secret file) is upgraded on start, on its port.
    postgres.stop(settings)
    (info.data_dir / "pg_hba.conf").write_text(OLD_TRUST_HBA)
    postgres_secret.secret_path(info.data_dir).unlink()
    upgraded = postgres.start(settings)
    assert upgraded.port == info.port
    _assert_private(upgraded)


@pytest.mark.skipif(os.geteuid() != 0, reason="the nobody fallback only applies to root")
def test_private_as_nobody_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_local, "run_mode", lambda: "nobody")
    # nobody must be able to enter the cache dir; pytest's tmp_path is private to root.
    cache_dir = Path(tempfile.mkdtemp(prefix="course-pg-nobody-"))
    cache_dir.chmod(0o755)
    settings = Settings(cache_dir=cache_dir)
    try:
        info = postgres.start(settings)
        _assert_private(info)
        assert info.data_dir is not None
        postgres.stop(settings)
        # The upgrade path runs the server's single-user mode as nobody.
        (info.data_dir / "pg_hba.conf").write_text(OLD_TRUST_HBA)
        postgres_secret.secret_path(info.data_dir).unlink()
        _assert_private(postgres.start(settings))
    finally:
        postgres.stop(settings)
        shutil.rmtree(cache_dir)
