"""The exercise notebook format: reading a notebook with clear errors, and the exercises its headings announce."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course.chapters import registry
from course.errors import CourseError

if TYPE_CHECKING:
    from nbformat import NotebookNode

NAME_RE = re.compile(r"^\d\d_[a-z_]+\.ipynb$")
# Two digits then `_` and a letter, not inside a longer number: 04_pagination, alice_04_pagination, 04_x (1).
CHAPTER_RE = re.compile(r"(?<!\d)(\d\d)_[a-z]", re.IGNORECASE)
HEADING_RE = re.compile(
    r"^###\s+Exercise\s+(?P<id>\d+\.\d+)\s+[—–-]+\s+(?P<title>.+?)\s+\((?P<points>\d+)\s+points?\)\s*$"
)


@dataclass(frozen=True)
class ExerciseInfo:
    """One exercise as its heading announces it: `### Exercise 4.1 — First page (3 points)`."""

    id: str
    title: str
    points: int


def load_notebook(path: Path) -> dict[str, Any]:
    """The notebook at path as plain JSON (sources joined into strings), or a CourseError saying what is wrong.

    Cheap (no nbformat, whose import costs a second): enough for running and grading a learner's notebook.
    """
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno}: {exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise CourseError(f"{path} is not a notebook: not valid JSON{where}") from None
    except OSError as exc:
        raise CourseError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or "nbformat" not in data:
        raise CourseError(f"{path} is JSON but not a Jupyter notebook (no `cells` list or `nbformat` key)")
    if data["nbformat"] != 4:
        raise CourseError(f"{path} is in notebook format {data['nbformat']}: open and save it in JupyterLab first")
    for number, cell in enumerate(data["cells"], start=1):
        source = cell.get("source") if isinstance(cell, dict) else None
        if isinstance(source, list) and all(isinstance(part, str) for part in source):
            cell["source"] = "".join(source)
        elif not isinstance(source, str) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise CourseError(f"{path} is not a valid notebook (cell {number} has no cell_type or source)")
    return data


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at path as nbformat's validated NotebookNode, or a CourseError saying why it is not one."""
    import nbformat

    data = load_notebook(path)
    try:
        nb = nbformat.from_dict(data)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - nbformat raises several types for one problem: a broken notebook
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CourseError(f"{path} is not a valid notebook ({reason[:120]})") from None
    return nb


def _heading_lines(cell: Mapping[str, Any]) -> list[str]:
    if cell.get("cell_type") != "markdown":
        return []
    return [line.strip() for line in cell["source"].splitlines() if line.strip().startswith("### Exercise")]


def exercises_in(notebook: Path | Mapping[str, Any]) -> list[ExerciseInfo]:
    """The exercises a notebook announces, in order, read from its `### Exercise N.M — Title (P points)` headings."""
    nb = load_notebook(notebook) if isinstance(notebook, Path) else notebook
    found: list[ExerciseInfo] = []
    for cell in nb["cells"]:
        for line in _heading_lines(cell):
            if match := HEADING_RE.match(line):
                found.append(ExerciseInfo(match["id"], match["title"], int(match["points"])))
    return found


def chapter_number(path: Path) -> int | None:
    """The chapter number a notebook's file name gives (`alice_04_pagination.ipynb` -> 4), or None."""
    match = CHAPTER_RE.search(Path(path).stem)
    return int(match[1]) if match else None


def chapter_of(path: Path) -> registry.Chapter:
    """The registry's chapter a notebook answers, from its file name; a one-line CourseError when there is none."""
    path = Path(path)
    number = chapter_number(path)
    known = ", ".join(ch.notebook for ch in registry.with_exercises())
    if number is None:
        raise CourseError(
            f"{path.name} does not name a chapter of the course: keep the chapter in the file name ({known})"
        )
    try:
        chapter = registry.chapter(number)
    except CourseError:
        raise CourseError(
            f"{path.name}: the course has no chapter {number:02d} with exercises ({known})"
        ) from None
    if not chapter.exercises:
        raise CourseError(f"{path.name}: chapter {chapter.stem} has no exercises to check ({known} have)")
    return chapter
