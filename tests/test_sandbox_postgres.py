"""`course grade` in sandboxes on the course's PostgreSQL: an honest learner and one who attacks the server, at once.

The sandbox reaches the server only through a unix socket of its own, as a role that owns only its own copies
(course/grading/sandbox_db.py); tests/hostile/postgres.py says what the attacker tries and what cannot be stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import psutil
import pytest

from course import db
from course.chapters.registry import chapter
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.grading import classroom, sandbox
from course.seed import verify
from course.settings import get_settings
from tests.hostile.postgres import write_postgres_class
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


@pytest.mark.notebooks(cost=2)
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
