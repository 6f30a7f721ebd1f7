"""The GitHub Classroom workflow template (classroom/autograding.yml) and the output its check step writes.

The test runs the check step's `run:` command exactly as the workflow holds it, with the job's environment, in a
folder laid out like a learner's assignment repository, on ONE notebook that is half solved: exercises 1.1-1.3 hold
the solution, 1.4-1.6 the learner's stubs. One kernel run shows both sides: full points for the solved exercises,
none for the stubs, each with the registry's points, in the reporter's format.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from course.chapters.registry import chapter
from course.errors import CourseError
from course.grading import autograding
from course.grading.runner import NotebookResult
from course.grading.verdicts import ExerciseResult
from tests.nbsource import ROOT

WORKFLOW = ROOT / "classroom" / "autograding.yml"
SOLVED = ("1.1", "1.2", "1.3")


def _workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _job() -> dict:
    return _workflow()["jobs"]["run-autograding-tests"]


def _step(**match: str) -> dict:
    steps = [s for s in _job()["steps"] if all(s.get(k, "").startswith(v) for k, v in match.items())]
    assert len(steps) == 1, match
    return steps[0]


def test_the_workflow_is_what_classroom_reads() -> None:
    workflow = _workflow()
    # Classroom only picks up this workflow name with this one job.
    assert workflow["name"] == "Autograding Tests" and list(workflow["jobs"]) == ["run-autograding-tests"]
    check = _step(run="course check")
    reporter = _step(uses="classroom-resources/autograding-grading-reporter@")
    runner = check["id"]
    # The reporter reads <RUNNER-ID>_RESULTS for each runner listed: the check step's `result` output.
    assert reporter["with"]["runners"] == runner
    assert reporter["env"] == {f"{runner.upper()}_RESULTS": f"${{{{ steps.{runner}.outputs.result }}}}"}
    # A failed exercise makes the check step exit 1: the points must still be reported.
    assert reporter["if"] == "always()"
    assert '--classroom "$GITHUB_OUTPUT"' in check["run"]
    install = _step(name="Install the course")
    assert "pip install" in install["run"]


def _half_solved(tmp: Path) -> Path:
    """An assignment repository whose exercises/01_crud.ipynb solves SOLVED and leaves the others as stubs."""
    stub = nbformat.read(ROOT / "exercises" / "01_crud.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / "01_crud.ipynb", as_version=4)
    names = {name for spec in chapter(1).exercises if spec.id in SOLVED for name in spec.names}
    assert len(stub.cells) == len(solution.cells)
    solved = 0
    for i, (mine, answer) in enumerate(zip(stub.cells, solution.cells, strict=True)):
        if mine.source != answer.source and any(f"def {name}(" in answer.source for name in names):
            stub.cells[i] = answer
            solved += 1
    assert solved == len(SOLVED)
    repo = tmp / "assignment"
    (repo / "exercises").mkdir(parents=True)
    nbformat.write(stub, repo / "exercises" / "01_crud.ipynb")
    return repo


@pytest.mark.notebooks
def test_the_check_step_reports_points_per_exercise(tmp_path: Path) -> None:
    repo = _half_solved(tmp_path)
    output = tmp_path / "github_output"
    output.write_text("earlier=step output\n")
    env = {**os.environ, **{k: str(v) for k, v in _job()["env"].items()}, "GITHUB_OUTPUT": str(output)}
    # The runner's PATH: `course` is the installed console script, beside this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-e", "-c", _step(run="course check")["run"]], cwd=repo, env=env, capture_output=True, text=True
    )
    # Exit 1: some exercises fail; the table for the learner's log is on stdout.
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"01_crud.ipynb: 7/{chapter(1).max_points} points" in done.stdout, done.stdout[-2000:]
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier=step output" and len(lines) == 2 and lines[1].startswith("result=")
    result = json.loads(base64.b64decode(lines[1].removeprefix("result="), validate=True))
    specs = chapter(1).exercises
    assert result["version"] == 1 and result["status"] == "fail"
    assert result["max_score"] == chapter(1).max_points == sum(s.points for s in specs)
    assert [t["name"] for t in result["tests"]] == [f"Exercise {s.id} — {s.title}" for s in specs]
    for test, spec in zip(result["tests"], specs, strict=True):
        if spec.id in SOLVED:
            assert (test["status"], test["score"], test["message"]) == ("pass", spec.points, ""), test
        else:
            assert (test["status"], test["score"]) == ("fail", 0), test
            assert f"Exercise {spec.id}" in test["message"] and "not solved yet" in test["message"]
        assert test["max_score"] == spec.points
    # What the reporter sends to Classroom: the sum of the tests' scores over max_score.
    assert sum(t["score"] for t in result["tests"]) == sum(s.points for s in specs if s.id in SOLVED) == 7


def _exercise(id: str, status: str, points: int, max_points: int, message: str = "") -> ExerciseResult:
    return ExerciseResult(id, f"title {id}", status == "passed", points, max_points, message, status)


def test_skipped_exercises_count_for_nothing_and_a_broken_run_is_an_error() -> None:
    skipped = "skipped: this exercise runs on PostgreSQL only; set COURSE_BACKEND=postgres and restart the kernel"
    ok = NotebookResult(
        Path("05_transactions.ipynb"),
        exercises=[_exercise("5.1", "passed", 4, 4), _exercise("5.2", "skipped", 0, 0, skipped)],
    )
    data = autograding.results([ok])
    assert data["status"] == "pass" and data["max_score"] == 4
    assert [(t["status"], t["score"], t["max_score"]) for t in data["tests"]] == [("pass", 4, 4), ("pass", 0, 0)]
    assert data["tests"][1]["name"].endswith("(skipped on this database)")
    assert data["tests"][1]["message"] == skipped
    broken = NotebookResult(
        Path("01_crud.ipynb"),
        error="the kernel died",
        exercises=[_exercise("1.1", "error", 0, 2, "the kernel died")],
    )
    data = autograding.results([ok, broken])
    assert data["status"] == "error" and data["max_score"] == 6
    assert data["tests"][-1]["message"] == "the kernel died" and data["tests"][-1]["status"] == "error"
    assert autograding.results([])["status"] == "fail"


def test_an_unwritable_output_file_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(CourseError, match="cannot write the Classroom results to"):
        autograding.write_output(tmp_path / "missing" / "output", autograding.results([]))
