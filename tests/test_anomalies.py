"""`course anomalies` reproduces the published PostgreSQL isolation results live, and SQLite's, from real schedules."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy.pool import NullPool

from course import db
from course.chapters.ch05_transactions.anomalies import ANOMALIES, PUBLISHED_POSTGRES, SCHEDULES, run_schedule
from course.db import aio
from course.seed import fresh
from course.settings import get_settings


def anomalies_command(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_SCALE": "tiny"}
    return subprocess.run(
        [sys.executable, "-m", "course.cli", "anomalies", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def parse(tsv: str) -> dict[str, dict[str, str]]:
    header, *rows = [line.split("\t") for line in tsv.strip().splitlines()]
    assert header == ["level", *ANOMALIES]
    return {level: dict(zip(ANOMALIES, cells, strict=True)) for level, *cells in rows}


def test_every_hermitage_anomaly_postgres_is_tested_for_has_a_schedule() -> None:
    assert [s.anomaly for s in SCHEDULES] == list(ANOMALIES)
    assert set(PUBLISHED_POSTGRES) == {"read committed", "repeatable read", "serializable"}


def test_command_on_postgres_prints_the_published_table(pg_admin_url: str) -> None:
    result = anomalies_command("--backend", "postgres")
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout) == PUBLISHED_POSTGRES


def test_command_on_sqlite_prevents_everything() -> None:
    result = anomalies_command("--backend", "sqlite")
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout) == {"serializable": dict.fromkeys(ANOMALIES, "prevented")}


def test_how_postgres_prevents_them(pg_admin_url: str) -> None:
    # Not only the verdicts: the means. Repeatable read stops a lost update by failing the second writer with
    # SQLSTATE 40001; serializable stops write skew the same way; read committed lets it through with no error.
    # Only the four runs these notes come from (the whole table runs in the command above and in lesson 5's kernel).
    wanted = [
        ("repeatable read", "P4"),
        ("serializable", "G2-item"),
        ("read committed", "G2-item"),
        ("read committed", "G0"),
    ]
    schedules = {s.anomaly: s for s in SCHEDULES}

    async def run() -> dict[tuple[str, str], str]:
        async with fresh.fresh_copy(get_settings(backend="postgres", scale="tiny")) as copy:
            engine = db.make_engine(url=copy.url, poolclass=NullPool)
            try:
                return {(level, a): (await run_schedule(engine, schedules[a], level)).how for level, a in wanted}
            finally:
                await engine.dispose()

    notes = aio.run(run())
    assert "40001" in notes[("repeatable read", "P4")]
    assert "40001" in notes[("serializable", "G2-item")]
    assert notes[("read committed", "G2-item")] == "no waits, no errors"
    assert "waited for a lock" in notes[("read committed", "G0")]
