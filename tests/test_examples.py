"""The scripts in examples/ run for real, as a learner would run them: a new interpreter, no Jupyter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from course.seed.fresh import fresh_copy
from course.settings import get_settings
from tests.nbsource import ROOT

SCRIPT = ROOT / "examples" / "crud_script.py"


def _run(url: str) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    # Nothing left behind on stderr: no "coroutine was never awaited", no connection cut off at exit.
    assert done.stderr == "", done.stderr
    return done.stdout


async def test_crud_script_on_a_copy_of_the_seed_on_postgres(pg_admin_url: str) -> None:
    # SQLite runs in the next test, on an empty file; one run per backend keeps the suite short.
    async with fresh_copy(get_settings(scale="tiny", backend="postgres")) as copy:
        out = _run(copy.url)
    assert "created user" in out and "renamed user" in out and "soft-deleted user" in out
    assert out.rstrip().endswith("live users with that email: 0; rows kept in the table: 1")


def test_crud_script_creates_its_tables_on_an_empty_database(tmp_path: Path) -> None:
    out = _run(f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    assert "created user 1 " in out and out.rstrip().endswith("rows kept in the table: 1")
