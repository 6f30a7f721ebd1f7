"""Engines and sessions: the one place that turns a URL into a database connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from course.db.limits import TimeLimit
from course.db.urls import async_url
from course.settings import Settings

# SQLite calls the progress handler every this many virtual-machine steps: well under a millisecond apart, and
# measured at no visible cost on a 100k-row join (1000 steps cost ~15%).
PROGRESS_STEPS = 10_000


def _enforce_sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    # SQLite ignores FOREIGN KEY clauses unless each connection switches them on.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _interrupt_sqlite_after(limit: TimeLimit) -> Any:
    def on_connect(dbapi_connection: Any, _record: object) -> None:
        # The handler must be set in aiosqlite's own thread, where the statements run: run_async goes there.
        dbapi_connection.run_async(lambda conn: conn.set_progress_handler(limit.sqlite_progress, PROGRESS_STEPS))

    return on_connect


def make_engine(
    *, url: str | URL, echo: bool = False, time_limit: TimeLimit | None = None, **kwargs: Any
) -> AsyncEngine:
    """An AsyncEngine for url; on SQLite foreign keys are enforced on every connection.

    With time_limit, statements stop when it expires (SQLite) or after its length (PostgreSQL statement_timeout),
    so a runaway query cannot outlive the check that started it.
    """
    url = async_url(url)
    if time_limit is not None and url.get_backend_name() == "postgresql":
        connect_args = dict(kwargs.pop("connect_args", {}))
        server_settings = dict(connect_args.get("server_settings", {}))
        server_settings["statement_timeout"] = time_limit.statement_timeout_ms
        connect_args["server_settings"] = server_settings
        kwargs["connect_args"] = connect_args
    engine = create_async_engine(url, echo=echo, **kwargs)
    if engine.dialect.name == "sqlite":
        # Events go on the sync engine: the async engine is a thin proxy around it.
        event.listen(engine.sync_engine, "connect", _enforce_sqlite_foreign_keys)
        if time_limit is not None:
            event.listen(engine.sync_engine, "connect", _interrupt_sqlite_after(time_limit))
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory every lesson uses."""
    # expire_on_commit=False keeps loaded attributes usable after commit, without a lazy load (which async forbids).
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(settings: Settings) -> bool:
    return settings.backend == "postgres"
