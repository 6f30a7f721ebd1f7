"""A private PgBouncer in transaction mode in front of the course's PostgreSQL, started and always stopped by `async with`."""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL

from course import db
from course.db.postgres.local import LOG_PREFIX, free_port
from course.errors import CourseError
from course.settings import Settings

# Debian installs it in /usr/sbin, which is not on every user's PATH.
SBIN = ("/usr/sbin", "/sbin")
MISSING = "PgBouncer is not installed (apt-get install pgbouncer; optional, for lesson 6)"
_running: set[subprocess.Popen[bytes]] = set()
Owner = pwd.struct_passwd | None


def _which() -> str | None:
    return shutil.which("pgbouncer", path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


@functools.cache
def version(binary: str) -> tuple[int, int]:
    """PgBouncer's (major, minor) version from `pgbouncer --version` ("PgBouncer 1.18.0"); (0, 0) if unreadable."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def find_binary() -> str:
    """The pgbouncer executable, or a one-line CourseError saying how to install it."""
    if (found := _which()) is None:
        raise CourseError(MISSING)
    return found


def not_run_reason(settings: Settings) -> str | None:
    """Why the lesson cannot start PgBouncer here (None when it can)."""
    if settings.backend != "postgres":
        return "PgBouncer pools PostgreSQL connections (the course is on SQLite: set COURSE_BACKEND=postgres)"
    return None if _which() else MISSING


def _pooler_user() -> Owner:
    """Who runs PgBouncer: we do, or if we are root the `postgres` system user (else `nobody`): it refuses root."""
    if os.geteuid() != 0:
        return None
    with suppress(KeyError):
        return pwd.getpwnam("postgres")
    return pwd.getpwnam("nobody")


def _write_private(path: Path, text: str, owner: Owner) -> None:
    # O_EXCL with mode 600: the password is never readable by anyone else, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _tail(log: Path) -> str:
    """The log's last two lines on one line, without their time stamps (the reason is often the line before last)."""
    lines = [LOG_PREFIX.sub("", line).strip() for line in log.read_text(errors="replace").splitlines()]
    return " | ".join([line for line in lines if line][-2:]) or "its log is empty"


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: `url` reaches the same database as the server URL it was given, through the pooler."""

    url: str
    folder: Path
    process: subprocess.Popen[bytes]


def _write_files(
    folder: Path, owner: Owner, server: URL, port: int, pool_size: int, auth: str, binary: str
) -> None:
    config = f"""\
[databases]
{server.database} = host={server.host or "127.0.0.1"} port={server.port or 5432} dbname={server.database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
; No unix socket: TCP on the loopback interface only, like the course's PostgreSQL.
unix_socket_dir =
pidfile = {folder / "pgbouncer.pid"}
auth_type = {auth}
auth_file = {folder / "userlist.txt"}
admin_users = {server.username}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
; One line per login would bury the lines that matter (why it did not start).
log_connections = 0
log_disconnections = 0
; 1.21+ can track protocol-level prepared statements: off, as in 1.18, so transaction mode behaves the same.
{"max_prepared_statements = 0" if version(binary) >= (1, 21) else ""}
"""
    _write_private(folder / "pgbouncer.ini", config, owner)
    quoted = ['"' + str(value).replace('"', '""') + '"' for value in (server.username, server.password)]
    _write_private(folder / "userlist.txt", " ".join(quoted) + "\n", owner)


async def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CourseError(f"PgBouncer did not start: {_tail(log)}")
        with suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.02)
    raise CourseError(f"PgBouncer did not listen within 10 s: {_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM is PgBouncer's immediate shutdown: client and server connections are closed at once.
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _running.discard(process)


@atexit.register
def _stop_all() -> None:
    # A kernel that shuts down in the middle of a cell still stops its PgBouncer.
    for process in list(_running):
        _stop(process)


@asynccontextmanager
async def pgbouncer(
    url: str, *, pool_size: int = 5, auth: Literal["scram-sha-256", "plain"] = "scram-sha-256"
) -> AsyncIterator[PgBouncer]:
    """Start PgBouncer (transaction mode, pool_size server connections) in front of url's database; stop it after.

    Clients log in with scram-sha-256, as to the server: the password never crosses the wire, and PgBouncer logs in
    to PostgreSQL with the copy in its userlist (mode 600). "plain" lets the client send the password as it is:
    acceptable only because PgBouncer listens on the loopback interface alone.
    """
    binary = find_binary()
    server = db.parse_url(url)
    if server.get_backend_name() != "postgresql" or not server.username or server.password is None:
        raise CourseError("PgBouncer needs a PostgreSQL URL with a user and a password")
    owner = _pooler_user()
    folder = Path(tempfile.mkdtemp(prefix="course-pgbouncer-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        port = free_port()
        _write_files(folder, owner, server, port, pool_size, auth, binary)
        log = folder / "pgbouncer.log"
        # Its stderr is a file we opened, so the log works whichever user PgBouncer runs as.
        with open(log, "wb") as err:
            process = subprocess.Popen(
                [binary, str(folder / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
                extra_groups=[] if owner else None,
                # PG* variables from the user's shell must not steer it, as for the course's server.
                env={key: value for key, value in os.environ.items() if not key.startswith("PG")},
            )
        _running.add(process)
        await _wait_ready(process, port, log)
        through = server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        yield PgBouncer(url=through, folder=folder, process=process)
    finally:
        if process is not None:
            await asyncio.to_thread(_stop, process)
        shutil.rmtree(folder, ignore_errors=True)
