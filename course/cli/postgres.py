"""`course postgres start|stop|status|url`: the course's local PostgreSQL server."""

from __future__ import annotations

import argparse

from course.settings import get_settings


def cmd_postgres(args: argparse.Namespace) -> int:
    from course.db.postgres import provider as postgres

    settings = get_settings()
    if args.action == "start":
        info = postgres.start(settings)
        print(f"PostgreSQL {info.version} ({info.provider}) running at {info.url}")
    elif args.action == "stop":
        print("stopped" if postgres.stop(settings) else "not running")
    elif args.action == "status":
        running = postgres.status(settings)
        if running is None:
            print("not running (start it with `course postgres start`)")
            return 1
        print(
            f"PostgreSQL {running.version} ({running.provider}) running at {running.url}, data in {running.data_dir}"
        )
    else:
        print(postgres.server_url(settings, start_server=True))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("postgres", help="the course's local PostgreSQL server")
    p.add_argument("action", choices=("start", "stop", "status", "url"))
    p.set_defaults(handler=cmd_postgres)
