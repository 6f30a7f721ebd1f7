"""Fresh, disposable copies of the current seed (built first when missing): what lessons and checks work on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from course.db.copies import DatabaseCopy, brokered_copy, copy_name, copy_of
from course.db.postgres import broker
from course.seed.verify import verified_seed
from course.settings import Settings, get_settings


async def create_copy(settings: Settings | None = None) -> DatabaseCopy:
    """A fresh copy of the current seed, building the seed first when it is missing or stale."""
    settings = settings or get_settings()
    if settings.backend == "postgres" and broker.address():
        # Run by a grader that holds the admin login: it makes the copy (and checks the seed) for us.
        return await brokered_copy()
    seed_url = await _ensure_seed(settings)
    return await copy_of(seed_url)


@contextmanager
def copy_service(settings: Settings | None = None) -> Iterator[str | None]:
    """While open, kernels started by this process get PostgreSQL copies owned by a role of their own.

    Yields the broker's socket, or None on SQLite (a file copy needs no login).
    """
    settings = settings or get_settings()
    if settings.backend != "postgres":
        yield None
        return
    from course.db.postgres import admin as pg_admin

    with broker.serving(
        pg_admin.admin_url(settings),
        lambda: verified_seed(settings, announce=False),
        name_for=copy_name,
    ) as service:
        yield service.path


async def _ensure_seed(settings: Settings) -> str:
    # Seeding is sync code (sqlite3, or its own loop for asyncpg): keep it off this loop. The seed's fingerprint is
    # compared before every copy (course/seed/verify.py): a damaged seed is rebuilt rather than copied.
    return await asyncio.to_thread(verified_seed, settings)


@asynccontextmanager
async def fresh_copy(settings: Settings | None = None) -> AsyncIterator[DatabaseCopy]:
    """`async with fresh_copy() as copy:` gives a copy that is dropped on the way out, whatever happened."""
    copy = await create_copy(settings)
    try:
        yield copy
    finally:
        await copy.drop()
