"""The container path for real: a private Docker engine, an image built here with no pull, a lesson and a check on it.

Learners with Docker and no PostgreSQL binaries get the course's server from a container (COURSE_POSTGRES_PROVIDER=
container, or auto without binaries). Registries are out of reach here, so the test builds its image from Debian
packages (tests/containers/build-postgres-rootfs, cached in the course cache) with the official image's contract
(POSTGRES_USER/PASSWORD/DB) and points COURSE_POSTGRES_IMAGE at it. Everything it starts (dockerd, containers) is
stopped and removed afterwards. Without root or the packages (docker.io, debootstrap) it skips with a one-line
reason, unless COURSE_REQUIRE_SYSTEM_PACKAGES=1 (CI) makes that a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course import db, seed
from course.chapters.registry import chapter
from course.db import aio
from course.db.postgres import container, provider
from course.errors import CourseError
from course.settings import Settings, get_settings
from tests import teeth
from tests.containers import engine as docker_engine
from tests.containers import image as pg_image
from tests.nbsource import ROOT

REQUIRE = os.environ.get("COURSE_REQUIRE_SYSTEM_PACKAGES", "") not in ("", "0", "false")
# The shortest lesson; its last cell runs `course doctor`, which must report the container.
LESSON = ROOT / "notebooks" / "00_start_here.ipynb"


def _cannot(reason: str) -> NoReturn:
    """Skip with a one-line reason, or fail where the system packages are required (CI)."""
    if REQUIRE:
        pytest.fail(f"COURSE_REQUIRE_SYSTEM_PACKAGES=1 but {reason}")
    pytest.skip(reason)


# One test uses the engine (starting one costs seconds): it proves the lesson, the check and the errors.
@pytest.fixture(scope="module")
def private_docker() -> Iterator[docker_engine.Engine]:
    reason = docker_engine.why_not()
    if reason is not None:
        _cannot(reason)
    try:
        engine = docker_engine.start()
    except RuntimeError as exc:
        # E.g. inside a container without cgroups or mount rights.
        _cannot(str(exc))
    try:
        yield engine
    finally:
        docker_engine.stop(engine)


@pytest.fixture(scope="module")
def course_image(private_docker: docker_engine.Engine) -> str:
    """The test image, built on the private engine from the cached rootfs (built first when not cached)."""
    # The course's own cache (COURSE_CACHE_DIR or ~/.cache/course): the rootfs outlives the run, the engine does not.
    try:
        tarball, built = pg_image.rootfs_tarball(get_settings().cache_dir)
    except RuntimeError as exc:
        # E.g. no route to the Debian mirror.
        _cannot(str(exc))
    began = time.perf_counter()
    client = private_docker.client()
    try:
        image = pg_image.build(client, tarball)
    finally:
        client.close()
    print(
        f"rootfs {built:.1f} s ({tarball.stat().st_size / 2**20:.0f} MiB), import + build {time.perf_counter() - began:.1f} s"
    )
    return image


@pytest.fixture
def on_container(
    private_docker: docker_engine.Engine, course_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Tiny PostgreSQL settings whose server is the course's container; kernels and CLI runs inherit them."""
    for name, value in {
        "DOCKER_HOST": private_docker.host,
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "COURSE_POSTGRES_PROVIDER": "container",
        "COURSE_POSTGRES_IMAGE": course_image,
        # A cache of its own: its own container name, password and seed templates.
        "COURSE_CACHE_DIR": str(tmp_path / "cache"),
        "COURSE_BACKEND": "postgres",
        "COURSE_SCALE": "tiny",
    }.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    try:
        yield settings
    finally:
        container.remove(settings)


def course(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "course.cli", *args], capture_output=True, text=True, timeout=120)


def _outputs(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        out.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
    )


def _run_lesson() -> str:
    notebook = nbformat.read(LESSON, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=180,
        # Outputs that reach the client late (a busy machine) are waited for, not dropped: the test reads them.
        iopub_timeout=60,
        kernel_name="python3",
        resources={"metadata": {"path": str(LESSON.parent)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{LESSON.name} on the container: {str(exc)[-2000:]}")
    return _outputs(notebook)


# Its set-up builds the rootfs on a machine with no cache (CI: minutes, see tests/containers/build-postgres-rootfs).
@pytest.mark.timeout(1200)
@pytest.mark.notebooks
def test_a_lesson_and_a_check_run_on_the_course_container(
    on_container: Settings, private_docker: docker_engine.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.perf_counter()
    started = course("postgres", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    info = provider.start(on_container)
    assert info.container == container.container_name(on_container)
    assert info.provider == f"container {pg_image.IMAGE}" and info.version.startswith("15.")
    assert info.data_dir is None and db.describe(info.url).startswith(
        "postgresql+asyncpg://postgres:***@127.0.0.1:"
    )
    # Reused, not made again: the same container and port as the CLI's start.
    assert provider.start(on_container).port == info.port
    client = private_docker.client()
    assert [c.name for c in client.containers.list(all=True)] == [info.container]
    status = course("postgres", "status")
    assert status.returncode == 0 and f"in container {info.container}" in status.stdout, status.stdout

    seeded = time.perf_counter()
    seed.ensure_seed(on_container, progress=False, announce=False)
    lessoned = time.perf_counter()
    lesson = _run_lesson()
    checked = time.perf_counter()
    assert "dialect: postgresql" in lesson and "scale: tiny" in lesson, lesson[-2000:]
    assert f"container    {info.container} ({pg_image.IMAGE}) running" in lesson, lesson[-2000:]

    create_user = teeth.solved("solutions/01_crud.ipynb")["create_user"]
    aio.run(chapter("01_crud").checks().check("1.1", create_user, settings=on_container))
    assert "✅ Exercise 1.1 passed" in capsys.readouterr().out

    # Stopped, not removed: the next start finds the seed it left.
    stopped = course("postgres", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    assert provider.status(on_container) is None
    restarted = provider.start(on_container)
    assert restarted.container == info.container
    assert seed.status(on_container, url=seed.seed_url(on_container)).ok
    # Nothing was pulled: the engine holds only the images this test built.
    tags = {tag for image in client.images.list() for tag in image.tags}
    assert tags == {pg_image.IMAGE, pg_image.ROOTFS_IMAGE}, tags
    client.close()
    errored = time.perf_counter()
    _errors_are_one_line(on_container)
    print(
        f"container test: start {seeded - began:.1f} s, seed {lessoned - seeded:.1f} s, lesson "
        f"{checked - lessoned:.1f} s, check + stop + restart {errored - checked:.1f} s, "
        f"errors {time.perf_counter() - errored:.1f} s"
    )


def _one_line_error(settings: Settings) -> str:
    with pytest.raises(CourseError) as caught:
        provider.start(settings)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 500, message
    return message


def _errors_are_one_line(settings: Settings) -> None:
    """An image that cannot be had, and a container the engine refuses to start: each a one-line CourseError."""
    # A registry on a closed loopback port: the pull fails at once, and nothing leaves the machine.
    missing = "127.0.0.1:9/course-missing:1"
    message = _one_line_error(replace(settings, postgres_image=missing, cache_dir=settings.cache_dir / "missing"))
    assert f"the PostgreSQL image {missing} cannot be had" in message and "COURSE_POSTGRES_IMAGE" in message
    # The bare rootfs has no postgres on its PATH: the engine cannot start the server's command.
    bare = replace(settings, postgres_image=pg_image.ROOTFS_IMAGE, cache_dir=settings.cache_dir / "bare")
    try:
        message = _one_line_error(bare)
    finally:
        container.remove(bare)
    assert "Docker refused to start the PostgreSQL container" in message and "postgres" in message


def test_without_docker_the_container_provider_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    settings = get_settings(backend="postgres", postgres_provider="container", cache_dir=tmp_path)
    message = _one_line_error(settings)
    assert (
        "COURSE_POSTGRES_PROVIDER=container but no Docker engine answers" in message and "start Docker" in message
    )
    assert provider.status(settings) is None and provider.stop(settings) is False


def test_the_provider_and_image_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_POSTGRES_PROVIDER", "Container")
    monkeypatch.setenv("COURSE_POSTGRES_IMAGE", "postgres:16")
    settings = get_settings()
    assert (settings.postgres_provider, settings.postgres_image) == ("container", "postgres:16")
    monkeypatch.setenv("COURSE_POSTGRES_PROVIDER", "podman")
    with pytest.raises(CourseError, match="unknown COURSE_POSTGRES_PROVIDER 'podman'") as caught:
        get_settings()
    assert "\n" not in str(caught.value)
    # Docker tags an image named without a tag as :latest; the container is found again by that reference.
    assert container.image_reference("postgres") == "postgres:latest"
    assert container.image_reference("localhost:5000/pg") == "localhost:5000/pg:latest"
    assert container.image_reference("postgres:17-alpine") == "postgres:17-alpine"


def test_the_local_provider_never_falls_back_to_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provider, "find_binaries", lambda: None)
    settings = get_settings(backend="postgres", postgres_provider="local", cache_dir=tmp_path)
    message = _one_line_error(settings)
    assert "COURSE_POSTGRES_PROVIDER=local but no PostgreSQL server binaries" in message
    assert provider.status(settings) is None and provider.stop(settings) is False


def test_lesson_6_does_not_restart_a_container() -> None:
    # Restarted, a container's published port changes: lesson 6's pool would point at nothing.
    from course.chapters.ch06_pooling.server import restart_reason

    reason = restart_reason(get_settings(backend="postgres", postgres_provider="container"))
    assert reason is not None and "not a local server" in reason
