"""Learner errors in words: only the stub's own NotImplementedError is "not solved yet"; others point at the learner's line."""

from __future__ import annotations

import json
import linecache
import sys
import types
from pathlib import Path

import pytest
from sqlalchemy import Subquery, select

from course.chapters.registry import Chapter, ExerciseSpec
from course.checks import base, grader
from course.checks.learner import describe_learner_error, is_stub_error, learner_frame
from course.domain.models import User
from course.settings import get_settings


@pytest.mark.parametrize(
    ("exc", "stub"),
    [
        (NotImplementedError("Exercise 4.2"), True),
        (NotImplementedError("Exercise 12.10"), True),
        (NotImplementedError(), False),
        (NotImplementedError("Exercise 4.2: later"), False),
        (NotImplementedError("this datatype does not support collation"), False),
        (RuntimeError("Exercise 4.2"), False),
    ],
)
def test_only_the_stubs_own_error_means_not_solved(exc: BaseException, stub: bool) -> None:
    assert is_stub_error(exc) is stub


def _cell_function(source: str, filename: str) -> types.FunctionType:
    # A function defined in a notebook cell, as ipykernel names cells' code.
    namespace = {"Subquery": Subquery, "select": select, "User": User}
    # IPython keeps each cell's source where tracebacks look for lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - our own test source
    return next(v for k, v in namespace.items() if k in ("build", "other"))


LIBRARY_ERROR = "def build():\n    query = select(User)\n    return Subquery(query)\n"


async def test_an_error_raised_inside_a_library_is_the_learners_at_their_line() -> None:
    build = _cell_function(LIBRARY_ERROR, "/tmp/ipykernel_4242/1234567.py")
    with pytest.raises(base.LearnerCodeError) as info:
        await base.call_learner(build)
    original = info.value.original
    assert isinstance(original, NotImplementedError)  # raised in SQLAlchemy, yet not "not solved yet"
    frame = learner_frame(original)
    assert frame is not None and frame.filename == "/tmp/ipykernel_4242/1234567.py" and frame.lineno == 3
    message = describe_learner_error(original)
    assert message.startswith("your code raised NotImplementedError: The Subquery class is not intended")
    assert message.endswith("(line 3: `return Subquery(query)`)"), message
    assert "available from appropriate selectable objects." in message  # whole, not a first line or 200 chars
    elsewhere = _cell_function(LIBRARY_ERROR.replace("build", "other"), "/work/notes/helper.py")
    with pytest.raises(base.LearnerCodeError) as info:
        await base.call_learner(elsewhere)
    # Not in a notebook cell (a test, a script): the deepest frame outside libraries and the course package.
    assert learner_frame(info.value.original).filename == "/work/notes/helper.py"


async def test_the_stub_is_not_solved_yet() -> None:
    def stub() -> None:
        raise NotImplementedError("Exercise 99.1")

    with pytest.raises(base._Failure, match=r"^not solved yet \(Exercise 99.1\)"):
        await base.call_learner(stub)


# --- the grader's own call ------------------------------------------------------------------------------------------

CHAPTER = Chapter(
    98,
    "graded",
    "Graded",
    5,
    (
        ExerciseSpec("98.1", "Two functions", 2, ("first", "second")),
        ExerciseSpec("98.2", "PostgreSQL only", 3, ("locked",), backends=("postgres",)),
        ExerciseSpec("98.3", "A broken check", 1, ("anything",)),
    ),
)


@pytest.fixture
def graded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checks module for CHAPTER, importable by name; returns the report file the checks write to."""
    registry = base.Registry(CHAPTER)

    @registry.exercise("98.1")
    async def _first_then_second(first, second, db) -> None:  # noqa: ANN001 - a checker's learner functions
        base.expect(await base.call_learner(first) == 1 and await base.call_learner(second) == 2, "wrong numbers")

    @registry.exercise("98.2")
    async def _locked(locked, db) -> None:  # noqa: ANN001
        base.fail("must not run on SQLite")

    @registry.exercise("98.3")
    async def _broken(anything, db) -> None:  # noqa: ANN001
        raise KeyError("a bug in the check")

    module = types.ModuleType("graded_checks")
    module.registry = registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "graded_checks", module)
    monkeypatch.setenv("COURSE_SCALE", "tiny")
    monkeypatch.setenv("COURSE_BACKEND", "sqlite")
    report = tmp_path / "report.jsonl"
    monkeypatch.setenv(base.REPORT_ENV, str(report))
    assert get_settings().backend == "sqlite"
    return report


def _lines(report: Path) -> list[dict]:
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]


async def test_grader_reports_missing_and_wrong_names_without_raising(graded: Path) -> None:
    async def one() -> int:
        return 1

    await grader.grade("graded_checks", "98.1", ("first", "second"), {"first": one})
    await grader.grade("graded_checks", "98.1", ("first", "second"), {"first": one, "second": 2})
    await grader.grade("graded_checks", "98.1", ("first", "second"), {"first": one, "second": lambda: 2})
    missing, not_callable, passed = _lines(graded)
    assert all(line["by"] == "grader" for line in (missing, not_callable, passed))
    assert (missing["passed"], missing["points"], missing["max_points"]) == (False, 0, 2)
    assert missing["message"].startswith("not found: define `second` at the top level of the notebook")
    assert "`second` is a int, not a function" in not_callable["message"]
    assert passed["passed"] is True and passed["points"] == 2


async def test_grader_skips_by_backend_and_reports_a_broken_check_as_error(graded: Path) -> None:
    await grader.grade("graded_checks", "98.2", ("locked",), {})  # nothing defined, and yet: skipped
    await grader.grade("graded_checks", "98.3", ("anything",), {"anything": print})
    await grader.grade("no_such_module_here", "98.1", ("first",), {})
    skipped, broken, unknown = _lines(graded)
    assert skipped["status"] == "skipped" and "PostgreSQL only" in skipped["message"]
    assert broken["status"] == "error" and "KeyError" in broken["message"] and broken["by"] == "grader"
    assert unknown["status"] == "error" and "ModuleNotFoundError" in unknown["message"]
    # The notebook's own check calls are not the grader's.
    await sys.modules["graded_checks"].registry.check("98.2")
    assert "by" not in _lines(graded)[-1]


async def test_grader_reuses_the_notebooks_verdict_only_for_the_very_same_functions(graded: Path) -> None:
    calls = []

    async def one() -> int:
        calls.append("one")
        return 1

    async def two() -> int:
        return 2

    registry = sys.modules["graded_checks"].registry
    await registry.check("98.1", one, two)  # the notebook's own check cell
    assert calls == ["one"]
    await grader.grade("graded_checks", "98.1", ("first", "second"), {"first": one, "second": two})
    assert calls == ["one"]  # not run again: the same functions were just checked
    notebook, reused = _lines(graded)
    assert reused == {**notebook, "by": "grader"}

    async def other_two() -> int:
        return 2

    await grader.grade("graded_checks", "98.1", ("first", "second"), {"first": one, "second": other_two})
    assert calls == ["one", "one"]  # another function under the name: checked again
    two.__code__ = (lambda: 3).__code__  # the checked function's code swapped afterwards
    await grader.grade("graded_checks", "98.1", ("first", "second"), {"first": one, "second": two})
    assert calls == ["one", "one", "one"]
    assert _lines(graded)[-1]["passed"] is False


async def test_an_error_raised_deep_in_the_standard_library_is_still_at_the_learners_line() -> None:
    # json's decoder is neither in site-packages nor in the course package: a rule based on paths alone would
    # point at json/decoder.py.
    source = "import json\n\n\ndef build():\n    payload = '{\"a\": '\n    return json.loads(payload)\n"
    build = _cell_function(source, "/tmp/ipykernel_4242/7654321.py")
    with pytest.raises(base.LearnerCodeError) as info:
        await base.call_learner(build)
    message = describe_learner_error(info.value.original)
    assert message.startswith("your code raised JSONDecodeError: Expecting value"), message
    assert message.endswith("(line 6: `return json.loads(payload)`)"), message
