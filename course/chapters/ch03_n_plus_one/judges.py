"""What chapter 3's checks share: calling learner code while counting statements, rows and objects, and judging them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect

from course.chapters.ch03_n_plus_one.loads import Loads, count_loads
from course.checks.base import CheckDB, call_learner, expect, fail
from course.tools.instrument import QueryCount


@dataclass
class Observed:
    """What the learner's function returned and what it cost."""

    result: Any
    queries: QueryCount
    loads: Loads


async def observe(db: CheckDB, fn: Callable[..., Any], *args: Any) -> Observed:
    """Call fn(session, *args) on a new session, counting statements, rows and objects; judge inside the session."""
    async with db.Session() as session:
        with db.count_queries() as queries, count_loads(session) as loads:
            result = await call_learner(fn, session, *args)
    return Observed(result, queries, loads)


def as_list_of(result: Any, model: type, what: str) -> list[Any]:
    """The learner's result as a list of `model` objects, or a failure that says what came back instead."""
    if isinstance(result, str | bytes | dict) or not hasattr(result, "__iter__"):
        fail(f"{what} should return a list of {model.__name__} objects, got {type(result).__name__}")
    items = list(result)
    odd = next((item for item in items if not isinstance(item, model)), None)
    expect(
        odd is None,
        f"{what} should return {model.__name__} objects, got {type(odd).__name__}: select the entity "
        f"(select({model.__name__})) and take the scalars",
    )
    return items


def loaded(obj: Any, attribute: str) -> bool:
    """Whether obj's relationship is in memory (reading an unloaded one in async code raises MissingGreenlet)."""
    return attribute not in inspect(obj).unloaded


def judge_n_plus_one(observed: Observed, budget: int, parents: int, what: str, fix: str) -> None:
    """At most `budget` statements; more than that, when it grows with the parents, is the N+1 pattern."""
    sent = observed.queries.count
    if sent <= budget:
        return
    repeated = _most_repeated(observed.queries.statements)
    fail(
        f"{sent} statements for {parents} {what} (at most {budget} allowed), {repeated} of them the same "
        f"SELECT — that is the N+1 pattern. {fix}"
    )


def _most_repeated(statements: Sequence[str]) -> int:
    counts: dict[str, int] = {}
    for statement in statements:
        counts[statement] = counts.get(statement, 0) + 1
    return max(counts.values(), default=0)


def judge_objects(observed: Observed, model: type, wanted: int, context: str, fix: str) -> None:
    """No more `model` objects built than the answer needs (a little slack for harmless extras)."""
    built = observed.loads.objects.get(model.__name__, 0)
    expect(
        built <= wanted + 2,
        f"your function built {built:,} {model.__name__} objects where {context} need {wanted:,}: "
        f"the statement count is fine, but it loads far more rows than the answer uses. {fix}",
    )


def judge_rows(observed: Observed, wanted: int, context: str, fix: str) -> None:
    """No more rows fetched than the answer needs (joined eager loads included), with a little slack."""
    fetched = observed.loads.total_rows
    expect(
        fetched <= wanted + 2,
        f"your function fetched {fetched:,} rows where {context} need at most {wanted:,}. {fix}",
    )
