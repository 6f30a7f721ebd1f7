"""The `course` command: seed the database, run the local PostgreSQL, diagnose the set-up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from course import __version__
from course.errors import CourseError
from course.settings import SCALES, get_settings

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace):
    overrides = {}
    if getattr(args, "scale", None):
        overrides["scale"] = args.scale
    if getattr(args, "url", None):
        overrides["database_url"] = args.url
    if getattr(args, "backend", None):
        overrides["backend"] = args.backend
    return get_settings(**overrides)


def cmd_seed(args: argparse.Namespace) -> int:
    from course import db, seed

    settings = _settings(args)
    target = args.url or seed.seed_url(settings)
    if not args.force:
        current = seed.status(settings, url=target)
        if current.ok:
            print(f"The {settings.scale} seed at {db.describe(target)} is up to date (use --force to rebuild).")
            return 0
    print(f"Seeding {settings.scale} into {db.describe(target)} ...")
    report = seed.seed(settings, url=target, progress=sys.stderr.isatty())
    width = max(len(name) for name in report.rows)
    for name, count in report.rows.items():
        print(f"  {name:<{width}}  {count:>10,}")
    print(
        f"{report.total_rows:,} rows in {report.seconds:.1f} s ({report.total_rows / report.seconds:,.0f} rows/s)"
    )
    return 0


def cmd_postgres(args: argparse.Namespace) -> int:
    from course import postgres

    settings = get_settings()
    if args.action == "start":
        info = postgres.start(settings)
        print(f"PostgreSQL {info.version} ({info.provider}) running at {info.url}")
    elif args.action == "stop":
        print("stopped" if postgres.stop(settings) else "not running")
    elif args.action == "status":
        info = postgres.status(settings)
        if info is None:
            print("not running (start it with `course postgres start`)")
            return 1
        print(f"PostgreSQL {info.version} ({info.provider}) running at {info.url}, data in {info.data_dir}")
    else:
        print(postgres.admin_url(settings, start_server=True))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from course import doctor

    return doctor.run(get_settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="Backend database practice with async SQLAlchemy.")
    parser.add_argument("--version", action="version", version=f"course {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("seed", help="build the seeded database")
    p.add_argument("--scale", choices=SCALES, help="data size (default: COURSE_SCALE or small)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--backend", choices=("sqlite", "postgres"), help="default: COURSE_BACKEND or sqlite")
    where.add_argument("--url", help="seed exactly this database (async SQLAlchemy URL)")
    p.add_argument("--force", action="store_true", help="rebuild even when the seed is up to date")
    p.set_defaults(handler=cmd_seed)

    p = sub.add_parser("postgres", help="the course's local PostgreSQL server")
    p.add_argument("action", choices=("start", "stop", "status", "url"))
    p.set_defaults(handler=cmd_postgres)

    p = sub.add_parser("doctor", help="check the set-up and say what to fix")
    p.set_defaults(handler=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CourseError as exc:
        print(f"course: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("course: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
