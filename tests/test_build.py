"""`course build` turns solutions/ into exercises/: stubs in place of solutions, no outputs, byte-exact `--check`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course.errors import CourseError
from course.grading.build import build
from course.grading.notebook_format import ExerciseInfo, exercises_in, load_notebook
from course.settings import project_root
from tests.fixtures.tooling import SOLUTION, built_fixture, code_cell, variant


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_stub_replaces_each_solution_and_keeps_the_rest(tmp_path: Path) -> None:
    exercise = built_fixture(tmp_path)
    nb = nbformat.read(exercise, as_version=4)
    count = code_cell(nb, "from sqlalchemy import").source
    assert count.endswith(
        '    """How many users there are, in one statement."""\n    raise NotImplementedError("Exercise 99.1")'
    )
    assert 'raise NotImplementedError("Exercise 99.2")' in code_cell(nb, "async def newest_emails").source
    text = _text(exercise)
    assert "SOLUTION" not in text and "scalar_one()" not in text and "order_by" not in text
    # The setup, check and hint cells are as the author wrote them.
    assert code_cell(nb, "await check(").source == 'await check("99.1", count_users)'
    assert any("<summary>Hint</summary>" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert len(nb.cells) == len(nbformat.read(SOLUTION, as_version=4).cells)
    assert text.endswith("}\n")
    assert exercises_in(exercise) == [
        ExerciseInfo("99.1", "Count the users", 2),
        ExerciseInfo("99.2", "The newest users", 3),
    ]


def test_outputs_counts_and_metadata_are_stripped(tmp_path: Path) -> None:
    def run_it(nb: nbformat.NotebookNode) -> None:
        for number, cell in enumerate(nb.cells):
            cell.metadata.update({"collapsed": True, "tags": ["keep-me"]})
            if cell.cell_type == "code":
                cell.execution_count = number
                cell.outputs = [new_output("stream", name="stdout", text="hello\n")]
        nb.metadata["language_info"] = {"name": "python", "version": "3.11.9"}
        nb.metadata["widgets"] = {"state": {}}

    variant(tmp_path / "solutions" / "99_demo.ipynb", run_it)
    (exercise,) = build(tmp_path)
    nb = json.loads(_text(exercise))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert all(c["metadata"] == {"tags": ["keep-me"]} for c in nb["cells"])
    assert nb["metadata"] == {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }


def test_several_regions_keep_their_indentation(tmp_path: Path) -> None:
    source = "\n".join(
        [
            "def f(x):",
            "    # BEGIN SOLUTION",
            "    y = x + 1",
            "    # END SOLUTION",
            "    if x:",
            "        # BEGIN SOLUTION",
            "        return y",
            "        # END SOLUTION",
            "    return 0",
        ]
    )
    _write(tmp_path, "12_two_regions.ipynb", [_heading("12.1"), new_code_cell(source)])
    (exercise,) = build(tmp_path)
    cell = nbformat.read(exercise, as_version=4).cells[1]
    assert cell.source.splitlines() == [
        "def f(x):",
        '    raise NotImplementedError("Exercise 12.1")',
        "    if x:",
        '        raise NotImplementedError("Exercise 12.1")',
        "    return 0",
    ]


def test_build_is_deterministic_and_check_passes(tmp_path: Path) -> None:
    exercise = built_fixture(tmp_path)
    first = exercise.read_bytes()
    assert build(tmp_path, check=True) == [exercise]
    build(tmp_path)
    assert exercise.read_bytes() == first


def test_check_reports_stale_missing_and_extra(tmp_path: Path) -> None:
    exercise = built_fixture(tmp_path)
    exercise.write_text(_text(exercise).replace("Count the users", "Count users"), encoding="utf-8")
    with pytest.raises(CourseError, match=r"99_demo.ipynb stale.*run `course build`"):
        build(tmp_path, check=True)
    exercise.unlink()
    with pytest.raises(CourseError, match="99_demo.ipynb missing"):
        build(tmp_path, check=True)
    assert not exercise.exists()  # --check writes nothing
    build(tmp_path)
    shutil.copy(exercise, tmp_path / "exercises" / "98_gone.ipynb")
    with pytest.raises(CourseError, match="out of sync.*98_gone.ipynb has no solution"):
        build(tmp_path, check=True)
    build(tmp_path)
    assert not (tmp_path / "exercises" / "98_gone.ipynb").exists()
    assert build(tmp_path, check=True) == [exercise]


def test_empty_or_absent_solutions_build_nothing(tmp_path: Path) -> None:
    assert build(tmp_path) == []
    assert build(tmp_path, check=True) == []
    (tmp_path / "solutions").mkdir()
    assert build(tmp_path, check=True) == []


def _heading(exercise: str) -> nbformat.NotebookNode:
    return new_markdown_cell(f"### Exercise {exercise} — Something (2 points)\n\nDo it.")


def _solution(body: str = "    return 1") -> nbformat.NotebookNode:
    return new_code_cell(f"def f():\n    # BEGIN SOLUTION\n{body}\n    # END SOLUTION")


def _write(root: Path, name: str, cells: list[nbformat.NotebookNode]) -> None:
    (root / "solutions").mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), root / "solutions" / name)


@pytest.mark.parametrize(
    ("name", "cells", "fragments"),
    [
        ("12_x.ipynb", [_heading("12.1"), new_code_cell("def f():\n    return 1\n    # END SOLUTION")],
         ["cell 2, line 3", "END SOLUTION without"]),
        ("12_x.ipynb", [_heading("12.1"), new_code_cell("def f():\n    # BEGIN SOLUTION\n    return 1")],
         ["cell 2, line 2", "never closed"]),
        ("12_x.ipynb", [_heading("12.1"), new_code_cell("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION")],
         ["cell 2, line 2", "inside the region"]),
        ("12_x.ipynb", [_heading("12.1"), new_code_cell("def f():\n    #BEGIN SOLUTION\n    return 1\n    # END SOLUTION")],
         ["cell 2, line 2", "malformed marker"]),
        ("12_x.ipynb", [_solution(), _heading("12.1"), _solution()], ["cell 1", "before any `### Exercise` heading"]),
        ("12_x.ipynb", [_heading("12.1"), new_code_cell("def f():\n    return 1"), _heading("12.2"), _solution()],
         ["cell 1", "Exercise 12.1 has no solution region"]),
        ("12_x.ipynb", [_heading("12.1"), _solution(), _heading("12.2")], ["cell 3", "Exercise 12.2 has no solution"]),
        ("12_x.ipynb", [_heading("12.1"), _solution(), _heading("12.1"), _solution()], ["cell 3", "appears twice"]),
        ("12_x.ipynb", [_heading("3.1"), _solution()], ["cell 1", "does not belong to chapter 12"]),
        ("12_x.ipynb", [new_markdown_cell("### Exercise 12.1: no points"), _solution()], ["cell 1", "malformed heading"]),
        ("12_Pagination-Copy1.ipynb", [_heading("12.1"), _solution()], ["12_Pagination-Copy1.ipynb", "names must"]),
    ],
)  # fmt: skip
def test_malformed_sources_name_file_and_cell(
    tmp_path: Path, name: str, cells: list[nbformat.NotebookNode], fragments: list[str]
) -> None:
    _write(tmp_path, name, cells)
    with pytest.raises(CourseError) as info:
        build(tmp_path)
    message = str(info.value)
    assert f"solutions/{name}" in message
    for fragment in fragments:
        assert fragment in message, message
    assert not (tmp_path / "exercises").exists() or not any((tmp_path / "exercises").iterdir())


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{ not json", "not valid JSON (line 1"),
        ('{"hello": "world"}', "not a Jupyter notebook"),
        ('{"nbformat": 3, "cells": []}', "notebook format 3"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"source": 1}]}', "cell 1"),
    ],
)
def test_unreadable_notebooks_give_one_clear_error(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "04_pagination.ipynb"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CourseError, match="04_pagination.ipynb") as info:
        load_notebook(path)
    assert fragment in str(info.value)


def test_every_solution_in_the_repo_builds(tmp_path: Path) -> None:
    # Whatever chapters exist today, `course build` turns each into an exercise notebook without error.
    root = project_root()
    if (root / "solutions").is_dir():
        shutil.copytree(root / "solutions", tmp_path / "solutions")
    built = build(tmp_path)
    assert [p.name for p in built] == sorted(p.name for p in (tmp_path / "solutions").glob("*.ipynb"))


def test_repo_exercises_are_in_sync_with_solutions() -> None:
    # The guard the maintainer relies on: edit solutions/, run `course build`, commit both.
    build(project_root(), check=True)
