"""Server-level PostgreSQL chores: connecting with readable errors, creating, copying and dropping databases."""

from __future__ import annotations

import os
import socket

import asyncpg
from sqlalchemy.engine import URL

from course import db
from course.errors import CourseError
from course.settings import Settings


def admin_url(settings: Settings) -> str:
    """A URL to the server's maintenance database, from COURSE_DATABASE_URL or the course's own server."""
    if settings.database_url and db.parse_url(settings.database_url).get_backend_name() == "postgresql":
        return db.async_url(settings.database_url).set(database="postgres").render_as_string(hide_password=False)
    from course.db.postgres import provider  # imported here: starting a server is only needed when no URL is given

    return provider.server_url(settings)


def dsn(url: str | URL) -> str:
    """The asyncpg form of a SQLAlchemy URL."""
    return db.parse_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(url: str | URL, *, timeout: float = 10) -> asyncpg.Connection:
    """An asyncpg connection, or a CourseError that says in one line why there is none."""
    parsed = db.parse_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    try:
        return await asyncpg.connect(dsn(parsed), timeout=timeout)
    except (ConnectionRefusedError, OSError, TimeoutError) as exc:
        if isinstance(exc, socket.gaierror):
            raise CourseError(f"cannot resolve PostgreSQL host {parsed.host!r}: check the URL") from None
        raise CourseError(
            f"PostgreSQL at {where} is not answering ({exc.__class__.__name__}): is it running?"
        ) from None
    except asyncpg.InvalidCatalogNameError:
        raise CourseError(f"database {parsed.database!r} does not exist on {where}") from None
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise CourseError(f"PostgreSQL at {where} refused the login: {exc}") from None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def database_exists(admin: str | URL, name: str) -> bool:
    conn = await connect(admin)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def create_database_if_missing(url: str | URL) -> None:
    """Create the database a URL names, when the server lets us."""
    parsed = db.parse_url(url)
    admin = parsed.set(database="postgres")
    if await database_exists(admin, parsed.database or ""):
        return
    conn = await connect(admin)
    try:
        await conn.execute(f"CREATE DATABASE {_quote(parsed.database or '')}")
    except asyncpg.InsufficientPrivilegeError:
        raise CourseError(
            f"not allowed to create database {parsed.database!r}: create it, then seed again"
        ) from None
    finally:
        await conn.close()


async def _copy_strategy(conn: asyncpg.Connection) -> str:
    """The STRATEGY clause for CREATE DATABASE on this server: FILE_COPY where that is the cheap way, else none."""
    # WAL_LOG (the default since PostgreSQL 15) writes every page of the copy to the WAL so as to avoid the two
    # checkpoints FILE_COPY needs; without fsync (the course's throw-away local server runs with -F) a checkpoint
    # costs little, and copying a small seed's files was 6x faster (63 ms against 391 ms per copy and drop).
    # A shared server with fsync on keeps the default: checkpoints there would slow every other user down.
    if conn.get_server_version().major < 15:
        return ""
    return " STRATEGY FILE_COPY" if await conn.fetchval("SHOW fsync") == "off" else ""


async def copy_database(template_url: str | URL, name: str) -> str:
    """Create database `name` as a copy of the template's database; return its URL."""
    parsed = db.parse_url(template_url)
    conn = await connect(parsed.set(database="postgres"))
    try:
        await conn.execute(
            f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(parsed.database or '')}{await _copy_strategy(conn)}"
        )
    except asyncpg.ObjectInUseError:
        raise CourseError(
            f"cannot copy {parsed.database!r}: another session is connected to it (close it, then retry)"
        ) from None
    except asyncpg.InsufficientPrivilegeError:
        raise CourseError("this PostgreSQL login may not create databases (it needs CREATEDB)") from None
    finally:
        await conn.close()
    return db.async_url(parsed.set(database=name)).render_as_string(hide_password=False)


async def drop_database(url: str | URL) -> None:
    """Drop the database a URL names, disconnecting anyone still on it."""
    parsed = db.parse_url(url)
    conn = await connect(parsed.set(database="postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote(parsed.database or '')} WITH (FORCE)")
    finally:
        await conn.close()


async def drop_stale_copies(admin: str | URL, prefix: str) -> list[str]:
    """Drop copies named prefix_<pid>_... whose process on this machine has ended (a killed kernel's leftovers)."""
    conn = await connect(admin)
    try:
        names = [
            r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%")
        ]
    finally:
        await conn.close()
    dropped = []
    for name in names:
        try:
            pid = int(name[len(prefix) :].split("_")[0])
        except ValueError:
            continue
        if not _alive(pid):
            await drop_database(db.parse_url(admin).set(database=name))
            dropped.append(name)
    return dropped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
