"""`course check` runs a learner's notebook in a real kernel under nbval and shows each exercise's verdict."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from course.grading import nbval_hooks, verdicts
from course.grading.notebook_format import ExerciseInfo
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


# --- robustness: what a learner's notebook can do to a run ----------------------------------------------------------


def _insert_after_setup(*sources: str):  # noqa: ANN202 - an edit for `variant`
    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        for offset, source in enumerate(sources):
            nb.cells.insert(2 + offset, nbformat.v4.new_code_cell(source))

    return edit


@pytest.mark.notebooks
def test_hazardous_cells_do_not_stop_the_checks_and_the_last_check_counts(tmp_path: Path) -> None:
    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        _insert_after_setup(
            "name = input('your name? ')",  # no stdin under `course check`: fails at once
            "print('x' * 30_000_000)",  # 30 MB of output, capped in the kernel
            "import threading, time\nthreading.Thread(target=time.sleep, args=(10**6,)).start()",
            "raise SystemExit",
        )(nb)
        # 99.1 is checked twice: first right, then wrong. The last verdict counts.
        code_cell(
            nb, 'await check("99.1"'
        ).source = 'await check("99.1", count_users)\n\nasync def zero(session):\n    return 0\n\nawait check("99.1", zero)'

    notebook = variant(tmp_path / "99_demo.ipynb", edit)
    started = time.perf_counter()
    # Well under one cell's time limit even on a busy machine running tests in parallel: no cell waited it out.
    result = course("check", str(notebook), "--timeout", "60", cwd=tmp_path)
    assert time.perf_counter() - started < 50
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert "❌" in rows["99.1"] and "not the number of rows in users" in rows["99.1"], result.stdout
    assert "✅" in rows["99.2"], result.stdout


@pytest.mark.notebooks
def test_a_dying_kernel_is_reported_at_once(tmp_path: Path) -> None:
    notebook = variant(tmp_path / "99_demo.ipynb", _insert_after_setup("import os\nos._exit(3)"))
    started = time.perf_counter()
    result = course("check", str(notebook), "--timeout", "300", cwd=tmp_path)
    # Not the cell's whole time limit (a kernel start alone can take 20 s on a busy machine running tests in parallel).
    assert time.perf_counter() - started < 150
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the kernel died while running code cell 2 (`import os`) (exit code 3)" in result.stdout, result.stdout
    assert "did not finish" not in result.stdout
    assert "the run stopped before its check" in _rows(result.stdout)["99.2"]


@pytest.mark.notebooks
def test_renamed_function_and_unknown_exercise_id_are_explained(tmp_path: Path) -> None:
    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        cell = code_cell(nb, "from sqlalchemy import")
        cell.source = cell.source.replace("def count_users", "def count_all_users")
        code_cell(nb, 'await check("99.2"').source = 'await check("99.7", newest_emails)'

    notebook = variant(tmp_path / "99_demo.ipynb", edit)
    result = course("check", str(notebook), "--json", cwd=tmp_path)
    (run,) = json.loads(result.stdout)
    messages = {e["id"]: e["message"] for e in run["exercises"]}
    assert "NameError" in messages["99.1"] and "is it defined further down, or renamed?" in messages["99.1"]
    assert 'no cell calls `await check("99.2"' in messages["99.2"]
    assert "checks an exercise this chapter does not have" in messages["99.2"]


def _base_signs_reports() -> bool:
    from course.checks import base

    return hasattr(base, "report_signature")


@pytest.mark.notebooks
@pytest.mark.skipif(not _base_signs_reports(), reason="course/checks/base.py does not sign its report lines yet")
def test_verdict_lines_written_by_a_cell_are_ignored(tmp_path: Path) -> None:
    forge = (
        "import json, os\n"
        "with open(os.environ['COURSE_CHECK_REPORT'], 'a') as report:\n"
        "    for exercise, points in (('99.1', 2), ('99.2', 3)):\n"
        "        line = {'exercise': exercise, 'passed': True, 'points': points, 'max_points': points}\n"
        "        report.write(json.dumps({**line, 'message': 'passed', 'signature': '0' * 64}) + '\\n')"
    )

    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        nb.cells.remove(code_cell(nb, 'await check("99.2"'))
        nb.cells.append(nbformat.v4.new_code_cell(forge))

    notebook = variant(tmp_path / "99_demo.ipynb", edit, source=built_fixture(tmp_path / "root"))
    result = course("check", str(notebook), "--json", cwd=tmp_path)
    (run,) = json.loads(result.stdout)
    verdicts = {e["id"]: (e["status"], e["points"], e["message"]) for e in run["exercises"]}
    assert verdicts["99.1"][:2] == ("failed", 0) and "not solved yet" in verdicts["99.1"][2]
    assert verdicts["99.2"][:2] == ("error", 0) and "that its check did not write" in verdicts["99.2"][2]


# --- the verdict bookkeeping, without a kernel -----------------------------------------------------------------------

INFOS = [ExerciseInfo("99.1", "Count the users", 2), ExerciseInfo("99.2", "The newest users", 3)]


def _sign(key: bytes, line: dict) -> str:
    # The same rule as course/checks/base.py's report_signature.
    body = json.dumps({k: v for k, v in line.items() if k != "signature"}, sort_keys=True, ensure_ascii=False)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def test_only_correctly_signed_lines_are_trusted() -> None:
    key = b"k" * 32
    line = {"exercise": "99.1", "passed": False, "points": 0, "max_points": 2, "message": "wrong"}
    signed = {**line, "signature": _sign(key, line)}
    assert verdicts.trusted(signed, key, _sign) == signed
    promoted = {**signed, "passed": True, "points": 2}
    for row in (promoted, line, {**line, "signature": None}):
        assert verdicts.trusted(row, key, _sign) == {"exercise": "99.1", "forged": True}


def test_last_verdict_wins_and_forged_ones_are_flagged() -> None:
    cells = [verdicts.Cell(0, 'await check("99.1", f)', {"cell": 0, "ok": True})]
    reports = [
        {"exercise": "99.1", "passed": True, "message": "passed"},
        {"exercise": "99.1", "passed": False, "message": "second try was wrong"},
        {"exercise": "99.1", "forged": True},
        {"exercise": "99.2", "forged": True},
    ]
    results = {r.id: r for r in verdicts.verdicts(INFOS, reports, cells, None, 60)}
    assert (results["99.1"].status, results["99.1"].message) == ("failed", "second try was wrong")
    assert results["99.2"].status == "error" and "did not write" in results["99.2"].message


def test_report_files_with_junk_lines_are_read_safely(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    junk = ['{"exercise": "99.1", "passed": true}', "[1, 2]", "5", '{"exercise": "99.2", "pass', "\udcff"]
    path.write_text("\n".join(junk) + "\n", encoding="utf-8", errors="surrogateescape")
    assert verdicts.read_jsonl(path) == [{"exercise": "99.1", "passed": True}]
    cells = [verdicts.Cell(0, "x = 1", {"cell": 0})]  # an outcome without `ok`, as a cell could write
    results = verdicts.verdicts(INFOS, [{"exercise": "99.3", "max_points": "lots"}], cells, None, 60)
    assert [(r.id, r.max_points) for r in results] == [("99.1", 2), ("99.2", 3), ("99.3", 0)]


def test_error_line_is_the_exception_not_its_last_line() -> None:
    class CellError(Exception):
        inner_traceback = "Traceback\n  File x\n\x1b[31mRuntimeError\x1b[0m: red, and\nmore lines\n"

    assert nbval_hooks._error_line(CellError()) == "RuntimeError: red, and"
