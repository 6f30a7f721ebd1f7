"""The course's PostgreSQL in a Docker container: started through testcontainers, kept between runs, stopped on demand."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.db import aio
from course.db.postgres import docker_api, local, secret
from course.errors import CourseError
from course.settings import Settings

log = logging.getLogger(__name__)

PORT = docker_api.PORT
LABEL = "org.course.postgres"
# Long enough for a first initdb on a busy laptop; a container that exits is reported at once, not after this.
READY_SECONDS = 90
# What the local server does too: throw-away data, so no fsync, C collation for the same order on every machine.
SERVER_OPTIONS = ("-c", "fsync=off")
INITDB_ARGS = "--encoding=UTF8 --locale=C"


NoDocker = docker_api.NoDocker


@dataclass(frozen=True)
class Running:
    """A running course container: where to reach it and with which password."""

    name: str
    image: str
    host: str
    port: int
    password: str
    version: str


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


def _create(client: Any, settings: Settings, name: str, password: str) -> None:
    from docker.errors import APIError
    from testcontainers.core.config import testcontainers_config

    image = settings.postgres_image
    docker_api.have_image(client, image)
    # The course stops this container itself (`course postgres stop`) and keeps it between runs; testcontainers'
    # reaper would remove it when this process ends, and would itself be an image to pull.
    testcontainers_config.ryuk_disabled = True
    kwargs: dict[str, Any] = {"labels": {LABEL: str(settings.cache_dir)}}
    mode = docker_api.network_mode(client)
    if mode == "host":
        kwargs["network_mode"] = "host"
    container = docker_api.import_container_class()(
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
        bind_ip = "127.0.0.1" if docker_api.connect_host(client) == "127.0.0.1" else "0.0.0.0"
        container.ports = {f"{PORT}/tcp": (bind_ip, None)}
        container.with_command(["postgres", *SERVER_OPTIONS])
    try:
        container.start()
    except APIError as exc:
        raise CourseError(
            f"Docker refused to start the PostgreSQL container: {docker_api.one_line(exc)}"
        ) from None
    except TimeoutError:
        # testcontainers' own readiness check (psql inside the container) gave up.
        raise CourseError(
            f"the PostgreSQL container {name} did not get ready: {docker_api.log_tail(client, name)}"
        ) from None


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
                f"the PostgreSQL container {container.name} stopped: {docker_api.log_tail(client, container.name)}"
            )
        if container.status == "running":
            port = docker_api.host_port(container)
            version = aio.run(_server_version(host, port, password))
            if version is not None:
                return port, version
        if time.monotonic() > deadline:
            raise CourseError(
                f"the PostgreSQL container {container.name} did not accept logins within {READY_SECONDS} s: "
                f"{docker_api.log_tail(client, container.name)}"
            )
        time.sleep(0.2)


def start(settings: Settings) -> Running:
    """Start the course's container (create it the first time, restart it when stopped) and wait until ready."""
    client = docker_api.connect()
    from docker.errors import APIError

    name = container_name(settings)
    anchor = _secret_anchor(settings)
    with local.locked(anchor):
        container = docker_api.find(client, name)
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
            container = docker_api.find(client, name)
            if container is None:
                raise CourseError(f"the PostgreSQL container {name} vanished right after it started")
        elif container.status != "running":
            try:
                container.start()
            except APIError as exc:
                raise CourseError(
                    f"Docker refused to start the PostgreSQL container: {docker_api.one_line(exc)}"
                ) from None
        assert password is not None
        host = docker_api.connect_host(client)
        port, version = _wait_ready(client, container, host, password)
    return Running(
        name=name, image=settings.postgres_image, host=host, port=port, password=password, version=version
    )


def status(settings: Settings) -> Running | None:
    """The course's container when it runs; None when it is stopped, absent, or no Docker engine answers."""
    try:
        client = docker_api.connect(timeout=5)
    except CourseError:
        return None
    container = docker_api.find(client, container_name(settings))
    password = secret.read_secret(_secret_anchor(settings))
    if container is None or container.status != "running" or password is None:
        return None
    image = container.image.tags[0] if container.image.tags else container.image.short_id
    # The version from the image's environment (the official images and the course's test image set it), e.g.
    # "17.2" or "17.2-1.pgdg120+1": status() only looks, it does not connect.
    version = docker_api.environment(container).get("PG_VERSION", "?").split("-")[0]
    return Running(
        name=container.name,
        image=image,
        host=docker_api.connect_host(client),
        port=docker_api.host_port(container),
        password=password,
        version=version,
    )


def describe(settings: Settings) -> tuple[bool, str]:
    """(usable, one line) about the course's container, for `course doctor`; starts nothing."""
    try:
        client = docker_api.connect(timeout=5)
    except CourseError as exc:
        return False, str(exc)
    name = container_name(settings)
    container = docker_api.find(client, name)
    if container is None:
        return True, f"{name} not created yet: the first start makes it from {settings.postgres_image}"
    image = container.image.tags[0] if container.image.tags else container.image.short_id
    state = "running" if container.status == "running" else f"{container.status} (`course postgres start`)"
    return True, f"{name} ({image}) {state}"


def stop(settings: Settings) -> bool:
    """Stop the course's container (its data stays for the next start); True if it was running."""
    try:
        client = docker_api.connect()
    except docker_api.NoDocker:
        return False
    container = docker_api.find(client, container_name(settings))
    if container is None or container.status != "running":
        return False
    container.stop(timeout=10)
    return True


def remove(settings: Settings) -> bool:
    """Remove the course's container and its data; True if there was one."""
    try:
        client = docker_api.connect()
    except docker_api.NoDocker:
        return False
    container = docker_api.find(client, container_name(settings))
    if container is None:
        return False
    container.remove(force=True, v=True)
    return True
