"""`course anomalies [--backend B]`: run the isolation-anomaly schedules on a fresh copy and print the table."""

from __future__ import annotations

import argparse
import contextlib
import sys

from course.cli.common import settings_from


def cmd_anomalies(args: argparse.Namespace) -> int:
    from course.chapters.ch05_transactions.anomalies import anomaly_table
    from course.db import aio
    from course.seed import fresh
    from course.seed.status import ensure_seed

    settings = settings_from(args)
    # Stdout carries only the table (scripts parse it); a seed built first reports on stderr.
    with contextlib.redirect_stdout(sys.stderr):
        ensure_seed(settings, progress=False)

    async def run() -> str:
        async with fresh.fresh_copy(settings) as copy:
            return (await anomaly_table(copy.url)).tsv()

    print(aio.run(run()))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "anomalies",
        help="reproduce the isolation anomalies (Hermitage) on a fresh copy; print level × anomaly as TSV",
    )
    p.add_argument("--backend", choices=("sqlite", "postgres"), help="default: COURSE_BACKEND or sqlite")
    p.add_argument("--url", help="any async SQLAlchemy URL whose seed to copy (overrides --backend)")
    p.set_defaults(handler=cmd_anomalies)
