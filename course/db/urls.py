"""Database URLs: parse them with readable errors, and switch between the async and sync drivers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from course.errors import CourseError

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def parse_url(url: str | URL) -> URL:
    """Parse a database URL or raise a one-line CourseError that says what a good one looks like."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        raise CourseError(
            f"not a database URL: {str(url)[:60]!r} "
            "(expected e.g. sqlite+aiosqlite:///data/course.sqlite3 or postgresql+asyncpg://user@host/db)"
        ) from None
    if parsed.get_backend_name() not in ASYNC_DRIVERS:
        raise CourseError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    return parsed


def async_url(url: str | URL) -> URL:
    """The same database, with the async driver the course uses (aiosqlite or asyncpg)."""
    parsed = parse_url(url)
    return parsed.set(drivername=ASYNC_DRIVERS[parsed.get_backend_name()])


def sync_url(url: str | URL) -> URL:
    """The same database with a synchronous driver, for %sql, pandas and Alembic."""
    parsed = parse_url(url)
    return parsed.set(drivername=SYNC_DRIVERS[parsed.get_backend_name()])


def sqlite_path(url: str | URL) -> Path:
    """The file behind a SQLite URL."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        raise CourseError(f"not a SQLite file URL: {parsed.render_as_string(hide_password=True)}")
    return Path(parsed.database)


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite+aiosqlite", database=str(path))


def describe(url: str | URL) -> str:
    """The URL with any password hidden, for printing."""
    return parse_url(url).render_as_string(hide_password=True)
