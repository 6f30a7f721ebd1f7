"""`course postgres start|stop|status|url`: the course's own PostgreSQL (local server or Docker container)."""

from __future__ import annotations

import argparse

from course import db
from course.settings import get_settings


def cmd_postgres(args: argparse.Namespace) -> int:
    from course.db.postgres import provider as postgres

    settings = get_settings()
    if args.action == "start":
        info = postgres.start(settings)
        print(f"PostgreSQL {info.version} ({info.provider}) running at {db.describe(info.url)}")
    elif args.action == "stop":
        print("stopped" if postgres.stop(settings) else "not running")
    elif args.action == "status":
        running = postgres.status(settings)
        if running is None:
            print("not running (start it with `course postgres start`)")
            return 1
        where = f"in container {running.container}" if running.container else f"data in {running.data_dir}"
        print(f"PostgreSQL {running.version} ({running.provider}) running at {db.describe(running.url)}, {where}")
    else:
        url = postgres.server_url(settings, start_server=True)
        # The password stays hidden unless a script asks for it with --password.
        print(url if args.password else db.describe(url))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("postgres", help="the course's own PostgreSQL (local binaries or a Docker container)")
    p.add_argument("action", choices=("start", "stop", "status", "url"))
    p.add_argument("--password", action="store_true", help="url: show the password instead of ***")
    p.set_defaults(handler=cmd_postgres)
