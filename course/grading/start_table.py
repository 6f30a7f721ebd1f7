"""The chapter table of notebooks/00_start_here.ipynb, written from the chapter registry by `course build`.

The table sits between two HTML comments in a markdown cell (Jupyter does not show them). Registering a Chapter
in course/chapters/registry.py is all a new chapter needs: the next `course build` adds its row, and
`course build --check` fails while the committed table differs from the registry's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from course.chapters.registry import CHAPTERS, Chapter
from course.errors import CourseError

START = Path("notebooks") / "00_start_here.ipynb"
BEGIN = "<!-- chapter table: written by `course build` from course/chapters/registry.py, edit the registry -->"
END = "<!-- end of chapter table -->"


def chapter_table(chapters: Iterable[Chapter] = CHAPTERS) -> str:
    """A markdown table with a row per registered chapter (not chapter 0): its lesson, and its exercises if any."""
    rows = ["| chapter | lesson | exercises |", "|---|---|---|"]
    for ch in chapters:
        if ch.number == 0:
            continue
        exercises = f"[exercises/{ch.stem}](../exercises/{ch.notebook})" if ch.exercises else "none yet"
        rows.append(f"| {ch.number}. {ch.title} | [{ch.stem}]({ch.notebook}) | {exercises} |")
    return "\n".join(rows)


def with_table(source: str, table: str, *, where: str) -> str:
    """source with the text between the markers replaced by table."""
    start, end = source.find(BEGIN), source.find(END)
    if start < 0 or end < start:
        raise CourseError(f"{where}: no chapter table markers (a line {BEGIN!r}, the table, then {END!r})")
    # Blank lines around the table: Markdown must not read a comment line as one more table row.
    return f"{source[: start + len(BEGIN)]}\n\n{table}\n\n{source[end:]}"


def sync(root: Path, *, check: bool = False) -> Path | None:
    """Rewrite the start notebook's chapter table from the registry (with check=True: raise if it is stale).

    Returns the notebook's path, or None when root has no start notebook (a folder with exercises only).
    """
    import nbformat

    from course.grading.build import render

    path = root / START
    if not path.exists():
        return None
    nb = nbformat.read(path, as_version=4)
    cells = [cell for cell in nb.cells if cell.cell_type == "markdown" and BEGIN in cell.source]
    if len(cells) != 1:
        raise CourseError(
            f"{START}: expected one markdown cell with the chapter table markers, found {len(cells)}"
        )
    table = chapter_table()
    cells[0].source = with_table(cells[0].source, table, where=str(START))
    text = render(nb)
    if path.read_bytes() == text.encode("utf-8"):
        return path
    if check:
        raise CourseError(
            f"the chapter table of {START} differs from course/chapters/registry.py: run `course build`"
        )
    path.write_bytes(text.encode("utf-8"))
    return path
