"""Red team A's answers to chapters 1-4, written before the checks were read: each must get the verdict it expects.

A `fail` case must be rejected with an ordinary ❌ verdict (not "not solved yet", not "no such exercise"); a `pass`
case must pass. Exercises registered for one backend only are skipped on the other with the registry's reason.
"""

from __future__ import annotations

import importlib

import pytest

from course.chapters.registry import chapter
from course.checks.base import ExerciseFailed
from course.settings import Settings
from tests.redteam import Case, ch01, ch02, ch03, ch04

CASES: list[Case] = [*ch01.CASES, *ch02.CASES, *ch03.CASES, *ch04.CASES]


def _check(exercise: str):  # noqa: ANN202 - the chapter's `check`
    return importlib.import_module(chapter(int(exercise.split(".")[0])).checks_module).check


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_redteam_a(case: Case, tiny: Settings) -> None:
    spec = chapter(int(case.exercise.split(".")[0])).exercise(case.exercise)
    if tiny.backend not in spec.backends:
        pytest.skip(f"exercise {case.exercise} runs on {' and '.join(spec.backends)} only")
    check = _check(case.exercise)
    if case.expect == "pass":
        await check(case.exercise, *case.fns, settings=tiny)
        return
    with pytest.raises(ExerciseFailed) as info:
        await check(case.exercise, *case.fns, settings=tiny)
    message = str(info.value)
    assert message.startswith(f"❌ Exercise {case.exercise}:"), message
    assert "not solved yet" not in message and "no such exercise" not in message, message
    assert case.fragment in message, message
