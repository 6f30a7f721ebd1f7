"""Generate exercises/ from solutions/: each solution region becomes `raise NotImplementedError`, outputs go."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from course.errors import CourseError
from course.grading import start_table
from course.grading.notebook_format import HEADING_RE, NAME_RE, _heading_lines, read_notebook

if TYPE_CHECKING:
    from nbformat import NotebookNode

MARKER_RE = re.compile(r"^(?P<indent>[ \t]*)# (?P<kind>BEGIN|END) SOLUTION\s*$")
# Anything that looks like a marker but is not exactly one: a typo that would leak a solution.
NEAR_MARKER_RE = re.compile(r"#\s*(BEGIN|END)[\s_]*SOLUTION", re.IGNORECASE)
# Cell metadata worth keeping: nbval and Jupyter tags (e.g. raises-exception); the rest is editor state.
KEEP_CELL_METADATA = ("tags",)


def _stub(source: str, exercise: str, where: str) -> tuple[str, int]:
    """The cell's source with each solution region replaced by a raise; also how many regions there were."""
    out: list[str] = []
    open_at: int | None = None
    regions = 0
    for number, line in enumerate(source.split("\n"), start=1):
        match = MARKER_RE.match(line)
        if match is None:
            if NEAR_MARKER_RE.search(line):
                raise CourseError(
                    f"{where}, line {number}: malformed marker {line.strip()!r} "
                    "(write `# BEGIN SOLUTION` or `# END SOLUTION` on a line of its own)"
                )
            if open_at is None:
                out.append(line)
            continue
        if match["kind"] == "BEGIN":
            if open_at is not None:
                raise CourseError(
                    f"{where}, line {number}: # BEGIN SOLUTION inside the region opened at line {open_at}"
                )
            open_at = number
            regions += 1
            out.append(f'{match["indent"]}raise NotImplementedError("Exercise {exercise}")')
        else:
            if open_at is None:
                raise CourseError(f"{where}, line {number}: # END SOLUTION without a # BEGIN SOLUTION above it")
            open_at = None
    if open_at is not None:
        raise CourseError(f"{where}, line {open_at}: # BEGIN SOLUTION is never closed by # END SOLUTION")
    return "\n".join(out), regions


def _clean_metadata(metadata: dict) -> dict:
    return {key: metadata[key] for key in KEEP_CELL_METADATA if key in metadata}


def make_exercise(nb: NotebookNode, *, name: str) -> NotebookNode:
    """The learner's version of a solutions notebook; `name` (the file name) only labels error messages."""
    import nbformat

    nb = nbformat.from_dict(nb)
    chapter = int(Path(name).name[:2])
    current: tuple[str, int] | None = None  # (exercise id, index of its heading cell)
    seen: set[str] = set()
    solved: set[str] = set()
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index + 1}"
        for line in _heading_lines(cell):
            match = HEADING_RE.match(line)
            if match is None:
                raise CourseError(
                    f"{where}: malformed heading {line!r} (expected `### Exercise N.M — Title (P points)`)"
                )
            exercise = match["id"]
            if int(exercise.split(".")[0]) != chapter:
                raise CourseError(f"{where}: Exercise {exercise} does not belong to chapter {chapter:02d}")
            if current is not None and current[0] not in solved:
                raise CourseError(f"{name}, cell {current[1] + 1}: Exercise {current[0]} has no solution region")
            if exercise in seen:
                raise CourseError(f"{where}: Exercise {exercise} appears twice")
            seen.add(exercise)
            current = (exercise, index)
        # Cell ids keep diffs small; a deterministic id where the source has none keeps `--check` byte-exact.
        if nb.nbformat_minor >= 5 and not cell.get("id"):
            cell["id"] = f"{Path(name).stem}-{index + 1}".replace("_", "-")
        cell.metadata = _clean_metadata(cell.metadata)
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        has_marker = any(MARKER_RE.match(line) or NEAR_MARKER_RE.search(line) for line in cell.source.split("\n"))
        if not has_marker:
            continue
        if current is None:
            raise CourseError(f"{where}: solution markers before any `### Exercise` heading")
        cell.source, regions = _stub(cell.source, current[0], where)
        if regions:
            solved.add(current[0])
    if current is not None and current[0] not in solved:
        raise CourseError(f"{name}, cell {current[1] + 1}: Exercise {current[0]} has no solution region")
    # Only what Jupyter needs to pick a kernel: versions and editor state differ from machine to machine.
    metadata: dict = {"language_info": {"name": nb.metadata.get("language_info", {}).get("name", "python")}}
    if "kernelspec" in nb.metadata:
        metadata["kernelspec"] = dict(nb.metadata["kernelspec"])
    nb.metadata = metadata
    return nb


def render(nb: NotebookNode) -> str:
    """Deterministic JSON for a notebook, ending with a newline, so `course build --check` can compare bytes."""
    import nbformat

    return nbformat.writes(nb) + "\n"


def _expected(root: Path) -> dict[Path, str]:
    solutions = root / "solutions"
    expected: dict[Path, str] = {}
    if not solutions.is_dir():
        return expected
    for source in sorted(solutions.glob("*.ipynb")):
        if not NAME_RE.match(source.name):
            raise CourseError(
                f"solutions/{source.name}: notebook names must look like 04_pagination.ipynb "
                "(two digits, underscore, lower-case words)"
            )
        stub = make_exercise(read_notebook(source), name=f"solutions/{source.name}")
        expected[root / "exercises" / source.name] = render(stub)
    return expected


def build(root: Path, *, check: bool = False) -> list[Path]:
    """Write exercises/NN_*.ipynb for every solutions/NN_*.ipynb (and remove exercise notebooks with no source).

    With check=True nothing is written: a CourseError lists what is stale, missing or extra.
    Returns the exercise notebooks written (or, with check=True, found in sync).
    """
    # The start notebook's chapter table comes from the chapter registry (course/grading/start_table.py).
    start_table.sync(root, check=check)
    expected = _expected(root)
    exercises = root / "exercises"
    present = set(exercises.glob("*.ipynb")) if exercises.is_dir() else set()
    extra = sorted(present - set(expected))
    if check:
        problems = [f"{p.name} missing" for p in expected if p not in present]
        problems += [f"{p.name} stale" for p, text in expected.items() if p in present and _differs(p, text)]
        problems += [f"{p.name} has no solution" for p in extra]
        if problems:
            raise CourseError(
                f"exercises/ is out of sync with solutions/ ({', '.join(problems)}): run `course build`"
            )
        return list(expected)
    if expected:
        exercises.mkdir(exist_ok=True)
    for path, text in expected.items():
        if _differs(path, text):
            path.write_bytes(text.encode("utf-8"))
    for path in extra:
        path.unlink()
    return list(expected)


def _differs(path: Path, text: str) -> bool:
    return not path.exists() or path.read_bytes() != text.encode("utf-8")
