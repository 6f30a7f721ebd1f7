"""Red team B: answers to chapters 5-8 written without reading the checks, each with the verdict a right check gives.

Every case runs on SQLite and PostgreSQL (`tiny` seeds); an exercise registered for one backend is skipped on the
other with the registry's reason, and a case whose flaw only one backend can show (a deadlock SQLite cannot have)
is skipped on the other, as its module's ONLY_ON says. Chapter 6 restarts PostgreSQL: it gets a server of its own.
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


def _module(case: Case) -> ModuleType:
    return MODULES[int(case.exercise.split(".")[0])]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_redteam_case(case: Case, backend: str, request: pytest.FixtureRequest) -> None:
    number = int(case.exercise.split(".")[0])
    spec = chapter(number).exercise(case.exercise)
    if backend not in spec.backends:
        pytest.skip(f"exercise {case.exercise} is registered for {', '.join(spec.backends)} only")
    module = _module(case)
    only = {module.ONLY_ON[fn.__name__] for fn in case.fns if fn.__name__ in getattr(module, "ONLY_ON", {})}
    if only and backend not in only:
        pytest.skip(f"its flaw shows on {', '.join(sorted(only))} only")
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
        assert message.startswith(f"❌ Exercise {case.exercise}:"), message
        assert not any(text in message for text in NOT_A_VERDICT), message
        assert case.fragment in message, message
    finally:
        for undo in cleanup:
            if undo is not None:
                undo()
