"""Checks for chapter 6 (pooling): they mount, load, exhaust and restart for real, and judge what the pool saw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IllegalStateChangeError, InvalidRequestError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from course import db as course_db
from course.chapters.ch06_pooling.dependency import judge_dependency
from course.chapters.ch06_pooling.engine_spec import judge_app_engine
from course.chapters.ch06_pooling.watch import SessionLedger, hold_each_statement, tracked_sessionmaker, watch_pool
from course.chapters.registry import chapter
from course.checks.base import CheckDB, LearnerCodeError, Registry, call_learner, expect, fail
from course.checks.tasks import no_tasks_left
from course.domain.models import Post, User

registry = Registry(chapter(6))
check = registry.check


# --- 6.1 the request dependency ------------------------------------------------------------------------------------


@registry.exercise("6.1", timeout=60)
async def _check_get_session(get_session: Callable[..., Any], db: CheckDB) -> None:
    await judge_dependency(get_session, db)


# --- 6.2 an engine to a written spec (PostgreSQL only) -------------------------------------------------------------


@registry.exercise("6.2", timeout=90)
async def _check_app_engine(make_app_engine: Callable[..., Any], db: CheckDB) -> None:
    await judge_app_engine(make_app_engine, db)


# --- 6.3 fan-out with one session per task -------------------------------------------------------------------------

FAN_LIMIT = 3
FAN_WAIT = 5.0
FAN_HOLD = 0.03  # seconds each statement keeps its connection: overlap no longer depends on the machine's speed


@registry.exercise("6.3", timeout=60)
async def _check_post_counts(post_counts: Callable[..., Any], db: CheckDB) -> None:
    async with db.Session() as session:
        counts = dict((await session.execute(select(Post.author_id, func.count()).group_by(Post.author_id))).all())
        users = list((await session.scalars(select(User.id).order_by(User.id))).all())
    busy = sorted(counts, key=lambda u: -counts[u])[:10]
    quiet = [u for u in users if u not in counts][:5]
    unknown = max(users) + 1000
    ids = [*busy, *quiet, *users[20:35], unknown]
    want = {u: counts.get(u, 0) for u in ids}
    # Its own engine, so a pool run dry by unclosed sessions fails in seconds rather than after 30.
    engine = course_db.make_engine(url=db.url, pool_size=5, max_overflow=10, pool_timeout=FAN_WAIT)
    try:
        await _judge_fan_out(post_counts, engine, ids, want)
    finally:
        await engine.dispose()


async def _judge_fan_out(post_counts: Callable[..., Any], engine: AsyncEngine, ids: list[int], want: dict) -> None:
    Session, ledger = tracked_sessionmaker(engine)
    try:
        await _judge_counts(post_counts, Session, ledger, engine, ids, want)
    finally:
        await ledger.close_all()


async def _judge_counts(
    post_counts: Callable[..., Any],
    Session: async_sessionmaker[AsyncSession],
    ledger: SessionLedger,
    engine: AsyncEngine,
    ids: list[int],
    want: dict[int, int],
) -> None:
    with watch_pool(engine) as pool, hold_each_statement(engine, FAN_HOLD):
        try:
            async with no_tasks_left():
                got = await call_learner(post_counts, Session, list(ids), limit=FAN_LIMIT)
        except LearnerCodeError as exc:
            if _shared_session_error(exc.original):
                fail(
                    "several tasks used one session at the same time, and SQLAlchemy stopped them: a session "
                    "(and its connection) serves one task at a time. Give each task its own session"
                )
            if isinstance(exc.original, PoolTimeout) and ledger.unclosed:
                fail(
                    f"the pool ran out of connections (TimeoutError after {FAN_WAIT:.0f} s) while {ledger.unclosed} "
                    "sessions were never closed: each keeps its connection. Close each task's session when the "
                    "task ends"
                )
            raise
    expect(isinstance(got, dict), f"post_counts returned {type(got).__name__}, not a dict of user id → count")
    missing = [u for u in ids if u not in got]
    expect(
        not missing,
        f"no count for user {missing[0] if missing else ''}: every id asked for is a key (0 when no posts)",
    )
    wrong = next((u for u in ids if got[u] != want[u]), None)
    if wrong is not None:
        fail(f"user {wrong} has {want.get(wrong)} posts, post_counts said {got.get(wrong)}")
    expect(
        len(ledger.made) >= 2,
        f"{len(ids)} counts came from {len(ledger.made)} session: that is not a fan-out with one session per task",
    )
    expect(
        ledger.unclosed == 0,
        f"{ledger.unclosed} of {len(ledger.made)} sessions were never closed; each keeps its connection checked out "
        f"(pool.checkedout() = {engine.pool.checkedout()}). Close each task's session when the task ends",  # type: ignore[attr-defined]
    )
    expect(
        pool.most_out >= 2,
        "the queries ran one at a time (never two connections in use at once): run the tasks concurrently",
    )
    expect(
        pool.most_out <= FAN_LIMIT,
        f"{pool.most_out} connections were in use at once with limit={FAN_LIMIT}: bound how many tasks query at once",
    )


def _shared_session_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    if isinstance(exc, IllegalStateChangeError):
        return True
    if isinstance(exc, InvalidRequestError) and "concurrent" in text:
        return True
    # asyncpg's own guard when two statements share a connection.
    return "another operation is in progress" in text


# --- 6.4 a pool that fits the server -------------------------------------------------------------------------------

CASES = [(100, 4, 10), (100, 1, 10), (20, 3, 3), (9, 4, 3), (500, 7, 13), (61, 6, 1), (30, 2, 0), (14, 4, 10)]
NO_ROOM = [(10, 4, 10), (12, 5, 8)]


def _expected_split(max_connections: int, workers: int, reserved: int) -> tuple[int, int]:
    per_worker = (max_connections - reserved) // workers
    return per_worker - per_worker // 4, per_worker // 4


@registry.exercise("6.4")
async def _check_pool_settings(pool_settings: Callable[..., Any], db: CheckDB) -> None:
    for max_connections, workers, reserved in CASES:
        where = f"max_connections={max_connections}, workers={workers}, reserved={reserved}"
        got = await call_learner(pool_settings, max_connections, workers, reserved=reserved)
        expect(
            isinstance(got, dict) and {"pool_size", "max_overflow"} <= set(got),
            f"for {where} it returned {got!r}: return a dict with pool_size and max_overflow",
        )
        size, overflow = got["pool_size"], got["max_overflow"]
        expect(
            isinstance(size, int) and isinstance(overflow, int) and size >= 1 and overflow >= 0,
            f"for {where}: pool_size={size!r}, max_overflow={overflow!r}; both whole numbers, pool_size at "
            "least 1 and max_overflow not negative (-1 means no limit at all)",
        )
        budget = max_connections - reserved
        expect(
            workers * (size + overflow) <= budget,
            f"for {where}: {workers} workers × ({size} + {overflow}) = {workers * (size + overflow)} connections at "
            f"full overflow, more than max_connections − reserved = {budget}; the server would refuse the rest",
        )
        want_size, want_overflow = _expected_split(max_connections, workers, reserved)
        expect(
            size + overflow == want_size + want_overflow,
            f"for {where} each worker may have {want_size + want_overflow} connections, it got {size + overflow}: "
            "give every worker the largest total that fits",
        )
        expect(
            overflow == want_overflow,
            f"for {where}: max_overflow={overflow}, but a quarter of {size + overflow} (rounded down) is "
            f"{want_overflow}",
        )
    for max_connections, workers, reserved in NO_ROOM:
        where = f"max_connections={max_connections}, workers={workers}, reserved={reserved}"
        try:
            got = await call_learner(pool_settings, max_connections, workers, reserved=reserved)
        except LearnerCodeError as exc:
            expect(
                isinstance(exc.original, ValueError),
                f"for {where} it raised {type(exc.original).__name__}; raise ValueError when no connection fits",
            )
            continue
        fail(f"for {where} not even one connection per worker fits, but it returned {got!r}: raise ValueError")
    # The numbers must be ones SQLAlchemy accepts: build a pool with the first case's settings.
    first = await call_learner(pool_settings, *CASES[0][:2], reserved=CASES[0][2])
    engine = course_db.make_engine(url=db.url, **first)
    try:
        async with engine.connect() as conn:
            await conn.execute(select(1))
    finally:
        await engine.dispose()
