"""A copy broker: the only holder of the admin login makes each PostgreSQL copy, owned by a role of its own.

`course grade` (and `course check --restricted-role`) starts one in its own process and tells the kernels where it
listens (COURSE_COPY_BROKER, a unix socket). A kernel asks it for a copy and gets back a URL that logs in as the
copy's own role (see roles.py): learner code and checks never see a login that could reach the template, other
copies or the server's settings. Each copy comes with a random drop key, so a kernel can drop only its own copies;
copies not dropped by their kernel are dropped with the run (their names carry its run tag) or when the broker
closes. The number of copies one kernel may hold is capped, so a loop asking for copies cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.db.postgres import owners, roles
from course.errors import CourseError

# Folders holding a broker's socket: course-broker-<pid>-<random>.
FOLDER_PREFIX = "course-broker-"

BROKER_ENV = "COURSE_COPY_BROKER"
# Copies alive at once per run tag: a chapter's lesson plus its checks use a handful. The tag is the kernel's word,
# so a cap for the whole broker too: a kernel inventing tags cannot fill the disk either.
MAX_LIVE = 12
MAX_LIVE_TOTAL = 200
_REPLY_LIMIT = 64 * 1024


def through_socket(url: str, folder: str) -> str:
    """url with the same login and port (it names the socket file), reached through a unix socket in folder.

    Host and port both go in the query: asyncpg's own DSN parser (pg_admin.dsn) would take an empty host before
    a port for a host name to look up, while SQLAlchemy passes the query on to asyncpg as it is.
    """
    parsed = db.parse_url(url)
    query = {"host": folder, "port": str(parsed.port or 5432)}
    # (URL.set cannot clear a field: the host must go, or it would be the one used.)
    bare = URL.create(parsed.drivername, parsed.username, parsed.password, database=parsed.database, query=query)
    return bare.render_as_string(hide_password=False)


def address() -> str | None:
    """The socket of the broker this process was told to use, if any."""
    return os.environ.get(BROKER_ENV) or None


class CopyBroker:
    """Serves copies of one template over a unix socket (see the module docstring)."""

    def __init__(
        self,
        admin: str,
        template: Callable[[], str],
        *,
        name_for: Callable[[str | None], str],
        folder: Path | None = None,
        socket_host: str | None = None,
    ) -> None:
        """template() is called before each copy: it verifies the seed (and rebuilds it) and returns its URL.

        folder: where the socket goes (default: a new folder of its own). socket_host: the copies' URLs name this
        folder as their host (a unix socket there reaches the server), for kernels that have no network.
        """
        self._admin = db.parse_url(admin).set(database="postgres")
        self._template = template
        self._name_for = name_for
        self._socket_host = socket_host
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, str | None]] = {}  # drop key -> (database name, run tag)
        # A unix socket's path must stay under ~107 bytes: a deep TMPDIR (a test's, a hub's) would not do.
        base = tempfile.gettempdir()
        self._folder = folder or Path(
            # The pid in the name lets the next run remove the folder of a grader that was killed (copies.py).
            tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir="/tmp" if len(base) > 60 else base)
        )
        self.path = str(self._folder / "copies.sock")
        broker = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(_REPLY_LIMIT)
                try:
                    reply = broker._answer(json.loads(line))
                except CourseError as exc:
                    reply = {"error": str(exc)}
                except Exception as exc:  # noqa: BLE001 - a bad request or a server hiccup is an answer, not a crash
                    reply = {"error": pg_admin.one_line(exc)}
                self.wfile.write(json.dumps(reply).encode() + b"\n")

        # Kernels may ask at once (a lesson dropping its copies with asyncio.gather): a deep listen queue.
        socketserver.ThreadingUnixStreamServer.request_queue_size = 64
        self._server = socketserver.ThreadingUnixStreamServer(self.path, Handler)
        self._server.daemon_threads = True
        os.chmod(self.path, 0o666)  # the sandboxed kernel may run as another user
        self._thread = threading.Thread(target=self._server.serve_forever, name="copy-broker", daemon=True)
        self._thread.start()

    def _answer(self, request: Any) -> dict[str, str]:
        if not isinstance(request, dict):
            raise CourseError("bad request")
        tag = request.get("tag") if isinstance(request.get("tag"), str) else None
        if request.get("op") == "copy":
            return {**self._copy(tag)}
        if request.get("op") == "drop":
            self._drop(str(request.get("key", "")))
            return {"ok": "dropped"}
        raise CourseError("bad request")

    def _copy(self, tag: str | None) -> dict[str, str]:
        with self._lock:
            if sum(t == tag for _, t in self._live.values()) >= MAX_LIVE:
                raise CourseError(f"this run already holds {MAX_LIVE} database copies: drop some (lesson.close())")
            if len(self._live) >= MAX_LIVE_TOTAL:
                raise CourseError(f"the grader already holds {MAX_LIVE_TOTAL} database copies: try again later")
            key = secrets.token_hex(16)
            name = self._name_for(tag)
            self._live[key] = (name, tag)
        try:
            url = aio.run(roles.copy_with_role(self._template(), name, owner=owners.this_process()))
        except BaseException:
            with self._lock:
                self._live.pop(key, None)
            raise
        if self._socket_host is not None:
            url = through_socket(url, self._socket_host)
        return {"url": url, "key": key}

    def _drop(self, key: str) -> None:
        with self._lock:
            entry = self._live.pop(key, None)
        if entry is None:
            raise CourseError("no such copy (already dropped, or not yours)")
        aio.run(pg_admin.drop_database(self._admin.set(database=entry[0])))

    def close(self) -> None:
        """Stop serving and drop every copy still alive."""
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            left, self._live = list(self._live.values()), {}
        try:
            if left:

                async def drop_all() -> None:
                    for name, _ in left:
                        await pg_admin.drop_database(self._admin.set(database=name))

                aio.run(drop_all())
        finally:
            # Even when the server could not drop a copy (it is down): the socket's folder never outlives the broker.
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            with contextlib.suppress(OSError):
                os.rmdir(self._folder)


@contextlib.contextmanager
def serving(
    admin: str, template: Callable[[], str], *, name_for: Callable[[str | None], str]
) -> Iterator[CopyBroker]:
    """Run a broker for the duration of the block, with BROKER_ENV set for the kernels started in it."""
    broker = CopyBroker(admin, template, name_for=name_for)
    before = os.environ.get(BROKER_ENV)
    os.environ[BROKER_ENV] = broker.path
    try:
        yield broker
    finally:
        if before is None:
            os.environ.pop(BROKER_ENV, None)
        else:
            os.environ[BROKER_ENV] = before
        broker.close()


async def _ask(where: str, request: dict[str, str | None]) -> dict[str, str]:
    try:
        reader, writer = await asyncio.open_unix_connection(where, limit=_REPLY_LIMIT)
    except OSError as exc:
        raise CourseError(f"the grader's copy service at {where} is not answering ({exc.strerror})") from None
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        reply = json.loads(await reader.readline())
    finally:
        writer.close()
    if not isinstance(reply, dict) or "error" in reply:
        raise CourseError(
            f"could not get a database copy: {reply.get('error') if isinstance(reply, dict) else reply}"
        )
    return reply


async def request_copy(where: str, *, tag: str | None) -> tuple[str, str]:
    """A new copy from the broker at where: (URL logging in as the copy's own role, drop key)."""
    reply = await _ask(where, {"op": "copy", "tag": tag})
    return reply["url"], reply["key"]


async def request_drop(where: str, key: str) -> None:
    await _ask(where, {"op": "drop", "key": key})
