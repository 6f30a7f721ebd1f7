"""Judging an engine against chapter 6's operations spec: limits and waits under exhaustion, killed connections, a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from course import db as course_db
from course.chapters.ch06_pooling.server import (
    other_clients,
    restart_reason,
    restart_server,
    terminate_connections,
)
from course.checks.base import CheckDB, call_learner, expect, fail

POOL_SIZE, MOST, WAIT = 5, 8, 2.0


async def _connect(engine: AsyncEngine, wait: float) -> AsyncConnection:
    return await asyncio.wait_for(engine.connect(), wait)


async def _requests_after(engine: AsyncEngine, n: int = 10) -> int:
    """How many of n concurrent one-statement requests failed."""

    async def one() -> None:
        async with engine.connect() as conn:
            await conn.execute(select(1))

    outcomes = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    return sum(1 for o in outcomes if isinstance(o, BaseException))


async def _judge_limits(engine: AsyncEngine, held: list[AsyncConnection]) -> None:
    for n in range(1, MOST + 1):
        try:
            # Not timed: a busy machine may take a while to open a connection; only the waits below are judged.
            held.append(await _connect(engine, WAIT + 8))
        except PoolTimeout:
            fail(
                f"only {n - 1} connections could be open at once; the spec allows {MOST} "
                f"({POOL_SIZE} kept open plus {MOST - POOL_SIZE} for bursts)"
            )
        except TimeoutError:
            fail(f"connection {n} was still waiting after {WAIT + 8:.0f} s although the spec allows {MOST}")
    # A burst waits a little: a connection handed back 0.5 s later must reach a request that is waiting for one.
    waiter = asyncio.create_task(_connect(engine, WAIT + 1.5))
    await asyncio.sleep(0.5)
    await held.pop().close()
    try:
        held.append(await waiter)
    except PoolTimeout:
        fail(
            f"with {MOST} connections in use a request gave up within 0.5 s; the spec says it waits up to "
            f"{WAIT:.0f} s for one"
        )
    began = time.perf_counter()
    try:
        held.append(await _connect(engine, WAIT + 1.5))
    except PoolTimeout:
        waited = time.perf_counter() - began
        expect(
            waited <= WAIT + 1.0,
            f"the request past the limit failed after {waited:.1f} s; the spec says within {WAIT:.0f} s",
        )
        return
    except TimeoutError:
        fail(
            f"a request past the limit of {MOST} connections was still waiting after {WAIT + 1.5:.1f} s: under "
            f"exhaustion it must fail with TimeoutError within {WAIT:.0f} s"
        )
    except DBAPIError as exc:
        fail(f"the server refused connection {MOST + 1}: {type(exc.orig).__name__}; the pool must stop at {MOST}")
    fail(f"the engine opened a connection past the spec's {MOST} at once: limit the pool and its overflow")


async def judge_app_engine(make_app_engine: Callable[..., Any], db: CheckDB) -> None:
    engine = await call_learner(make_app_engine, db.url)
    expect(
        isinstance(engine, AsyncEngine), f"make_app_engine returned {type(engine).__name__}, not an AsyncEngine"
    )
    expect(
        engine.url.database == course_db.parse_url(db.url).database,
        "the engine points at another database: build it on the url the function is given",
    )
    held: list[AsyncConnection] = []
    try:
        await _judge_limits(engine, held)
        for conn in held:
            await conn.close()
        held.clear()
        idle = engine.pool.checkedin()
        expect(
            idle == POOL_SIZE,
            f"after the burst the pool kept {idle} connections open; the spec keeps {POOL_SIZE} "
            "(the rest are overflow, closed when handed back)",
        )
        killed = await terminate_connections(db.url)
        expect(killed >= 1, "the pool held no connections to the database, so there was nothing to test")
        failed = await _requests_after(engine)
        expect(
            failed == 0,
            f"{failed} of 10 requests failed after the server closed the pool's {killed} connections: a pooled "
            "connection can be dead by the time it is checked out. Have the pool test it first",
        )
        reason = restart_reason(db.settings)
        if reason is None and (others := await other_clients(db.url)):
            # Class grading runs checks side by side on one server: a restart would fail the others' checks.
            reason = f"{others} other connection(s) are using this server (other checks running alongside?)"
        if reason is None:
            await restart_server(db.settings)
            failed = await _requests_after(engine)
            expect(
                failed == 0,
                f"{failed} of 10 requests failed once PostgreSQL was back after a restart: the pool handed out "
                "connections to the old server. Have the pool test each one before use",
            )
        else:
            print(f"(restart step not run: {reason})")
    finally:
        for conn in held:
            await conn.close()
        await engine.dispose()
