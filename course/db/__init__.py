"""The database layer: URLs, engines and sessions, fresh copies of the seed, and the course's PostgreSQL."""

from course.db.engines import is_postgres, make_engine, make_sessionmaker
from course.db.limits import TimeLimit, limited_engine
from course.db.urls import (
    ASYNC_DRIVERS,
    SYNC_DRIVERS,
    async_url,
    describe,
    parse_url,
    sqlite_path,
    sqlite_url,
    sync_url,
)

__all__ = [
    "ASYNC_DRIVERS",
    "SYNC_DRIVERS",
    "TimeLimit",
    "async_url",
    "describe",
    "is_postgres",
    "limited_engine",
    "make_engine",
    "make_sessionmaker",
    "parse_url",
    "sqlite_path",
    "sqlite_url",
    "sync_url",
]
