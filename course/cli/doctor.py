"""`course doctor`: what is installed, which database is in use, and what to do about anything missing."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

from course import db
from course.errors import CourseError
from course.settings import Settings, get_settings

PACKAGES = ("sqlalchemy", "aiosqlite", "asyncpg", "jupyterlab", "ipython-sql", "pandas", "nbval")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def run(settings: Settings) -> int:
    """Print a short report; return 0 when the course can run as configured, 1 otherwise."""
    from course import seed
    from course.db.postgres import provider as postgres

    problems = 0
    print(f"Python       {platform.python_version()}")
    for name in PACKAGES:
        version = _version(name)
        problems += version == "missing"
        print(
            f"{name:<12} {version}"
            + ("   <- run `make lab` or `pip install -e .`" if version == "missing" else "")
        )
    print(f"backend      {settings.backend} (COURSE_BACKEND), scale {settings.scale} (COURSE_SCALE)")
    if settings.database_url:
        print(f"database     {db.describe(settings.database_url)} (COURSE_DATABASE_URL)")

    found = postgres.find_binaries() if settings.postgres_provider != "container" else None
    if settings.postgres_provider == "container":
        print("PostgreSQL   in a Docker container (COURSE_POSTGRES_PROVIDER=container)")
    else:
        print(f"PostgreSQL   {'binaries: ' + found[1] + ' in ' + str(found[0]) if found else 'no local binaries'}")
    # The container path is in use when asked for, or (auto) when there are no local binaries.
    container_ok = False
    in_container = settings.postgres_provider == "container" or (
        settings.postgres_provider == "auto" and not found
    )
    if in_container:
        container_ok, line = postgres.container.describe(settings)
        print(f"container    {line}")
    # The doctor only looks: status() reads the server's pid file or asks Docker; nothing here starts a server.
    running = postgres.status(settings)
    down = "container not running" if in_container else "local server not running"
    print(f"             {'running at ' + db.describe(running.url) if running else down}")
    if running is not None and running.data_dir is not None and postgres.local.needs_securing(running.data_dir):
        problems += 1
        print("             lets every local user in without a password  <- run `course postgres start` to fix it")
    local_postgres = settings.backend == "postgres" and not settings.database_url
    if local_postgres and not found and not container_ok:
        problems += 1
        print(
            "             <- install the extra: pip install -e '.[postgres]', start Docker, or set COURSE_DATABASE_URL"
        )
    if local_postgres and running is None:
        print(
            "seed         not checked: it lives in the course's server  <- run `course postgres start`, then this again"
        )
        problems += 1
        return _summary(problems)

    try:
        current = seed.status(settings, url=seed.seed_url(settings, start_server=False))
    except CourseError as exc:
        print(f"seed         {exc}")
        return 1
    if current.ok:
        print(f"seed         ok: {db.describe(current.url)}")
    else:
        print(f"seed         {current.reason}  <- run `course seed`")
        problems += 1
    return _summary(problems)


def _summary(problems: int) -> int:
    print("All good." if not problems else f"{problems} problem(s) found: see the arrows above.")
    return 0 if not problems else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    return run(get_settings())


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the set-up and say what to fix")
    p.set_defaults(handler=cmd_doctor)
