"""`course check --classroom FILE`: the results in the format GitHub Classroom's autograding reporter reads.

GitHub Classroom's reporter action (`classroom-resources/autograding-grading-reporter`) reads, for each runner id
listed in its `runners` input, an environment variable `<RUNNER-ID>_RESULTS` holding base64-encoded JSON:
`{"version": 1, "status": "pass|fail|error", "max_score": N, "tests": [{"name", "status", "score", "message"}]}`.
It adds up every test's `score` against `max_score` and sends "Points X/Y" to Classroom. A grader action writes
that JSON as the step output `result` (a `result=<base64>` line in the file `$GITHUB_OUTPUT` names); so does this.
One test per exercise, scored with the exercise's points from the registry: partial credit per exercise.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from course.errors import CourseError
from course.grading.runner import NotebookResult

STATUS = {"passed": "pass", "failed": "fail", "error": "error", "skipped": "pass"}


def results(notebooks: list[NotebookResult]) -> dict[str, Any]:
    """The reporter's JSON for the notebooks checked: one test per exercise, each worth its points."""
    tests = []
    for result in notebooks:
        for e in result.exercises:
            name = f"Exercise {e.id} — {e.title}"
            if e.status == "skipped":
                # Worth nothing on this database either way; listed (its message says why) rather than hidden.
                name += " (skipped on this database)"
            tests.append(
                {
                    "name": name,
                    "status": STATUS.get(e.status, "error"),
                    "score": e.points,
                    "max_score": e.max_points,
                    "message": "" if e.passed else e.message,
                    "filename": str(result.path),
                }
            )
        if result.error:
            tests.append(
                {
                    "name": f"{result.path.name} ran to the end",
                    "status": "error",
                    "score": 0,
                    "max_score": 0,
                    "message": result.error,
                    "filename": str(result.path),
                }
            )
    statuses = {t["status"] for t in tests}
    status = "error" if "error" in statuses else "fail" if "fail" in statuses or not tests else "pass"
    return {
        "version": 1,
        "status": status,
        "max_score": sum(r.max_points for r in notebooks),
        "tests": tests,
    }


def encoded(data: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(data, ensure_ascii=False).encode("utf-8")).decode("ascii")


def write_output(path: Path, data: dict[str, Any], *, name: str = "result") -> None:
    """Append `name=<base64 JSON>` to path (a step's $GITHUB_OUTPUT file): base64 keeps it on one line."""
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(f"{name}={encoded(data)}\n")
    except OSError as exc:
        raise CourseError(f"cannot write the Classroom results to {path}: {exc.strerror}") from exc
