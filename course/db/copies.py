"""Fresh, disposable copies of the seed, so nothing a lesson or a learner does can damage it; and their clean-up.

Who removes a copy: the code that made it drops it when done (`fresh_copy`, a lesson's atexit). When a process
runs notebooks for others (`course check`, `course grade`), it owns the clean-up of everything its kernels make:
it hands each kernel a run folder (COURSE_RUN_DIR, SQLite copies are made inside it) and a run tag
(COURSE_RUN_TAG, carried by every PostgreSQL copy's name), then deletes the folder and drops the tagged databases
itself, whether the kernel finished, died or was stopped. Without a runner (a lesson in JupyterLab), SQLite copy
folders carry their process id, and folders of processes that ended on this machine are removed by the next copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.db.postgres import broker, owners
from course.errors import CourseError

COPY_PREFIX = "course_run_"
FOLDER_PREFIX = "course-run-"
# Set by the runner for the kernels it starts (see the module docstring).
RUN_DIR_ENV = "COURSE_RUN_DIR"
RUN_TAG_ENV = "COURSE_RUN_TAG"
_TAG_RE = re.compile(r"^r[0-9a-f]{8}$")
# course-run-<pid>-<random>: a copy folder made outside a run folder by process <pid>; course-check-<pid>-<random>:
# the work folder of a runner (it holds its run folder), left behind only when the runner itself was killed.
RUNNER_PREFIX = "course-check-"
_FOLDER_RE = re.compile(rf"^(?:{FOLDER_PREFIX}|{RUNNER_PREFIX}|{broker.FOLDER_PREFIX})(\d+)-")


@dataclass
class DatabaseCopy:
    """One copy of the seed: its URL, and how to throw it away."""

    url: str
    backend: str
    folder: Path | None = None
    dropped: bool = False
    # Set when a copy broker made it (course/db/postgres/broker.py): only the broker may drop it.
    broker_key: str | None = None

    async def drop(self) -> None:
        if self.dropped:
            return
        self.dropped = True
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        elif self.broker_key is not None and (where := broker.address()):
            await broker.request_drop(where, self.broker_key)
        else:
            await pg_admin.drop_database(self.url)

    def drop_sync(self) -> None:
        aio.run(self.drop())


async def copy_of(seed_url: str) -> DatabaseCopy:
    """Copy the seed at seed_url: a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL."""
    parsed = db.parse_url(seed_url)
    if parsed.get_backend_name() == "sqlite":
        folder = _new_folder()
        target = folder / "course.sqlite3"
        shutil.copyfile(db.sqlite_path(seed_url), target)
        return DatabaseCopy(url=db.sqlite_url(target).render_as_string(), backend="sqlite", folder=folder)
    # Copies whose owner is provably gone (a killed kernel here, or long idle anywhere) are dropped first.
    url = await pg_admin.copy_database(
        seed_url, with_run_tag(postgres_copy_name()), owner=owners.this_process(), reap=COPY_PREFIX
    )
    return DatabaseCopy(url=url, backend="postgres")


async def brokered_copy() -> DatabaseCopy:
    """A copy from the grader's copy broker: its URL logs in as the copy's own role, with no power beyond it."""
    where = broker.address()
    if where is None:
        raise CourseError(f"no copy broker: {broker.BROKER_ENV} is not set")
    url, key = await broker.request_copy(where, tag=current_run_tag())
    return DatabaseCopy(url=url, backend="postgres", broker_key=key)


def copy_name(tag: str | None) -> str:
    """A copy's name, for the run tagged `tag` (the broker names the copies it makes for kernels this way)."""
    name = postgres_copy_name()
    return f"{name}_{tag}" if tag and _TAG_RE.match(tag) else name


def postgres_copy_name() -> str:
    """A new copy's database name; its owner (machine, process, creation time) is in its COMMENT, not its name.

    The "p" before the pid keeps older course versions, which read a bare pid from the name and judged it on their
    own machine, from dropping these copies.
    """
    return f"{COPY_PREFIX}p{os.getpid()}_{secrets.token_hex(4)}"


# --- run folders and run tags (the runner's side of clean-up) ---------------------------------------------------------


def new_run_tag() -> str:
    """A tag for one run: short, so a copy's name stays well under PostgreSQL's 63-character limit."""
    return "r" + secrets.token_hex(4)


def current_run_tag() -> str | None:
    """The tag the runner gave this process, or None (a lesson opened by hand, a test)."""
    tag = os.environ.get(RUN_TAG_ENV, "")
    return tag if _TAG_RE.match(tag) else None


def with_run_tag(name: str) -> str:
    """name, with this process's run tag appended when a runner set one: the runner drops it by that tag."""
    tag = current_run_tag()
    return f"{name}_{tag}" if tag else name


def run_folder() -> Path | None:
    """The folder the runner gave this process for its SQLite copies, when it still exists."""
    given = os.environ.get(RUN_DIR_ENV)
    return Path(given) if given and Path(given).is_dir() else None


def _new_folder() -> Path:
    inside = run_folder()
    if inside is None:
        # No runner owns this copy: tidy up after processes that were killed before their atexit ran.
        reap_abandoned_folders()
    return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=inside))


def reap_abandoned_folders(parent: Path | None = None) -> list[Path]:
    """Remove this user's copy folders, runner work folders and broker folders whose process has ended, in parent
    (default: the temp folder, and /tmp, where folders holding a unix socket go when the temp folder's path is long)."""
    parents = [Path(parent)] if parent else list(dict.fromkeys([Path(tempfile.gettempdir()), Path("/tmp")]))
    removed = []
    entries = []
    for folder in parents:
        with contextlib.suppress(OSError):
            entries += list(os.scandir(folder))
    for entry in entries:
        match = _FOLDER_RE.match(entry.name)
        if match is None or int(match[1]) == os.getpid():
            continue
        try:
            # Another user's folder is none of our business (and not ours to delete).
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _process_alive(int(match[1])):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


async def drop_run_copies(admin: str | URL, tag: str) -> list[str]:
    """Drop every PostgreSQL copy whose name carries the run tag; return their names."""
    if not _TAG_RE.match(tag):
        raise ValueError(f"not a run tag: {tag!r}")
    conn = await pg_admin.connect(admin)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{COPY_PREFIX}%_{tag}")
    finally:
        await conn.close()
    names = [row[0] for row in rows if row[0].endswith(f"_{tag}")]
    for name in names:
        await pg_admin.drop_database(db.parse_url(admin).set(database=name))
    return names


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True
