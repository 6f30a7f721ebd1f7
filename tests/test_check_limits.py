"""A check's time limit stops the learner's runaway query itself, on both backends, and the ❌ names the limit."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from course import seed
from course.chapters.registry import Chapter, ExerciseSpec
from course.checks import base
from course.checks.base import CheckDB, ExerciseFailed, Registry, call_learner, expect
from course.checks.tasks import no_tasks_left
from course.settings import Settings

LIMIT = 2.0
# Three tables multiplied with no join condition: billions of rows even at the tiny scale.
RUNAWAY = "SELECT count(*) FROM posts AS a, posts AS b, comments AS c"

registry = Registry(
    Chapter(
        99,
        "limits",
        "Time limits",
        1,
        (ExerciseSpec("99.1", "Count", 1, ("count_rows",)), ExerciseSpec("99.2", "Wait", 1, ("wait",))),
    )
)


@registry.exercise("99.1", timeout=LIMIT)
async def _check_count(count_rows: Any, db: CheckDB) -> None:
    async with db.Session() as session:
        answer = await call_learner(count_rows, session)
    expect(answer == 42, f"expected 42, got {answer!r}")


# When the learner's query was sent: the limit is judged from there (making the copy is the course's time).
sent: list[float] = []


@registry.exercise("99.2", timeout=1.0)
async def _check_wait(wait: Any, db: CheckDB) -> None:
    await call_learner(wait)


async def runaway(session: Any) -> int:
    sent.append(time.monotonic())
    return (await session.execute(text(RUNAWAY))).scalar_one()


async def runaway_that_swallows_errors(session: Any) -> int:
    # A learner who catches everything must still get the time-limit verdict, not "expected 42".
    sent.append(time.monotonic())
    try:
        return (await session.execute(text(RUNAWAY))).scalar_one()
    except DBAPIError:
        return -1


async def waits_for_its_own_lock(session: Any) -> int:
    # Two sessions writing the same row: the second waits for a lock the first never gives up.
    sent.append(time.monotonic())
    await session.execute(text("UPDATE users SET name = name || '!' WHERE id = 1"))
    async with AsyncSession(session.bind) as other:
        await other.execute(text("UPDATE users SET name = name || '?' WHERE id = 1"))
    return 42


@pytest.fixture
async def seeded(tiny: Settings) -> Settings:
    # Build the seed first so the timing below measures the check, not seeding.
    await asyncio.to_thread(seed.ensure_seed, tiny, progress=False, announce=False)
    return tiny


@pytest.mark.parametrize("learner", [runaway, runaway_that_swallows_errors, waits_for_its_own_lock])
async def test_a_runaway_query_ends_within_the_limit_plus_two_seconds(seeded: Settings, learner: Any) -> None:
    sent.clear()
    started = time.monotonic()
    with pytest.raises(ExerciseFailed) as info:
        await registry.check("99.1", learner, settings=seeded)
    ended = time.monotonic()
    query = ended - sent[0]
    print(
        f"{seeded.backend}: {learner.__name__}: query stopped {query:.2f} s after it was sent, "
        f"check took {ended - started:.2f} s with its copy (limit {LIMIT:.0f} s)"
    )
    # Until the verdict: the copy has been dropped too by then, so nothing is left running.
    assert query < LIMIT + 2, f"the query ran {query:.1f} s"
    assert f"within {LIMIT:.0f} s" in str(info.value), str(info.value)


async def test_a_quick_answer_is_not_disturbed_by_the_limit(seeded: Settings) -> None:
    async def quick(session: Any) -> int:
        await session.execute(text("SELECT count(*) FROM posts"))
        return 42

    await registry.check("99.1", quick, settings=seeded)


async def test_the_cpu_guard_never_breaks_a_waiting_event_loop(seeded: Settings) -> None:
    # Cancelled at 1 s, this cleans up for 3 s more in a thread: the event loop waits in select() when the guard's
    # alarm comes (limit + 2 s). An exception raised there would break the loop instead of giving a verdict.
    async def slow_to_give_up() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.to_thread(time.sleep, 3)
            raise

    with pytest.raises(ExerciseFailed, match="within 1 s"):
        await registry.check("99.2", slow_to_give_up, settings=seeded)
    # The loop still runs tasks.
    assert await asyncio.wait_for(asyncio.sleep(0, result="alive"), 1) == "alive"


async def test_tasks_a_learner_leaves_running_are_cancelled_and_awaited() -> None:
    # A gather that stopped at its first error leaves its other tasks running, as exercise 6.3's shared session did:
    # they hung the event loop's closing once the check's engine was gone.
    ended: list[str] = []

    async def stays() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            ended.append("cleaned up")

    async def learner() -> None:
        async def fails() -> None:
            raise ValueError("one task failed")

        await asyncio.gather(fails(), stays())

    before = asyncio.all_tasks()
    async with no_tasks_left(seconds=2):
        with pytest.raises(base.LearnerCodeError):
            await base.call_learner(learner)
    assert ended == ["cleaned up"]
    assert asyncio.all_tasks() - before == set()
