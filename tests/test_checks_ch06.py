"""Chapter 6 checks have teeth: the solution passes; the stub and plausible wrong answers fail with the right hint."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from course import db
from course.chapters.ch06_pooling.checks import check
from course.chapters.ch06_pooling.server import other_clients
from course.checks.base import ExerciseFailed
from course.db.postgres import admin as pg_admin
from course.domain.models import Post
from course.settings import Settings
from tests import teeth

SOURCE = "solutions/06_pooling.ipynb"
SOLVED = teeth.solved(SOURCE)

fails_with = partial(teeth.fails_with, check)


# --- 6.1 get_session -----------------------------------------------------------------------------------------------


async def session_commit_in_finally(request: Request):
    # Commits whatever happened: the partial write of a failed request lands in the database.
    session = request.app.state.Session()
    try:
        yield session
    finally:
        await session.commit()
        await session.close()


async def session_never_commits(request: Request):
    async with request.app.state.Session() as session:
        yield session


async def session_commits_before_yield(request: Request):
    async with request.app.state.Session() as session:
        await session.commit()
        yield session


async def session_swallows_errors(request: Request):
    async with request.app.state.Session() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()


async def session_never_closed(request: Request):
    # Commits and rolls back correctly, but the session itself is never closed.
    session = request.app.state.Session()
    try:
        yield session
        await session.commit()
    except Exception:
        await session.rollback()
        raise


_shared: dict[str, object] = {}


async def session_shared_by_requests(request: Request):
    # One session for the whole app, closed (and so reusable) after each request: fine one at a time only.
    if "session" not in _shared:
        _shared["session"] = request.app.state.Session()
    session = _shared["session"]
    try:
        yield session
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    finally:
        await session.close()


async def session_with_begin(request: Request):
    # Correct too: session.begin() commits on success and rolls back on an exception from the yield.
    async with request.app.state.Session() as session, session.begin():
        yield session


async def session_try_finally(request: Request):
    # Correct too: no context managers, every step spelled out.
    session = request.app.state.Session()
    try:
        yield session
    except BaseException:
        await session.rollback()
        raise
    else:
        await session.commit()
    finally:
        await session.close()


async def session_unannotated(request):
    # Right body, but without `request: Request` FastAPI takes `request` for a query parameter.
    async with request.app.state.Session() as session:
        yield session


async def test_6_1_other_correct_answers_pass(tiny: Settings) -> None:
    for right in (session_with_begin, session_try_finally):
        await check("6.1", right, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (session_commit_in_finally, "a request that raises must be rolled back"),
        (session_never_commits, "commit when the endpoint returns"),
        (session_commits_before_yield, "commit when the endpoint returns"),
        (session_swallows_errors, "let the exception through"),
        (session_never_closed, "session(s) were never closed"),
        (session_shared_by_requests, "each request needs its own session"),
        (session_unannotated, "keep the annotation `request: Request`"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_6_1_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    _shared.clear()
    await fails_with(tiny, "6.1", fragment, wrong)


# --- 6.2 make_app_engine (PostgreSQL only) -------------------------------------------------------------------------


def engine_without_pre_ping(url):
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_timeout=2)


def engine_default_timeout(url):
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_pre_ping=True)


def engine_keeps_eight(url):
    return create_async_engine(url, pool_size=8, max_overflow=0, pool_timeout=2, pool_pre_ping=True)


def engine_too_much_overflow(url):
    return create_async_engine(url, pool_size=5, max_overflow=10, pool_timeout=2, pool_pre_ping=True)


def engine_no_overflow(url):
    return create_async_engine(url, pool_size=5, max_overflow=0, pool_timeout=2, pool_pre_ping=True)


def engine_impatient(url):
    return create_async_engine(url, pool_size=5, max_overflow=3, pool_timeout=0.1, pool_pre_ping=True)


def engine_null_pool(url):
    return create_async_engine(url, poolclass=NullPool, pool_pre_ping=True)


def engine_other_database(url):
    return create_async_engine(
        db.parse_url(url).set(database="postgres"), pool_size=5, max_overflow=3, pool_timeout=2
    )


def engine_course_factory(url):
    # Correct too: the course's own factory, with a recycle age on top.
    return db.make_engine(
        url=url, pool_size=5, max_overflow=3, pool_timeout=2.0, pool_pre_ping=True, pool_recycle=1800
    )


@pytest.fixture
def pg_tiny(private_pg: Settings) -> Settings:
    # 6.2's check restarts the server: a server of this worker's own, never the one other tests are using.
    return private_pg


async def test_6_2_is_skipped_with_a_message_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    from course.settings import get_settings

    await check("6.2", SOLVED["make_app_engine"], settings=get_settings(scale="tiny", backend="sqlite"))
    out = capsys.readouterr().out
    assert "⏭ Exercise 6.2 skipped: this exercise runs on PostgreSQL only" in out
    assert "COURSE_BACKEND=postgres" in out


async def test_6_2_other_correct_answer_passes(pg_tiny: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    pg_admin_url = pg_admin.admin_url(pg_tiny)
    # Connections other tests left open (to any database but a new one) would rightly stop the restart.
    others = await other_clients(
        db.parse_url(pg_admin_url).set(database="course_no_such_db").render_as_string(False)
    )
    await check("6.2", engine_course_factory, settings=pg_tiny)
    out = capsys.readouterr().out
    assert "✅ Exercise 6.2 passed" in out
    if others == 0:
        # The server really was restarted.
        assert "restart step not run" not in out
    else:
        assert "other connection(s) are using this server" in out


async def test_6_2_does_not_restart_a_server_others_are_using(
    pg_tiny: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    pg_admin_url = pg_admin.admin_url(pg_tiny)
    other = db.make_engine(url=pg_admin_url)
    try:
        async with other.connect() as conn:
            await conn.execute(select(1))
            await check("6.2", SOLVED["make_app_engine"], settings=pg_tiny)
    finally:
        await other.dispose()
    out = capsys.readouterr().out
    assert "✅ Exercise 6.2 passed" in out
    assert "(restart step not run:" in out and "other connection(s) are using this server" in out


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (engine_without_pre_ping, "failed after the server closed the pool's"),
        (engine_default_timeout, "must fail with TimeoutError within 2 s"),
        (engine_keeps_eight, "the spec keeps 5"),
        (engine_too_much_overflow, "opened a connection past the spec's 8"),
        (engine_no_overflow, "only 5 connections could be open at once"),
        (engine_impatient, "gave up within 0.5 s"),
        (engine_null_pool, "opened a connection past the spec's 8"),
        (engine_other_database, "points at another database"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_6_2_wrong_answers_fail(pg_tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(pg_tiny, "6.2", fragment, wrong)


# --- 6.3 post_counts -----------------------------------------------------------------------------------------------


def _count(user_id: int):
    return select(func.count()).select_from(Post).where(Post.author_id == user_id)


async def counts_shared_session(Session, user_ids, *, limit=5):
    async with Session() as session:
        counts = await asyncio.gather(*(session.scalar(_count(u)) for u in user_ids))
    return dict(zip(user_ids, counts, strict=True))


async def counts_never_closed(Session, user_ids, *, limit=5):
    gate = asyncio.Semaphore(limit)

    async def one(user_id):
        async with gate:
            session = Session()
            return await session.scalar(_count(user_id))

    return dict(zip(user_ids, await asyncio.gather(*(one(u) for u in user_ids)), strict=True))


async def counts_one_at_a_time(Session, user_ids, *, limit=5):
    result = {}
    for user_id in user_ids:
        async with Session() as session:
            result[user_id] = await session.scalar(_count(user_id))
    return result


async def counts_unbounded(Session, user_ids, *, limit=5):
    async def one(user_id):
        async with Session() as session:
            return await session.scalar(_count(user_id))

    return dict(zip(user_ids, await asyncio.gather(*(one(u) for u in user_ids)), strict=True))


async def counts_group_by_only(Session, user_ids, *, limit=5):
    # One query: right numbers for users with posts, but the others are missing.
    async with Session() as session:
        rows = await session.execute(
            select(Post.author_id, func.count()).where(Post.author_id.in_(user_ids)).group_by(Post.author_id)
        )
        return dict(rows.all())


async def counts_one_query(Session, user_ids, *, limit=5):
    async with Session() as session:
        rows = dict(
            (
                await session.execute(
                    select(Post.author_id, func.count())
                    .where(Post.author_id.in_(user_ids))
                    .group_by(Post.author_id)
                )
            ).all()
        )
    return {u: rows.get(u, 0) for u in user_ids}


async def counts_live_only(Session, user_ids, *, limit=5):
    gate = asyncio.Semaphore(limit)

    async def one(user_id):
        async with gate, Session() as session:
            return await session.scalar(_count(user_id).where(Post.deleted_at.is_(None)))

    return dict(zip(user_ids, await asyncio.gather(*(one(u) for u in user_ids)), strict=True))


async def counts_task_group(Session, user_ids, *, limit=5):
    # Correct too: a TaskGroup, the semaphore taken before the session is opened.
    gate = asyncio.Semaphore(limit)
    result: dict[int, int] = {}

    async def one(user_id):
        async with gate, Session() as session:
            result[user_id] = await session.scalar(_count(user_id))

    async with asyncio.TaskGroup() as group:
        for user_id in user_ids:
            group.create_task(one(user_id))
    return result


async def counts_worker_tasks(Session, user_ids, *, limit=5):
    # Correct too: `limit` worker tasks, each with its own session, taking ids from a shared queue.
    queue = list(user_ids)
    result: dict[int, int] = {}

    async def worker():
        async with Session() as session:
            while queue:
                user_id = queue.pop()
                result[user_id] = await session.scalar(_count(user_id))

    await asyncio.gather(*(worker() for _ in range(limit)))
    return result


async def test_6_3_other_correct_answers_pass(tiny: Settings) -> None:
    for right in (counts_task_group, counts_worker_tasks):
        await check("6.3", right, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (counts_never_closed, "never closed"),
        (counts_one_at_a_time, "ran one at a time"),
        (counts_unbounded, "connections were in use at once with limit=3"),
        (counts_group_by_only, "every id asked for is a key"),
        (counts_one_query, "that is not a fan-out with one session per task"),
        (counts_live_only, "posts, post_counts said"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_6_3_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "6.3", fragment, wrong)


async def test_6_3_one_shared_session_fails(tiny: Settings) -> None:
    # SQLAlchemy usually refuses the concurrent use outright; where aiosqlite happens to queue the statements
    # instead, the session count tells.
    with pytest.raises(ExerciseFailed) as info:
        await check("6.3", counts_shared_session, settings=tiny)
    message = str(info.value)
    refused = "several tasks used one session at the same time" in message
    assert refused or (tiny.backend == "sqlite" and "came from 1 session" in message), message


# --- 6.4 pool_settings ---------------------------------------------------------------------------------------------


def _split(per_worker: int) -> dict[str, int]:
    return {"pool_size": per_worker - per_worker // 4, "max_overflow": per_worker // 4}


def settings_ignore_reserved(max_connections, workers, reserved=10):
    return _split(max_connections // workers)


def settings_ignore_workers(max_connections, workers, reserved=10):
    return _split(max_connections - reserved)


def settings_round_up(max_connections, workers, reserved=10):
    per_worker = -(-(max_connections - reserved) // workers)
    if per_worker < 1:
        raise ValueError("no room")
    return _split(per_worker)


def settings_third_overflow(max_connections, workers, reserved=10):
    per_worker = (max_connections - reserved) // workers
    if per_worker < 1:
        raise ValueError("no room")
    return {"pool_size": per_worker - per_worker // 3, "max_overflow": per_worker // 3}


def settings_half_the_room(max_connections, workers, reserved=10):
    per_worker = (max_connections - reserved) // workers // 2
    if per_worker < 1:
        raise ValueError("no room")
    return _split(per_worker)


def settings_never_refuse(max_connections, workers, reserved=10):
    return _split(max(1, (max_connections - reserved) // workers))


def settings_wrong_error(max_connections, workers, reserved=10):
    per_worker = (max_connections - reserved) // workers
    if per_worker < 1:
        raise RuntimeError("no room")
    return _split(per_worker)


def settings_unlimited_overflow(max_connections, workers, reserved=10):
    return {"pool_size": (max_connections - reserved) // workers, "max_overflow": -1}


def settings_tuple(max_connections, workers, reserved=10):
    per_worker = (max_connections - reserved) // workers
    return per_worker - per_worker // 4, per_worker // 4


def settings_divmod(max_connections, workers, reserved=10):
    # Correct too.
    per_worker, _ = divmod(max_connections - reserved, workers)
    if per_worker <= 0:
        raise ValueError(f"{workers} workers do not fit")
    overflow, _ = divmod(per_worker, 4)
    return {"max_overflow": overflow, "pool_size": per_worker - overflow}


async def test_6_4_other_correct_answer_passes(tiny: Settings) -> None:
    await check("6.4", settings_divmod, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (settings_ignore_reserved, "more than max_connections − reserved"),
        (settings_ignore_workers, "more than max_connections − reserved"),
        (settings_round_up, "more than max_connections − reserved"),
        (settings_third_overflow, "a quarter of"),
        (settings_half_the_room, "give every worker the largest total that fits"),
        (settings_never_refuse, "raise ValueError"),
        (settings_wrong_error, "it raised RuntimeError"),
        (settings_unlimited_overflow, "-1 means no limit"),
        (settings_tuple, "return a dict with pool_size and max_overflow"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_6_4_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "6.4", fragment, wrong)
