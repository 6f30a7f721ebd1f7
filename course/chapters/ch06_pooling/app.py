"""The chapter's small FastAPI application: engine and session factory built at start-up, one session per request."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from course import db
from course.domain.models import Post, User

log = logging.getLogger("course.ch06.app")
RETRY = {"Retry-After": "1"}


async def session_per_request(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the endpoint returns, rolled back when it raises, always closed."""
    # `async with` closes the session (and hands its connection back to the pool) whatever happens.
    async with request.app.state.Session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def create_app(url: str, *, dependency: Callable[..., Any] | None = None, **engine_options: Any) -> FastAPI:
    """A FastAPI app on the database at url; engine_options go to the engine (pool_size, pool_pre_ping...)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built once per process, at start-up: the pool lives as long as the app, not as long as a request.
        engine = db.make_engine(url=url, **engine_options)
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _add_sleep_function)
        app.state.engine = engine
        app.state.Session = db.make_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="Chapter 6 pooling demo", lifespan=lifespan)
    # scope="function": the code after `yield` (the commit) runs before the response is sent, so a commit that
    # fails becomes an error answer. With the default scope the client would already have its 200.
    session_dep = Depends(dependency or session_per_request, scope="function")

    @app.get("/users/{user_id}")
    async def user_summary(user_id: int, session: AsyncSession = session_dep) -> dict[str, Any]:
        user = await session.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404, detail=f"no user {user_id}")
        posts = await session.scalar(select(func.count()).select_from(Post).where(Post.author_id == user_id))
        return {"id": user.id, "name": user.name, "posts": posts}

    @app.get("/users/{user_id}/report")
    async def slow_report(user_id: int, session: AsyncSession = session_dep, hold_ms: int = 20) -> dict[str, Any]:
        # Stands for a query that keeps its connection busy for hold_ms (a report, a slow join), the same on
        # every machine: the pool, not the shared CPU, decides how many such requests run at once.
        user = await session.get(User, user_id)
        dialect = session.get_bind().dialect.name
        await session.execute(text(_HOLD[dialect]), {"s": hold_ms / 1000})
        return {"id": user_id, "found": user is not None, "held_ms": hold_ms}

    @app.get("/health")
    async def health(session: AsyncSession = session_dep) -> dict[str, Any]:
        return {"database": await session.scalar(select(1))}

    @app.middleware("http")
    async def database_errors(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # A middleware, not an exception handler: it also sees errors from the dependency's commit, which runs
        # after the endpoint returned. Each becomes a quick, retryable 503 and one log line, never a traceback.
        try:
            return await call_next(request)
        except PoolTimeout as exc:
            # What an operator needs: which pool ran dry, how it is sized, and what it held at that moment.
            log.error("pool exhausted on %s: %s | %s", request.url.path, str(exc).split(" (")[0], _status(request))
            return JSONResponse({"detail": "database busy, try again"}, status_code=503, headers=RETRY)
        except DBAPIError as exc:
            # The driver's own exception (asyncpg's) sits behind SQLAlchemy's adapter class.
            cause = (exc.orig.__cause__ or exc.orig) if exc.orig is not None else exc
            reason = "connection lost" if exc.connection_invalidated else type(cause).__name__
            log.warning("database error on %s: %s", request.url.path, reason)
            return JSONResponse({"detail": "database unavailable"}, status_code=503, headers=RETRY)
        except OSError as exc:
            # asyncpg raises OSError (connection refused) when no new connection can be made at all.
            log.warning("cannot reach the database on %s: %s", request.url.path, type(exc).__name__)
            return JSONResponse({"detail": "database unreachable"}, status_code=503, headers=RETRY)

    return app


# A statement that holds its connection for :s seconds (SQLite gets sleep() from _add_sleep_function).
_HOLD = {"postgresql": "SELECT pg_sleep(:s)", "sqlite": "SELECT sleep(:s)"}


def _add_sleep_function(dbapi_connection: Any, _record: object) -> None:
    # aiosqlite runs each connection in its own thread, so sleeping there blocks only that connection.
    dbapi_connection.create_function("sleep", 1, time.sleep)


def _status(request: Request) -> str:
    return str(request.app.state.engine.pool.status())


@contextmanager
def captured_log() -> Iterator[list[str]]:
    """The app's log lines while the block runs, collected instead of printed (a load test writes hundreds)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    handler = Collect()
    log.addHandler(handler)
    try:
        yield lines
    finally:
        log.removeHandler(handler)
