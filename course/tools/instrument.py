"""Measuring tools for lessons and checks: the SQL a statement becomes, a counter of what an engine sends, timers."""

from __future__ import annotations

import inspect
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement

if TYPE_CHECKING:
    import pandas as pd

# Transaction bookkeeping is not the application's work: N+1 is about queries, not savepoints.
_TRANSACTION_CONTROL = re.compile(
    r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|END|PRAGMA\s+foreign_keys)\b", re.IGNORECASE
)

Target = AsyncEngine | Engine | AsyncConnection | Connection | AsyncSession


def _sync_engine(target: Target) -> Engine:
    """The sync Engine behind any async or sync engine, connection or session (events live there)."""
    if isinstance(target, AsyncSession):
        if target.bind is None:
            raise TypeError("count_queries needs a session bound to an engine or connection")
        return _sync_engine(target.bind)
    if isinstance(target, AsyncEngine | AsyncConnection):
        return target.sync_engine
    if isinstance(target, Connection):
        return target.engine
    if isinstance(target, Engine):
        return target
    raise TypeError(f"count_queries needs an engine, connection or session, not {type(target).__name__}")


def compiled_sql(statement: ClauseElement, target: Target, *, one_line: bool = True) -> str:
    """The SQL text statement becomes on target's backend, with the placeholders that backend's driver receives.

    `str(statement)` renders a generic dialect that is sent nowhere (`:param_1`, no SQLite `OFFSET`, no
    PostgreSQL casts); lessons print this instead, so what they show is what the database gets. Values stay
    parameters: they travel apart from the text, and rendering them inline would teach the wrong habit.
    """
    text = str(statement.compile(dialect=_sync_engine(target).dialect))
    return " ".join(text.split()) if one_line else text


@dataclass
class QueryCount:
    """What an engine sent while a `count_queries` block ran.

    `statements` and `params` hold application statements (one entry per round trip, so an
    executemany counts once); transaction control (BEGIN, COMMIT, SAVEPOINT, RELEASE, ROLLBACK)
    goes to `skipped`, so a `begin_nested()` does not change the count.
    """

    statements: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def assert_count(self, expected: int) -> None:
        """Fail with the statements listed, so a wrong count explains itself."""
        if self.count != expected:
            listing = "\n".join(f"  {i}. {' '.join(s.split())}" for i, s in enumerate(self.statements, 1))
            raise AssertionError(f"expected {expected} statements, {self.count} were sent:\n{listing}")

    def __str__(self) -> str:
        return f"{self.count} statement{'s' if self.count != 1 else ''}"


@contextmanager
def count_queries(target: Target) -> Iterator[QueryCount]:
    """Record every statement sent through target's engine inside the block.

    Modelled on SQLAlchemy's own `assert_sql_count`; the listener sits on the sync engine
    (the async engine is a proxy around it) and is removed on exit, error or not.
    """
    engine = _sync_engine(target)
    counted = QueryCount()

    def record(_conn: object, _cursor: object, statement: str, parameters: Any, _ctx: object, _many: bool) -> None:
        if _TRANSACTION_CONTROL.match(statement):
            counted.skipped.append(statement)
        else:
            counted.statements.append(statement)
            counted.params.append(parameters)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", record)


@dataclass(frozen=True)
class Timing:
    """Seconds per call over several runs; `best` is the least disturbed by noise, `median` the typical."""

    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best_ms(self) -> float:
        return self.best * 1000

    @property
    def median_ms(self) -> float:
        return self.median * 1000

    def __str__(self) -> str:
        return f"best {self.best_ms:.3g} ms, median {self.median_ms:.3g} ms over {len(self.samples)} runs"


def _check_counts(repeat: int, number: int) -> None:
    if repeat < 1 or number < 1:
        raise ValueError(f"repeat and number must be at least 1 (got repeat={repeat}, number={number})")


async def _run_once(fn: Callable[[], Any], number: int) -> float:
    """Seconds per call of fn (awaited when it returns an awaitable), averaged over number calls."""
    start = time.perf_counter()
    for _ in range(number):
        result = fn()
        if inspect.isawaitable(result):
            await result
    return (time.perf_counter() - start) / number


async def timeit_async(
    fn: Callable[[], Awaitable[Any]], *, repeat: int = 5, number: int = 1, warmup: int = 1
) -> Timing:
    """Time an async callable; warm-up calls first fill the statement cache, pool and page cache."""
    _check_counts(repeat, number)
    for _ in range(warmup):
        await _run_once(fn, 1)
    return Timing(tuple([await _run_once(fn, number) for _ in range(repeat)]))


def timeit_sync(fn: Callable[[], Any], *, repeat: int = 5, number: int = 1, warmup: int = 1) -> Timing:
    """The synchronous twin of `timeit_async`, for plain functions (sqlite3, psycopg, pure Python)."""
    _check_counts(repeat, number)

    def run_once(calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    for _ in range(warmup):
        run_once(1)
    return Timing(tuple(run_once(number) for _ in range(repeat)))


async def compare(
    cases: Mapping[str, Callable[[], Any]],
    *,
    repeat: int = 5,
    number: int = 1,
    warmup: int = 1,
    baseline: str | None = None,
) -> pd.DataFrame:
    """Time several ways of doing one job in one run and show how they compare.

    Rounds are interleaved (a, b, a, b...) so a machine that slows down mid-run slows every case
    alike. `ratio` is each case's best time over the baseline's (the fastest case by default):
    only ratios measured in the same run are worth comparing. Callables may be sync or async.
    """
    import pandas as pd

    _check_counts(repeat, number)
    if not cases:
        raise ValueError("compare needs at least one case")
    if baseline is not None and baseline not in cases:
        raise ValueError(f"baseline {baseline!r} is not one of the cases: {', '.join(cases)}")
    for fn in cases.values():
        for _ in range(warmup):
            await _run_once(fn, 1)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            samples[name].append(await _run_once(fn, number))
    timings = {name: Timing(tuple(values)) for name, values in samples.items()}
    reference = timings[baseline] if baseline else min(timings.values(), key=lambda t: t.best)
    return pd.DataFrame(
        {
            "case": list(timings),
            "best_ms": [t.best_ms for t in timings.values()],
            "median_ms": [t.median_ms for t in timings.values()],
            "ratio": [t.best / reference.best if reference.best > 0 else float("nan") for t in timings.values()],
        }
    )
