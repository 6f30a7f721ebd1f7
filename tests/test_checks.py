"""Every chapter's checks, both ways: the solution passes and the generated stub fails, as each check cell calls them."""

from __future__ import annotations

import ast
from functools import cache
from typing import Any

import pytest

from course.chapters.registry import chapter
from course.grading.notebook_format import read_notebook
from course.settings import Settings
from tests import teeth
from tests.nbsource import ROOT

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


def _skip_unless_runs_on(settings: Settings, source: str, exercise: str) -> None:
    # An exercise the registry limits to some backends is skipped elsewhere (tested in test_registry/test_runner).
    backends = chapter(source.removeprefix("solutions/")).exercise(exercise).backends
    if settings.backend not in backends:
        pytest.skip(f"exercise {exercise} runs on {' and '.join(backends)} only")


def _server_for(tiny: Settings, source: str, request: pytest.FixtureRequest) -> Settings:
    # A check that restarts PostgreSQL (chapter 6) gets a server of this worker's own: restarting the shared one
    # would cut off the other workers' tests (and its check skips the restart step while others are connected).
    if tiny.backend == "postgres" and chapter(source.removeprefix("solutions/")).restarts_server:
        return request.getfixturevalue("private_pg")
    return tiny


def test_every_chapter_has_check_cells() -> None:
    assert {source for source, _, _ in CALLS} == set(SOURCES)


@pytest.mark.parametrize(("source", "exercise", "names"), CALLS, ids=[c[1] for c in CALLS])
async def test_solution_passes(
    tiny: Settings,
    source: str,
    exercise: str,
    names: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    _skip_unless_runs_on(tiny, source, exercise)
    tiny = _server_for(tiny, source, request)
    solved, _ = _namespaces(source)
    await _check(source)(exercise, *(solved[name] for name in names), settings=tiny)
    assert f"✅ Exercise {exercise} passed" in capsys.readouterr().out


@pytest.mark.parametrize(("source", "exercise", "names"), CALLS, ids=[c[1] for c in CALLS])
async def test_stub_fails(
    tiny: Settings, source: str, exercise: str, names: tuple[str, ...], request: pytest.FixtureRequest
) -> None:
    _skip_unless_runs_on(tiny, source, exercise)
    tiny = _server_for(tiny, source, request)
    _, stubs = _namespaces(source)
    await teeth.fails_with(_check(source), tiny, exercise, "not solved yet", *(stubs[name] for name in names))
