"""grades.csv as a gradebook: one row per exercise, appended and flushed as each submission finishes, and
graded.csv, which records the content hash of every submission graded, so a re-run resumes where one stopped."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from course.grading.nbval_hooks import ANSI_RE

if TYPE_CHECKING:
    from course.grading.classroom import Submission

CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass
class GradeRow:
    """One line of grades.csv."""

    learner: str
    chapter: str
    exercise: str
    points: int
    max_points: int
    status: str
    message: str
    submission: str


def _write_csv(path: Path, header: list[str], rows: Iterable[Iterable[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        # Fields with commas or quotes are quoted; line breaks and control characters (a learner's exception
        # text, a folder name) become spaces, so each grade stays on one line in any spreadsheet or `grep`.
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([_one_line(value) for value in row] for row in rows)


def _one_line(value: object) -> object:
    return CONTROL_RE.sub(" ", ANSI_RE.sub("", value)) if isinstance(value, str) else value


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Gradebook:
    """grades.csv, appended and flushed as each submission finishes, and graded.csv: which file content it holds."""

    HEADER = [f.name for f in fields(GradeRow)]

    def __init__(self, out: Path) -> None:
        self.grades, self.index = out / "grades.csv", out / "graded.csv"
        self._lock = threading.Lock()
        self._hashes: dict[str, str] = {}
        if self.index.exists() and self.grades.exists():
            with self.index.open(newline="", encoding="utf-8") as handle:
                self._hashes = {r["submission"]: r["sha256"] for r in csv.DictReader(handle)}
        kept = [r for r in self._read() if self._hashes.get(r.submission) and self._current(r.submission)]
        self._hashes = {k: v for k, v in self._hashes.items() if self._current(k)}
        # Rows of submissions that changed since (or of an earlier run without an index) are graded afresh.
        _write_csv(self.grades, self.HEADER, [asdict(r).values() for r in kept])
        _write_csv(self.index, ["submission", "sha256"], self._hashes.items())

    def _current(self, submission: str) -> bool:
        try:
            return self._hashes.get(submission) == content_hash(Path(submission))
        except OSError:
            return False

    def done(self, sub: Submission) -> bool:
        return self._current(str(sub.path))

    def add(self, sub: Submission, rows: list[GradeRow]) -> None:
        with self._lock:
            with self.grades.open("a", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows([_one_line(v) for v in asdict(r).values()] for r in rows)
                handle.flush()
                os.fsync(handle.fileno())
            if any(r.status == "error" for r in rows):
                return  # an infrastructure failure: a re-run grades this submission again
            try:
                digest = content_hash(sub.path)
            except OSError:
                return
            with self.index.open("a", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerow([str(sub.path), digest])
                handle.flush()

    def _read(self) -> list[GradeRow]:
        if not self.grades.exists():
            return []
        with self.grades.open(newline="", encoding="utf-8") as handle:
            rows = []
            for r in csv.DictReader(handle):
                try:
                    text = {k: r[k] for k in ("learner", "chapter", "exercise", "status", "message", "submission")}
                    rows.append(GradeRow(**text, points=int(r["points"]), max_points=int(r["max_points"])))
                except (TypeError, ValueError, KeyError):
                    continue
            return rows

    def rows(self) -> list[GradeRow]:
        return self._read()
