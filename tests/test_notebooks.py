"""Every notebook runs for real in a Jupyter kernel on both backends; solutions pass their checks, stubs fail them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course.chapters.registry import chapter
from course.grading.notebook_format import exercises_in
from course.grading.runner import run_notebook
from tests.nbsource import ROOT

NAME = re.compile(r"^\d\d_[a-z_]+\.ipynb$")
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
ALL = LESSONS + SOLUTIONS + EXERCISES


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def test_names_follow_the_pattern() -> None:
    bad = [str(p.relative_to(ROOT)) for p in ALL if not NAME.match(p.name)]
    assert not bad, f"notebook names must match NN_topic.ipynb: {bad}"
    stray = [p.name for p in ROOT.glob("**/*.ipynb") if ".venv" not in p.parts and "-Copy" in p.name]
    assert not stray


def test_every_exercise_notebook_has_a_source_and_a_lesson() -> None:
    assert {p.name for p in SOLUTIONS} == {p.name for p in EXERCISES}
    lessons = {p.name for p in LESSONS}
    assert {p.name for p in SOLUTIONS} <= lessons


@pytest.mark.parametrize("path", ALL, ids=_ids(ALL))
def test_stored_without_outputs(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name}: strip outputs"


def _execute(path: Path, monkeypatch: pytest.MonkeyPatch, backend: str) -> tuple[nbformat.NotebookNode, float]:
    # The kernel inherits the environment: the backend under test, the test data folder from conftest.
    monkeypatch.setenv("COURSE_BACKEND", backend)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{path.name} on {backend}: {str(exc)[-2000:]}")
    return notebook, time.perf_counter() - start


@pytest.mark.notebooks
@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_runs_top_to_bottom(path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, seconds = _execute(path, monkeypatch, backend)
    print(f"{path.name} on {backend}: {seconds:.1f} s")


@pytest.mark.notebooks
@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_course_check_passes_the_solutions(path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_BACKEND", backend)
    result = run_notebook(path, timeout=120)
    assert result.exercises and result.error is None, result.error
    # An exercise registered for the other backend only is skipped on this one, with its reason as the message.
    checked = [e for e in result.exercises if e.status != "skipped"]
    failed = [f"{e.id}: {e.message}" for e in checked if not e.passed]
    assert not failed, failed
    assert result.points == sum(e.max_points for e in checked) > 0


@pytest.mark.notebooks
@pytest.mark.parametrize("path", EXERCISES, ids=_ids(EXERCISES))
def test_course_check_fails_every_stub(path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_BACKEND", backend)
    result = run_notebook(path, timeout=120)
    assert result.exercises
    for exercise in result.exercises:
        assert not exercise.passed, f"{path.name} {exercise.id} passed on the unsolved stub"
        if exercise.status == "skipped":
            assert "runs on" in exercise.message and "only" in exercise.message, exercise.message
            continue
        assert f"Exercise {exercise.id}" in exercise.message and "not solved yet" in exercise.message, (
            exercise.message
        )
    assert result.points == 0


@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_points_in_headings_match_the_checks(path: Path) -> None:
    # The heading is what learners read; the registry is what `course grade` counts: they must agree.
    registered = {ex.id: (ex.title, ex.points) for ex in chapter(path.stem).exercises}
    assert {ex.id: (ex.title, ex.points) for ex in exercises_in(path)} == registered
