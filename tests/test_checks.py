"""Every chapter's checks, both ways: the solution passes and the generated stub fails, as each check cell calls them.

Each (exercise, backend) solution run and stub run happens once in the suite: test_notebooks.py runs every solution
notebook under `course check` in a kernel on one backend (`solution_backend`) and its stub on the other, so here,
in-process, each check runs its solution on the other backend and its stub on the solution's backend. Together
they prove both ways on both backends, for every exercise the registry runs there.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from course.chapters.registry import chapter
from course.grading.notebook_format import read_notebook
from course.settings import Settings
from tests import teeth
from tests.nbsource import ROOT
from tests.test_notebooks import BACKENDS, solution_backend, stub_backend

SOURCES = sorted(f"solutions/{p.name}" for p in (ROOT / "solutions").glob("*.ipynb"))


def _check_calls(source: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(source, exercise, function names) for each `await check("N.M", f, ...)` cell: what learners run."""
    calls = []
    for cell in read_notebook(ROOT / source).cells:
        if cell.cell_type != "code" or not cell.source.lstrip().startswith("await check("):
            continue
        call = ast.parse(cell.source.strip()).body[0].value.value  # type: ignore[attr-defined]
        calls.append((source, call.args[0].value, tuple(arg.id for arg in call.args[1:])))
    return calls


CALLS = [call for source in SOURCES for call in _check_calls(source)]


@cache
def _namespaces(source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return teeth.solved(source), teeth.stubs(source)


def _check(source: str) -> Any:
    return chapter(source.removeprefix("solutions/")).checks().check


def _runs_on(source: str, exercise: str) -> tuple[str, ...]:
    # An exercise the registry limits to some backends is skipped elsewhere (tested in test_registry/test_runner).
    return chapter(source.removeprefix("solutions/")).exercise(exercise).backends


def _not_run_in_a_kernel(kernel_backend: Callable[[Path], str]) -> list:
    """(source, exercise, names, backend) for each backend the exercise runs on where no kernel run checks it."""
    return [
        pytest.param(*call, backend, id=f"{backend}-{call[1]}")
        for call in CALLS
        for backend in BACKENDS
        if backend in _runs_on(call[0], call[1]) and backend != kernel_backend(ROOT / call[0])
    ]


def _server_for(tiny: Settings, source: str, request: pytest.FixtureRequest) -> Settings:
    # A check that restarts PostgreSQL (chapter 6) gets a server of this worker's own: restarting the shared one
    # would cut off the other workers' tests (and its check skips the restart step while others are connected).
    if tiny.backend == "postgres" and chapter(source.removeprefix("solutions/")).restarts_server:
        return request.getfixturevalue("private_pg")
    return tiny


def test_every_chapter_has_check_cells() -> None:
    assert {source for source, _, _ in CALLS} == set(SOURCES)


@pytest.mark.parametrize(
    ("source", "exercise", "names", "backend"), _not_run_in_a_kernel(solution_backend), indirect=["backend"]
)
async def test_solution_passes(
    tiny: Settings,
    source: str,
    exercise: str,
    names: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    tiny = _server_for(tiny, source, request)
    solved, _ = _namespaces(source)
    await _check(source)(exercise, *(solved[name] for name in names), settings=tiny)
    assert f"✅ Exercise {exercise} passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("source", "exercise", "names", "backend"), _not_run_in_a_kernel(stub_backend), indirect=["backend"]
)
async def test_stub_fails(
    tiny: Settings, source: str, exercise: str, names: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    tiny = _server_for(tiny, source, request)
    _, stubs = _namespaces(source)
    await teeth.fails_with(_check(source), tiny, exercise, "not solved yet", *(stubs[name] for name in names))
