"""`course grade` on PostgreSQL: the kernel's lesson and checks log in as a role that owns only its own copy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from course import db
from course.seed import verify
from course.seed.load import seed_url
from course.settings import get_settings
from tests.fixtures.tooling import SOLUTION, course, variant

# Run in the learner's notebook after `lesson = await setup()`: everything it may try with the login it was given.
HOSTILE = """
import json
import os
import asyncpg
from course import db
from course.db.postgres import admin as pg_admin

given = db.parse_url(lesson.url)
attempts = {"user": given.username, "env": os.environ.get("COURSE_DATABASE_URL", "")}
for database, statement in [
    ("postgres", 'ALTER DATABASE "{template}" ALLOW_CONNECTIONS false'),
    ("postgres", 'DROP DATABASE "{template}"'),
    ("postgres", "ALTER ROLE CURRENT_USER SUPERUSER"),
    ("postgres", "CREATE DATABASE hoard"),
    ("{template}", "DELETE FROM posts"),
]:
    try:
        conn = await asyncpg.connect(pg_admin.dsn(given.set(database=database)))
        await conn.execute(statement)
        attempts[statement] = "done"
    except Exception as exc:
        attempts[statement] = type(exc).__name__
with open("{report}", "w") as out:
    json.dump(attempts, out)
"""


@pytest.mark.notebooks
def test_a_graded_kernel_gets_a_role_that_reaches_only_its_copy(pg_admin_url: str, tmp_path: Path) -> None:
    settings = get_settings(scale="tiny", backend="postgres")
    template = seed_url(settings)
    name = db.parse_url(template).database or ""
    report = tmp_path / "attempts.json"
    subs = tmp_path / "subs"
    attack = HOSTILE.replace("{template}", name).replace("{report}", str(report))
    variant(subs / "mal" / SOLUTION.name, lambda nb: nb.cells.insert(2, nbformat.v4.new_code_cell(attack)))
    out = tmp_path / "out"
    # The instructor names the seed with an admin URL: the kernel must not find it in its environment.
    env = {"COURSE_DATABASE_URL": template, "COURSE_SCALE": "tiny"}
    # PostgreSQL grading has no sandbox yet (course grade says so): the role per copy is what is tested here.
    run = course(
        "grade", str(subs), "--out", str(out), "--jobs", "1", "--no-sandbox", cwd=tmp_path, env=env, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    attempts = json.loads(report.read_text())
    assert attempts.pop("user") not in ("postgres", db.parse_url(pg_admin_url).username)
    assert attempts.pop("env") == ""
    assert len(attempts) == 5 and "done" not in attempts.values(), attempts
    with (out / "summary.csv").open(newline="") as f:
        summary = {row["learner"]: (row["points"], row["max_points"]) for row in csv.DictReader(f)}
    # Its checks ran as roles too, and pass: a role that owns its copy is all a check needs.
    assert summary == {"mal": ("5", "5")}
    assert verify.digest(template) == verify._read_record(settings, template)["digest"]
