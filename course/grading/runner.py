"""Run an exercise notebook under nbval in a fresh kernel, then grade every exercise of its chapter.

What is graded comes from the course: after the learner's cells, the runner appends one grader cell per exercise
of the chapter (course/chapters/registry.py), which looks the exercise's functions up by name and runs its check
(course/checks/grader.py). The notebook's own check cells still print ✅/❌ for the learner, but only the grader's
verdict counts, so a deleted or edited check cell changes nothing. Verdict lines are signed: when the check
machinery signs them (course/checks/base.py has `report_signature`), a line counts only with an HMAC made with
this run's key, handed over in a file that base.py reads and deletes when it is imported.

The runner owns the clean-up of everything the run makes (course/db/copies.py): the kernel gets a run folder for
its SQLite copies and a run tag for its PostgreSQL copies; afterwards (normal end, dead kernel, time-out or Ctrl-C)
the runner kills the kernel, drops the tagged databases and deletes the folder.

What this does not stop: learner code runs in the same kernel as the checks, so a determined cheater can read the
key from the course package's memory, or patch the checks themselves, and fool the run. This is a learning tool,
not an exam proctor: grading that must resist cheating needs checks that the learner's code cannot reach, which
is what `course grade` and `course check --sandbox` do (course/grading/sandboxed.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course.chapters.registry import Chapter
from course.db import copies
from course.grading import cleanup
from course.grading.nbval_hooks import ANSI_RE, CELLS_ENV, OUTPUT_CAP, clip, killed_by
from course.grading.notebook_format import chapter_of, load_notebook
from course.grading.result_text import format_result as format_result  # re-exported: `runner.format_result`
from course.grading.verdicts import (
    Cell,
    ExerciseResult,
    cell_problems,
    kernel_stopped,
    read_jsonl,
    trusted,
    verdicts,
)

DEFAULT_CELL_TIMEOUT = 60.0
# Where the check machinery (course/checks/base.py) appends its verdicts; CELLS_ENV (course/grading/nbval_hooks.py) is
# where the pytest hook appends each cell's outcome.
REPORT_ENV = "COURSE_CHECK_REPORT"
# The file holding this run's report key (see the module docstring).
REPORT_KEY_ENV = "COURSE_CHECK_KEY_FILE"
# Kernel start-up and pytest's own start, on top of the cells' time limits, before the whole run is stopped.
STARTUP_ALLOWANCE = 60.0
# One per exercise, appended to the run's copy of the notebook (see the module docstring).
GRADER_CELL = (
    "# course check: the grader's own check of exercise {id}\n"
    "await __import__('course.checks.grader', fromlist=['grade']).grade({module!r}, {id!r}, {names!r}, globals())"
)
# Runs in progress, so an interrupted grader can stop them all.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()


@dataclass
class NotebookResult:
    """What running one notebook gave: a verdict per exercise, the cells that failed, and `error` when the run broke."""

    path: Path
    chapter: str = ""
    exercises: list[ExerciseResult] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(e.passed or e.status == "skipped" for e in self.exercises)

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(path=str(self.path), passed=self.passed, points=self.points, max_points=self.max_points)
        return data


def run_notebook(
    path: Path,
    *,
    timeout: float = DEFAULT_CELL_TIMEOUT,
    chapter: Chapter | None = None,
    kernel_env: dict[str, str] | None = None,
) -> NotebookResult:
    """Run the notebook at path in a fresh kernel (nbval, one cell at a time, each within `timeout` seconds).

    chapter: whose exercises to grade (default: the registry's chapter the file name gives). Raises CourseError
    only when the file cannot be read as a notebook or names no chapter; anything that breaks the run is reported
    in the result's `error`.
    """
    from course.seed import ensure_seed
    from course.settings import get_settings

    path = Path(path)
    nb = load_notebook(path)
    chapter = chapter or chapter_of(path)
    # The seed is built here, not in the kernel, so a first run does not spend a cell's time limit seeding.
    ensure_seed(progress=False, announce=False)
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    for cell in code:
        # nbval refuses cells that have outputs but no execution count; outputs play no part in checking.
        cell["outputs"], cell["execution_count"] = [], None
    graders = [
        GRADER_CELL.format(id=spec.id, module=chapter.checks_module, names=spec.names)
        for spec in chapter.exercises
    ]
    for source in graders:
        nb["cells"].append(
            {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
        )
    cells = [Cell(i, cell["source"]) for i, cell in enumerate(code)]
    cells += [
        Cell(len(cells) + i, source, grader=spec.id)
        for i, (spec, source) in enumerate(zip(chapter.exercises, graders, strict=True))
    ]
    started = time.perf_counter()
    # Folders of runners that were killed outright (SIGKILL, a crash) before they could delete them.
    copies.reap_abandoned_folders()
    with tempfile.TemporaryDirectory(prefix=f"{copies.RUNNER_PREFIX}{os.getpid()}-") as tmp:
        work = Path(tmp)
        copy = work / "notebook.ipynb"
        copy.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
        # An empty ini file makes the temp folder pytest's root: no pyproject, conftest or addopts of the repo apply.
        (work / "pytest.ini").write_text("[pytest]\n")
        report, cells_log = work / "report.jsonl", work / "cells.jsonl"
        # Only the kernel's base.py may read the key file: nothing in the pytest process imports course.checks.
        sign, key = _report_signer(), secrets.token_bytes(32)
        run = cleanup.Run(folder=work / "copies", tag=copies.new_run_tag(), pids=work / "kernel.pids")
        run.folder.mkdir()
        env = {
            # A time zone with a fractional offset, so a local time labelled UTC shows up in the checks.
            "TZ": "Asia/Kathmandu",
            REPORT_ENV: str(report),
            CELLS_ENV: str(cells_log),
            "IPYTHONDIR": str(work / "ipython"),
            # A workshop learner's own COURSE_DATABASE_URL (course grade --urls).
            **(kernel_env or {}),
            **run.env(),
        }
        # The kernel's own IPython profile (not the learner's) caps printed output and says who the kernel is.
        startup = work / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-course-check.py").write_text(OUTPUT_CAP + cleanup.KERNEL_STARTUP, encoding="utf-8")
        if sign is not None:
            env[REPORT_KEY_ENV] = str(work / "report.key")
            (work / "report.key").write_bytes(key)
        try:
            error = _run_pytest(work, copy, env, timeout=timeout, overall=STARTUP_ALLOWANCE + timeout * len(cells))
        finally:
            # Whatever happened (Ctrl-C too): nothing the kernel made outlives the run.
            for problem in run.clean_up(get_settings()):
                print(f"course: warning: {problem}", file=sys.stderr)
        reports = read_jsonl(report)
        if sign is not None:
            reports = [trusted(row, key, sign) for row in reports]
        for outcome in read_jsonl(cells_log):
            if isinstance(outcome.get("cell"), int) and 0 <= outcome["cell"] < len(cells) and "ok" in outcome:
                cells[outcome["cell"]].outcome = outcome
    error = error or kernel_stopped(cells, timeout)
    result = NotebookResult(path=path, chapter=chapter.stem, error=error, seconds=time.perf_counter() - started)
    result.exercises = verdicts(chapter.exercises, reports, cells, error, timeout)
    result.cell_errors = cell_problems(cells, timeout, result.exercises)
    return result


def _report_signer() -> Any:
    """base.py's `report_signature(key, line)`, or None while the installed base.py does not sign its lines."""
    from course.checks import base

    return getattr(base, "report_signature", None)


def _run_pytest(work: Path, copy: Path, env_vars: dict[str, str], *, timeout: float, overall: float) -> str | None:
    """Run pytest + nbval on the copy, with env_vars added for the kernel; return why the run broke, or None."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    # Only nbval and our hook: the learner's environment may have plugins (asyncio, randomly...) that interfere.
    env.update({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env_vars})
    command = [
        sys.executable, "-m", "pytest", "-p", "nbval.plugin", "-p", "course.grading.nbval_hooks", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout:g}",
        "-c", str(work / "pytest.ini"), "--rootdir", str(work), "--confcutdir", str(work),
        "-q", "--color=no", "-o", "addopts=", str(copy),
    ]  # fmt: skip
    # pytest's output goes to a file: a cell error with a huge message must not land in this process's memory.
    log = work / "pytest.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=work, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    with _LOCK:
        _RUNNING.add(process)
    try:
        if _STOPPING.is_set():
            raise KeyboardInterrupt  # the grader was interrupted while this run was starting
        process.wait(timeout=overall)
    except subprocess.TimeoutExpired:
        _stop(process)
        return f"the notebook did not finish within {overall:.0f} s and was stopped"
    except BaseException:
        _stop(process)  # Ctrl-C: the run lives in its own session and would not get the signal
        raise
    finally:
        with _LOCK:
            _RUNNING.discard(process)
    # 0: every cell ran; 1: some cell failed (the verdicts say which); 5: no code cells. Anything else is a breakdown.
    if process.returncode in (0, 1, 5):
        return None
    if _STOPPING.is_set():
        raise KeyboardInterrupt
    if process.returncode < 0:
        return f"the notebook run was {killed_by(-process.returncode)} before it finished"
    with log.open("rb") as out:
        out.seek(max(0, log.stat().st_size - 20_000))
        output = out.read().decode("utf-8", errors="replace")
    lines = [line for line in ANSI_RE.sub("", output).splitlines() if line.strip()]
    detail = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no output")
    return f"pytest/nbval could not run the notebook (exit {process.returncode}): {clip(detail, 2000)}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The group kill takes pytest and anything in its session; the kernel has its own, see cleanup.Run.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def stop_all() -> None:
    """Stop every notebook run in progress, and any about to start (the grader calls this when interrupted)."""
    _STOPPING.set()
    with _LOCK:
        running = list(_RUNNING)
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
