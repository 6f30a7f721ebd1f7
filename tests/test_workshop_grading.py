"""`course grade --urls` grades a workshop: each kernel runs as its learner's role, and a hostile one reaches nothing."""

from __future__ import annotations

import asyncio
import csv
import json
import secrets
import shutil
from pathlib import Path

import nbformat
import pytest

from course import db
from course.db.postgres import admin as pg_admin
from course.grading import workshop
from course.seed import verify
from course.settings import get_settings
from tests.fixtures.tooling import SOLUTION, built_fixture, course, variant

HOSTILE = """
import os
import asyncpg
from course import db
from course.db.postgres import admin as pg_admin

mine = db.parse_url(os.environ["COURSE_DATABASE_URL"])
attempts = {}
for database, statement in [
    ("postgres", 'ALTER DATABASE "{template}" ALLOW_CONNECTIONS false'),
    ("postgres", 'DROP DATABASE "{victim}" WITH (FORCE)'),
    ("postgres", "ALTER ROLE CURRENT_USER SUPERUSER"),
    ("{victim}", "UPDATE users SET name = 'mallory'"),
    ("{template}", "DELETE FROM posts"),
]:
    try:
        conn = await asyncpg.connect(pg_admin.dsn(mine.set(database=database)))
        await conn.execute(statement)
        attempts[statement] = "done"
    except Exception as exc:
        attempts[statement] = type(exc).__name__
import json
with open("{report}", "w") as out:
    json.dump(attempts, out)
"""


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def _template_state(admin: str, name: str) -> tuple[bool, int]:
    conn = await pg_admin.connect(admin)
    try:
        allow = await conn.fetchval("SELECT datallowconn FROM pg_database WHERE datname = $1", name)
    finally:
        await conn.close()
    conn = await pg_admin.connect(db.parse_url(admin).set(database=name))
    try:
        return allow, await conn.fetchval("SELECT count(*) FROM posts")
    finally:
        await conn.close()


@pytest.mark.notebooks
def test_grading_a_workshop_with_a_hostile_learner(pg_admin_url: str, tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    ana, mal = f"ana_{tag}", f"mal_{tag}"
    seats_csv = tmp_path / "urls.csv"
    seats = workshop.provision(pg_admin_url, [ana, mal], out=seats_csv, scale="tiny")
    try:
        template = workshop.template_url(pg_admin_url, "tiny")
        name = db.parse_url(template).database or ""
        settings = get_settings(scale="tiny", backend="postgres", database_url=template)
        digest = verify.digest(template)
        posts = asyncio.run(_template_state(pg_admin_url, name))[1]
        subs = tmp_path / "subs"
        (subs / ana).mkdir(parents=True)
        shutil.copy(SOLUTION, subs / ana / SOLUTION.name)
        stub = built_fixture(tmp_path / "root")
        report = tmp_path / "attempts.json"
        attack = HOSTILE.replace("{template}", name).replace("{victim}", seats[0].database)
        attack = attack.replace("{report}", str(report))
        variant(
            subs / mal / SOLUTION.name,
            lambda nb: nb.cells.insert(2, nbformat.v4.new_code_cell(attack)),
            source=stub,
        )
        out = tmp_path / "out"
        env = {"COURSE_BACKEND": "postgres"}
        run = course(
            "grade", str(subs), "--out", str(out), "--urls", str(seats_csv), "--jobs", "2", "--timeout", "60",
            "--no-sandbox",
            cwd=tmp_path, env=env, timeout=300,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Made 2 learner database(s) again" in run.stdout
        # Every attack ran, as mal's own role, and the server refused each one.
        attempts = json.loads(report.read_text())
        assert len(attempts) == 5 and "done" not in attempts.values(), attempts
        summary = {s["learner"]: (s["points"], s["max_points"]) for s in _csv(out / "summary.csv")}
        assert summary == {ana: ("5", "5"), mal: ("0", "5")}
        # The template kept its rows, its schema and its door open; its digest is the one recorded at seeding.
        assert asyncio.run(_template_state(pg_admin_url, name)) == (True, posts)
        assert verify.digest(template) == digest == verify._read_record(settings, template)["digest"]
    finally:
        workshop.teardown(pg_admin_url, seats_csv)
