"""`course release OUT`: the learner-facing course (lessons, exercises, the package, data) with no reference answers.

What goes out: the files git tracks or would track (not ignored; or, outside a git checkout, the tree minus virtual environments, caches and
generated databases), except solutions/ (the reference answers), tests/ (their teeth hold correct alternatives),
benchmarks/ and .ci/ (maintainers' tools). exercises/ are the learner versions, already built from solutions/.
After copying, every solution region of solutions/ is looked for in the release: a region whose distinctive lines
mostly survive in one file is reported (lines a lesson in notebooks/ shows are taught material, not a leak).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from course.errors import CourseError
from course.grading.build import MARKER_RE
from course.grading.notebook_format import HEADING_RE, _heading_lines, read_notebook

EXCLUDED = ("solutions", "tests", "benchmarks", ".ci")
# Outside git: what a working tree holds that is not the course.
_UNTRACKED = {".venv", ".git", "__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
# A line this short (`await session.commit()` is 22) says nothing about whose answer it is.
DISTINCTIVE = 24


@dataclass(frozen=True)
class Leak:
    """A solution region most of whose distinctive lines appear in one file of the release."""

    exercise: str
    file: str
    lines: tuple[str, ...]


@dataclass
class ReleaseReport:
    out: Path
    files: list[str] = field(default_factory=list)
    leaks: list[Leak] = field(default_factory=list)


def _tracked(root: Path) -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listed = b""
    if listed:
        return [name for name in listed.decode().split("\0") if name and (root / name).is_file()]
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not _UNTRACKED & set(relative.parts) and path.suffix not in (".sqlite3", ".pyc"):
            found.append(relative.as_posix())
    return sorted(found)


def release_files(root: Path) -> list[str]:
    """The files of the learner-facing course, relative to root."""
    return [name for name in _tracked(root) if name.split("/", 1)[0] not in EXCLUDED]


def _cell_lines(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return [line for cell in cells for line in "".join(cell.get("source", "")).split("\n")]


def solution_regions(solutions: Path) -> list[tuple[str, list[str]]]:
    """(exercise id, stripped lines) for every solution region of every notebook in solutions/."""
    regions: list[tuple[str, list[str]]] = []
    for notebook in sorted(solutions.glob("*.ipynb")):
        exercise = notebook.stem
        for cell in read_notebook(notebook).cells:
            for heading in _heading_lines(cell):
                if match := HEADING_RE.match(heading):
                    exercise = match["id"]
            if cell.get("cell_type") != "code":
                continue
            inside: list[str] | None = None
            for line in cell.source.split("\n"):
                marker = MARKER_RE.match(line)
                if marker is None:
                    if inside is not None:
                        inside.append(line.strip())
                elif marker["kind"] == "BEGIN":
                    inside = []
                elif inside is not None:
                    regions.append((exercise, inside))
                    inside = None
    return regions


def _lines_of(path: Path) -> set[str]:
    try:
        lines = _cell_lines(path) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8").split("\n")
    except (UnicodeDecodeError, ValueError, OSError):
        return set()
    return {line.strip() for line in lines}


def find_leaks(out: Path, solutions: Path) -> list[Leak]:
    """Solution regions that survive in the tree at out (see the module docstring)."""
    files = {p.relative_to(out).as_posix(): _lines_of(p) for p in sorted(out.rglob("*")) if p.is_file()}
    taught = set().union(*(lines for name, lines in files.items() if re.match(r"notebooks/\d\d_", name)))
    leaks = []
    for exercise, lines in solution_regions(solutions):
        distinctive = [
            line for line in lines if len(line) >= DISTINCTIVE and not line.startswith("#") and line not in taught
        ]
        if not distinctive:
            continue
        for name, present in files.items():
            found = tuple(line for line in distinctive if line in present)
            # Two lines at least: one line alone (`user = await session.get(User, user_id)`) is an idiom.
            if len(found) >= max(2, (len(distinctive) + 1) // 2):
                leaks.append(Leak(exercise, name, found))
    return leaks


def release(root: Path, out: Path) -> ReleaseReport:
    """Write the learner-facing course to out (which must not exist or be empty) and look for surviving answers."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CourseError(f"{out} already exists and is not empty: give a new folder")
    if (
        out == root.resolve()
        or root.resolve() in out.parents
        and out.parts[len(root.resolve().parts)]
        in (
            "solutions",
            "exercises",
            "course",
            "notebooks",
        )
    ):
        raise CourseError(f"{out} is inside the course's own folders: give a folder outside them")
    report = ReleaseReport(out=out, files=release_files(root))
    if not any(name.startswith("exercises/") for name in report.files):
        raise CourseError("no exercises/ to release: run `course build` first")
    for name in report.files:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    if (root / "solutions").is_dir():
        report.leaks = find_leaks(out, root / "solutions")
    return report
