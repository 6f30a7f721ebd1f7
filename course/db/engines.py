"""Engines and sessions: the one place that turns a URL into a database connection."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from course.db.urls import async_url
from course.settings import Settings


def _enforce_sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    # SQLite ignores FOREIGN KEY clauses unless each connection switches them on.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(*, url: str | URL, echo: bool = False, **kwargs: object) -> AsyncEngine:
    """An AsyncEngine for url; on SQLite foreign keys are enforced on every connection."""
    engine = create_async_engine(async_url(url), echo=echo, **kwargs)
    if engine.dialect.name == "sqlite":
        # Events go on the sync engine: the async engine is a thin proxy around it.
        event.listen(engine.sync_engine, "connect", _enforce_sqlite_foreign_keys)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory every lesson uses."""
    # expire_on_commit=False keeps loaded attributes usable after commit, without a lazy load (which async forbids).
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(settings: Settings) -> bool:
    return settings.backend == "postgres"
