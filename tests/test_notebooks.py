"""Every notebook runs for real in a Jupyter kernel; solutions pass their checks, stubs fail them.

Kernel runs are the slowest tests, so each one must prove something only a kernel can:
- lessons run top to bottom on both backends (nbclient): nothing else executes them;
- every exercise notebook runs under `course check` (a fresh kernel, the default scale, the same runner learners
  use) twice: its solution on one backend, its generated stub on the other. The cells the two share (setup, the
  cells between exercises: `course build` only replaces solution regions) thus run on both backends, every
  solution is graded in a kernel, and every stub is graded 0. The solution runs on PostgreSQL when the chapter has
  a PostgreSQL-only exercise (on SQLite its check would only be skipped), else on SQLite. The other half, each
  check against the solution on the other backend and against the stub on the solution's backend, test_checks.py
  proves in-process (and only that half: each (exercise, backend) solution and stub run happens once in the suite).
"""

from __future__ import annotations

import ast
import json
import re
import time
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
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
BACKENDS = ("sqlite", "postgres")


def solution_backend(path: Path) -> str:
    """Where the solution runs in a kernel (see the module docstring); its stub runs on the other backend."""
    pg_only = any(ex.backends == ("postgres",) for ex in chapter(path.stem).exercises)
    return "postgres" if pg_only else "sqlite"


def stub_backend(path: Path) -> str:
    return next(b for b in BACKENDS if b != solution_backend(path))


def _on_one_backend(paths: list[Path], backend_of) -> list:
    """One parameter per notebook, named and marked (`-m "not postgres"`) by the backend it runs on."""
    return [
        pytest.param(
            p,
            id=f"{p.parent.name}/{p.stem}-{backend_of(p)}",
            marks=[pytest.mark.postgres] * (backend_of(p) == "postgres"),
        )
        for p in paths
    ]


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


def _own_server_if_restarted(path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """A chapter whose notebooks restart PostgreSQL gets a server of its own (the kernel inherits the setting)."""
    if backend == "postgres" and chapter(path.stem).restarts_server:
        request.getfixturevalue("private_pg")


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


@pytest.mark.notebooks(cost=3)
@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lesson_runs_top_to_bottom(
    path: Path, backend: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    _own_server_if_restarted(path, backend, request)
    _, seconds = _execute(path, monkeypatch, backend)
    print(f"{path.name} on {backend}: {seconds:.1f} s")


def _ran_here(path: Path, result, backend: str) -> list:
    """The exercises that ran; those registered for another backend only must have been skipped, and no others."""
    elsewhere = {ex.id for ex in chapter(path.stem).exercises if backend not in ex.backends}
    assert {e.id for e in result.exercises if e.status == "skipped"} == elsewhere
    return [e for e in result.exercises if e.id not in elsewhere]


def _on_backend(path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    """Needs the server when backend is PostgreSQL (and a server of its own when the chapter restarts it)."""
    if backend == "postgres":
        request.getfixturevalue("pg_admin_url")
    _own_server_if_restarted(path, backend, request)


@pytest.mark.notebooks(cost=2)
@pytest.mark.parametrize("path", _on_one_backend(SOLUTIONS, solution_backend))
def test_course_check_passes_the_solutions(
    path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    backend = solution_backend(path)
    _on_backend(path, backend, request)
    monkeypatch.setenv("COURSE_BACKEND", backend)
    result = run_notebook(path, timeout=120)
    assert result.exercises and result.error is None, result.error
    # An exercise limited to the other backend is skipped with a message, never failed.
    ran = _ran_here(path, result, backend)
    failed = [f"{e.id}: {e.message}" for e in ran if not e.passed]
    assert not failed, failed
    assert sum(e.points for e in ran) == sum(e.max_points for e in ran) > 0


@pytest.mark.notebooks
@pytest.mark.parametrize("path", _on_one_backend(EXERCISES, stub_backend))
def test_course_check_fails_every_stub(
    path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    backend = stub_backend(path)
    _on_backend(path, backend, request)
    monkeypatch.setenv("COURSE_BACKEND", backend)
    result = run_notebook(path, timeout=120)
    assert result.exercises
    for exercise in _ran_here(path, result, backend):
        assert not exercise.passed, f"{path.name} {exercise.id} passed on the unsolved stub"
        assert f"Exercise {exercise.id}" in exercise.message and "not solved yet" in exercise.message, (
            exercise.message
        )
    assert result.points == 0


@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_points_in_headings_match_the_checks(path: Path) -> None:
    # The heading is what learners read; the registry is what `course grade` counts: they must agree.
    registered = {ex.id: (ex.title, ex.points) for ex in chapter(path.stem).exercises}
    assert {ex.id: (ex.title, ex.points) for ex in exercises_in(path)} == registered


# A lesson asserts the direction of an effect with a floor a busy 2-core machine clears easily; DESIGN.md's
# targets (100x, 20x...) are printed by benchmarks/ (benchmarks/targets.py), never asserted by a lesson.
FLOOR_LIMIT = 10
MEASURED = re.compile(r"ratio|speedup")


def _floors(path: Path) -> list[tuple[str, float]]:
    floors = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        # IPython turns magics (`%sql`, `%%sql`, `!cmd`) into the Python calls they stand for.
        for node in ast.walk(ast.parse(TransformerManager().transform_cell(cell.source))):
            if isinstance(node, ast.Assert):
                for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                    left, right = compare.left, compare.comparators[-1]
                    if isinstance(left, ast.Name) and MEASURED.search(left.id) and isinstance(right, ast.Constant):
                        floors.append((left.id, float(right.value)))
    return floors


@pytest.mark.parametrize("path", LESSONS, ids=_ids(LESSONS))
def test_lessons_assert_directions_not_targets(path: Path) -> None:
    too_high = [(name, floor) for name, floor in _floors(path) if floor > FLOOR_LIMIT]
    assert not too_high, f"{path.name}: assert a safe floor (at most {FLOOR_LIMIT}x), print the target: {too_high}"


def test_the_floor_check_sees_the_lessons_measurements() -> None:
    # Guard the guard: the speed-ups of lessons 1, 2 and 4 are all found.
    found = {path.stem: {name for name, _ in _floors(path)} for path in LESSONS}
    assert {"ratio"} <= found["01_crud"] and {"speedup", "title_speedup", "fts_speedup"} <= found["02_indexing"]
    assert "ratio" in found["04_pagination"]
