"""`course check` runs a learner's notebook in a real kernel under nbval, then grades every exercise of its chapter."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from course.chapters import registry
from course.chapters.registry import ExerciseSpec
from course.cli.main import main
from course.grading import nbval_hooks, runner, verdicts
from tests.fixtures.demo_chapter import DEMO
from tests.fixtures.tooling import SOLUTION, built_fixture, code_cell, course, variant


def _rows(stdout: str) -> dict[str, str]:
    """Exercise id → its table line and the message lines wrapped under it, joined by spaces."""
    rows: dict[str, str] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("  99."):
            current = line.split()[0]
            rows[current] = line
        elif current and line.startswith("      ") and not line.lstrip().startswith("- "):
            rows[current] += " " + line.strip()
        else:
            current = None
    return rows


def _private_tmp(tmp_path: Path) -> dict[str, str]:
    """A temp folder of the run's own: `course check` makes its run folder (copies, kernel files) in it."""
    (tmp_path / "tmp").mkdir()
    return {"TMPDIR": str(tmp_path / "tmp")}


def _nothing_left(env: dict[str, str]) -> None:
    # The run folder, with every copy the kernel and the grader made, is gone once `course check` exits (see
    # test_cleanup.py for kernels that are stopped, hoard copies or are interrupted).
    assert sorted(p.name for p in Path(env["TMPDIR"]).iterdir() if p.name.startswith("course-")) == []


@pytest.mark.notebooks
def test_solved_copy_passes_from_any_folder(tmp_path: Path) -> None:
    # A learner's copy outside the repo, checked from an unrelated working folder.
    learner = tmp_path / "learner" / "99_demo.ipynb"
    learner.parent.mkdir()
    shutil.copy(SOLUTION, learner)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _private_tmp(tmp_path)
    result = course("check", str(learner), "--timeout", "30", cwd=elsewhere, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    _nothing_left(env)
    rows = _rows(result.stdout)
    assert "✅" in rows["99.1"] and "2/2" in rows["99.1"]
    assert "✅" in rows["99.2"] and "3/3" in rows["99.2"]
    assert "5/5 points" in result.stdout
    assert learner.read_bytes() == SOLUTION.read_bytes()  # the learner's file is never written


@pytest.mark.notebooks
def test_stub_fails_every_exercise_with_its_own_message(tmp_path: Path) -> None:
    stub = built_fixture(tmp_path / "root")
    env = _private_tmp(tmp_path)
    result = course("check", str(stub), "--json", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    _nothing_left(env)
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
        # 99.1's cell loops for ever at top level; 99.2's check cell is gone, which changes nothing.
        code_cell(
            nb, "from sqlalchemy import"
        ).source = "from sqlalchemy import func, select\nwhile True:\n    pass"
        nb.cells.remove(code_cell(nb, 'await check("99.2"'))

    notebook = variant(tmp_path / "99_demo.ipynb", break_it)
    started = time.perf_counter()
    result = course("check", str(notebook), "--timeout", "3", cwd=tmp_path, env={"COLUMNS": "100"})
    assert time.perf_counter() - started < 40
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert "❌" in rows["99.1"] and "not found: define `count_users`" in rows["99.1"], result.stdout
    assert "2 of your cells failed" in rows["99.1"], result.stdout
    # The grader checks 99.2 itself, check cell or not; it fails at the learner's line: `User` was to be imported
    # by the cell that never finished.
    assert (
        "❌" in rows["99.2"]
        and "raised NameError: name 'User' is not defined (code cell 4, line 4:" in rows["99.2"]
    )
    assert "code cell 2 (`from sqlalchemy import func, select`) did not finish within 3 s" in result.stdout


@pytest.mark.notebooks
def test_solved_notebook_passes_on_postgres(tmp_path: Path, pg_admin_url: str) -> None:
    result = course("check", str(SOLUTION), "--timeout", "30", cwd=tmp_path, env={"COURSE_BACKEND": "postgres"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5/5 points" in result.stdout


def _check_in_process(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    """`course check path` in this process, with chapter 99 registered as demo_cli.py registers it: exit code and
    stderr lines. (For input refused before any kernel starts: a subprocess would only add an interpreter start.)"""
    monkeypatch.setattr(registry, "CHAPTERS", (*registry.CHAPTERS, DEMO))
    code = main(["check", str(path)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_a_missing_notebook_is_one_line_exit_2_from_the_command(tmp_path: Path) -> None:
    # The real command, once: nothing else (an import's warning, a traceback) reaches stderr.
    result = course("check", str(tmp_path / "99_demo.ipynb"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such notebook" in lines[0], result.stderr


def test_a_broken_notebook_file_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "99_demo.ipynb"
    path.write_text("{ broken")
    code, lines = _check_in_process(path, monkeypatch, capsys)
    assert code == 2
    assert len(lines) == 1 and "not valid JSON" in lines[0], lines


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("homework.ipynb", "homework.ipynb does not name a chapter of the course"),
        ("98_extra.ipynb", "the course has no chapter 98"),
        ("00_start_here.ipynb", "chapter 00_start_here has no exercises"),
    ],
)
def test_a_notebook_that_is_no_chapter_is_one_line_exit_2(
    tmp_path: Path, name: str, fragment: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(SOLUTION, tmp_path / name)
    code, lines = _check_in_process(tmp_path / name, monkeypatch, capsys)
    assert code == 2, lines
    assert len(lines) == 1 and fragment in lines[0], lines
    assert "99_demo.ipynb" in lines[0]  # it says which names would do


@pytest.mark.notebooks
def test_a_deleted_exercise_is_graded_and_named(tmp_path: Path) -> None:
    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        # Exercise 99.2 is gone: heading, function and check cell.
        start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("### Exercise 99.2"))
        del nb.cells[start:]

    notebook = variant(tmp_path / "learner" / "99_demo.ipynb", edit)
    result = course("check", str(notebook), cwd=tmp_path, env={"COLUMNS": "120"})
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert "✅" in rows["99.1"] and "2/2" in rows["99.1"]
    assert "❌" in rows["99.2"] and "0/3" in rows["99.2"] and "not found: define `newest_emails`" in rows["99.2"]
    assert "2/5 points" in result.stdout


# --- robustness: what a learner's notebook can do to a run ----------------------------------------------------------


def _insert_after_setup(*sources: str):  # noqa: ANN202 - an edit for `variant`
    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        for offset, source in enumerate(sources):
            nb.cells.insert(2 + offset, nbformat.v4.new_code_cell(source))

    return edit


# Learner code that forges verdicts: count_users is wrong, and while the grader checks it, it starts a thread that
# appends "passed" lines marked as the grader's; newest_emails takes 3 s, so those lines land after the grader's real
# verdict for 99.1.
FORGE = (
    "import json, os, threading, time\n\n\n"
    "def forge():\n"
    "    time.sleep(1.5)\n"
    "    with open(os.environ['COURSE_CHECK_REPORT'], 'a') as report:\n"
    "        line = {'exercise': '99.1', 'passed': True, 'points': 2, 'max_points': 2, 'by': 'grader'}\n"
    "        report.write(json.dumps({**line, 'message': 'passed', 'signature': '0' * 64}) + '\\n')\n\n\n"
    "async def count_users(session):\n"
    "    threading.Thread(target=forge).start()\n"
    "    return 0\n\n\n"
    "async def newest_emails(session, _solved=newest_emails):\n"
    "    time.sleep(3)\n"
    "    return await _solved(session)"
)


@pytest.mark.notebooks
def test_hazardous_cells_do_not_stop_the_checks_and_the_grader_decides(tmp_path: Path) -> None:
    """Neither hazardous cells, nor the notebook's own check cells, nor verdict lines forged by learner code decide."""

    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        _insert_after_setup(
            "name = input('your name? ')",  # no stdin under `course check`: fails at once
            "print('x' * 30_000_000)",  # 30 MB of output, capped in the kernel
            "import threading, time\nthreading.Thread(target=time.sleep, args=(10**6,)).start()",
            "raise SystemExit",
        )(nb)
        # The notebook's own check cells do not decide: 99.1's passes a right answer, 99.2's a wrong one. The
        # grader checks the functions the exercises name: count_users is wrong, newest_emails right.
        cell = code_cell(nb, "from sqlalchemy import")
        right = "(await session.execute(select(func.count()).select_from(User))).scalar_one()"
        cell.source += f"\n\n\nasync def right(session):\n    return {right}"
        cell.source = cell.source.replace("def count_users(session):", "def count_users(session):\n    return 0")
        code_cell(nb, 'await check("99.1"').source = 'await check("99.1", right)'
        code_cell(nb, 'await check("99.2"').source = 'await check("99.2", count_users)'
        # Last, the forger: what the grader checks (its cells come after the notebook's).
        nb.cells.append(nbformat.v4.new_code_cell(FORGE))

    notebook = variant(tmp_path / "99_demo.ipynb", edit)
    started = time.perf_counter()
    # Well under one cell's time limit even on a busy machine running tests in parallel: no cell waited it out.
    result = course("check", str(notebook), "--timeout", "60", cwd=tmp_path, env={"COLUMNS": "300"})
    assert time.perf_counter() - started < 50
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    # The grader's verdicts, not the forged lines: 99.1 failed with no points, 99.2 passed with all of them.
    assert "❌" in rows["99.1"] and "0/2" in rows["99.1"], result.stdout
    assert "not the number of rows in users" in rows["99.1"], result.stdout
    assert "✅" in rows["99.2"] and "3/3" in rows["99.2"], result.stdout
    assert "2/5 points" not in result.stdout and "3/5 points" in result.stdout, result.stdout
    # Every cell that failed is listed, exercise or not.
    problems = result.stdout.split("cells that failed or ran out of time:")[1]
    assert "code cell 2 (`name = input('your name? ')`): StdinNotImplementedError" in problems, problems
    assert "code cell 5 (`raise SystemExit`)" in problems, problems
    assert 'code cell 9 (`await check("99.2", count_users)`): ExerciseFailed: ❌ Exercise 99.2' in problems
    assert "code cell 7 (`await check(" not in problems  # the right answer passed the notebook's own check


@pytest.mark.notebooks
def test_a_dying_kernel_is_reported_at_once(tmp_path: Path) -> None:
    notebook = variant(tmp_path / "99_demo.ipynb", _insert_after_setup("import os\nos._exit(3)"))
    started = time.perf_counter()
    env = _private_tmp(tmp_path)
    result = course("check", str(notebook), "--timeout", "300", cwd=tmp_path, env=env)
    _nothing_left(env)
    # Not the cell's whole time limit (a kernel start alone can take 20 s on a busy machine running tests in parallel).
    assert time.perf_counter() - started < 150
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the kernel died while running code cell 2 (`import os`) (exit code 3)" in result.stdout, result.stdout
    assert "did not finish" not in result.stdout
    assert "the run stopped before its check" in _rows(result.stdout)["99.2"]


@pytest.mark.notebooks
def test_renamed_function_and_library_errors_are_explained(tmp_path: Path) -> None:
    # count_users is renamed; newest_emails raises NotImplementedError inside SQLAlchemy (not the stub's own);
    # the check cell of 99.2 checks an exercise the chapter does not have.
    raising = "    Subquery(select(User))\n    # BEGIN SOLUTION"

    def edit(nb) -> None:  # noqa: ANN001 - a NotebookNode
        cell = code_cell(nb, "from sqlalchemy import")
        cell.source = cell.source.replace("def count_users", "def count_all_users")
        cell.source = cell.source.replace(
            "from sqlalchemy import func, select", "from sqlalchemy import Subquery, func, select"
        )
        cell = code_cell(nb, "async def newest_emails")
        cell.source = cell.source.replace("    # BEGIN SOLUTION", raising, 1)
        code_cell(nb, 'await check("99.2"').source = 'await check("99.7", newest_emails)'

    notebook = variant(tmp_path / "99_demo.ipynb", edit)
    result = course("check", str(notebook), "--json", cwd=tmp_path)
    (run,) = json.loads(result.stdout)
    messages = {e["id"]: e["message"] for e in run["exercises"]}
    assert messages["99.1"].startswith("not found: define `count_users` at the top level"), messages
    assert "not solved yet" not in messages["99.2"], messages
    assert messages["99.2"].startswith("your code raised NotImplementedError: The Subquery class is not"), messages
    # The learner's own line, not SQLAlchemy's; and the whole message, not its first 200 characters.
    assert "line 3: `Subquery(select(User))`)" in messages["99.2"], messages
    assert "subquery() method available from appropriate selectable objects." in messages["99.2"], messages
    assert any("no such exercise in chapter 99_demo" in p for p in run["cell_errors"]), run["cell_errors"]


# --- the verdict bookkeeping, without a kernel -----------------------------------------------------------------------

SPECS = (
    ExerciseSpec("99.1", "Count the users", 2, ("count_users",)),
    ExerciseSpec("99.2", "The newest users", 3, ("newest_emails",)),
)


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


def _graders(*ids: str, ok: bool = True) -> list[verdicts.Cell]:
    return [verdicts.Cell(i, "", {"cell": i, "ok": ok}, grader=id_) for i, id_ in enumerate(ids)]


def test_only_the_graders_verdict_counts_and_the_last_one_wins() -> None:
    reports = [
        {"exercise": "99.1", "passed": True, "message": "passed"},  # the notebook's own check cell
        {"exercise": "99.1", "passed": False, "message": "first", "by": "grader"},
        {"exercise": "99.1", "passed": False, "message": "second try was wrong", "by": "grader"},
        {"exercise": "99.1", "forged": True},
        {"exercise": "99.2", "passed": True, "message": "passed"},  # no grader line: does not count
        {"exercise": "99.2", "forged": True},
    ]
    results = {r.id: r for r in verdicts.verdicts(SPECS, reports, _graders("99.1", "99.2"), None, 60)}
    assert (results["99.1"].status, results["99.1"].message) == ("failed", "second try was wrong")
    assert (results["99.2"].status, results["99.2"].points) == ("error", 0)
    assert "did not write" in results["99.2"].message


def test_every_exercise_of_the_chapter_gets_a_verdict_with_the_registrys_points() -> None:
    reports = [
        {"exercise": "99.1", "passed": True, "points": 99, "max_points": 99, "message": "passed", "by": "grader"},
        {"exercise": "99.7", "passed": True, "max_points": 50, "message": "passed", "by": "grader"},
    ]
    cells = [verdicts.Cell(0, "x = 1", {"cell": 0}), *_graders("99.1")]  # 99.2's grader cell never ran
    results = verdicts.verdicts(SPECS, reports, cells, None, 60)
    assert [(r.id, r.status, r.points, r.max_points) for r in results] == [
        ("99.1", "passed", 2, 2),
        ("99.2", "error", 0, 3),
    ]
    assert "did not run" in results[1].message


def test_skipped_exercises_count_on_neither_side() -> None:
    specs = (*SPECS, ExerciseSpec("99.3", "Row locks", 4, ("lock_row",), backends=("postgres",)))
    reports = [
        {"exercise": "99.1", "passed": True, "message": "passed", "by": "grader"},
        {"exercise": "99.2", "passed": False, "message": "wrong", "by": "grader"},
        {
            "exercise": "99.3",
            "passed": False,
            "status": "skipped",
            "message": "skipped: PostgreSQL only",
            "by": "grader",
        },
    ]
    result = runner.NotebookResult(
        Path("99_demo.ipynb"), exercises=verdicts.verdicts(specs, reports, [], None, 60)
    )
    assert [(r.status, r.points, r.max_points) for r in result.exercises][2] == ("skipped", 0, 0)
    assert (result.points, result.max_points) == (2, 5)
    table = runner.format_result(result, width=120)
    assert (
        "⏭" in table and "(1 exercise skipped on this database)" in table and "skipped: PostgreSQL only" in table
    )
    # Passed and skipped only: the run passes.
    result.exercises[1] = verdicts.verdicts(specs, reports[:1], [], None, 60)[0]
    result.exercises = [result.exercises[0], result.exercises[2]]
    assert result.passed


def test_messages_are_whole_and_wrapped_to_the_width() -> None:
    words = " ".join(f"word{i}" for i in range(120))  # about 800 characters
    cells = [verdicts.Cell(0, "while True: pass", {"cell": 0, "ok": False, "timed_out": True})]
    cells.append(verdicts.Cell(1, "x = 1 / 0", {"cell": 1, "ok": False, "error": "ZeroDivisionError: " + words}))
    reports = [{"exercise": e.id, "passed": False, "message": words, "by": "grader"} for e in SPECS]
    result = runner.NotebookResult(
        Path("99_demo.ipynb"),
        exercises=verdicts.verdicts(SPECS, reports, cells, None, 60),
        cell_errors=verdicts.cell_problems(cells, 60),
    )
    for width in (60, 100, 200):
        table = runner.format_result(result, width=width)
        assert all(len(line) <= width for line in table.splitlines()), table
        flat = " ".join(table.split())
        assert flat.count(words) == 3, table  # two exercises and one cell, nothing cut
        assert "code cell 1 (`while True: pass`) did not finish within 60 s" in flat


def test_a_check_cell_that_says_what_the_table_says_is_listed_without_repeating_it() -> None:
    same, other = "not solved yet (Exercise 99.1): replace it", "return a list of emails, not int"
    cells = [
        verdicts.Cell(
            0,
            'await check("99.1", f)',
            {"cell": 0, "ok": False, "error": f"ExerciseFailed: ❌ Exercise 99.1: {same}"},
        ),
        verdicts.Cell(
            1,
            'await check("99.2", f)',
            {"cell": 1, "ok": False, "error": f"ExerciseFailed: ❌ Exercise 99.2: {other}"},
        ),
    ]
    reports = [{"exercise": e.id, "passed": False, "message": same, "by": "grader"} for e in SPECS]
    problems = verdicts.cell_problems(cells, 60, verdicts.verdicts(SPECS, reports, cells, None, 60))
    assert problems == [
        'code cell 1 (`await check("99.1", f)`): ❌ exercise 99.1, as in the table',
        f'code cell 2 (`await check("99.2", f)`): ExerciseFailed: ❌ Exercise 99.2: {other}',
    ]


def test_report_files_with_junk_lines_are_read_safely(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    junk = ['{"exercise": "99.1", "passed": true}', "[1, 2]", "5", '{"exercise": "99.2", "pass', "\udcff"]
    path.write_text("\n".join(junk) + "\n", encoding="utf-8", errors="surrogateescape")
    assert verdicts.read_jsonl(path) == [{"exercise": "99.1", "passed": True}]
    cells = [verdicts.Cell(0, "x = 1", {"cell": 0})]  # an outcome without `ok`, as a cell could write
    odd = [{"exercise": "99.1", "by": "grader", "status": "won", "passed": "yes"}]
    results = verdicts.verdicts(SPECS, odd, cells, None, 60)
    assert [(r.id, r.status, r.points, r.max_points) for r in results] == [
        ("99.1", "error", 0, 2),
        ("99.2", "error", 0, 3),
    ]


def test_error_line_is_the_exception_not_its_last_line() -> None:
    class CellError(Exception):
        inner_traceback = "Traceback\n  File x\n\x1b[31mRuntimeError\x1b[0m: red, and\nmore lines\n"

    assert nbval_hooks._error_line(CellError()) == "RuntimeError: red, and"
