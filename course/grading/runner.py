"""Run an exercise notebook under nbval in a fresh kernel and collect each exercise's verdict from its check.

Each check appends a verdict line to a report file; when a notebook checks one exercise more than once, the last
verdict counts (a learner who fixes a function and checks again gets the new result). When the check machinery
signs its lines (course/checks/base.py has `report_signature`), a line counts only with an HMAC made with this
run's key, handed over in a file that base.py reads and deletes when it is imported: a cell that appends
`{"passed": true}` to the report file gains nothing.

What this does not stop: learner code runs in the same kernel as the checks, so a determined cheater can read the
key from the course package's memory, or patch the checks themselves, and fool the run. This is a learning tool,
not an exam proctor: grading that must resist cheating needs checks that the learner's code cannot reach.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from course.grading.nbval_hooks import ANSI_RE, CELLS_ENV, OUTPUT_CAP, clip, killed_by
from course.grading.notebook_format import ExerciseInfo, exercises_in, load_notebook
from course.grading.verdicts import Cell, ExerciseResult, kernel_stopped, read_jsonl, trusted, verdicts

DEFAULT_CELL_TIMEOUT = 60.0
# Where the check machinery (course/checks/base.py) appends its verdicts; CELLS_ENV (course/nbval_hooks.py) is
# where the pytest hook appends each cell's outcome.
REPORT_ENV = "COURSE_CHECK_REPORT"
# The file holding this run's report key (see the module docstring).
REPORT_KEY_ENV = "COURSE_CHECK_KEY_FILE"
# Kernel start-up and pytest's own start, on top of the cells' time limits, before the whole run is stopped.
STARTUP_ALLOWANCE = 60.0
# Runs in progress, so an interrupted grader can stop them all.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_LOCK = threading.Lock()


@dataclass
class NotebookResult:
    """What running one notebook gave: a verdict per exercise, and `error` when the run itself broke."""

    path: Path
    exercises: list[ExerciseResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(e.passed for e in self.exercises)

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
    path: Path, *, timeout: float = DEFAULT_CELL_TIMEOUT, expected: list[ExerciseInfo] | None = None
) -> NotebookResult:
    """Run the notebook at path in a fresh kernel (nbval, one cell at a time, each within `timeout` seconds).

    expected: the exercises to grade (default: the notebook's own headings). Raises CourseError only when the
    file cannot be read as a notebook; anything that breaks the run is reported in the result's `error`.
    """
    from course.seed import ensure_seed

    path = Path(path)
    nb = load_notebook(path)
    expected = exercises_in(nb) if expected is None else expected
    # The seed is built here, not in the kernel, so a first run does not spend a cell's time limit seeding.
    ensure_seed(progress=False, announce=False)
    code = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    for cell in code:
        # nbval refuses cells that have outputs but no execution count; outputs play no part in checking.
        cell["outputs"], cell["execution_count"] = [], None
    cells = [Cell(i, cell["source"]) for i, cell in enumerate(code)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        work = Path(tmp)
        copy = work / "notebook.ipynb"
        copy.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
        # An empty ini file makes the temp folder pytest's root: no pyproject, conftest or addopts of the repo apply.
        (work / "pytest.ini").write_text("[pytest]\n")
        report, cells_log = work / "report.jsonl", work / "cells.jsonl"
        # Only the kernel's base.py may read the key file: nothing in the pytest process imports course.checks.
        sign, key = _report_signer(), secrets.token_bytes(32)
        env = {REPORT_ENV: str(report), CELLS_ENV: str(cells_log), "IPYTHONDIR": str(work / "ipython")}
        # The kernel's own IPython profile (not the learner's) caps printed output, see OUTPUT_CAP.
        startup = work / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-course-check.py").write_text(OUTPUT_CAP, encoding="utf-8")
        if sign is not None:
            env[REPORT_KEY_ENV] = str(work / "report.key")
            (work / "report.key").write_bytes(key)
        error = _run_pytest(work, copy, env, timeout=timeout, overall=STARTUP_ALLOWANCE + timeout * len(cells))
        reports = read_jsonl(report)
        if sign is not None:
            reports = [trusted(row, key, sign) for row in reports]
        for outcome in read_jsonl(cells_log):
            if isinstance(outcome.get("cell"), int) and 0 <= outcome["cell"] < len(cells) and "ok" in outcome:
                cells[outcome["cell"]].outcome = outcome
    error = error or kernel_stopped(cells, timeout)
    result = NotebookResult(path=path, error=error, seconds=time.perf_counter() - started)
    result.exercises = verdicts(expected, reports, cells, error, timeout)
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
    if process.returncode < 0:
        return f"the notebook run was {killed_by(-process.returncode)} before it finished"
    with log.open("rb") as out:
        out.seek(max(0, log.stat().st_size - 20_000))
        output = out.read().decode("utf-8", errors="replace")
    lines = [line for line in ANSI_RE.sub("", output).splitlines() if line.strip()]
    detail = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no output")
    return f"pytest/nbval could not run the notebook (exit {process.returncode}): {clip(detail, 200)}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # The kernel watches its parent and exits with it; the group kill takes pytest and anything it started.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def stop_all() -> None:
    """Stop every notebook run in progress (the grader calls this when interrupted)."""
    with _LOCK:
        running = list(_RUNNING)
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def format_result(result: NotebookResult, *, width: int | None = None) -> str:
    """A table for the terminal: one line per exercise, ✅ or ❌, points and a one-line message.

    width: the room for each message (default: what the terminal has left, or 200 when not a terminal).
    """
    head = f"{result.path.name}: {result.points}/{result.max_points} points in {result.seconds:.1f} s"
    lines = [head]
    if result.error:
        lines.append(f"  ❌ {result.error}")
    if not result.exercises:
        lines.append("  (no `### Exercise N.M — Title (P points)` headings and no checks ran)")
        return "\n".join(lines)
    id_w = max(len("exercise"), *(len(e.id) for e in result.exercises))
    title_w = min(30, max(len("title"), *(len(e.title) for e in result.exercises)))
    lines.append(f"  {'exercise':<{id_w}}  {'title':<{title_w}}  ok  {'points':>6}  message")
    if width is None:
        used = len(lines[-1]) - len("message")
        width = max(40, shutil.get_terminal_size().columns - used) if sys.stdout.isatty() else 200
    for e in result.exercises:
        mark = "✅" if e.passed else "❌"
        points = f"{e.points}/{e.max_points}"
        message = "" if e.passed else clip(e.message.removeprefix(f"❌ Exercise {e.id}: "), width)
        if result.error and e.message == result.error:
            message = "the run stopped before its check (see above)"
        lines.append(
            f"  {e.id:<{id_w}}  {clip(e.title, title_w):<{title_w}}  {mark}  {points:>6}  {message}".rstrip()
        )
    return "\n".join(lines)
