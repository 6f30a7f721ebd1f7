"""The container test's PostgreSQL image, made with no registry: a cached Debian rootfs, imported, plus an entrypoint."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_ROOTFS = HERE / "build-postgres-rootfs"
ROOTFS_IMAGE = "course-postgres-rootfs:latest"
IMAGE = "course-postgres:test"
# debootstrap downloads ~100 MB and installs ~130 packages: minutes on a busy 2-core machine, once per cache.
BUILD_TIMEOUT = 900


def rootfs_tarball(cache_dir: Path) -> tuple[Path, float]:
    """The cached rootfs tarball (built first when missing or stale) and the seconds spent getting it."""
    began = time.perf_counter()
    try:
        result = subprocess.run(
            [str(BUILD_ROOTFS), str(cache_dir)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"building the PostgreSQL rootfs took over {BUILD_TIMEOUT} s") from None
    if result.returncode != 0:
        tail = " / ".join(result.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"building the PostgreSQL rootfs failed: {tail[-400:]}")
    return Path(result.stdout.strip().splitlines()[-1]), time.perf_counter() - began


def build(client: Any, tarball: Path) -> str:
    """Import the rootfs and build the image on top of it, pulling nothing; returns the image's tag."""
    env = dict(line.split("=", 1) for line in tarball.with_suffix(".env").read_text().split())
    repository, tag = ROOTFS_IMAGE.split(":")
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
    client.images.build(
        path=str(HERE / "postgres-image"),
        tag=IMAGE,
        pull=False,
        rm=True,
        buildargs={"PG_VERSION": env["PG_VERSION"]},
    )
    return IMAGE
