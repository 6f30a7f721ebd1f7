"""Fresh, disposable copies of the seed, so nothing a lesson or a learner does can damage it."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from course import aio, db, pg_admin, seed
from course.settings import Settings, get_settings

COPY_PREFIX = "course_run_"


@dataclass
class DatabaseCopy:
    """One copy of the seed: its URL, and how to throw it away."""

    url: str
    backend: str
    folder: Path | None = None
    dropped: bool = False

    async def drop(self) -> None:
        if self.dropped:
            return
        self.dropped = True
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            await pg_admin.drop_database(self.url)

    def drop_sync(self) -> None:
        aio.run(self.drop())


async def copy_of(seed_url: str) -> DatabaseCopy:
    """Copy the seed at seed_url: a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL."""
    parsed = db.parse_url(seed_url)
    if parsed.get_backend_name() == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="course-run-"))
        target = folder / "course.sqlite3"
        shutil.copyfile(db.sqlite_path(seed_url), target)
        return DatabaseCopy(url=db.sqlite_url(target).render_as_string(), backend="sqlite", folder=folder)
    admin = parsed.set(database="postgres")
    # Copies of kernels that were killed before they could clean up are dropped here.
    await pg_admin.drop_stale_copies(admin, COPY_PREFIX)
    name = f"{COPY_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    return DatabaseCopy(url=await pg_admin.copy_database(seed_url, name), backend="postgres")


async def create_copy(settings: Settings | None = None) -> DatabaseCopy:
    """A fresh copy of the current seed, building the seed first when it is missing or stale."""
    settings = settings or get_settings()
    seed_url = await _ensure_seed(settings)
    return await copy_of(seed_url)


async def _ensure_seed(settings: Settings) -> str:
    # Seeding is sync code (sqlite3, or its own loop for asyncpg): keep it off this loop.
    return await asyncio.to_thread(seed.ensure_seed, settings, progress=False)


@asynccontextmanager
async def fresh_copy(settings: Settings | None = None) -> AsyncIterator[DatabaseCopy]:
    """`async with fresh_copy() as copy:` gives a copy that is dropped on the way out, whatever happened."""
    copy = await create_copy(settings)
    try:
        yield copy
    finally:
        await copy.drop()
