"""Run an exercise notebook under nbval in a fresh kernel and collect each exercise's verdict from its check."""

from __future__ import annotations

import contextlib
import json
import os
import re
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

from course.build import ExerciseInfo, exercises_in, load_notebook

DEFAULT_CELL_TIMEOUT = 60.0
# Where the check machinery (course/checks/base.py) appends its verdicts, and where this module's pytest hook
# below appends each cell's outcome.
REPORT_ENV = "COURSE_CHECK_REPORT"
CELLS_ENV = "COURSE_CHECK_CELLS"
# Kernel start-up and pytest's own start, on top of the cells' time limits, before the whole run is stopped.
STARTUP_ALLOWANCE = 60.0
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Runs in progress, so an interrupted grader can stop them all.
_RUNNING: set[subprocess.Popen[str]] = set()
_LOCK = threading.Lock()


@dataclass
class ExerciseResult:
    """One exercise's verdict. status is passed, failed (the learner's code) or error (the run broke)."""

    id: str
    title: str
    passed: bool
    points: int
    max_points: int
    message: str
    status: str = "failed"


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


@dataclass
class _Cell:
    """A code cell as nbval numbers them (code cells only, from 0) and what happened when it ran."""

    index: int
    source: str
    outcome: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return f"code cell {self.index + 1} (`{_clip(first, 50)}`)"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


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
    cells = [_Cell(i, cell["source"]) for i, cell in enumerate(code)]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        work = Path(tmp)
        copy = work / "notebook.ipynb"
        copy.write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
        # An empty ini file makes the temp folder pytest's root: no pyproject, conftest or addopts of the repo apply.
        (work / "pytest.ini").write_text("[pytest]\n")
        report, cells_log = work / "report.jsonl", work / "cells.jsonl"
        error = _run_pytest(
            work, copy, report, cells_log, timeout=timeout, overall=STARTUP_ALLOWANCE + timeout * len(cells)
        )
        reports = _read_jsonl(report)
        for outcome in _read_jsonl(cells_log):
            if isinstance(outcome.get("cell"), int) and 0 <= outcome["cell"] < len(cells):
                cells[outcome["cell"]].outcome = outcome
    error = error or _kernel_stopped(cells, timeout)
    result = NotebookResult(path=path, error=error, seconds=time.perf_counter() - started)
    result.exercises = _verdicts(expected, reports, cells, error, timeout)
    return result


def _run_pytest(
    work: Path, copy: Path, report: Path, cells_log: Path, *, timeout: float, overall: float
) -> str | None:
    """Run pytest + nbval on the copy; return why the run broke, or None."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    # Only nbval and our hook: the learner's environment may have plugins (asyncio, randomly...) that interfere.
    env.update({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", REPORT_ENV: str(report), CELLS_ENV: str(cells_log)})
    command = [
        sys.executable, "-m", "pytest", "-p", "nbval.plugin", "-p", "course.runner", "-p", "no:cacheprovider",
        "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={timeout:g}",
        "-c", str(work / "pytest.ini"), "--rootdir", str(work), "--confcutdir", str(work),
        "-q", "--color=no", "-o", "addopts=", str(copy),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    with _LOCK:
        _RUNNING.add(process)
    try:
        output, _ = process.communicate(timeout=overall)
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
    lines = [line for line in ANSI_RE.sub("", output).splitlines() if line.strip()]
    detail = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no output")
    return f"pytest/nbval could not run the notebook (exit {process.returncode}): {_clip(detail, 200)}"


def _stop(process: subprocess.Popen[str]) -> None:
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


def _kernel_stopped(cells: list[_Cell], timeout: float) -> str | None:
    """Why the kernel stopped part-way, or None: nothing after that cell could run."""
    dead = next((c for c in cells if c.outcome and not c.outcome.get("kernel_alive", True)), None)
    if dead is None:
        return None
    if dead.outcome.get("when") == "setup":
        return f"the kernel did not start: {dead.outcome.get('error')}"
    if dead.outcome.get("timed_out"):
        why = f"did not finish within {timeout:g} s and could not be interrupted"
    else:
        why = f"failed ({dead.outcome.get('error')})"
    return f"the kernel stopped at {dead.label}, which {why}: a crash, os._exit() or a C call that never returns?"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a killed kernel
    return rows


def _check_cell(cells: list[_Cell], exercise: str) -> _Cell | None:
    call = re.compile(r"\bcheck\(\s*['\"]" + re.escape(exercise) + r"['\"]")
    return next((cell for cell in cells if call.search(cell.source)), None)


def _verdicts(
    expected: list[ExerciseInfo],
    reports: list[dict[str, Any]],
    cells: list[_Cell],
    error: str | None,
    timeout: float,
) -> list[ExerciseResult]:
    by_id = {row.get("exercise"): row for row in reports}  # the last report for an exercise wins
    infos = {e.id: e for e in expected}
    # Checks that reported without a heading (a learner deleted it) still show, with the registry's points.
    for exercise, row in by_id.items():
        if isinstance(exercise, str) and exercise not in infos:
            infos[exercise] = ExerciseInfo(exercise, "", int(row.get("max_points", 0)))
    results = []
    for info in infos.values():
        row = by_id.get(info.id)
        if row is None:
            status, message = _why_no_report(info.id, cells, error, timeout)
        else:
            status, message = ("passed" if row.get("passed") else "failed"), str(row.get("message", ""))
        passed = status == "passed"
        results.append(
            ExerciseResult(info.id, info.title, passed, info.points if passed else 0, info.points, message, status)
        )
    return results


def _why_no_report(exercise: str, cells: list[_Cell], error: str | None, timeout: float) -> tuple[str, str]:
    """(status, message) for an exercise whose check never reported."""
    if error:
        return "error", error
    check = _check_cell(cells, exercise)
    if check is None:
        return "failed", f'no cell calls `await check("{exercise}", …)`: put the check cell back'
    before = [c for c in cells[: check.index] if c.outcome and not c.outcome["ok"]]
    timed_out = [c for c in before if c.outcome.get("timed_out")]
    outcome = check.outcome
    if outcome is None:
        return "failed", "the check cell did not run (is it marked to be skipped?)"
    if outcome.get("timed_out"):
        return "error", f"the check cell did not finish within {timeout:g} s: look for a loop that never ends"
    if outcome["ok"]:
        return "failed", "the check cell ran but the check did not: is `await` missing before `check(...)`?"
    message = f"its check cell did not run the check ({outcome.get('error') or 'it failed'})"
    if timed_out:
        cell = timed_out[-1]
        return "error", f"{message}: {cell.label} did not finish within {timeout:g} s (a loop that never ends?)"
    if before:
        return (
            "failed",
            f"{message}: an earlier cell failed, {before[-1].label}: {before[-1].outcome.get('error')}",
        )
    return "failed", message


# --- the pytest hook, loaded into the pytest run with `-p course.runner` ---------------------------------


def pytest_runtest_makereport(item: Any, call: Any) -> None:
    """Append each cell's outcome (ok, error line, timed out, kernel alive) to $COURSE_CHECK_CELLS."""
    path = os.environ.get(CELLS_ENV)
    cell = getattr(item, "cell_num", None)
    if not path or cell is None or call.when not in ("setup", "call"):
        return None
    if call.when == "setup" and call.excinfo is None:
        return None
    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is not None and type(exc).__name__ == "Skipped":
        return None
    message = str(exc) if exc is not None else ""
    kernel = getattr(item.parent, "kernel", None)
    outcome = {
        "cell": cell,
        "when": call.when,
        "ok": exc is None,
        "error": _error_line(exc) if exc is not None else None,
        "timed_out": message.startswith("Timeout of"),
        "kernel_alive": bool(kernel is not None and kernel.is_alive()),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(outcome, ensure_ascii=False) + "\n")
    return None


def _error_line(exc: BaseException) -> str:
    """The kernel's `Name: message` line for a cell error, else the exception's own text."""
    inner = getattr(exc, "inner_traceback", None)
    if inner:
        lines = [line.strip() for line in ANSI_RE.sub("", inner).splitlines() if line.strip()]
        if lines:
            return _clip(lines[-1], 300)
    return _clip(str(exc) or type(exc).__name__, 300)


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
        message = "" if e.passed else _clip(e.message.removeprefix(f"❌ Exercise {e.id}: "), width)
        if result.error and e.message == result.error:
            message = "the run stopped before its check (see above)"
        lines.append(
            f"  {e.id:<{id_w}}  {_clip(e.title, title_w):<{title_w}}  {mark}  {points:>6}  {message}".rstrip()
        )
    return "\n".join(lines)
