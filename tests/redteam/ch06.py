"""Chapter 6 answers written blind (without reading the checks): per-request sessions, pool settings, fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from course.domain.models import Post
from tests.redteam import Case

ONLY_ON: dict[str, str] = {}

# ---------------------------------------------------------------- 6.1 get_session: right answers


async def get_session_async_with(request: Request) -> AsyncIterator[AsyncSession]:
    """async with closes; commit after the yield, rollback and re-raise on any error."""
    async with request.app.state.Session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_session_explicit(request: Request) -> AsyncIterator[AsyncSession]:
    """Explicit try/except/finally with close in finally."""
    factory = request.app.state.Session
    session = factory()
    try:
        yield session
    except Exception:
        await session.rollback()
        raise
    else:
        await session.commit()
    finally:
        await session.close()


async def get_session_begin_block(request: Request) -> AsyncIterator[AsyncSession]:
    """session.begin() commits on a normal exit and rolls back when the endpoint's exception comes out of yield."""
    async with request.app.state.Session() as session, session.begin():
        yield session


# ---------------------------------------------------------------- 6.1 get_session: wrong answers

_SHARED: dict[str, Any] = {}


async def get_session_shared(request: Request) -> AsyncIterator[AsyncSession]:
    """One session for the whole application, made on the first request: concurrent requests share it."""
    if "session" not in _SHARED or _SHARED.get("factory") is not request.app.state.Session:
        _SHARED["factory"] = request.app.state.Session
        _SHARED["session"] = request.app.state.Session()
    session = _SHARED["session"]
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


async def get_session_no_commit(request: Request) -> AsyncIterator[AsyncSession]:
    """Closes and rolls back correctly but never commits."""
    async with request.app.state.Session() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


async def get_session_commit_in_finally(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits in finally: an endpoint that wrote and then raised gets its write committed."""
    async with request.app.state.Session() as session:
        try:
            yield session
        finally:
            await session.commit()


async def get_session_swallows(request: Request) -> AsyncIterator[AsyncSession]:
    """Rolls back on error but does not re-raise: the exception stops in the dependency."""
    async with request.app.state.Session() as session:
        try:
            yield session
            await session.commit()
        except Exception:  # noqa: BLE001 - the point of this wrong answer
            await session.rollback()


async def get_session_never_closes(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits and rolls back, but never closes the session: its connection stays checked out."""
    session = request.app.state.Session()
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


async def get_session_closes_on_success_only(request: Request) -> AsyncIterator[AsyncSession]:
    """Closes after a commit, not after a rollback."""
    session = request.app.state.Session()
    try:
        yield session
        await session.commit()
        await session.close()
    except BaseException:
        await session.rollback()
        raise


async def get_session_commit_first(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits before the endpoint runs, so the endpoint's writes are never committed."""
    async with request.app.state.Session() as session:
        await session.commit()
        yield session


async def get_session_http_only(request: Request) -> AsyncIterator[AsyncSession]:
    """Rolls back only an HTTPException; any other error commits what was written before it."""
    session = request.app.state.Session()
    try:
        yield session
        await session.commit()
    except HTTPException:
        await session.rollback()
        raise
    except Exception:
        await session.commit()
        raise
    finally:
        await session.close()


# ---------------------------------------------------------------- 6.2 make_app_engine: right answers


def engine_spec(url: str) -> AsyncEngine:
    """5 + 3 overflow, 2 s timeout, pre-ping."""
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_timeout=2, pool_pre_ping=True)


def engine_spec_lifo_recycle(url: str) -> AsyncEngine:
    """The same spec with an explicit pool class, LIFO and recycling (extras that change nothing the spec says)."""
    return create_async_engine(
        url,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=5,
        max_overflow=3,
        pool_timeout=2.0,
        pool_pre_ping=True,
        pool_use_lifo=True,
        pool_recycle=1800,
    )


# ---------------------------------------------------------------- 6.2 make_app_engine: wrong answers


def engine_eight_steady(url: str) -> AsyncEngine:
    """8 stay open (pool_size=8, no overflow): 'of which 5 stay open between bursts'."""
    return create_async_engine(url, pool_size=8, max_overflow=0, pool_timeout=2, pool_pre_ping=True)


def engine_overflow_eight(url: str) -> AsyncEngine:
    """5 + 8: up to 13 connections."""
    return create_async_engine(url, pool_size=5, max_overflow=8, pool_timeout=2, pool_pre_ping=True)


def engine_no_pre_ping(url: str) -> AsyncEngine:
    """No pre-ping: the first request after a restart gets a dead connection."""
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_timeout=2)


def engine_default_timeout(url: str) -> AsyncEngine:
    """pool_timeout left at 30 s: a request hangs instead of failing fast."""
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_pre_ping=True)


def engine_no_pool(url: str) -> AsyncEngine:
    """NullPool: no limit at all on connections."""
    return create_async_engine(url, poolclass=NullPool, pool_pre_ping=True)


def engine_impatient(url: str) -> AsyncEngine:
    """Waits 0.1 s instead of 2: a request fails although a connection comes back within the 2 s."""
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_timeout=0.1, pool_pre_ping=True)


def engine_unbounded_overflow(url: str) -> AsyncEngine:
    """max_overflow=-1: no upper bound on connections."""
    return create_async_engine(url, pool_size=5, max_overflow=-1, pool_timeout=2, pool_pre_ping=True)


# ---------------------------------------------------------------- 6.3 post_counts: right answers


async def post_counts_semaphore(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Semaphore around each task's own session, gather."""
    gate = asyncio.Semaphore(limit)

    async def one(user_id: int) -> tuple[int, int]:
        async with gate, Session() as session:
            count = await session.scalar(select(func.count()).select_from(Post).where(Post.author_id == user_id))
            return user_id, int(count or 0)

    return dict(await asyncio.gather(*(one(u) for u in user_ids)))


async def post_counts_workers(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """`limit` worker tasks pulling ids from a queue; a fresh session per id; raw text() query."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for user_id in dict.fromkeys(user_ids):
        queue.put_nowait(user_id)
    counts: dict[int, int] = {}

    async def worker() -> None:
        while True:
            try:
                user_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            async with Session() as session:
                result = await session.execute(
                    text("SELECT count(*) FROM posts WHERE author_id = :u"), {"u": user_id}
                )
                counts[user_id] = result.scalar_one()

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, limit)):
            group.create_task(worker())
    return {u: counts.get(u, 0) for u in user_ids}


# ---------------------------------------------------------------- 6.3 post_counts: wrong answers


async def _count(session: AsyncSession, user_id: int) -> int:
    return int(await session.scalar(select(func.count(Post.id)).where(Post.author_id == user_id)) or 0)


async def post_counts_shared_session(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """One session shared by every task."""
    gate = asyncio.Semaphore(limit)
    async with Session() as session:

        async def one(user_id: int) -> int:
            async with gate:
                return await _count(session, user_id)

        counts = await asyncio.gather(*(one(u) for u in user_ids))
    return dict(zip(user_ids, counts, strict=True))


async def post_counts_unbounded(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Own session per task, but all at once: no limit."""

    async def one(user_id: int) -> int:
        async with Session() as session:
            return await _count(session, user_id)

    counts = await asyncio.gather(*(one(u) for u in user_ids))
    return dict(zip(user_ids, counts, strict=True))


async def post_counts_sequential(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """One query after another: not concurrent."""
    result = {}
    for user_id in user_ids:
        async with Session() as session:
            result[user_id] = await _count(session, user_id)
    return result


async def post_counts_missing_zeros(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Leaves out users with no posts (and unknown ids)."""
    gate = asyncio.Semaphore(limit)

    async def one(user_id: int) -> tuple[int, int]:
        async with gate, Session() as session:
            return user_id, await _count(session, user_id)

    return {u: c for u, c in await asyncio.gather(*(one(u) for u in user_ids)) if c}


async def post_counts_hides_deleted(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Leaves soft-deleted posts out of the count."""
    gate = asyncio.Semaphore(limit)

    async def one(user_id: int) -> tuple[int, int]:
        async with gate, Session() as session:
            count = await session.scalar(
                select(func.count(Post.id)).where(Post.author_id == user_id, Post.deleted_at.is_(None))
            )
            return user_id, int(count or 0)

    return dict(await asyncio.gather(*(one(u) for u in user_ids)))


async def post_counts_fixed_five(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Ignores the limit argument: always 5 at once."""
    gate = asyncio.Semaphore(5)

    async def one(user_id: int) -> tuple[int, int]:
        async with gate, Session() as session:
            return user_id, await _count(session, user_id)

    return dict(await asyncio.gather(*(one(u) for u in user_ids)))


async def post_counts_never_closed(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Own session per task, bounded, but never closed: the connections stay checked out."""
    gate = asyncio.Semaphore(limit)

    async def one(user_id: int) -> tuple[int, int]:
        async with gate:
            session = Session()
            return user_id, await _count(session, user_id)

    return dict(await asyncio.gather(*(one(u) for u in user_ids)))


async def post_counts_group_by(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """One GROUP BY for everybody: 'Run one small query per user, concurrently' is not followed."""
    async with Session() as session:
        rows = await session.execute(
            select(Post.author_id, func.count(Post.id))
            .where(Post.author_id.in_(user_ids))
            .group_by(Post.author_id)
        )
        found = dict(rows.all())
    return {u: found.get(u, 0) for u in user_ids}


async def post_counts_one_too_many(Session, user_ids, *, limit=5):  # noqa: ANN001, ANN201
    """Off by one: limit + 1 at once."""
    gate = asyncio.Semaphore(limit + 1)

    async def one(user_id: int) -> tuple[int, int]:
        async with gate, Session() as session:
            return user_id, await _count(session, user_id)

    return dict(await asyncio.gather(*(one(u) for u in user_ids)))


# ---------------------------------------------------------------- 6.4 pool_settings: right answers


def pool_settings_floor(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    total = (max_connections - reserved) // workers
    if total < 1:
        raise ValueError("not even one connection per worker fits")
    overflow = total // 4
    return {"pool_size": total - overflow, "max_overflow": overflow}


def pool_settings_divmod(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    """divmod twice; an explicit guard for non-positive workers too."""
    if workers <= 0:
        raise ValueError("workers must be positive")
    budget = max_connections - reserved
    if budget < workers:
        raise ValueError(f"{budget} connections cannot give {workers} workers one each")
    total, _ = divmod(budget, workers)
    overflow, _ = divmod(total, 4)
    return {"max_overflow": overflow, "pool_size": total - overflow}


# ---------------------------------------------------------------- 6.4 pool_settings: wrong answers


def pool_settings_ignores_reserved(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    total = max_connections // workers
    if total < 1:
        raise ValueError("too few")
    return {"pool_size": total - total // 4, "max_overflow": total // 4}


def pool_settings_fixed_reserve(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    total = (max_connections - 10) // workers
    if total < 1:
        raise ValueError("too few")
    return {"pool_size": total - total // 4, "max_overflow": total // 4}


def pool_settings_overflow_rounded_up(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    total = (max_connections - reserved) // workers
    if total < 1:
        raise ValueError("too few")
    overflow = -(-total // 4)
    return {"pool_size": total - overflow, "max_overflow": overflow}


def pool_settings_float(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    total = (max_connections - reserved) / workers
    if total < 1:
        raise ValueError("too few")
    return {"pool_size": total * 3 / 4, "max_overflow": total / 4}  # type: ignore[dict-item]


def pool_settings_overflow_on_top(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    """pool_size is the whole share and the overflow comes on top of it."""
    total = (max_connections - reserved) // workers
    if total < 1:
        raise ValueError("too few")
    return {"pool_size": total, "max_overflow": total // 4}


def pool_settings_no_error(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    """Returns zeros instead of raising when nothing fits."""
    total = max(0, (max_connections - reserved) // workers)
    return {"pool_size": total - total // 4, "max_overflow": total // 4}


def pool_settings_error_below_zero(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    """Raises only when the budget is negative: 0 connections per worker passes."""
    total = (max_connections - reserved) // workers
    if total < 0:
        raise ValueError("too few")
    return {"pool_size": total - total // 4, "max_overflow": total // 4}


def pool_settings_rounded(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    """round() instead of flooring the share: can exceed the budget."""
    total = round((max_connections - reserved) / workers)
    if total < 1:
        raise ValueError("too few")
    return {"pool_size": total - total // 4, "max_overflow": total // 4}


def pool_settings_seed_shaped(max_connections: int, workers: int, reserved: int = 10) -> dict[str, int]:
    """Hard-codes the example of the docs (100 connections, 4 workers) and guesses otherwise."""
    if (max_connections, workers, reserved) == (100, 4, 10):
        return {"pool_size": 17, "max_overflow": 5}
    return {"pool_size": 5, "max_overflow": 2}


CASES = [
    # 6.1
    Case("6.1", (get_session_async_with,), "pass", "async with + commit after yield + rollback/raise"),
    Case("6.1", (get_session_explicit,), "pass", "try/except/else/finally with close in finally"),
    Case("6.1", (get_session_begin_block,), "pass", "session.begin() commits or rolls back around the yield"),
    Case("6.1", (get_session_shared,), "fail", "'a session of its own ... (concurrent requests never share one)'"),
    Case("6.1", (get_session_no_commit,), "fail", "'commit when the endpoint returns normally'"),
    Case(
        "6.1",
        (get_session_commit_in_finally,),
        "fail",
        "'roll back when the endpoint raises ... even after it has written'",
    ),
    Case("6.1", (get_session_swallows,), "fail", "'and let the exception carry on, so FastAPI still answers 409'"),
    Case("6.1", (get_session_never_closes,), "fail", "'always close the session ... pool.checkedout() back to 0'"),
    Case("6.1", (get_session_closes_on_success_only,), "fail", "'always close': not after an error"),
    Case(
        "6.1", (get_session_commit_first,), "fail", "'commit when the endpoint returns' (commits before it runs)"
    ),
    Case("6.1", (get_session_http_only,), "fail", "'an HTTPException or any other error' must roll back"),
    # 6.2 (PostgreSQL only: the registry skips it on SQLite)
    Case("6.2", (engine_spec,), "pass", "5 + 3, 2 s, pre-ping"),
    Case("6.2", (engine_spec_lifo_recycle,), "pass", "same spec with harmless extras"),
    Case("6.2", (engine_eight_steady,), "fail", "'of which 5 stay open between bursts'"),
    Case("6.2", (engine_overflow_eight,), "fail", "'at most 8 connections'"),
    Case("6.2", (engine_no_pre_ping,), "fail", "'after PostgreSQL restarts ... no request fails'"),
    Case("6.2", (engine_default_timeout,), "fail", "'waits up to 2 seconds ... then fails'"),
    Case("6.2", (engine_no_pool,), "fail", "'at most 8 connections' (NullPool)"),
    Case("6.2", (engine_impatient,), "fail", "'waits up to 2 seconds for one' (0.1 s)"),
    Case("6.2", (engine_unbounded_overflow,), "fail", "'at most 8 connections' (max_overflow=-1)"),
    # 6.3
    Case("6.3", (post_counts_semaphore,), "pass", "semaphore + gather, a session per task"),
    Case(
        "6.3", (post_counts_workers,), "pass", "limit workers over a queue, TaskGroup, text(), duplicates folded"
    ),
    Case("6.3", (post_counts_shared_session,), "fail", "'give each task its own session'"),
    Case("6.3", (post_counts_unbounded,), "fail", "'never more than limit at once'"),
    Case("6.3", (post_counts_sequential,), "fail", "'concurrently'"),
    Case("6.3", (post_counts_missing_zeros,), "fail", "'every id asked for as a key (0 for ...)'"),
    Case("6.3", (post_counts_hides_deleted,), "fail", "'(soft-deleted ones included)'"),
    Case("6.3", (post_counts_fixed_five,), "fail", "ignores the limit argument"),
    Case("6.3", (post_counts_never_closed,), "fail", "'and close it when the task is done'"),
    Case("6.3", (post_counts_group_by,), "fail", "'Run one small query per user, concurrently'"),
    Case("6.3", (post_counts_one_too_many,), "fail", "'never more than limit at once' (limit + 1)"),
    # 6.4
    Case("6.4", (pool_settings_floor,), "pass", "floor share, quarter overflow"),
    Case("6.4", (pool_settings_divmod,), "pass", "divmod, extra guard on workers"),
    Case("6.4", (pool_settings_ignores_reserved,), "fail", "'max_connections - reserved'"),
    Case("6.4", (pool_settings_fixed_reserve,), "fail", "ignores the reserved argument"),
    Case("6.4", (pool_settings_overflow_rounded_up,), "fail", "'a quarter of that total, rounded down'"),
    Case("6.4", (pool_settings_float,), "fail", "float sizes, not whole connections"),
    Case("6.4", (pool_settings_overflow_on_top,), "fail", "'pool_size is the rest' / never more than the budget"),
    Case(
        "6.4",
        (pool_settings_no_error,),
        "fail",
        "'when not even one connection per worker fits, raise ValueError'",
    ),
    Case("6.4", (pool_settings_error_below_zero,), "fail", "'not even one' (0 per worker) must raise"),
    Case("6.4", (pool_settings_rounded,), "fail", "'never need more than max_connections - reserved' (round up)"),
    Case("6.4", (pool_settings_seed_shaped,), "fail", "hard-coded for one example"),
]

# A piece of the ❌ message each `fail` case must give (chosen from the messages of the blind run, reviewed; none
# where the flaw can show in more than one way under concurrency).
FRAGMENTS: dict[str, str] = {
    "6.1-fail-get_session_closes_on_success_only": "were never closed: close the session when the request ends,",
    "6.1-fail-get_session_commit_first": "a request that succeeded wrote a tag, but it is not in the",
    "6.1-fail-get_session_commit_in_finally": "and the tag was committed: a request that raises must be",
    "6.1-fail-get_session_http_only": "an endpoint wrote a tag and then crashed, and the tag was",
    "6.1-fail-get_session_never_closes": "were never closed: close the session when the request ends,",
    "6.1-fail-get_session_no_commit": "a request that succeeded wrote a tag, but it is not in the",
    "6.1-fail-get_session_shared": "were never closed: close the session when the request ends,",
    "6.1-fail-get_session_swallows": "let the exception through",
    "6.2-fail-engine_default_timeout": "must fail with TimeoutError within 2 s",
    "6.2-fail-engine_eight_steady": "the spec keeps 5",
    "6.2-fail-engine_impatient": "waits up to 2 s for one",
    "6.2-fail-engine_no_pool": "past the spec's 8 at once",
    "6.2-fail-engine_no_pre_ping": "Have the pool test it first",
    "6.2-fail-engine_overflow_eight": "past the spec's 8 at once",
    "6.2-fail-engine_unbounded_overflow": "past the spec's 8 at once",
    "6.3-fail-post_counts_fixed_five": "bound how many tasks query at once",
    "6.3-fail-post_counts_group_by": "session: that is not a fan-out with one session per task",
    "6.3-fail-post_counts_hides_deleted": "posts, post_counts said",
    "6.3-fail-post_counts_missing_zeros": "every id asked for is a key",
    "6.3-fail-post_counts_never_closed": "sessions were never closed: each keeps its connection.",
    "6.3-fail-post_counts_one_too_many": "4 connections were in use at once with limit=3",
    "6.3-fail-post_counts_sequential": "never two connections in use at once",
    "6.3-fail-post_counts_shared_session": "several tasks used one session at the same time, and",
    "6.3-fail-post_counts_unbounded": "bound how many tasks query at once",
    "6.4-fail-pool_settings_error_below_zero": "not even one connection per worker fits, but it returned",
    "6.4-fail-pool_settings_fixed_reserve": "give every worker the largest total that fits",
    "6.4-fail-pool_settings_float": "both whole numbers, pool_size at least",
    "6.4-fail-pool_settings_ignores_reserved": "connections at full overflow, more than max_connections −",
    "6.4-fail-pool_settings_no_error": "not even one connection per worker fits, but it returned",
    "6.4-fail-pool_settings_overflow_on_top": "connections at full overflow, more than max_connections −",
    "6.4-fail-pool_settings_overflow_rounded_up": "(rounded down) is",
    "6.4-fail-pool_settings_rounded": "connections at full overflow, more than max_connections −",
    "6.4-fail-pool_settings_seed_shaped": "give every worker the largest total that fits",
}
CASES = [replace(case, fragment=FRAGMENTS.get(case.id, "")) for case in CASES]
