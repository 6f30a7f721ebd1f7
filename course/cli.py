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


def cmd_build(args: argparse.Namespace) -> int:
    from course.build import build
    from course.settings import project_root

    paths = build(project_root(), check=args.check)
    verb = "in sync with" if args.check else "generated from"
    print(f"exercises/ is {verb} solutions/ ({len(paths)} notebook{'s' * (len(paths) != 1)})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from course import runner
    from course.build import load_notebook
    from course.seed import ensure_seed

    paths = [Path(p) for p in args.notebooks]
    for path in paths:
        if not path.is_file():
            raise CourseError(f"no such notebook: {path}")
        load_notebook(path)
    # Build the seed now (with progress) rather than inside the kernel, within a cell's time limit.
    ensure_seed(progress=sys.stderr.isatty() and not args.json, announce=not args.json)
    results = []
    for path in paths:
        if not args.json:
            print(f"Checking {path} (each cell within {args.timeout:g} s) ...", flush=True)
        results.append(runner.run_notebook(path, timeout=args.timeout))
        if not args.json:
            print(runner.format_result(results[-1]), flush=True)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
    return 0 if all(r.passed for r in results) else 1


def cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from course import grading

    report = grading.grade(
        [Path(p) for p in args.submissions],
        out=Path(args.out),
        jobs=args.jobs,
        timeout=args.timeout,
        reference=Path(args.reference) if args.reference else None,
    )
    print(grading.format_summary(report))
    return 0


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

    p = sub.add_parser("build", help="generate exercises/ from solutions/")
    p.add_argument("--check", action="store_true", help="write nothing; fail when exercises/ is out of sync")
    p.set_defaults(handler=cmd_build)

    p = sub.add_parser(
        "check",
        help="run exercise notebooks and show which exercises pass",
        description=(
            "Run each notebook top to bottom in a fresh kernel (nbval), every check on a fresh copy of the seed, "
            "and print exercise -> pass/fail with the check's message. Exit 0 only if every exercise passes. "
            "Cells stop after --timeout seconds; keep it above the checks' own 30 s limit."
        ),
    )
    p.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    p.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="time limit per cell (default 60)"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser(
        "grade",
        help="grade many learners' notebooks into CSV files",
        description=(
            "Run every submitted notebook on a fresh copy of the seed and write DIR/grades.csv (one row per "
            "exercise) and DIR/summary.csv (points per learner). The chapter comes from the notebook's name "
            "(04_pagination.ipynb, alice_04_pagination.ipynb). The learner is the sub-folder of a SUBMISSIONS "
            "folder the notebook sits in (subs/alice/04_pagination.ipynb -> alice); for a notebook directly in "
            "a given folder or given by path, the parent folder when the file keeps its chapter name "
            "(alice/04_pagination.ipynb -> alice), else the file name without .ipynb (alice_04.ipynb -> alice_04)."
        ),
    )
    p.add_argument(
        "submissions", nargs="+", metavar="SUBMISSIONS", help="notebooks, or folders searched for *.ipynb"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="where grades.csv and summary.csv are written")
    p.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="notebooks run at once (default: CPU count)"
    )
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="time limit per cell (default 60)")
    p.add_argument(
        "--reference",
        metavar="DIR",
        help="folder of the exercise notebooks that say which exercises each chapter has (default: exercises/)",
    )
    p.set_defaults(handler=cmd_grade)
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
