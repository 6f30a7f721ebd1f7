"""Grade many learners' notebooks at once, in parallel, into grades.csv and summary.csv; a bad file is a row, never a crash."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from course.chapters.registry import Chapter
from course.errors import CourseError
from course.grading import cgroups, sandbox_db
from course.grading.gradebook import GradeRow, _Gradebook, _write_csv
from course.grading.notebook_format import NAME_RE, chapter_of, exercises_in, load_notebook
from course.grading.runner import DEFAULT_CELL_TIMEOUT, run_notebook, stop_all
from course.grading.sandbox import Limits
from course.grading.sandboxed import SandboxBroken
from course.grading.sandboxed import run_sandboxed as sandboxed_run
from course.settings import get_settings

STATUSES = ("passed", "failed", "error", "skipped", "tampered")


@dataclass(frozen=True)
class Submission:
    """One notebook to grade: whose it is and which chapter of the registry it answers."""

    path: Path
    learner: str
    chapter: Chapter | None  # from the file name; None when it names no chapter with exercises
    problem: str = ""  # why chapter is None


@dataclass
class GradeReport:
    """What a grading run produced and where it wrote it."""

    rows: list[GradeRow] = field(default_factory=list)
    summary: list[tuple[str, int, int]] = field(default_factory=list)
    submissions: int = 0
    seconds: float = 0.0
    out: Path | None = None


def learner_name(path: Path, folder: Path | None) -> str:
    """Whose notebook this is: the rule `course grade --help` states."""
    if folder is not None:
        relative = path.relative_to(folder)
        if len(relative.parts) > 1:
            return relative.parts[0]
    if NAME_RE.match(path.name):
        parent = path.resolve().parent.name
        return parent or path.stem
    return path.stem


def find_submissions(paths: Iterable[Path]) -> list[Submission]:
    """Every notebook under the given files and folders, with its learner and chapter."""
    found: list[Submission] = []
    for given in paths:
        if given.is_dir():
            notebooks = sorted(
                p for p in given.rglob("*.ipynb") if p.is_file() and ".ipynb_checkpoints" not in p.parts
            )
            items: list[tuple[Path, Path | None]] = [(p, given) for p in notebooks]
        elif given.is_file():
            items = [(given, None)]
        else:
            raise CourseError(f"no such file or folder: {given}")
        for path, folder in items:
            try:
                chapter, problem = chapter_of(path), ""
            except CourseError as exc:
                chapter, problem = None, str(exc)
            found.append(Submission(path, learner_name(path, folder), chapter, problem))
    if not found:
        raise CourseError("no notebooks (*.ipynb) found in the submissions given")
    return found


def grade_submission(
    sub: Submission,
    *,
    timeout: float,
    sandboxed: bool = False,
    urls: Mapping[str, str] | None = None,
    kernel_env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
) -> list[GradeRow]:
    """Grade one notebook; an infrastructure failure (status `error`) is tried once more before it stands.

    urls: in a workshop, each learner's COURSE_DATABASE_URL (their own role and database): their kernel and, in a
    sandbox, their checks use it (through the sandbox's socket). kernel_env: variables every kernel gets on top of
    this process's (e.g. the admin URL blanked out; not used in a sandbox, whose environment is clean).
    limits: the sandbox's resource limits (sandbox.Limits() when None).
    """

    def once() -> list[GradeRow]:
        return _grade_once(
            sub, timeout=timeout, sandboxed=sandboxed, urls=urls, kernel_env=kernel_env, limits=limits
        )

    rows = once()
    if any(r.status == "error" for r in rows) and sub.chapter is not None:
        again = once()
        rows = again if sum(r.status == "error" for r in again) < sum(r.status == "error" for r in rows) else rows
    return rows


def _grade_once(
    sub: Submission,
    *,
    timeout: float,
    sandboxed: bool,
    urls: Mapping[str, str] | None,
    kernel_env: Mapping[str, str] | None,
    limits: Limits | None,
) -> list[GradeRow]:
    """Grade one notebook; whatever goes wrong becomes rows with status `error` and a message."""
    chapter = sub.chapter
    stem = chapter.stem if chapter else ""

    def row(exercise: str, points: int, max_points: int, status: str, message: str) -> GradeRow:
        return GradeRow(sub.learner, stem, exercise, points, max_points, status, message, str(sub.path))

    if chapter is None:
        return [row("", 0, 0, "error", f"unknown chapter: {sub.problem}")]
    try:
        own = {e.id for e in exercises_in(load_notebook(sub.path))}
        if own and not own & {e.id for e in chapter.exercises}:
            # Another chapter's notebook under this chapter's name: running it would only say "not found".
            message = (
                f"this notebook holds exercises {', '.join(sorted(own))}, not those of {stem}: hand in the "
                f"{stem} notebook, or name the file after the chapter it answers"
            )
            return [row(e.id, 0, e.points, "error", message) for e in chapter.exercises]
        if urls is not None and sub.learner not in urls:
            raise CourseError(f"no workshop seat for learner {sub.learner!r} in the URLs given")
        if sandboxed:
            seat = urls[sub.learner] if urls is not None else None
            results, _, _ = sandboxed_run(
                sub.path, chapter=chapter, timeout=timeout, limits=limits, learner_url=seat
            )
            return [row(e.id, e.points, e.max_points, e.status, e.message) for e in results]
        env = dict(kernel_env or {})
        if urls is not None:
            # Copies come from the learner's own database, made by their own role: no broker, no admin login.
            env.update(COURSE_DATABASE_URL=urls[sub.learner], COURSE_BACKEND="postgres", COURSE_COPY_BROKER="")
        result = run_notebook(sub.path, timeout=timeout, chapter=chapter, kernel_env=env)
    except SandboxBroken as exc:
        return [row(e.id, 0, e.points, "error", str(exc)) for e in chapter.exercises]
    except CourseError as exc:
        return [row(e.id, 0, e.points, "error", str(exc)) for e in chapter.exercises]
    except Exception as exc:  # noqa: BLE001 - one broken submission must not stop the grading of the others
        return [
            row(e.id, 0, e.points, "error", f"grader error: {type(exc).__name__}: {exc}")
            for e in chapter.exercises
        ]
    # One row per exercise of the registry's chapter: every learner of a chapter gets the same maximum.
    return [row(e.id, e.points, e.max_points, e.status, e.message) for e in result.exercises]


def grade(
    paths: list[Path],
    *,
    out: Path,
    jobs: int | None = None,
    timeout: float = DEFAULT_CELL_TIMEOUT,
    sandboxed: bool = True,
    urls: Mapping[str, str] | None = None,
    kernel_env: Mapping[str, str] | None = None,
    limits: Limits | None = None,
) -> GradeReport:
    """Grade every submission (jobs at a time) into out/grades.csv as each finishes, then write out/summary.csv.

    A re-run with the same out resumes: submissions already graded with the same content are not run again.
    sandboxed: run each submission in a sandbox (course/grading/sandbox.py); refused in one line where none can
    be made, unless False (`--no-sandbox`). urls, kernel_env: see grade_submission. limits: each sandbox's
    resource limits (sandbox.Limits() when None).
    """
    from course.seed.verify import verified_seed

    started = time.perf_counter()
    if sandboxed:
        _sandbox_or_refuse()
        if note := cgroups.unavailable():
            print(f"course grade: {note}", flush=True)
    submissions = find_submissions(paths)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CourseError(f"cannot create {out}: {exc.strerror or exc}") from None
    # One seed for every kernel, built before any of them starts, its digest compared with the one recorded at
    # seeding: a damaged seed is rebuilt before anyone is graded (course/seed/verify.py).
    verified_seed(full=True, announce=True)
    sandbox_db.sweep_killed_runs(get_settings())
    book = _Gradebook(out)
    todo = [s for s in submissions if not book.done(s)]
    jobs = max(1, jobs or os.cpu_count() or 1)
    # Threads only wait on the kernels' subprocesses, so the GIL costs nothing here.
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {
            pool.submit(
                grade_submission,
                s,
                timeout=timeout,
                sandboxed=sandboxed,
                urls=urls,
                kernel_env=kernel_env,
                limits=limits,
            ): s
            for s in todo
        }
        pending = set(futures)
        while pending:
            # Never an unbounded wait: the kernel may hand Ctrl-C (SIGINT) to a run's thread, and Python acts on it
            # only when the main thread runs again, which a wait without a timeout would put off until a run ends.
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                book.add(futures[future], future.result())
    except BaseException:
        # Ctrl-C: start nothing new and stop the kernels that are running, rather than wait for them; each run's
        # own thread then cleans up after its kernel.
        stop_all()
        # Wait for the stopped runs to clean up (seconds): at interpreter exit their threads could not connect.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    order = {str(s.path): i for i, s in enumerate(submissions)}
    rows = sorted(book.rows(), key=lambda r: order.get(r.submission, len(order)))
    report = GradeReport(rows=rows, summary=summarise(rows), submissions=len(submissions), out=out)
    _write_csv(out / "summary.csv", ["learner", "points", "max_points"], report.summary)
    report.seconds = time.perf_counter() - started
    return report


def _sandbox_or_refuse() -> None:
    from course.grading import sandbox

    reason = sandbox.unavailable()
    if reason is not None:
        raise CourseError(f"{reason}; to grade without a sandbox, trusting the submissions, add --no-sandbox")


def summarise(rows: list[GradeRow]) -> list[tuple[str, int, int]]:
    """Points per learner; when a learner handed in a chapter twice, the better submission counts."""
    best: dict[tuple[str, str], tuple[int, int]] = {}
    per_file: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        totals = per_file.setdefault((r.learner, r.chapter, r.submission), [0, 0])
        totals[0] += r.points
        totals[1] += r.max_points
    for (learner, chapter, _), (points, max_points) in per_file.items():
        key = (learner, chapter)
        best[key] = max(best.get(key, (points, max_points)), (points, max_points))
    learners: dict[str, list[int]] = {}
    for (learner, _), (points, max_points) in best.items():
        totals = learners.setdefault(learner, [0, 0])
        totals[0] += points
        totals[1] += max_points
    return [(learner, p, m) for learner, (p, m) in sorted(learners.items())]


def format_summary(report: GradeReport) -> str:
    """A few lines for the terminal: counts by status, each learner's points, where the CSVs are."""
    counts = {s: sum(r.status == s for r in report.rows) for s in STATUSES}
    lines = [
        f"Graded {report.submissions} notebook(s) from {len(report.summary)} learner(s) in {report.seconds:.1f} s; "
        + "exercises: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
    ]
    width = max((len(learner) for learner, _, _ in report.summary), default=0)
    lines += [f"  {learner:<{width}}  {p:>4}/{m}" for learner, p, m in report.summary]
    if report.out is not None:
        lines.append(f"Wrote {report.out / 'grades.csv'} and {report.out / 'summary.csv'}")
    return "\n".join(lines)
