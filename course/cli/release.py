"""`course release OUT`: write the learner-facing course, without solutions/ or anything that holds answers."""

from __future__ import annotations

import argparse
import sys


def cmd_release(args: argparse.Namespace) -> int:
    from pathlib import Path

    from course.grading.release import release
    from course.settings import project_root

    report = release(project_root(), Path(args.out))
    print(f"Wrote {len(report.files)} files to {report.out} (no solutions/, tests/, benchmarks/ or .ci/).")
    for leak in report.leaks:
        print(
            f"course: warning: the answer to exercise {leak.exercise} survives in {leak.file} "
            f"({len(leak.lines)} of its lines, e.g. {leak.lines[0]!r})",
            file=sys.stderr,
        )
    print("Learners: `make lab` there; `course build --check` there has no solutions/ to compare and says so.")
    return 1 if report.leaks and args.strict else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "release",
        help="write the learner-facing course (no solutions) to a new folder",
        description=(
            "Copy the course's tracked files to OUT without solutions/, tests/, benchmarks/ and .ci/, then look "
            "for every solution region of solutions/ in what was written and warn about any that survives."
        ),
    )
    p.add_argument("out", metavar="OUT", help="a new (or empty) folder")
    p.add_argument("--strict", action="store_true", help="exit 1 when any reference answer survives")
    p.set_defaults(handler=cmd_release)
