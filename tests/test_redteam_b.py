"""Red team B: answers to chapters 5-8 written without reading the checks, each with the verdict a right check gives.

Each case runs once, on one backend (the harness's budget is 150 s): a case whose flaw only one backend can show
(a deadlock SQLite cannot have) runs there, as its module's ONLY_ON says; an exercise registered for one backend
runs there; the other cases of an exercise take turns between SQLite and PostgreSQL. Chapter 6 restarts
PostgreSQL: it gets a server of its own.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from course.chapters.registry import chapter
from course.checks.base import ExerciseFailed
from tests.redteam import Case

CHAPTERS = (5, 6, 7, 8)
MODULES: dict[int, ModuleType] = {n: importlib.import_module(f"tests.redteam.ch{n:02d}") for n in CHAPTERS}
CASES: list[Case] = [case for n in CHAPTERS for case in MODULES[n].CASES]
# Messages that mean the check never judged the answer: a `fail` case must not end on these.
NOT_A_VERDICT = ("not solved yet", "no such exercise")
# Wrong answers the check still accepts, and why they were left (a strict xfail: a fix turns it into a failure
# that asks to remove the entry).
LEFT = {
    "5.2-fail-rit_constant_pause": "a constant pause is not told from a growing random one: timing on a loaded "
    "machine cannot do it without flaky verdicts",
}


def _module(case: Case) -> ModuleType:
    return MODULES[int(case.exercise.split(".")[0])]


def _home(case: Case) -> str:
    """The one backend a case runs on (the harness's budget is 150 s for both): where its flaw shows, else the
    exercise's backend, else SQLite and PostgreSQL in turn along the exercise's cases."""
    only = {_module(case).ONLY_ON[fn.__name__] for fn in case.fns if fn.__name__ in _module(case).ONLY_ON}
    if only:
        return only.pop()
    backends = chapter(int(case.exercise.split(".")[0])).exercise(case.exercise).backends
    if len(backends) == 1:
        return backends[0]
    mine = [
        c
        for c in CASES
        if c.exercise == case.exercise and not any(fn.__name__ in _module(c).ONLY_ON for fn in c.fns)
    ]
    return ("sqlite", "postgres")[[c.id for c in mine].index(case.id) % 2]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_redteam_case(case: Case, backend: str, request: pytest.FixtureRequest) -> None:
    number = int(case.exercise.split(".")[0])
    spec = chapter(number).exercise(case.exercise)
    if backend not in spec.backends:
        pytest.skip(f"exercise {case.exercise} is registered for {', '.join(spec.backends)} only")
    module = _module(case)
    if case.id in LEFT:
        request.applymarker(pytest.mark.xfail(reason=LEFT[case.id], strict=True))
    if backend != _home(case):
        pytest.skip(
            f"runs on {_home(case)} only (its flaw shows there, or the cases take turns: test-time budget)"
        )
    if backend == "postgres" and chapter(number).restarts_server:
        settings = request.getfixturevalue("private_pg")
    else:
        settings = request.getfixturevalue("tiny")
    check = importlib.import_module(chapter(number).checks_module).check
    cleanup = [getattr(module, "CLEANUP", {}).get(fn.__name__) for fn in case.fns]
    try:
        if case.expect == "pass":
            await check(case.exercise, *case.fns, settings=settings)
            return
        with pytest.raises(ExerciseFailed) as info:
            await check(case.exercise, *case.fns, settings=settings)
        message = str(info.value)
        print(message)  # shown by `pytest -rP`: the message a learner would read
        assert message.startswith(f"❌ Exercise {case.exercise}:"), message
        assert not any(text in message for text in NOT_A_VERDICT), message
        assert case.fragment in message, message
    finally:
        for undo in cleanup:
            if undo is not None:
                undo()
