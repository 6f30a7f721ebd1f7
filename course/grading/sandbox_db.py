"""What a sandboxed submission reaches of PostgreSQL: a folder of its own, bound into its sandbox, holding the server's
port forwarded onto a unix socket and a copy broker of its own; nothing else of the network.

The sandbox has no network (its own network namespace), so the grader brings the database in: a relay listens on
`<folder>/.s.PGSQL.<port>` (the name libpq and asyncpg look for when a URL's host is a folder) and forwards each
connection to the server's TCP port. The broker (course/db/postgres/broker.py) listens in the same folder and hands
out copies owned by a login role each (roles.py), with URLs whose host is that folder. Only the broker holds the
admin login; the sandbox never sees it. Closing drops every copy the submission still holds (and its role) and ends
its connections: nothing of one submission outlives its grading.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from course import db
from course.db import aio, copies
from course.db.copies import copy_name
from course.db.postgres import admin as pg_admin
from course.db.postgres import broker
from course.grading import cgroups
from course.settings import Settings

# Connections one submission may hold at once through its relay (a pool of 15 per engine leaves room for several
# engines), so a submission opening connections in a loop cannot use up the server's max_connections for the others.
MAX_CONNECTIONS = 40


class _Relay:
    """A unix socket at path whose every connection is forwarded to target (host, port)."""

    def __init__(self, path: Path, target: tuple[str, int]) -> None:
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with relay._lock:
                    full = len(relay._open) >= MAX_CONNECTIONS
                    if not full:
                        relay._open.add(self.request)
                if full:
                    return  # closed at once: the client sees the server hang up
                try:
                    with socket.create_connection(target, timeout=10) as upstream:
                        upstream.settimeout(None)
                        _pump(self.request, upstream)
                except OSError:
                    pass
                finally:
                    with relay._lock:
                        relay._open.discard(self.request)

        self._server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
        self._server.daemon_threads = True
        # The sandbox runs as a user of its own: it may connect (the folder keeps everyone else out of the sandbox).
        os.chmod(path, 0o666)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-db-relay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side hangs up."""
    with selectors.DefaultSelector() as selector:
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        while True:
            for key, _ in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return


class SandboxDatabase:
    """One submission's way to PostgreSQL (see the module docstring); close() when its sandboxes have ended.

    learner_url: in a workshop, the learner's own login and database (`course grade --urls`): no broker then, the
    sandbox gets that URL (through the socket) and makes its copies as the learner's role, tagged with a run tag
    of this submission's own, which close() drops.
    """

    def __init__(self, settings: Settings, learner_url: str | None = None) -> None:
        from course.seed.verify import verified_seed

        target = db.parse_url(learner_url or pg_admin.admin_url(settings))
        port = target.port or 5432
        self._learner = learner_url
        self.tag = copies.new_run_tag()
        self.broker: broker.CopyBroker | None = None
        # A unix socket's path must stay under ~107 bytes: a short folder under /tmp, private to the grader's user
        # but enterable (the sandbox's user connects to the sockets in it).
        # Named like a runner's work folder, so a grader killed now leaves nothing the next run does not remove.
        self.folder = Path(tempfile.mkdtemp(prefix=f"{copies.RUNNER_PREFIX}{os.getpid()}-db-", dir="/tmp"))
        self.folder.chmod(0o755)
        try:
            self._relay = _Relay(self.folder / f".s.PGSQL.{port}", (target.host or "127.0.0.1", port))
            if learner_url is None:
                self.broker = broker.CopyBroker(
                    target.render_as_string(hide_password=False),
                    lambda: verified_seed(settings, announce=False),
                    name_for=copy_name,
                    folder=self.folder,
                    socket_host=str(self.folder),
                )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def env(self) -> Mapping[str, str]:
        """The variables the sandbox's processes get: the broker's socket and no URL (no admin login to find), or
        in a workshop the learner's own URL through the socket."""
        if self.broker is not None:
            return {broker.BROKER_ENV: self.broker.path, "COURSE_DATABASE_URL": "", "COURSE_BACKEND": "postgres"}
        assert self._learner is not None
        return {
            "COURSE_DATABASE_URL": broker.through_socket(self._learner, str(self.folder)),
            "COURSE_BACKEND": "postgres",
            broker.BROKER_ENV: "",
            copies.RUN_TAG_ENV: self.tag,
        }

    def close(self) -> None:
        try:
            if self.broker is not None:
                self.broker.close()
            elif self._learner is not None:
                aio.run(copies.drop_run_copies(db.parse_url(self._learner).set(database="postgres"), self.tag))
        finally:
            self._relay.close()
            shutil.rmtree(self.folder, ignore_errors=True)


class Reach:
    """What each sandbox of a submission gets: variables and read-only folders for the database (none on SQLite),
    and the submission's cgroup."""

    def __init__(self, door: SandboxDatabase | None, group: cgroups.Group | None = None) -> None:
        self.env: dict[str, str] = dict(door.env()) if door else {}
        self.binds: list[Path] = [door.folder] if door else []
        self.group = group


def open_for(settings: Settings, learner_url: str | None = None) -> SandboxDatabase | None:
    """A SandboxDatabase when the course runs on PostgreSQL, else None (a SQLite seed is bound in as a file)."""
    if learner_url is not None:
        return SandboxDatabase(settings, learner_url)
    return SandboxDatabase(settings) if settings.backend == "postgres" else None


def sweep_killed_runs(settings: Settings) -> None:
    """What graders killed on this machine left (SIGKILL runs no clean-up): their sockets' and work folders, their
    cgroups and, on PostgreSQL, their copies and the copies' roles (their owner process is gone)."""
    for parent in {Path("/tmp"), Path(tempfile.gettempdir())}:
        copies.reap_abandoned_folders(parent)
    cgroups.sweep()
    if settings.backend == "postgres":
        admin = pg_admin.admin_url(settings)
        aio.run(pg_admin.drop_abandoned_copies(admin, copies.COPY_PREFIX))
        if not settings.database_url:
            # The course's own server serves this machine alone: a pid in a copy's (or its role's) name is one of
            # ours, and a grader killed between CREATE DATABASE and its COMMENT left a copy no owner is recorded on.
            aio.run(_drop_orphans(admin))


async def _drop_orphans(admin: str) -> None:
    conn = await pg_admin.connect(admin)
    try:
        rows = await conn.fetch(
            "SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) UNION SELECT rolname "
            "FROM pg_roles WHERE starts_with(rolname, $1) AND shobj_description(oid, 'pg_authid') = $2",
            copies.COPY_PREFIX,
            pg_admin.COPY_ROLE_COMMENT,
        )
    finally:
        await conn.close()
    for row in rows:
        found = re.match(rf"{copies.COPY_PREFIX}p(\d+)_", row["name"])
        if found and int(found[1]) != os.getpid() and not cgroups.alive(int(found[1])):
            # The database if there is one, then the role made for it.
            await pg_admin.drop_database(db.parse_url(admin).set(database=row["name"]))
