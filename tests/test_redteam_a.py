"""Red team A's answers to chapters 1-4, written before the checks were read: each must get the verdict it expects.

A `fail` case must be rejected with an ordinary ❌ verdict (not "not solved yet", not "no such exercise") whose
message holds the case's fragment; a `pass` case must pass.

Every case was run on both backends once (the verdicts are in tests/redteam/chNN.py). A check call copies the seed
and costs about a second, so by default this harness runs what guards the checks from now on, within the test
budget: the cases that found a defect (they carry a fragment) on both backends, and the right answers on one
backend (both when the answer has a code path per dialect). COURSE_REDTEAM_ALL=1 runs every case on both.
"""

from __future__ import annotations

import importlib
import os

import pytest

from course.chapters.registry import chapter
from course.checks.base import ExerciseFailed
from course.settings import Settings
from tests.redteam import Case, ch01, ch02, ch03, ch04

MODULES = (ch01, ch02, ch03, ch04)
EVERYTHING = os.environ.get("COURSE_REDTEAM_ALL") == "1"
BACKENDS = ("sqlite", "postgres")
# Right answers with a branch per dialect: run on both even by default.
DIALECT_BRANCHES = {
    "1.6-pass-search_users_position",
    "1.7-pass-upsert_products_xmax",
    "1.7-pass-upsert_products_ref",
}


def _runs_on(case: Case, only_on: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    if case.id in only_on:
        return only_on[case.id]
    if EVERYTHING or case.fragment or case.id in DIALECT_BRANCHES:
        return BACKENDS
    if case.expect == "pass":
        return ("sqlite",)
    return ()


def _combinations() -> list[object]:
    combos = []
    for module in MODULES:
        only_on = getattr(module, "EXPECT_ONLY_ON", {})
        for case in module.CASES:
            for backend in _runs_on(case, only_on):
                combos.append(pytest.param(case, backend, id=f"{backend}-{case.id}"))
    return combos


@pytest.mark.parametrize(("case", "backend"), _combinations(), indirect=["backend"])
async def test_redteam_a(case: Case, tiny: Settings) -> None:
    number = int(case.exercise.split(".")[0])
    spec = chapter(number).exercise(case.exercise)
    if tiny.backend not in spec.backends:
        pytest.skip(f"exercise {case.exercise} runs on {' and '.join(spec.backends)} only")
    check = importlib.import_module(chapter(number).checks_module).check
    if case.expect == "pass":
        await check(case.exercise, *case.fns, settings=tiny)
        return
    with pytest.raises(ExerciseFailed) as info:
        await check(case.exercise, *case.fns, settings=tiny)
    message = str(info.value)
    assert message.startswith(f"❌ Exercise {case.exercise}:"), message
    assert "not solved yet" not in message and "no such exercise" not in message, message
    assert case.fragment in message, message
