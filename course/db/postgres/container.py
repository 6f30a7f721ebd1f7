"""The course's PostgreSQL in a Docker container: started through testcontainers, kept between runs, stopped on demand."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.db import aio
from course.db.postgres import local, secret
from course.errors import CourseError
from course.settings import Settings

log = logging.getLogger(__name__)

PORT = 5432
LABEL = "org.course.postgres"
# Long enough for a first initdb on a busy laptop; a container that exits is reported at once, not after this.
READY_SECONDS = 90
# What the local server does too: throw-away data, so no fsync, C collation for the same order on every machine.
SERVER_OPTIONS = ("-c", "fsync=off")
INITDB_ARGS = "--encoding=UTF8 --locale=C"


class NoDocker(CourseError):
    """No Docker engine answers (none installed, or not running)."""


@dataclass(frozen=True)
class Running:
    """A running course container: where to reach it and with which password."""

    name: str
    image: str
    host: str
    port: int
    password: str
    version: str


def import_container_class() -> Any:
    """testcontainers' PostgresContainer, imported only when a container is wanted (it is slow to import)."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        # Older testcontainers releases keep it here (newer ones warn that this path is deprecated).
        from testcontainers.postgres import PostgresContainer
    return PostgresContainer


def image_reference(image: str) -> str:
    """The image as Docker tags it: a name without a tag means :latest."""
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last or "@" in image else f"{image}:latest"


def container_name(settings: Settings) -> str:
    """One container per cache folder, so two checkouts (or test runs) with their own cache never share one."""
    digest = hashlib.sha1(str(settings.cache_dir.resolve()).encode()).hexdigest()[:10]
    return f"course-postgres-{digest}"


def _secret_anchor(settings: Settings) -> Path:
    # secret.py keeps a cluster's password beside its data folder; the container's lives where its folder would.
    return settings.cache_dir / "postgres" / "container"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "explanation", None) or exc).split())
    return text[:300] or type(exc).__name__


def _client(*, timeout: int = 30) -> Any:
    """testcontainers' Docker client (it reads DOCKER_HOST, docker contexts and ~/.testcontainers.properties)."""
    try:
        from docker.errors import DockerException
        from testcontainers.core.docker_client import DockerClient

        import_container_class()
    except ImportError:
        raise NoDocker("testcontainers is not installed (pip install -e .)") from None
    try:
        # docker-py asks the daemon for its API version here, so this is where a missing engine shows.
        return DockerClient(timeout=timeout)
    except DockerException as exc:
        reason = _one_line(exc)
        if "Permission denied" in reason:
            raise CourseError(
                "Docker refused the connection (permission denied): add yourself to the docker group, or use "
                "Docker Desktop"
            ) from None
        raise NoDocker(f"no Docker engine answers ({reason})") from None


def _find(client: Any, name: str) -> Any:
    from docker.errors import NotFound

    try:
        return client.client.containers.get(name)
    except NotFound:
        return None


def _network_mode(client: Any) -> str:
    """Host networking on an engine without the default bridge network (started with --bridge=none), else bridge."""
    return "bridge" if client.client.networks.list(names=["bridge"]) else "host"


def _connect_host(client: Any) -> str:
    host = str(client.host())
    return "127.0.0.1" if host in ("localhost", "::1", "127.0.0.1") else host


def _host_port(container: Any) -> int:
    container.reload()
    env = dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)
    if container.attrs["HostConfig"].get("NetworkMode") == "host":
        return int(env.get("PGPORT", PORT))
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{PORT}/tcp") or []
    if not bindings:
        raise CourseError(f"the PostgreSQL container {container.name} publishes no port for {PORT}")
    return int(bindings[0]["HostPort"])


def _have_image(client: Any, image: str) -> None:
    """Pull the image when Docker does not have it; a one-line error when it cannot be had."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.client.images.get(image)
        return
    except ImageNotFound:
        pass
    log.info("pulling %s (once; later runs reuse it)", image)
    try:
        client.client.images.pull(image)
    except (APIError, ImageNotFound) as exc:
        raise CourseError(
            f"the PostgreSQL image {image} cannot be had ({_one_line(exc)}): check COURSE_POSTGRES_IMAGE, "
            f"or pull it with `docker pull {image}`"
        ) from None


def _create(client: Any, settings: Settings, name: str, password: str) -> None:
    from docker.errors import APIError
    from testcontainers.core.config import testcontainers_config

    image = settings.postgres_image
    _have_image(client, image)
    # The course stops this container itself (`course postgres stop`) and keeps it between runs; testcontainers'
    # reaper would remove it when this process ends, and would itself be an image to pull.
    testcontainers_config.ryuk_disabled = True
    kwargs: dict[str, Any] = {"labels": {LABEL: str(settings.cache_dir)}}
    mode = _network_mode(client)
    if mode == "host":
        kwargs["network_mode"] = "host"
    container = import_container_class()(
        image, username="postgres", password=password, dbname="postgres", driver="asyncpg", name=name, **kwargs
    )
    container.with_env("POSTGRES_INITDB_ARGS", INITDB_ARGS)
    if mode == "host":
        # No port mapping on the host network: the server listens on a free loopback port of its own (PGPORT
        # also tells the psql of testcontainers' readiness check where to look).
        container.ports = {}
        container.with_env("PGPORT", str(local.free_port()))
        container.with_command(["postgres", *SERVER_OPTIONS, "-c", "listen_addresses=127.0.0.1"])
    else:
        # Published on the loopback interface only, unless Docker runs on another machine.
        bind_ip = "127.0.0.1" if _connect_host(client) == "127.0.0.1" else "0.0.0.0"
        container.ports = {f"{PORT}/tcp": (bind_ip, None)}
        container.with_command(["postgres", *SERVER_OPTIONS])
    try:
        container.start()
    except APIError as exc:
        raise CourseError(f"Docker refused to start the PostgreSQL container: {_one_line(exc)}") from None
    except TimeoutError:
        # testcontainers' own readiness check (psql inside the container) gave up.
        raise CourseError(
            f"the PostgreSQL container {name} did not get ready: {_log_tail(client, name)}"
        ) from None


def _log_tail(client: Any, name: str) -> str:
    container = _find(client, name)
    if container is None:
        return "it is gone"
    lines = [line for line in container.logs(tail=5).decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-2:])[:300] or f"status {container.status}"


async def _server_version(host: str, port: int, password: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(
            host=host, port=port, user="postgres", password=password, database="postgres", timeout=5
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    try:
        return str(await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()


def _wait_ready(client: Any, container: Any, host: str, password: str) -> tuple[int, str]:
    """(port, version) once the server accepts the course's login; an error as soon as the container exits."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        container.reload()
        if container.status in ("exited", "dead"):
            raise CourseError(
                f"the PostgreSQL container {container.name} stopped: {_log_tail(client, container.name)}"
            )
        if container.status == "running":
            port = _host_port(container)
            version = aio.run(_server_version(host, port, password))
            if version is not None:
                return port, version
        if time.monotonic() > deadline:
            raise CourseError(
                f"the PostgreSQL container {container.name} did not accept logins within {READY_SECONDS} s: "
                f"{_log_tail(client, container.name)}"
            )
        time.sleep(0.2)


def start(settings: Settings) -> Running:
    """Start the course's container (create it the first time, restart it when stopped) and wait until ready."""
    client = _client()
    from docker.errors import APIError

    name = container_name(settings)
    anchor = _secret_anchor(settings)
    with local.locked(anchor):
        container = _find(client, name)
        password = secret.read_secret(anchor)
        image_changed = (
            container is not None and image_reference(settings.postgres_image) not in container.image.tags
        )
        if container is not None and (password is None or image_changed):
            # A container made with another image (COURSE_POSTGRES_IMAGE changed) or whose password is lost.
            container.remove(force=True, v=True)
            container = None
        if container is None:
            password = secret.new_secret(anchor)
            _create(client, settings, name, password)
            container = _find(client, name)
            if container is None:
                raise CourseError(f"the PostgreSQL container {name} vanished right after it started")
        elif container.status != "running":
            try:
                container.start()
            except APIError as exc:
                raise CourseError(f"Docker refused to start the PostgreSQL container: {_one_line(exc)}") from None
        assert password is not None
        host = _connect_host(client)
        port, version = _wait_ready(client, container, host, password)
    return Running(
        name=name, image=settings.postgres_image, host=host, port=port, password=password, version=version
    )


def status(settings: Settings) -> Running | None:
    """The course's container when it runs; None when it is stopped, absent, or no Docker engine answers."""
    try:
        client = _client(timeout=5)
    except CourseError:
        return None
    container = _find(client, container_name(settings))
    password = secret.read_secret(_secret_anchor(settings))
    if container is None or container.status != "running" or password is None:
        return None
    image = container.image.tags[0] if container.image.tags else container.image.short_id
    # The version from the image's environment (both the official image and the course's test image set it).
    env = dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)
    return Running(
        name=container.name,
        image=image,
        host=_connect_host(client),
        port=_host_port(container),
        password=password,
        version=env.get("PG_VERSION", "?"),
    )


def describe(settings: Settings) -> tuple[bool, str]:
    """(usable, one line) about the course's container, for `course doctor`; starts nothing."""
    try:
        client = _client(timeout=5)
    except CourseError as exc:
        return False, str(exc)
    name = container_name(settings)
    container = _find(client, name)
    if container is None:
        return True, f"{name} not created yet: the first start makes it from {settings.postgres_image}"
    image = container.image.tags[0] if container.image.tags else container.image.short_id
    state = "running" if container.status == "running" else f"{container.status} (`course postgres start`)"
    return True, f"{name} ({image}) {state}"


def stop(settings: Settings) -> bool:
    """Stop the course's container (its data stays for the next start); True if it was running."""
    try:
        client = _client()
    except NoDocker:
        return False
    container = _find(client, container_name(settings))
    if container is None or container.status != "running":
        return False
    container.stop(timeout=10)
    return True


def remove(settings: Settings) -> bool:
    """Remove the course's container and its data; True if there was one."""
    try:
        client = _client()
    except NoDocker:
        return False
    container = _find(client, container_name(settings))
    if container is None:
        return False
    container.remove(force=True, v=True)
    return True
