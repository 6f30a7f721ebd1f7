"""Talking to a Docker engine for the course: one client, containers by name, their ports, images, one-line errors."""

from __future__ import annotations

import logging
import sys
from typing import Any

from course.errors import CourseError

log = logging.getLogger(__name__)

PORT = 5432


class NoDocker(CourseError):
    """No Docker engine answers (none installed, or not running)."""


def import_container_class() -> Any:
    """testcontainers' PostgresContainer, imported only when a container is wanted (it is slow to import)."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        # Older testcontainers releases keep it here (newer ones warn that this path is deprecated).
        from testcontainers.postgres import PostgresContainer
    return PostgresContainer


def one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "explanation", None) or exc).split())
    return text[:300] or type(exc).__name__


def connect(*, timeout: int = 30) -> Any:
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
        reason = one_line(exc)
        if "Permission denied" in reason:
            raise CourseError(
                "Docker refused the connection (permission denied): add yourself to the docker group, or use "
                "Docker Desktop"
            ) from None
        raise NoDocker(f"no Docker engine answers ({reason})") from None


def find(client: Any, name: str) -> Any:
    from docker.errors import NotFound

    try:
        return client.client.containers.get(name)
    except NotFound:
        return None


def network_mode(client: Any) -> str:
    """Host networking on an engine without the default bridge network (started with --bridge=none), else bridge."""
    return "bridge" if client.client.networks.list(names=["bridge"]) else "host"


def connect_host(client: Any) -> str:
    host = str(client.host())
    return "127.0.0.1" if host in ("localhost", "::1", "127.0.0.1") else host


def environment(container: Any) -> dict[str, str]:
    """The container's environment variables (from its image and its creation)."""
    return dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)


def host_port(container: Any) -> int:
    """The port on the Docker host where the container's PostgreSQL listens."""
    container.reload()
    env = environment(container)
    if container.attrs["HostConfig"].get("NetworkMode") == "host":
        return int(env.get("PGPORT", PORT))
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(f"{PORT}/tcp") or []
    if not bindings:
        raise CourseError(f"the PostgreSQL container {container.name} publishes no port for {PORT}")
    return int(bindings[0]["HostPort"])


def have_image(client: Any, image: str) -> None:
    """Pull the image when Docker does not have it; a one-line error when it cannot be had."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.client.images.get(image)
        return
    except ImageNotFound:
        pass
    # A first pull can take a minute: say what is happening (in a notebook, under the cell that started it).
    print(f"Pulling the PostgreSQL image {image} (once; later runs reuse it) ...", file=sys.stderr, flush=True)
    try:
        client.client.images.pull(image)
    except (APIError, ImageNotFound) as exc:
        raise CourseError(
            f"the PostgreSQL image {image} cannot be had ({one_line(exc)}): check COURSE_POSTGRES_IMAGE, "
            f"or pull it with `docker pull {image}`"
        ) from None


def log_tail(client: Any, name: str) -> str:
    container = find(client, name)
    if container is None:
        return "it is gone"
    lines = [line for line in container.logs(tail=5).decode(errors="replace").splitlines() if line.strip()]
    return " / ".join(lines[-2:])[:300] or f"status {container.status}"
