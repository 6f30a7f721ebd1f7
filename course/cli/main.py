"""The `course` command: one parser, each command group in its own module (seed, postgres, doctor, exercises, ...)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from course import __version__
from course.cli import anomalies, doctor, exercises, link, postgres, release, seed, site, start, workshop
from course.errors import CourseError

Handler = Callable[[argparse.Namespace], int]
GROUPS = (seed, postgres, doctor, exercises, start, anomalies, release, workshop, link, site)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description="Backend database practice with async SQLAlchemy.")
    parser.add_argument("--version", action="version", version=f"course {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
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
