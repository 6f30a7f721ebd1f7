"""From what a notebook run left behind (the grader's check reports, cell outcomes) to one verdict per exercise of the chapter."""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.chapters.registry import ExerciseSpec
from course.grading.nbval_hooks import KernelDied, clip


@dataclass
class ExerciseResult:
    """One exercise's verdict. status: passed, failed (the learner's code), error (the run or the check broke) or
    skipped (the check needs the other database; then max_points is 0: it counts on neither side)."""

    id: str
    title: str
    passed: bool
    points: int
    max_points: int
    message: str
    status: str = "failed"


@dataclass
class Cell:
    """A code cell as nbval numbers them (code cells only, from 0) and what happened when it ran."""

    index: int
    source: str
    outcome: dict[str, Any] | None = None
    # The exercise whose grader cell this is (the runner appends them), or None for the learner's own cells.
    grader: str | None = None

    @property
    def label(self) -> str:
        if self.grader:
            return f"the grader's check of exercise {self.grader}"
        first = next((line.strip() for line in self.source.splitlines() if line.strip()), "")
        return f"code cell {self.index + 1} (`{clip(first, 50)}`)"


def trusted(row: dict[str, Any], key: bytes, sign: Any) -> dict[str, Any]:
    """row as written by a check, or marked `forged` when its signature is missing or wrong."""
    signature = row.get("signature")
    if isinstance(signature, str) and hmac.compare_digest(signature, sign(key, row)):
        return row
    return {"exercise": row.get("exercise"), "forged": True}


def kernel_stopped(cells: list[Cell], timeout: float) -> str | None:
    """Why the kernel stopped part-way, or None: nothing after that cell could run."""
    dead = next((c for c in cells if c.outcome and not c.outcome.get("kernel_alive", True)), None)
    if dead is None or dead.outcome is None:
        return None
    outcome = dead.outcome
    if outcome.get("when") == "setup":
        return f"the kernel did not start: {outcome.get('error')}"
    if outcome.get("timed_out"):
        return (
            f"{dead.label} did not finish within {timeout:g} s and ignored the interrupt, so the kernel was "
            "stopped and nothing after it ran (a C call that never returns, or code that catches KeyboardInterrupt?)"
        )
    error = str(outcome.get("error") or "")
    if error.startswith(KernelDied.PREFIX):
        return (
            f"the kernel died while running {dead.label}{error.removeprefix(KernelDied.PREFIX)}: os._exit(), a "
            "crash or running out of memory? Nothing after it ran"
        )
    return f"the kernel stopped at {dead.label}, which failed ({error}): nothing after it ran"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed kernel
        if isinstance(row, dict):
            rows.append(row)
    return rows


def verdicts(
    specs: tuple[ExerciseSpec, ...],
    reports: list[dict[str, Any]],
    cells: list[Cell],
    error: str | None,
    timeout: float,
) -> list[ExerciseResult]:
    """One verdict per exercise of the chapter, from the grader's report lines (the last one wins)."""
    graded = {row.get("exercise"): row for row in reports if row.get("by") == "grader" and not row.get("forged")}
    forged = {row.get("exercise") for row in reports if row.get("forged")}
    failed_cells = [c for c in cells if c.grader is None and c.outcome and not c.outcome.get("ok")]
    results = []
    for spec in specs:
        row = graded.get(spec.id)
        if row is not None:
            status = str(row.get("status") or ("passed" if row.get("passed") is True else "failed"))
            if status not in ("passed", "failed", "error", "skipped"):
                status = "error"
            message = str(row.get("message", ""))
            if status == "failed" and message.startswith("not found") and failed_cells:
                # The definition may sit in a cell that failed: say so, the learner sees those cells listed.
                message += f" ({len(failed_cells)} of your cells failed, see the list of cells)"
        else:
            cell = next((c for c in cells if c.grader == spec.id), None)
            status, message = why_no_verdict(spec.id, cell, spec.id in forged, error, timeout)
        passed = status == "passed"
        max_points = 0 if status == "skipped" else spec.points
        results.append(
            ExerciseResult(spec.id, spec.title, passed, spec.points if passed else 0, max_points, message, status)
        )
    return results


FORGED = (
    "the report holds a verdict for this exercise that its check did not write (a cell wrote to the report "
    "file?): it was ignored, and the check itself never reported"
)


def why_no_verdict(
    exercise: str, cell: Cell | None, forged: bool, error: str | None, timeout: float
) -> tuple[str, str]:
    """(status, message) for an exercise whose grader's check never reported."""
    if error:
        return "error", error
    if forged:
        return "error", FORGED
    outcome = cell.outcome if cell is not None else None
    if outcome is None:
        return "error", "the grader's check of this exercise did not run"
    if outcome.get("timed_out"):
        return "error", f"its check did not finish within {timeout:g} s: look for a loop that never ends"
    return "error", f"its check could not run: {outcome.get('error') or 'no verdict'}"


def cell_problems(cells: list[Cell], timeout: float, results: list[ExerciseResult] | None = None) -> list[str]:
    """Every learner cell that errored or ran out of time, in order, check cells too (their ❌ is the notebook's own).

    A check cell whose ❌ says what the table already says for its exercise (results) is listed without repeating it.
    """
    table = {r.id: " ".join(r.message.split()) for r in results or []}
    problems = []
    for cell in cells:
        outcome = cell.outcome
        if cell.grader is not None or outcome is None or outcome.get("ok"):
            continue
        if outcome.get("when") == "setup" and not outcome.get("kernel_alive", True):
            continue  # never ran: the kernel had stopped, which the run's error says
        error = str(outcome.get("error") or "it failed")
        own = _OWN_CHECK_RE.match(" ".join(error.split()))
        if outcome.get("timed_out"):
            problems.append(f"{cell.label} did not finish within {timeout:g} s and was interrupted")
        elif own and own["id"] in table and table[own["id"]] == own["message"]:
            problems.append(f"{cell.label}: ❌ exercise {own['id']}, as in the table")
        else:
            problems.append(f"{cell.label}: {error}")
    return problems


# How a failed check cell's error reads: `ExerciseFailed: ❌ Exercise 4.2: <message>`.
_OWN_CHECK_RE = re.compile(r"^ExerciseFailed: ❌ Exercise (?P<id>\d+\.\d+): (?P<message>.*)$")
