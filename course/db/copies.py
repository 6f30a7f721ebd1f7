"""Fresh, disposable copies of the seed, so nothing a lesson or a learner does can damage it."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.db.postgres import owners

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
    # Copies whose owner is provably gone (a killed kernel here, or long idle anywhere) are dropped here.
    await pg_admin.drop_abandoned_copies(admin, COPY_PREFIX)
    url = await pg_admin.copy_database(seed_url, postgres_copy_name(), owner=owners.this_process())
    return DatabaseCopy(url=url, backend="postgres")


def postgres_copy_name() -> str:
    """A new copy's database name; its owner (machine, process, creation time) is in its COMMENT, not its name.

    The "p" before the pid keeps older course versions, which read a bare pid from the name and judged it on their
    own machine, from dropping these copies.
    """
    return f"{COPY_PREFIX}p{os.getpid()}_{secrets.token_hex(4)}"
