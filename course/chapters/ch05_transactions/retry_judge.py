"""Judging exercise 5.2's retry wrapper on PostgreSQL: serialization failures, deadlocks, other errors, a bound."""

from __future__ import annotations

import asyncio
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, PendingRollbackError

from course.chapters.ch05_transactions.retry import error_code
from course.checks.base import CheckDB, LearnerCodeError, call_learner, expect, fail


def describe(exc: BaseException) -> str:
    code = error_code(exc)
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__


class _Calls:
    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self) -> int:
        self.times.append(time.perf_counter())
        return len(self.times)


async def reset_counter(db: CheckDB) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS retry_counter"))
        await conn.execute(text("CREATE TABLE retry_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO retry_counter VALUES (1, 0), (2, 0)"))
        await conn.execute(text("DROP TABLE IF EXISTS retry_skew"))
        await conn.execute(text("CREATE TABLE retry_skew (k TEXT NOT NULL)"))


async def _run_wrapper(run: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    try:
        return await call_learner(run, *args, **kwargs), None
    except LearnerCodeError as exc:
        return None, exc.original


async def judge_serialization_failures(run: Callable[..., Any], Session: Any) -> None:
    calls = _Calls()

    async def increment(session: Any) -> int:
        calls()
        n = await session.scalar(text("SELECT n FROM retry_counter WHERE id = 1"))
        await asyncio.sleep(0.05)  # every caller reads before anyone writes: serializable must fail some
        await session.execute(text("UPDATE retry_counter SET n = :n WHERE id = 1"), {"n": n + 1})
        return n + 1

    outcomes = await asyncio.gather(*(_run_wrapper(run, Session, increment, attempts=12) for _ in range(4)))
    failed = [exc for _, exc in outcomes if exc is not None]
    if failed:
        exc = failed[0]
        if isinstance(exc, PendingRollbackError) or error_code(exc) == "25P02":
            fail(
                "after a serialization failure the next attempt ran in the failed transaction: roll back (a new "
                "session and transaction per attempt) before running work again"
            )
        fail(
            f"4 concurrent increments at SERIALIZABLE: {len(failed)} ended with {describe(exc)} although "
            "attempts=12: retry work when the error's SQLSTATE is 40001 (exc.orig.sqlstate on a DBAPIError)"
        )
    async with Session() as session:
        final = await session.scalar(text("SELECT n FROM retry_counter WHERE id = 1"))
    expect(
        final == 4,
        f"4 increments left the counter at {final}: each attempt must run in its own transaction, and only "
        "the successful one may commit",
    )
    expect(len(calls.times) > 4, "no attempt was ever retried: were the 4 increments really concurrent?")
    expect(
        sorted(value for value, _ in outcomes) == [1, 2, 3, 4],
        f"run_in_transaction returned {[v for v, _ in outcomes]}: return what work returned",
    )


async def judge_commit_failure(run: Callable[..., Any], Session: Any) -> None:
    """A serialization failure that PostgreSQL reports at COMMIT, after work has returned (write skew)."""
    calls = _Calls()

    async def write_skew(session: Any) -> int:
        n = calls()
        await session.execute(text("SELECT count(*) FROM retry_skew WHERE k = 'a'"))
        await session.execute(text("INSERT INTO retry_skew (k) VALUES ('b')"))
        if n == 1:
            # Another SERIALIZABLE transaction makes the mirror-image move and commits first: the learner's
            # transaction is now doomed, and PostgreSQL says so when it tries to COMMIT.
            async with Session() as other, other.begin():
                await other.execute(text("SELECT count(*) FROM retry_skew WHERE k = 'b'"))
                await other.execute(text("INSERT INTO retry_skew (k) VALUES ('a')"))
        return n

    result, exc = await _run_wrapper(run, Session, write_skew, attempts=5)
    expect(
        exc is None,
        f"a serialization failure reported by COMMIT reached the caller ({describe(exc) if exc else ''}): at "
        "SERIALIZABLE PostgreSQL often detects the conflict only when the transaction commits, so the commit "
        "belongs inside the attempt that is retried",
    )
    expect(
        len(calls.times) == 2 and result == 2,
        f"work ran {len(calls.times)} time(s) and run_in_transaction returned {result!r} after a COMMIT failed with "
        "40001: expected one retry, and what the successful attempt returned",
    )


async def judge_deadlock(run: Callable[..., Any], db: CheckDB) -> None:
    calls = _Calls()

    def locker(first: int, second: int) -> Callable[[Any], Any]:
        async def work(session: Any) -> str:
            calls()
            for row in (first, second):
                await session.execute(text("UPDATE retry_counter SET n = n + 1 WHERE id = :id"), {"id": row})
                await asyncio.sleep(0.1)
            return "ok"

        return work

    outcomes = await asyncio.gather(
        _run_wrapper(run, db.Session, locker(1, 2), attempts=5),
        _run_wrapper(run, db.Session, locker(2, 1), attempts=5),
    )
    failed = [exc for _, exc in outcomes if exc is not None]
    expect(
        not failed,
        f"two transactions that deadlocked: one ended with {describe(failed[0]) if failed else ''}. "
        "A deadlock (SQLSTATE 40P01) is retryable like a serialization failure",
    )
    expect(len(calls.times) >= 3, "the deadlock victim was not run again")


async def judge_other_errors(run: Callable[..., Any], db: CheckDB) -> None:
    calls = _Calls()

    async def duplicate(session: Any) -> None:
        calls()
        await session.execute(text("INSERT INTO retry_counter VALUES (1, 99)"))

    _, exc = await _run_wrapper(run, db.Session, duplicate, attempts=5)
    expect(
        isinstance(exc, IntegrityError),
        f"work broke a primary key (IntegrityError) and run_in_transaction "
        f"{'returned normally' if exc is None else f'raised {describe(exc)}'}: let other errors propagate",
    )
    expect(
        len(calls.times) == 1,
        f"an IntegrityError (SQLSTATE {error_code(exc) if exc is not None else '?'}) was retried {len(calls.times) - 1} times: repeating "
        "cannot fix a broken constraint. Retry only SQLSTATE 40001 and 40P01",
    )
    calls = _Calls()

    async def bug(session: Any) -> None:
        calls()
        raise ValueError("a bug in work")

    _, exc = await _run_wrapper(run, db.Session, bug, attempts=5)
    expect(isinstance(exc, ValueError), "a ValueError raised by work should reach the caller unchanged")
    expect(len(calls.times) == 1, "a ValueError from work was retried: retry only database errors 40001/40P01")


@contextmanager
def _rollbacks_timed(db: CheckDB) -> Iterator[list[float]]:
    """While open, when each rollback on the check's engine ended (whether the session or the pool sent it)."""
    dialect = db.engine.sync_engine.dialect
    ended: list[float] = []
    original = dialect.do_rollback

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            original(dbapi_connection)
        finally:
            ended.append(time.perf_counter())

    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
    try:
        yield ended
    finally:
        del dialect.do_rollback  # the class's method again


# Code that is not the learner's: the standard library, installed packages (tenacity, anyio...) and the course.
_NOT_LEARNERS = tuple(
    {str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {str(Path(__file__).resolve().parents[2])}
)


@contextmanager
def _pauses_asked() -> Iterator[list[float]]:
    """While open, the seconds of every asyncio.sleep(seconds) the learner's own code awaits, in order.

    What the wrapper asks for, not what the clock saw: a constant or fixed pause shows whatever the machine's load.
    Pauses taken another way (time.sleep, `from asyncio import sleep`, a library's sleep) are not seen here; the
    clock still judges those (judge_bounded)."""
    asked: list[float] = []
    real = asyncio.sleep

    def sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        caller = str(Path(sys._getframe(1).f_code.co_filename).resolve())
        if not caller.startswith(_NOT_LEARNERS):
            asked.append(float(delay))
        return real(delay, *args, **kwargs)

    asyncio.sleep = sleep
    try:
        yield asked
    finally:
        asyncio.sleep = real


def _after(failed: float, rolled_back: list[float]) -> float:
    """The end of the first rollback after a failure (the failure itself when the wrapper never rolled back)."""
    return next((t for t in rolled_back if t >= failed), failed)


async def judge_bounded(run: Callable[..., Any], db: CheckDB) -> None:
    calls = _Calls()
    failed_at: list[float] = []

    async def always_conflicts(session: Any) -> None:
        if calls() > 20:
            raise RuntimeError("stopped by the check after 20 attempts")
        # A real 40001 from the server, every time.
        try:
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'simulated conflict' USING ERRCODE = '40001'; END $$")
            )
        finally:
            failed_at.append(time.perf_counter())

    with _pauses_asked() as first_pauses:
        _, exc = await _run_wrapper(run, db.Session, always_conflicts, attempts=3)
    expect(
        len(calls.times) <= 20,
        "work that always fails with 40001 was run more than 20 times with attempts=3: stop after `attempts`",
    )
    expect(
        len(calls.times) == 3,
        f"with attempts=3, work ran {len(calls.times)} times: `attempts` counts every run, the first included",
    )
    expect(
        isinstance(exc, DBAPIError) and error_code(exc) == "40001",
        f"after the last attempt the caller should get the database's error (40001), got "
        f"{'a normal return' if exc is None else describe(exc)}",
    )
    # The pause is timed from the end of the rollback that follows each failure to the next attempt, so the
    # rollback's round trip (tens of ms on a busy server) never passes for a pause. Five gaps (attempts=6): a
    # randomised pause that grows adds up to far more than 10 ms, however small its first draws, while a loop
    # without a pause only ever shows a little Python.
    calls.times.clear()
    failed_at.clear()
    with _rollbacks_timed(db) as rolled_back, _pauses_asked() as pauses:
        await _run_wrapper(run, db.Session, always_conflicts, attempts=6)
    gaps = [start - _after(failed, rolled_back) for failed, start in zip(failed_at, calls.times[1:], strict=False)]
    paused = sum(gaps)
    expect(
        len(gaps) == 5 and paused >= 0.010,
        f"between 6 attempts your wrapper waited {1000 * paused:.1f} ms in all after rolling back: "
        "the attempts followed each other without a pause. Wait a few milliseconds, more with each attempt and "
        "randomised, so the colliding transactions spread out",
    )
    shown = ", ".join(f"{1000 * p:.1f}" for p in pauses)
    expect(
        len(pauses) < 3 or len(set(pauses)) > 1,
        f"between 6 attempts your wrapper paused {shown} ms: the same pause every time. Transactions that collided "
        "once retry in step and collide again: draw each pause at random, from a range that grows with each attempt",
    )
    expect(
        not first_pauses or pauses[: len(first_pauses)] != first_pauses,
        f"your wrapper's pauses were {shown} ms, and the same again in another run: they are not random. Two "
        "transactions that collided would wait alike and collide again: draw each pause at random "
        "(random.uniform(0, base * 2 ** attempt))",
    )
