"""The grader's side of a check run: after the learner's cells, `course check` and `course grade` call `grade` once
per exercise of the chapter (the registry says which, and by which names), so what is graded never depends on the
notebook's own check cells.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from course.checks.base import (
    _BY_GRADER,
    NOTEBOOK_VERDICTS,
    Exercise,
    ExerciseFailed,
    _fingerprint,
    _report,
    same_functions,
)
from course.settings import get_settings


async def grade(
    checks_module: str, exercise_id: str, names: tuple[str, ...], namespace: Mapping[str, Any]
) -> None:
    """What `course check` and `course grade` run after the learner's cells, once per exercise of the chapter.

    Finds the exercise's functions by their names in namespace (the notebook's globals), runs the check and reports
    the verdict as the grader's. Never raises: a missing function, a failed check or a broken check is a verdict.
    """
    token = _BY_GRADER.set(True)
    try:
        registry = importlib.import_module(checks_module).registry
        spec = registry.chapter.exercise(exercise_id)
        exercise = registry.exercises.get(exercise_id) or Exercise(exercise_id, spec.points, _no_checker, 0)
        if get_settings().backend not in spec.backends:
            await registry.check(exercise_id)  # reports `skipped`, whatever the notebook holds
            return
        problem = next((p for p in (_not_a_function(name, namespace) for name in names) if p), None)
        if problem is not None:
            _report(exercise, passed=False, message=f"{problem} (exercise {exercise_id} checks it by that name)")
            return
        solution = tuple(namespace[name] for name in names)
        earlier = NOTEBOOK_VERDICTS.get(exercise_id)
        if earlier is not None and same_functions(earlier[0], _fingerprint(solution)):
            # The notebook's own check cell ran this check on these very functions: its verdict stands.
            line = earlier[1]
            _report(
                exercise,
                passed=line.get("passed") is True,
                message=str(line.get("message")),
                status=line.get("status"),
            )
            return
        try:
            await registry.check(exercise_id, *solution)
        except ExerciseFailed:
            pass  # reported by the check
    except Exception as exc:  # noqa: BLE001 - a check that cannot run is the course's error, never the learner's
        _report(
            Exercise(exercise_id, 0, _no_checker, 0),
            passed=False,
            message=f"the check could not run: {type(exc).__name__}: {exc}",
            status="error",
        )
    finally:
        _BY_GRADER.reset(token)


def _not_a_function(name: str, namespace: Mapping[str, Any]) -> str | None:
    if name not in namespace:
        return f"not found: define `{name}` at the top level of the notebook, under that name"
    if not callable(namespace[name]):
        return f"`{name}` is a {type(namespace[name]).__name__}, not a function: define `{name}` as a function"
    return None


async def _no_checker(*_: Any) -> None:
    raise RuntimeError("this exercise has no checker registered")
