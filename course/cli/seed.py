"""`course seed`: build the seeded database and print row counts and time."""

from __future__ import annotations

import argparse
import sys

from course.cli.common import settings_from
from course.settings import SCALES


def cmd_seed(args: argparse.Namespace) -> int:
    from course import db, seed

    settings = settings_from(args)
    target = args.url or seed.seed_url(settings)
    if db.parse_url(target).get_backend_name() == "postgresql":
        from course.db import aio
        from course.db.postgres import roles

        # A template someone set to refuse connections (or gave away) is opened again before anything reads it.
        if fixed := aio.run(roles.reopen(target)):
            print(f"{db.describe(target)} had been tampered with ({', '.join(fixed)}): restored.")
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seed", help="build the seeded database")
    p.add_argument("--scale", choices=SCALES, help="data size (default: COURSE_SCALE or small)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--backend", choices=("sqlite", "postgres"), help="default: COURSE_BACKEND or sqlite")
    where.add_argument("--url", help="seed exactly this database (async SQLAlchemy URL)")
    p.add_argument("--force", action="store_true", help="rebuild even when the seed is up to date")
    p.set_defaults(handler=cmd_seed)
