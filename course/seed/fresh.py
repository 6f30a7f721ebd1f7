"""Fresh, disposable copies of the current seed (built first when missing): what lessons and checks work on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from course.db.copies import DatabaseCopy, copy_of
from course.seed.verify import verified_seed
from course.settings import Settings, get_settings


async def create_copy(settings: Settings | None = None) -> DatabaseCopy:
    """A fresh copy of the current seed, building the seed first when it is missing or stale."""
    settings = settings or get_settings()
    seed_url = await _ensure_seed(settings)
    return await copy_of(seed_url)


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
