"""`course check` runs a learner's notebook in a real kernel under nbval and shows each exercise's verdict."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.fixtures.tooling import SOLUTION, built_fixture, code_cell, course, variant


def _rows(stdout: str) -> dict[str, str]:
    """Exercise id → its table line."""
    return {line.split()[0]: line for line in stdout.splitlines() if line.startswith("  99.")}


@pytest.mark.notebooks
def test_solved_copy_passes_from_any_folder(tmp_path: Path) -> None:
    # A learner's copy outside the repo, checked from an unrelated working folder.
    learner = tmp_path / "learner" / "99_demo.ipynb"
    learner.parent.mkdir()
    shutil.copy(SOLUTION, learner)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = course("check", str(learner), "--timeout", "30", cwd=elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert "✅" in rows["99.1"] and "2/2" in rows["99.1"]
    assert "✅" in rows["99.2"] and "3/3" in rows["99.2"]
    assert "5/5 points" in result.stdout
    assert learner.read_bytes() == SOLUTION.read_bytes()  # the learner's file is never written


@pytest.mark.notebooks
def test_stub_fails_every_exercise_with_its_own_message(tmp_path: Path) -> None:
    stub = built_fixture(tmp_path / "root")
    result = course("check", str(stub), "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    (notebook,) = json.loads(result.stdout)
    assert notebook["error"] is None and notebook["passed"] is False
    assert [(e["id"], e["status"], e["points"], e["max_points"]) for e in notebook["exercises"]] == [
        ("99.1", "failed", 0, 2),
        ("99.2", "failed", 0, 3),
    ]
    for exercise in notebook["exercises"]:
        assert f"not solved yet (Exercise {exercise['id']})" in exercise["message"]


@pytest.mark.notebooks
def test_endless_loop_is_stopped_and_explained(tmp_path: Path) -> None:
    def break_it(nb) -> None:  # noqa: ANN001 - a NotebookNode
        # 99.1's cell loops for ever at top level; 99.2's check cell is gone.
        code_cell(
            nb, "from sqlalchemy import"
        ).source = "from sqlalchemy import func, select\nwhile True:\n    pass"
        nb.cells.remove(code_cell(nb, 'await check("99.2"'))

    notebook = variant(tmp_path / "99_demo.ipynb", break_it)
    started = time.perf_counter()
    result = course("check", str(notebook), "--timeout", "3", cwd=tmp_path)
    assert time.perf_counter() - started < 40
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert "❌" in rows["99.1"] and "did not finish within 3 s" in rows["99.1"], result.stdout
    assert "❌" in rows["99.2"] and 'no cell calls `await check("99.2"' in rows["99.2"], result.stdout


@pytest.mark.notebooks
def test_solved_notebook_passes_on_postgres(tmp_path: Path, pg_admin_url: str) -> None:
    result = course("check", str(SOLUTION), "--timeout", "30", cwd=tmp_path, env={"COURSE_BACKEND": "postgres"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5/5 points" in result.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(None, "no such notebook"), ("{ broken", "not valid JSON")],
)
def test_unusable_input_is_one_line_exit_2(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "99_demo.ipynb"
    if content is not None:
        path.write_text(content)
    result = course("check", str(path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
