"""The start notebook's chapter table is the registry's: a new Chapter entry adds its row, no link goes nowhere."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from course.chapters.registry import CHAPTERS, Chapter, ExerciseSpec
from course.errors import CourseError
from course.grading import start_table
from course.grading.build import build
from tests.nbsource import ROOT

LINK = re.compile(r"\]\(([^)\s#]+\.ipynb)(?:#[^)]*)?\)")
NOTEBOOKS = sorted(
    p for folder in ("notebooks", "solutions", "exercises") for p in (ROOT / folder).glob("*.ipynb")
)


def _start_source(root: Path) -> str:
    nb = nbformat.read(root / start_table.START, as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")


def test_the_committed_table_lists_exactly_the_registered_chapters() -> None:
    source = _start_source(ROOT)
    assert start_table.chapter_table() in source
    listed = set(re.findall(r"^\| \d+\. .*?\]\((\d\d_[a-z_]+)\.ipynb\)", source, re.MULTILINE))
    assert listed == {ch.stem for ch in CHAPTERS if ch.number > 0}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS])
def test_every_notebook_link_leads_to_a_notebook_that_exists(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    links = {m for cell in nb.cells if cell.cell_type == "markdown" for m in LINK.findall(cell.source)}
    missing = sorted(link for link in links if not (path.parent / link).is_file())
    assert not missing, f"{path.relative_to(ROOT)} links to notebooks that do not exist: {missing}"


def test_a_new_registry_entry_is_all_a_chapter_needs() -> None:
    # A registry of its own, so the test holds whichever chapters the course has today.
    base = (
        Chapter(0, "start_here", "Start here", 10),
        Chapter(1, "crud", "CRUD", 60, (ExerciseSpec("1.1", "A", 2, ("a",)),)),
    )
    exercise = ExerciseSpec("3.1", "Two statements", 3, ("load",))
    chapters = (*base, Chapter(9, "x", "X", 5), Chapter(3, "n_plus_one", "The N+1 problem", 40, (exercise,)))
    table = start_table.chapter_table(sorted(chapters, key=lambda ch: ch.number))
    rows = table.splitlines()[2:]
    assert [row.split(".")[0] for row in rows] == ["| 1", "| 3", "| 9"]
    assert "| 3. The N+1 problem | [03_n_plus_one](03_n_plus_one.ipynb) | [exercises/03_n_plus_one](" in table
    assert rows[-1] == "| 9. X | [09_x](09_x.ipynb) | none yet |", "a chapter without exercises links none"


def _copy_of_start(tmp_path: Path) -> Path:
    (tmp_path / "notebooks").mkdir()
    return Path(shutil.copy(ROOT / start_table.START, tmp_path / start_table.START))


def test_build_rewrites_a_stale_table_and_check_refuses_it(tmp_path: Path) -> None:
    path = _copy_of_start(tmp_path)
    nb = nbformat.read(path, as_version=4)
    stale = (
        start_table.chapter_table()
        + "\n| 97. Not a chapter | [97_not_a_chapter](97_not_a_chapter.ipynb) | none yet |"
    )
    for cell in nb.cells:
        if start_table.BEGIN in cell.source:
            cell.source = start_table.with_table(cell.source, stale, where="test")
    nbformat.write(nb, path)
    with pytest.raises(CourseError, match="chapter table .* differs .* run `course build`"):
        build(tmp_path, check=True)
    build(tmp_path)
    assert "97_not_a_chapter" not in _start_source(tmp_path)
    assert path.read_bytes() == (ROOT / start_table.START).read_bytes()
    build(tmp_path, check=True)


def test_a_start_notebook_without_markers_is_a_one_line_error(tmp_path: Path) -> None:
    path = _copy_of_start(tmp_path)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.source = cell.source.replace(start_table.END, "")
    nbformat.write(nb, path)
    with pytest.raises(CourseError, match="chapter table markers"):
        build(tmp_path)
