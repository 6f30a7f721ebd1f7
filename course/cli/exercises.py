"""`course build`, `course check` and `course grade`: exercise notebooks for maintainers, learners and instructors."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from course.errors import CourseError

if TYPE_CHECKING:
    from course.grading.runner import NotebookResult


def _stop_on_terminate() -> None:
    """SIGTERM (a closed terminal, `kill`) stops a run like Ctrl-C does, so its clean-up still runs."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def cmd_build(args: argparse.Namespace) -> int:
    from course.grading.build import build
    from course.settings import project_root

    if not (project_root() / "solutions").is_dir():
        # A student release (`course release`): exercises/ are what was handed out, there is nothing to build from.
        print("no solutions/ here (a student release): exercises/ are the learner versions, nothing to build")
        return 0
    paths = build(project_root(), check=args.check)
    verb = "in sync with" if args.check else "generated from"
    print(f"exercises/ is {verb} solutions/ ({len(paths)} notebook{'s' * (len(paths) != 1)})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import json
    from contextlib import nullcontext
    from pathlib import Path

    from course.grading import runner
    from course.grading.notebook_format import chapter_of, load_notebook
    from course.seed import ensure_seed
    from course.seed.fresh import copy_service

    paths = [Path(p) for p in args.notebooks]
    for path in paths:
        if not path.is_file():
            raise CourseError(f"no such notebook: {path}")
        load_notebook(path)
        chapter_of(path)
    if args.sandbox:
        from course.grading.classroom import _sandbox_or_refuse

        _sandbox_or_refuse()
    _stop_on_terminate()
    # Build the seed now (with progress) rather than inside the kernel, within a cell's time limit.
    ensure_seed(progress=sys.stderr.isatty() and not args.json, announce=not args.json)
    results = []
    # Self-study keeps the login it has (it is the learner's own server); --restricted-role grades as a class would.
    with copy_service() if args.restricted_role else nullcontext():
        for path in paths:
            if not args.json:
                print(f"Checking {path} (each cell within {args.timeout:g} s) ...", flush=True)
            if args.sandbox:
                results.append(_check_in_sandbox(path, timeout=args.timeout))
            else:
                results.append(runner.run_notebook(path, timeout=args.timeout))
            if not args.json:
                print(runner.format_result(results[-1]), flush=True)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
    if args.classroom:
        from course.grading import autograding

        autograding.write_output(Path(args.classroom), autograding.results(results))
    return 0 if all(r.passed for r in results) else 1


def _check_in_sandbox(path: Path, *, timeout: float) -> NotebookResult:
    """One notebook checked the way `course grade` does: in sandboxes, on the learner's definitions only."""
    import time

    from course.grading.notebook_format import chapter_of
    from course.grading.runner import NotebookResult
    from course.grading.sandboxed import SandboxBroken, run_sandboxed

    started = time.perf_counter()
    chapter = chapter_of(path)
    try:
        exercises, cells, kernel_error = run_sandboxed(path, chapter=chapter, timeout=timeout)
    except SandboxBroken as exc:
        return NotebookResult(path=path, chapter=chapter.stem, error=str(exc))
    # The kernel's run only shows the learner their cells: the verdicts come from the check process.
    cells = [kernel_error, *cells] if kernel_error else cells
    return NotebookResult(
        path=path,
        chapter=chapter.stem,
        exercises=exercises,
        cell_errors=cells,
        seconds=time.perf_counter() - started,
    )


def cmd_grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from course.grading import classroom as grading
    from course.seed.fresh import copy_service

    if args.reference:
        print(
            "course: --reference is no longer needed and is ignored: chapters come from the course",
            file=sys.stderr,
        )
    _stop_on_terminate()
    submissions = [Path(p) for p in args.submissions]
    sandboxed = not args.no_sandbox
    if args.urls:
        from course.grading import workshop

        # A workshop: each learner's kernel works in their own database as their own role.
        urls = workshop.grading_urls(Path(args.urls))
        report = grading.grade(
            submissions, out=Path(args.out), jobs=args.jobs, timeout=args.timeout, sandboxed=sandboxed, urls=urls
        )
    else:
        # On PostgreSQL every copy a kernel uses is made by this process and owned by a role of its own.
        with copy_service() as broker:
            # The kernels need no admin URL then: blank it, so learner code cannot read it from the environment.
            hidden = {"COURSE_DATABASE_URL": "", "COURSE_BACKEND": "postgres"} if broker else None
            report = grading.grade(
                submissions,
                out=Path(args.out),
                jobs=args.jobs,
                timeout=args.timeout,
                sandboxed=sandboxed,
                kernel_env=hidden,
            )
    print(grading.format_summary(report))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="generate exercises/ from solutions/")
    p.add_argument("--check", action="store_true", help="write nothing; fail when exercises/ is out of sync")
    p.set_defaults(handler=cmd_build)

    p = sub.add_parser(
        "check",
        help="run exercise notebooks and show which exercises pass",
        description=(
            "Run each notebook top to bottom in a fresh kernel (nbval), then check every exercise of its chapter "
            "(the chapter comes from the file name, e.g. 04_pagination.ipynb), each on a fresh copy of the seed, "
            "and print exercise -> pass/fail with the check's message and the cells that failed. Exit 0 only if "
            "every exercise passes (or is skipped on this database). Cells stop after --timeout seconds; keep it "
            "above the checks' own 30 s limit."
        ),
    )
    p.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    p.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="time limit per cell (default 60)"
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument(
        "--classroom",
        metavar="FILE",
        help='also append result=<points per exercise> to FILE for GitHub Classroom (pass "$GITHUB_OUTPUT")',
    )
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="check as `course grade` does: in a sandbox, on the notebook's definitions only",
    )
    p.add_argument(
        "--restricted-role",
        action="store_true",
        help="on PostgreSQL, give the notebook and its checks copies owned by a role of their own that cannot "
        "reach the seed or anything else (what `course grade` always does)",
    )
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
            "(alice/04_pagination.ipynb -> alice), else the file name without .ipynb (alice_04.ipynb -> alice_04). "
            "Each submission runs in a sandbox of its own (bubblewrap: no network, no other files, limits) and its "
            "exercises are checked on its definitions alone; status is passed, failed, skipped, error (the grading "
            "broke, tried twice) or tampered (the code reached for the grader; the message says how). Rows are "
            "appended as each submission finishes; a re-run with the same --out skips submissions already graded "
            "(DIR/graded.csv holds their content hashes)."
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
        "--no-sandbox",
        action="store_true",
        help="grade without a sandbox where none can be made (trusts the submissions: only for your own notebooks)",
    )
    p.add_argument(
        "--urls",
        metavar="CSV",
        help="a workshop's CSV from `course workshop provision`: each learner's notebook runs as their own role in "
        "their own database, made again from the verified seed first (COURSE_DATABASE_URL: the seed template)",
    )
    # Kept so existing scripts still run: the chapters and their exercises come from the course's registry.
    p.add_argument("--reference", metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_grade)
