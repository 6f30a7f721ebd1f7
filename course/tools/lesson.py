"""The one set-up call a lesson makes: a fresh copy of the seed, an engine and a session factory, ready to use."""

from __future__ import annotations

import atexit
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from course import db
from course.db import copies
from course.seed import fresh
from course.settings import Settings, get_settings


@dataclass
class Lesson:
    """What a lesson works with. `engine` and `Session` point at a private copy of the seed."""

    settings: Settings
    copy: copies.DatabaseCopy
    engine: AsyncEngine
    Session: async_sessionmaker[AsyncSession]

    @property
    def url(self) -> str:
        return self.copy.url

    @property
    def sync_url(self) -> URL:
        """The same database for synchronous tools: %sql, pandas.read_sql, Alembic."""
        return db.sync_url(self.copy.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()
        await self.copy.drop()


_open: list[Lesson] = []


def _close_all() -> None:
    # A kernel that shuts down cleanly removes its copies; a killed one's are removed by the next run.
    for lesson in _open:
        try:
            lesson.copy.drop_sync()
        except Exception as exc:  # noqa: BLE001 - never turn a kernel shutdown into a traceback
            print(f"could not remove {db.describe(lesson.copy.url)}: {exc}")


atexit.register(_close_all)


async def setup(*, scale: str | None = None, quiet: bool = False, **engine_options: Any) -> Lesson:
    """Copy the seed (building it first if needed) and connect to the copy; print what the learner needs."""
    settings = get_settings(**({"scale": scale} if scale else {}))
    copy = await fresh.create_copy(settings)
    engine = db.make_engine(url=copy.url, **engine_options)
    lesson = Lesson(settings=settings, copy=copy, engine=engine, Session=db.make_sessionmaker(engine))
    _open.append(lesson)
    if not quiet:
        print(
            f"Backend: {lesson.dialect} · scale: {settings.scale} · working on a fresh copy of the seed "
            "(nothing you do here can damage it)"
        )
    return lesson
