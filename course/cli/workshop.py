"""`course workshop provision|teardown`: one database and one login role per learner on a shared PostgreSQL."""

from __future__ import annotations

import argparse
from pathlib import Path

from course.settings import SCALES


def _admin(args: argparse.Namespace) -> str:
    from course import db
    from course.db.postgres import admin as pg_admin
    from course.errors import CourseError
    from course.settings import get_settings

    if args.url:
        if db.parse_url(args.url).get_backend_name() != "postgresql":
            raise CourseError(
                "workshop mode needs a PostgreSQL URL (postgresql+asyncpg://admin:...@host/postgres)"
            )
        return db.async_url(args.url).set(database="postgres").render_as_string(hide_password=False)
    # No URL: the course's own local server (a workshop rehearsal on one machine).
    return pg_admin.admin_url(get_settings(backend="postgres"))


def cmd_provision(args: argparse.Namespace) -> int:
    from course import db
    from course.grading import workshop

    names = workshop.learner_names(count=args.learners, names_file=Path(args.names) if args.names else None)
    seats = workshop.provision(_admin(args), names, out=Path(args.out), scale=args.scale or "small")
    print(f"Provisioned {len(seats)} learner(s) on {db.describe(_admin(args))}; their URLs are in {args.out}")
    print("Give each learner their own line's url as COURSE_DATABASE_URL (the file holds passwords: mode 600).")
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    from course.grading import workshop

    dropped = workshop.teardown(_admin(args), Path(args.seats))
    print(f"Dropped {len(dropped)} learner role(s) with their databases and copies.")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("workshop", help="one database and login role per learner on a shared PostgreSQL")
    commands = group.add_subparsers(dest="workshop_command", required=True)
    p = commands.add_parser(
        "provision",
        help="create each learner's role and database from the seed; write their URLs to a CSV",
        description=(
            "On the PostgreSQL at --url (an admin login; default: the course's own server), build and verify the "
            "seed template, then create for each learner a login role (random password, no superuser) owning a "
            "copy of it that only they may connect to. Writes learner,role,database,url to --out (mode 600)."
        ),
    )
    p.add_argument("--learners", type=int, metavar="N", help="how many learners (named learner01...)")
    p.add_argument("--names", metavar="FILE", help="learner names, one per line (a-z, 0-9, _)")
    p.add_argument("--url", metavar="ADMIN_URL", help="admin URL of the shared server")
    p.add_argument("--out", default="workshop.csv", metavar="CSV", help="where the URLs go (default workshop.csv)")
    p.add_argument("--scale", choices=SCALES, help="data size (default small)")
    p.set_defaults(handler=cmd_provision)
    p = commands.add_parser("teardown", help="drop every learner role and database a provision CSV lists")
    p.add_argument("seats", nargs="?", default="workshop.csv", metavar="CSV", help="default workshop.csv")
    p.add_argument("--url", metavar="ADMIN_URL", help="admin URL of the shared server")
    p.set_defaults(handler=cmd_teardown)
