"""`course grade` in sandboxes on the course's PostgreSQL: an honest learner and one who attacks the server, at once.

The sandbox reaches the server only through a unix socket of its own, as a role that owns only its own copies
(course/grading/sandbox_db.py); tests/hostile/postgres.py says what the attacker tries and what cannot be stopped.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import psutil
import pytest

from course import db
from course.chapters.registry import chapter
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.grading import classroom, sandbox, sandbox_db, workshop
from course.seed import verify
from course.settings import get_settings
from tests.hostile.postgres import write_postgres_class
from tests.nbsource import ROOT
from tests.test_sandbox import _need_sandbox


async def _left_on_server(admin: str, prefix: str) -> list[str]:
    conn = await pg_admin.connect(admin)
    try:
        rows = await conn.fetch(
            "SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) "
            "UNION ALL SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)",
            prefix,
        )
        return [r["name"] for r in rows]
    finally:
        await conn.close()


async def _template_state(admin: str, name: str) -> tuple[object, ...]:
    conn = await asyncpg.connect(pg_admin.dsn(admin))
    try:
        row = await conn.fetchrow(
            "SELECT datallowconn, datconnlimit, datistemplate, pg_get_userbyid(datdba) AS owner "
            "FROM pg_database WHERE datname = $1",
            name,
        )
        return tuple(row) if row else ()
    finally:
        await conn.close()


@pytest.mark.notebooks(cost=2)  # two submissions at once
def test_a_postgres_attacker_in_a_sandbox_harms_nobody(
    pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_sandbox()
    monkeypatch.setenv("COURSE_BACKEND", "postgres")
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    # An instructor's admin URL in the grader's environment: the sandbox must not see it.
    monkeypatch.setenv("COURSE_DATABASE_URL", "")
    settings = get_settings()
    template = verify.verified_seed(settings, announce=False)
    name = db.parse_url(template).database or ""
    before = (verify.digest(template), aio.run(_template_state(pg_admin_url, name)))
    sockets = set(Path("/tmp").glob("course-db-*"))
    want = write_postgres_class(tmp_path / "subs", template=name)

    report = classroom.grade([tmp_path / "subs"], out=tmp_path / "out", jobs=2, timeout=20)

    table: dict[str, list[classroom.GradeRow]] = {}
    for row in report.rows:
        table.setdefault(row.learner, []).append(row)
    for learner, points in want.items():
        detail = [(r.exercise, r.status, r.message[:160]) for r in table[learner]]
        assert len(table[learner]) == len(chapter(1).exercises), detail
        assert sum(r.points for r in table[learner]) == points, (learner, detail)
    assert {r.status for r in table["ann"]} == {"passed"}
    assert {r.status for r in table["pgvandal"]} <= {"failed", "tampered"}
    # The template: same rows, still open to copying, same owner.
    assert (verify.digest(template), aio.run(_template_state(pg_admin_url, name))) == before
    assert verify.digest(template) == verify._read_record(settings, template)["digest"]
    # Nothing left: no copy, no role (named after this grader's pid), no sandbox process, no socket folder.
    assert aio.run(_left_on_server(pg_admin_url, f"course_run_p{os.getpid()}_")) == []
    assert [p.pid for p in psutil.process_iter(["uids"]) if sandbox.made_here(p.info["uids"].real)] == []
    assert set(Path("/tmp").glob("course-db-*")) <= sockets


def _poll(what: str, ready: object, *, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def _graded(out: Path) -> int:
    try:
        return len((out / "graded.csv").read_text().splitlines()) - 1
    except FileNotFoundError:
        return 0


@pytest.mark.notebooks(cost=2)  # three runs of unsolved notebooks, one at a time
def test_a_grader_killed_mid_class_leaves_its_grades_and_a_rerun_finishes_the_rest(
    pg_admin_url: str, tmp_path: Path
) -> None:
    """SIGKILL of the real `course grade` while a submission holds copies; the re-run sweeps and resumes."""
    _need_sandbox()
    subs, out = tmp_path / "subs", tmp_path / "out"
    # Unsolved notebooks: their kernels and checks still make copies, and fail fast (the test is about the kill).
    for learner in ("ann", "bob"):
        (subs / learner).mkdir(parents=True)
        shutil.copy(ROOT / "exercises" / "01_crud.ipynb", subs / learner / "01_crud.ipynb")
    env = {**os.environ, "COURSE_BACKEND": "postgres", "COURSE_SCALE": "tiny", "COURSE_DATABASE_URL": ""}
    argv = [sys.executable, "-c", "from course.cli import main; main()", "grade", str(subs), "--out", str(out)]
    argv += ["--jobs", "1", "--timeout", "20"]
    grader = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    prefix = f"course_run_p{grader.pid}_"
    try:
        # Killed once the first learner is in grades.csv and the second one's kernel holds a copy.
        _poll("a finished learner", lambda: _graded(out) == 1 or grader.poll() is not None)
        _poll("a copy of the second", lambda: aio.run(_left_on_server(pg_admin_url, prefix)) or grader.poll())
        assert grader.poll() is None, grader.stderr.read().decode()[-2000:] if grader.stderr else ""
        grader.kill()
    finally:
        grader.kill()
        grader.wait()
    rows = (out / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(chapter(1).exercises) and all(",failed,not solved yet" in r for r in rows[1:])

    def sandboxes() -> list[int]:
        return [p.pid for p in psutil.process_iter(["uids"]) if sandbox.made_here(p.info["uids"].real, grader.pid)]

    # bubblewrap dies with its parent, and its PID namespace with it.
    _poll("the sandboxes to go", lambda: not sandboxes(), seconds=30)
    again = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Graded 2 notebook(s)" in again.stdout and re.search(r"bob +0/19", again.stdout), again.stdout
    rows = (out / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * len(chapter(1).exercises) and all(",failed,not solved yet" in r for r in rows[1:])
    # The killed grader's copies and roles, work and socket folders and cgroups are gone (the re-run swept them).
    assert aio.run(_left_on_server(pg_admin_url, prefix)) == []
    assert list(Path("/tmp").glob(f"course-check-{grader.pid}-*")) == []
    assert list(Path("/sys/fs/cgroup").glob(f"**/course-grade-{grader.pid}-*")) == []


# Run inside a sandbox: a copy the way lessons and checks get one, its rows, and whether the server's TCP port can be
# reached (the network namespace has only its own loopback).
PROBE = """
import asyncio, json, os, socket
from course import db
from course.db.postgres import admin as pg_admin
from course.seed import fresh

async def main():
    copy = await fresh.create_copy()
    conn = await pg_admin.connect(copy.url)
    rows = await conn.fetchval("SELECT count(*) FROM users")
    await conn.close()
    url = db.parse_url(copy.url)
    try:
        socket.create_connection(("127.0.0.1", int(url.query["port"])), timeout=2).close()
        tcp = "open"
    except OSError as exc:
        tcp = type(exc).__name__
    print(json.dumps({"rows": rows, "user": url.username, "database": url.database, "tcp": tcp}))

asyncio.run(main())
"""


def _probe(settings: object, door: sandbox_db.SandboxDatabase, work: Path) -> dict[str, object]:
    work.mkdir()
    work.chmod(0o755)
    where = sandbox_db.Reach(door)
    process = sandbox.popen(
        [sys.executable, "-I", "-c", PROBE], work=work, settings=settings, limits=sandbox.Limits(),  # type: ignore[arg-type]
        env=where.env, ro_binds=where.binds, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()[-2000:]
    return dict(json.loads(out.decode().splitlines()[-1]))


def test_a_sandbox_reaches_postgres_only_through_its_socket_as_a_role_of_its_own(
    pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _need_sandbox()
    monkeypatch.setenv("COURSE_DATABASE_URL", "")
    settings = get_settings(scale="tiny", backend="postgres")
    verify.verified_seed(settings, announce=False)
    door = sandbox_db.SandboxDatabase(settings)
    try:
        seen = _probe(settings, door, tmp_path / "class")
    finally:
        door.close()
    assert seen["rows"] and seen["tcp"] == "ConnectionRefusedError"
    assert seen["user"] == seen["database"] and str(seen["user"]).startswith(f"course_run_p{os.getpid()}_")
    # The copy the sandbox did not drop went with its broker, and its role with it.
    assert aio.run(_left_on_server(pg_admin_url, str(seen["user"]))) == []

    # A workshop seat: the learner's own login, through the socket; its copies are tagged and dropped at close.
    seats = tmp_path / "urls.csv"
    (seat,) = workshop.provision(pg_admin_url, [f"w{secrets.token_hex(3)}"], out=seats, scale="tiny")
    try:
        door = sandbox_db.SandboxDatabase(settings, seat.url)
        try:
            seen = _probe(settings, door, tmp_path / "workshop")
        finally:
            door.close()
        assert seen["rows"] and seen["tcp"] == "ConnectionRefusedError" and seen["user"] == seat.role
        assert str(seen["database"]).endswith(door.tag)
        assert aio.run(_left_on_server(pg_admin_url, str(seen["database"]))) == []
    finally:
        workshop.teardown(pg_admin_url, seats)
