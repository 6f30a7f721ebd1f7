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

from sqlalchemy import inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from course import db
from course.db import aio
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
    """Is the seed there, complete, and built for this scale and schema version?"""
    settings = settings or get_settings()
    target = url or seed_url(settings)
    parsed = db.parse_url(target)
    if parsed.get_backend_name() == "sqlite":
        path = db.sqlite_path(target)
        if not path.exists():
            return SeedStatus(target, False, f"no seed at {path}")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
                con.execute("PRAGMA quick_check").fetchone()
                tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "course_meta" not in tables:
                    return _not_a_seed(target, bool(tables))
                meta = dict(con.execute("SELECT key, value FROM course_meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise CourseError(
                f"the seed file {path} is damaged ({exc}): rebuild it with `course seed --force`"
            ) from None
    else:
        try:
            meta = aio.run(read_meta(target))
        except OSError as exc:
            where = f"{parsed.host}:{parsed.port or 5432}"
            raise CourseError(
                f"PostgreSQL at {where} is not answering ({type(exc).__name__}): is it running?"
            ) from None
        except DBAPIError as exc:
            if isinstance(exc.orig, OSError) or "connect" in str(exc.orig).lower():
                raise CourseError(f"cannot reach PostgreSQL for {db.describe(target)}: is it running?") from None
            if "course_meta" in str(exc.orig):
                return _not_a_seed(target, aio.run(_has_tables(target)))
            # The database does not exist yet: seeding creates it.
            return SeedStatus(target, False, f"no seed in {db.describe(target)}")
    expected = expected_meta(settings.scale)
    for key, want in expected.items():
        if meta.get(key) != want:
            return SeedStatus(target, False, f"seed has {key}={meta.get(key)!r}, expected {want!r}", meta)
    if meta.get("complete") != "yes":
        return SeedStatus(target, False, "seed is incomplete", meta)
    return SeedStatus(target, True, "ok", meta)


def _not_a_seed(target: str, has_tables: bool) -> SeedStatus:
    if has_tables:
        return SeedStatus(
            target, False, f"{db.describe(target)} holds other tables, not a course seed", foreign=True
        )
    return SeedStatus(target, False, f"{db.describe(target)} is empty")


async def _has_tables(url: str) -> bool:
    engine = db.make_engine(url=url)
    try:
        async with engine.connect() as conn:
            return bool(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@contextmanager
def _building(settings: Settings, url: str) -> Iterator[None]:
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
    with _building(settings, current.url):
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
