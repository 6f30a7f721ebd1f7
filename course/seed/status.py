"""Is the seed there, complete and built for these settings? Build it when it is not; its content checksum."""

from __future__ import annotations

import fcntl
import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import URL

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.domain.models import DOMAIN_TABLES, CourseMeta
from course.errors import CourseError
from course.seed.load import expected_meta, seed, seed_url
from course.settings import Settings, get_settings


@dataclass(frozen=True)
class SeedStatus:
    """Whether the seed at a URL can be used as it is, and why not."""

    url: str
    ok: bool
    reason: str
    meta: dict[str, str] = field(default_factory=dict)
    # The database holds tables of its own but no course seed: never replace it without being asked.
    foreign: bool = False


def _normalise(value: object) -> str:
    # One text form per value on both backends, so their checksums can be compared.
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return value.hex
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


async def content_checksum(url: str | URL, tables: Iterable[str] | None = None) -> str:
    """A SHA-256 over every domain row in primary-key order, the same for the same content on either backend."""
    if db.parse_url(url).get_backend_name() == "sqlite" and not db.sqlite_path(url).exists():
        raise CourseError(f"no database at {db.sqlite_path(url)}")
    engine = db.make_engine(url=url)
    digest = hashlib.sha256()
    wanted = set(tables) if tables else None
    try:
        async with engine.connect() as conn:
            for table in DOMAIN_TABLES:
                if wanted is not None and table.name not in wanted:
                    continue
                digest.update(f"#{table.name}\n".encode())
                result = await conn.stream(select(table).order_by(*table.primary_key.columns))
                async for row in result:
                    digest.update("\t".join(map(_normalise, row)).encode())
                    digest.update(b"\n")
    finally:
        await engine.dispose()
    return digest.hexdigest()


async def read_meta(url: str | URL) -> dict[str, str]:
    engine = db.make_engine(url=url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(CourseMeta.key, CourseMeta.value))
            return dict(rows.all())
    finally:
        await engine.dispose()


def status(settings: Settings | None = None, *, url: str | None = None) -> SeedStatus:
    """Is the seed there, complete, and built for this scale and schema version?

    Only answers it understands become "no seed"; any other failure is a one-line CourseError, so a database is
    never rebuilt (its tables dropped) because of an error nobody recognised.
    """
    settings = settings or get_settings()
    target = url or seed_url(settings)
    if db.parse_url(target).get_backend_name() == "sqlite":
        state, meta = _sqlite_state(target)
    else:
        state, meta = aio.run(_postgres_state(target))
    if state == "missing":
        return SeedStatus(target, False, f"no seed in {db.describe(target)}")
    if state == "foreign":
        return SeedStatus(
            target, False, f"{db.describe(target)} holds other tables, not a course seed", foreign=True
        )
    if state == "empty":
        return SeedStatus(target, False, f"{db.describe(target)} is empty")
    expected = expected_meta(settings.scale)
    for key, want in expected.items():
        if meta.get(key) != want:
            return SeedStatus(target, False, f"seed has {key}={meta.get(key)!r}, expected {want!r}", meta)
    if meta.get("complete") != "yes":
        return SeedStatus(target, False, "seed is incomplete", meta)
    return SeedStatus(target, True, "ok", meta)


# What a database holds: "missing" (no database), "empty", "foreign" (tables, none ours) or "seed" (with its meta).
State = tuple[str, dict[str, str]]


def _sqlite_state(target: str) -> State:
    path = db.sqlite_path(target)
    if not path.exists():
        return "missing", {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            con.execute("PRAGMA quick_check").fetchone()
            tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "course_meta" not in tables:
                return ("foreign" if tables else "empty"), {}
            return "seed", dict(con.execute("SELECT key, value FROM course_meta").fetchall())
    except sqlite3.OperationalError as exc:
        # Locked, unreadable, a folder in its place...: the file may be fine, so never offer to rebuild it.
        raise CourseError(f"cannot read the seed file {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise CourseError(
            f"the seed file {path} is damaged ({exc}): rebuild it with `course seed --force`"
        ) from None


async def _postgres_state(target: str) -> State:
    # asyncpg's typed errors (SQLSTATE classes) decide; their message text never does.
    try:
        conn = await pg_admin.connect(target)
    except pg_admin.MissingDatabase:
        # The database does not exist yet: seeding creates it.
        return "missing", {}
    try:
        if await conn.fetchval("SELECT to_regclass('course_meta')") is None:
            has_tables = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema())"
            )
            return ("foreign" if has_tables else "empty"), {}
        rows = await conn.fetch("SELECT key, value FROM course_meta")
        return "seed", {row["key"]: row["value"] for row in rows}
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CourseError(f"cannot read the seed in {db.describe(target)}: {pg_admin.one_line(exc)}") from None
    finally:
        await conn.close()


@contextmanager
def building(settings: Settings, url: str) -> Iterator[None]:
    """Hold an exclusive lock on building the seed at url, so two processes never build it at once."""
    # Two kernels, or two test workers, may find the same seed missing at once; on PostgreSQL two builders in one
    # template database would break each other. The loser waits, then finds the seed ready.
    key = hashlib.sha256(db.parse_url(url).render_as_string(hide_password=True).encode()).hexdigest()[:16]
    folder = settings.cache_dir / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"seed-{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_seed(settings: Settings | None = None, *, progress: bool = True, announce: bool = True) -> str:
    """The URL of a usable seed, building it first when missing or built for another scale or schema."""
    settings = settings or get_settings()
    current = status(settings)
    if current.ok:
        return current.url
    with building(settings, current.url):
        return _build_unless_ready(settings, progress=progress, announce=announce)


def _build_unless_ready(settings: Settings, *, progress: bool, announce: bool) -> str:
    # Another process may have built it while this one waited for the lock.
    current = status(settings)
    if current.ok:
        return current.url
    if current.foreign and settings.database_url:
        raise CourseError(
            f"{current.reason}: run `course seed --url ...` to seed it (this replaces the course's tables) "
            "or point COURSE_DATABASE_URL at another database"
        )
    if announce:
        print(f"Building the {settings.scale} seed: {current.reason}.")
    report = seed(settings, url=current.url, progress=progress)
    if announce:
        print(f"Seeded {report.total_rows:,} rows in {report.seconds:.1f} s.")
    return report.url
