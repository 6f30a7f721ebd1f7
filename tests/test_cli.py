"""The `course` command, run as a learner would: real subprocesses, one-line errors, non-zero exits."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course import db
from course.cli.main import main


def course(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "course.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_seed_prints_counts_and_seconds(tmp_path: Path) -> None:
    url = db.sqlite_url(tmp_path / "s.sqlite3").render_as_string()
    result = course("seed", "--scale", "tiny", "--url", url)
    assert result.returncode == 0, result.stderr
    assert "users" in result.stdout and "200" in result.stdout
    assert " rows in " in result.stdout
    again = course("seed", "--scale", "tiny", "--url", url)
    assert "up to date" in again.stdout


def test_seed_on_postgres(pg_url: str) -> None:
    result = course("seed", "--scale", "tiny", "--url", pg_url)
    assert result.returncode == 0, result.stderr
    assert "comments" in result.stdout and "3,000" in result.stdout


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"COURSE_DATABASE_URL": "postgres//nonsense"}, ["COURSE_DATABASE_URL"]),
        ({"COURSE_DATABASE_URL": "sqlite+aiosqlite:///x.db", "COURSE_SCALE": "huge"}, ["unknown scale"]),
        ({"COURSE_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/course"}, ["not answering"]),
    ],
)
def test_bad_settings_give_one_line(
    env: dict[str, str],
    fragments: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if "not answering" in fragments:
        # A failed connection, as a learner runs the command: nothing else (a warning at exit) may reach stderr.
        assert_one_line_error(course("seed", env=env), *fragments)
        return
    # Refused while reading the settings, before anything connects: in this process, the same one line.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["seed"])
    assert_one_line_error(subprocess.CompletedProcess(["seed"], code, "", capsys.readouterr().err), *fragments)


def test_corrupt_seed_file_gives_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"garbage" * 500)
    result = course("seed", "--url", db.sqlite_url(bad).render_as_string())
    assert_one_line_error(result, "damaged", "--force")
    assert bad.read_bytes() == b"garbage" * 500, "a failed command must not change the file"


def test_works_from_any_folder(tmp_path: Path) -> None:
    result = course("doctor", cwd=tmp_path, env={"COURSE_SCALE": "tiny"})
    assert "sqlalchemy" in result.stdout
    assert result.returncode in (0, 1)


def test_doctor_reports_missing_seed(tmp_path: Path) -> None:
    result = course("doctor", env={"COURSE_DATA_DIR": str(tmp_path), "COURSE_SCALE": "tiny"})
    assert result.returncode == 1
    assert "course seed" in result.stdout
    # It says what to run; it does not run it.
    assert not any(tmp_path.iterdir())


def test_postgres_url_and_status(pg_admin_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = course("postgres", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert db.describe(pg_admin_url) in status.stdout
    # The URL two ways, in this process (the command above already ran as a learner runs it).
    assert main(["postgres", "url"]) == 0
    assert capsys.readouterr().out.strip() == db.describe(pg_admin_url)
    assert main(["postgres", "url", "--password"]) == 0
    assert capsys.readouterr().out.strip() == pg_admin_url


def test_doctor_only_looks_it_never_starts_a_server(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = course(
        "doctor", env={"COURSE_BACKEND": "postgres", "COURSE_CACHE_DIR": str(cache), "COURSE_SCALE": "tiny"}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "local server not running" in result.stdout
    assert "course postgres start" in result.stdout
    # No cluster was initialised and no server started in the cache folder it was given.
    assert not (cache / "postgres").exists() or not any((cache / "postgres").glob("*/postmaster.pid"))
    assert not any(cache.glob("postgres/*/PG_VERSION"))


def test_doctor_reports_a_running_server_without_its_password(pg_admin_url: str) -> None:
    result = course("doctor", env={"COURSE_BACKEND": "postgres", "COURSE_SCALE": "tiny"})
    assert "running at postgresql+asyncpg://postgres" in result.stdout, result.stdout + result.stderr
    password = db.parse_url(pg_admin_url).password
    assert password is None or str(password) not in result.stdout
    assert "seed" in result.stdout


@pytest.mark.postgres
def test_doctor_warns_about_a_server_that_trusts_everyone(tmp_path: Path, private_pg_cache: Path) -> None:
    # The worker's own server (tests/conftest.py), shared with the tests that restart one: its pg_hba.conf is
    # changed here and put back; the doctor reads the file, the server never reloads it.
    from course.db.postgres import provider as postgres
    from course.settings import Settings

    if postgres.find_binaries() is None:
        pytest.skip("no PostgreSQL binaries")
    info = postgres.start(Settings(cache_dir=private_pg_cache))
    assert info.data_dir is not None
    hba = info.data_dir / "pg_hba.conf"
    private = hba.read_text()
    env = {"COURSE_CACHE_DIR": str(private_pg_cache), "COURSE_SCALE": "tiny", "COURSE_DATA_DIR": str(tmp_path)}
    assert "without a password" not in course("doctor", env=env).stdout
    try:
        # What a cluster made by older versions of the course says.
        hba.write_text("host all all 127.0.0.1/32 trust\n")
        result = course("doctor", env=env)
    finally:
        hba.write_text(private)
    assert result.returncode == 1
    assert "without a password" in result.stdout and "course postgres start" in result.stdout
