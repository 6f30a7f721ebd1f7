"""From what a notebook run left behind (check reports, cell outcomes) to one verdict per exercise, with a reason."""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course.grading.nbval_hooks import KernelDied, clip
from course.grading.notebook_format import ExerciseInfo


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
class Cell:
    """A code cell as nbval numbers them (code cells only, from 0) and what happened when it ran."""

    index: int
    source: str
    outcome: dict[str, Any] | None = None

    @property
    def label(self) -> str:
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


def check_cell(cells: list[Cell], exercise: str) -> Cell | None:
    call = re.compile(r"\bcheck\(\s*['\"]" + re.escape(exercise) + r"['\"]")
    return next((cell for cell in cells if call.search(cell.source)), None)


def verdicts(
    expected: list[ExerciseInfo],
    reports: list[dict[str, Any]],
    cells: list[Cell],
    error: str | None,
    timeout: float,
) -> list[ExerciseResult]:
    # The last verdict for an exercise wins; lines that fail the signature check are ignored.
    by_id = {row.get("exercise"): row for row in reports if not row.get("forged")}
    forged = {row.get("exercise") for row in reports if row.get("forged")}
    infos = {e.id: e for e in expected}
    # Checks that reported without a heading (a learner deleted it) still show, with the registry's points.
    for exercise, reported in by_id.items():
        points = reported.get("max_points")
        if isinstance(exercise, str) and exercise not in infos:
            infos[exercise] = ExerciseInfo(exercise, "", points if isinstance(points, int) else 0)
    results = []
    for info in infos.values():
        row = by_id.get(info.id)
        if row is None and info.id in forged:
            status, message = "error", FORGED
        elif row is None:
            status, message = why_no_report(info.id, cells, error, timeout)
        else:
            status = "skipped" if row.get("status") == "skipped" else "passed" if row.get("passed") else "failed"
            message = str(row.get("message", ""))
        passed = status == "passed"
        results.append(
            ExerciseResult(info.id, info.title, passed, info.points if passed else 0, info.points, message, status)
        )
    return results


FORGED = (
    "the report holds a verdict for this exercise that its check did not write (a cell wrote to the report "
    "file?): it was ignored, and the check itself never reported"
)


def why_no_report(exercise: str, cells: list[Cell], error: str | None, timeout: float) -> tuple[str, str]:
    """(status, message) for an exercise whose check never reported."""
    if error:
        return "error", error
    check = check_cell(cells, exercise)
    if check is None:
        message = f'no cell calls `await check("{exercise}", …)`: put the check cell back'
        unknown = next((c for c in cells if c.outcome and "no such exercise" in str(c.outcome.get("error"))), None)
        if unknown is not None:
            message += f" ({unknown.label} checks an exercise this chapter does not have)"
        return "failed", message
    before = [c for c in cells[: check.index] if c.outcome and not c.outcome.get("ok")]
    timed_out = [c for c in before if (c.outcome or {}).get("timed_out")]
    outcome = check.outcome
    if outcome is None:
        return "failed", "the check cell did not run (is it marked to be skipped?)"
    if outcome.get("timed_out"):
        return "error", f"the check cell did not finish within {timeout:g} s: look for a loop that never ends"
    if outcome.get("ok"):
        return "failed", "the check cell ran but the check did not: is `await` missing before `check(...)`?"
    message = f"its check cell did not run the check ({outcome.get('error') or 'it failed'})"
    if not before and str(outcome.get("error")).startswith("NameError"):
        # Renamed functions and cells moved below their check look the same from here.
        return (
            "failed",
            f"{message}. Cells run top to bottom in a fresh kernel: is it defined further down, or renamed?",
        )
    if timed_out:
        cell = timed_out[-1]
        return "error", f"{message}: {cell.label} did not finish within {timeout:g} s (a loop that never ends?)"
    if before:
        return (
            "failed",
            f"{message}: an earlier cell failed, {before[-1].label}: {(before[-1].outcome or {}).get('error')}",
        )
    return "failed", message
