"""Red team B: answers to chapters 5-8 written without reading the checks, each with the verdict a right check gives.

Each case runs once, on one backend (the harness's budget is 150 s): a case whose flaw only one backend can show
(a deadlock SQLite cannot have) runs there, as its module's ONLY_ON says; an exercise registered for one backend
runs there; the other cases of an exercise take turns between SQLite and PostgreSQL. Chapter 6 restarts
PostgreSQL: it gets a server of its own. `make test` runs the cases that found a defect and a few of every exercise
(EVERYDAY, 76 of 188); COURSE_REDTEAM_ALL=1 runs them all (about 6 minutes on a busy 2-core machine).
"""

from __future__ import annotations

import importlib
import os
from collections import Counter
from types import ModuleType
from typing import Any

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
LEFT: dict[str, str] = {}


# The cases that found a defect (their modules say what the check did before): teeth for the fixes, always run.
FOUND = {
    "5.2-fail-rit_no_pause",
    "5.2-fail-rit_constant_pause",
    "5.2-fail-rit_fixed_doubling",
    "7.2-fail-soft_delete_sessionmaker_option_present",
    "7.2-fail-soft_delete_sessionmaker_sticky_way_out",
    "7.4-fail-helpdesk_models_invoices_orm_cascade",
    "8.4-fail-upgrade_concurrently+downgrade_drops_column",
    "5.3-fail-import_seen_before_insert",
    "5.3-fail-import_strips_values",
    "8.1-fail-upgrade_partial_index+downgrade_batch",
    "8.2-fail-upgrade_copy_coalesce+downgrade_rename_batch",
    "8.2-fail-upgrade_copy_non_empty+downgrade_rename_batch",
    "8.2-fail-upgrade_copy_by_position+downgrade_rename_batch",
    "8.2-fail-upgrade_rename_batch+downgrade_rename_nullif",
    "5.2-fail-rit_commit_outside_try",
    "5.3-fail-import_own_session",
    "7.1-pass-project_models_core_style",
    "7.1-fail-project_models_estimate_positive",
    "7.3-fail-wallet_models_misnamed_check+withdraw_update_returning+InsufficientFunds",
    "7.4-fail-helpdesk_models_no_convention",
    "8.1-fail-upgrade_default_removed+downgrade_batch",
    "8.3-fail-backfill_id_ranges",
    "8.3-fail-backfill_python_lower",
    "8.4-fail-upgrade_concurrently+downgrade_plain_index",
    "8.4-fail-upgrade_unique_concurrently+downgrade_concurrently",
}
# 5.1's correct answers and slowest wrong ones run 1,024 transfers each (10-30 s): with every other case beyond the
# first right answer and first three wrong ones of each exercise, they run only with COURSE_REDTEAM_ALL=1.
SLOW = {
    "5.1-pass-transfer_conditional_update",
    "5.1-pass-transfer_locked_rows",
    "5.1-pass-transfer_raw_sql",
    "5.1-fail-transfer_swallows_errors",
    "5.1-fail-transfer_lock_one_row",
}
EVERY_CASE = os.environ.get("COURSE_REDTEAM_ALL", "") not in ("", "0")


def _everyday() -> set[str]:
    """The cases `make test` runs: FOUND, plus each exercise's first right answer and first three wrong ones (with
    different messages), SLOW left out."""
    chosen, right, wrong, messages = set(FOUND), Counter[str](), Counter[str](), set()
    for case in CASES:
        if case.id in FOUND or case.id in SLOW:
            continue
        if case.expect == "pass" and right[case.exercise] < 1:
            right[case.exercise] += 1
            chosen.add(case.id)
        elif case.expect == "fail" and wrong[case.exercise] < 3 and (case.exercise, case.fragment) not in messages:
            wrong[case.exercise] += 1
            messages.add((case.exercise, case.fragment))
            chosen.add(case.id)
    return chosen


EVERYDAY = _everyday()


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


def _params() -> list[Any]:
    """One test per case that runs here, on its one backend (the others are not collected, rather than skipped)."""
    chosen = [case for case in CASES if EVERY_CASE or case.id in EVERYDAY]
    return [pytest.param(case, _home(case), id=f"{_home(case)}-{case.id}") for case in chosen]


# `backend` is parametrized here directly: it overrides conftest's fixture of that name, and `tiny` follows it.
@pytest.mark.parametrize(("case", "backend"), _params())
async def test_redteam_case(case: Case, backend: str, request: pytest.FixtureRequest) -> None:
    number = int(case.exercise.split(".")[0])
    module = _module(case)
    if case.id in LEFT:
        request.applymarker(pytest.mark.xfail(reason=LEFT[case.id], strict=True))
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
