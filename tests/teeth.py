"""What every chapter's teeth tests share: the solved and stub versions of a notebook, and `fails_with`."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from course.checks.base import ExerciseFailed
from course.grading.build import make_exercise, render
from course.grading.notebook_format import read_notebook
from course.settings import Settings
from tests.nbsource import ROOT, notebook_namespace


def solved(source: str) -> dict[str, Any]:
    """The functions of solutions/NN_topic.ipynb: the single source learners' exercises come from."""
    return notebook_namespace(source)


def stubs(source: str) -> dict[str, Any]:
    """The learner's version, generated from the source as `course build` would, so it never goes stale."""
    stub = make_exercise(read_notebook(ROOT / source), name=source)
    with tempfile.TemporaryDirectory(prefix="course-stub-") as folder:
        path = Path(folder) / Path(source).name
        path.write_text(render(stub), encoding="utf-8")
        return notebook_namespace(path)


async def fails_with(
    check: Callable[..., Awaitable[None]],
    settings: Settings,
    exercise: str,
    fragment: str | tuple[str, ...],
    *fns: Any,
) -> None:
    """The check rejects fns with a ❌ message for this exercise that contains fragment (one of them, for an answer
    with two flaws of which timing decides the one that shows first)."""
    with pytest.raises(ExerciseFailed) as info:
        await check(exercise, *fns, settings=settings)
    assert str(info.value).startswith(f"❌ Exercise {exercise}:")
    fragments = (fragment,) if isinstance(fragment, str) else fragment
    assert any(f in str(info.value) for f in fragments), str(info.value)
