"""`course grade` runs every submission, survives the broken ones, and writes grades.csv and summary.csv."""

from __future__ import annotations

import csv
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from course.chapters import registry
from course.errors import CourseError
from course.grading.classroom import GradeRow, _write_csv, find_submissions, learner_name, summarise
from tests.fixtures.demo_chapter import DEMO
from tests.fixtures.tooling import SOLUTION, built_fixture, code_cell, course, variant
from tests.nbsource import ROOT


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    ("relative", "given_folder", "learner"),
    [
        ("subs/alice/04_pagination.ipynb", "subs", "alice"),  # one folder per learner
        ("subs/alice/week2/04_pagination_v2.ipynb", "subs", "alice"),  # deeper: still alice's folder
        ("subs/bob_04_pagination.ipynb", "subs", "bob_04_pagination"),  # flat: the file says who
        ("subs/carol/04_pagination.ipynb", None, "carol"),  # given by path, chapter name kept
        ("subs/dave.ipynb", None, "dave"),  # given by path, renamed
    ],
)
def test_learner_name_rule(tmp_path: Path, relative: str, given_folder: str | None, learner: str) -> None:
    path = tmp_path / relative
    folder = tmp_path / given_folder if given_folder else None
    assert learner_name(path, folder) == learner


def test_chapters_come_from_the_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "CHAPTERS", (*registry.CHAPTERS, DEMO))
    names = [
        "04_pagination.ipynb",
        "alice_04_pagination.ipynb",
        "99_demo (1).ipynb",
        "homework.ipynb",
        "2004_x.ipynb",
        "98_extra.ipynb",
        "00_start_here.ipynb",
    ]
    for name in names:
        (tmp_path / "subs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "subs" / name).write_text("{}")
    (tmp_path / "subs" / ".ipynb_checkpoints").mkdir()
    (tmp_path / "subs" / ".ipynb_checkpoints" / "04_pagination-checkpoint.ipynb").write_text("{}")
    found = {
        s.path.name: s.chapter.stem if s.chapter else s.problem for s in find_submissions([tmp_path / "subs"])
    }
    assert found.pop("04_pagination.ipynb") == found.pop("alice_04_pagination.ipynb") == "04_pagination"
    assert found.pop("99_demo (1).ipynb") == "99_demo"
    assert "does not name a chapter" in found.pop("homework.ipynb")
    assert "does not name a chapter" in found.pop("2004_x.ipynb")
    assert "no chapter 98" in found.pop("98_extra.ipynb")
    assert "has no exercises" in found.pop("00_start_here.ipynb")
    assert not found
    with pytest.raises(CourseError, match="no such file or folder"):
        find_submissions([tmp_path / "missing"])


def test_summary_counts_the_better_of_two_hand_ins() -> None:
    def row(learner: str, file: str, points: int, max_points: int) -> GradeRow:
        status = "passed" if points else "failed"
        return GradeRow(learner, "99_demo", "99.1", points, max_points, status, "", file)

    rows = [row("ann", "a1", 0, 2), row("ann", "a1", 3, 3), row("ann", "a2", 2, 2), row("ann", "a2", 3, 3)]
    rows.append(GradeRow("ben", "", "", 0, 0, "error", "unknown chapter", "b"))
    # An exercise skipped on this database counts on neither side.
    rows.append(GradeRow("cat", "99_demo", "99.1", 2, 2, "passed", "", "c"))
    rows.append(GradeRow("cat", "99_demo", "99.3", 0, 0, "skipped", "PostgreSQL only", "c"))
    assert summarise(rows) == [("ann", 5, 5), ("ben", 0, 0), ("cat", 2, 2)]


@pytest.mark.notebooks
def test_grading_a_class_with_broken_submissions_and_awkward_messages(tmp_path: Path) -> None:
    """One `course grade` of a class with every kind of hand-in (three kernel runs: alice, bob and fay)."""
    reference = built_fixture(tmp_path / "root").parent
    subs = tmp_path / "subs"
    for learner in ("alice", "bob", "carol", "dave", "erin", "gus"):
        (subs / learner).mkdir(parents=True)
    # Fay's code raises with commas, quotes and a line break in the message, and her exercise 99.2 is deleted
    # (still graded, same maximum).
    raising = '    raise ValueError("a, b,\\n\\"c\\"")\n    # BEGIN SOLUTION'

    def raise_and_drop_99_2(nb) -> None:  # noqa: ANN001 - a NotebookNode
        cell = code_cell(nb, "from sqlalchemy import")
        cell.source = cell.source.replace("    # BEGIN SOLUTION", raising, 1)
        del nb.cells[next(i for i, c in enumerate(nb.cells) if c.source.startswith("### Exercise 99.2")) :]

    variant(subs / "fay" / "99_demo.ipynb", raise_and_drop_99_2)
    shutil.copy(SOLUTION, subs / "alice" / "99_demo.ipynb")
    shutil.copy(reference / "99_demo.ipynb", subs / "bob" / "99_demo.ipynb")
    (subs / "carol" / "99_demo.ipynb").write_text(SOLUTION.read_text()[:400])  # cut off mid-upload
    (subs / "dave" / "99_demo.ipynb").write_text('{"grade": "A+ please"}')  # JSON, not a notebook
    shutil.copy(SOLUTION, subs / "erin" / "homework.ipynb")  # no chapter in the name
    (subs / "erin" / "notes.txt").write_text("not a notebook, not graded")
    # Gus hands in chapter 4's exercises under the demo chapter's name: reported, not run.
    shutil.copy(ROOT / "exercises" / "04_pagination.ipynb", subs / "gus" / "99_demo.ipynb")
    out = tmp_path / "out"
    # --reference is no longer needed: it is accepted (old scripts) and ignored, with a notice.
    result = course(
        "grade",
        str(subs),
        "--out",
        str(out),
        "--reference",
        str(reference),
        "--jobs",
        "2",
        "--timeout",
        "30",
        "--no-sandbox",
        cwd=tmp_path,
    )
    assert "--reference is no longer needed" in result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    grades = _csv(out / "grades.csv")
    assert len((out / "grades.csv").read_text(encoding="utf-8").splitlines()) == len(grades) + 1
    assert list(grades[0])[:7] == ["learner", "chapter", "exercise", "points", "max_points", "status", "message"]
    table = {(g["learner"], g["exercise"]): (g["status"], g["points"], g["max_points"]) for g in grades}
    assert table == {
        ("alice", "99.1"): ("passed", "2", "2"),
        ("alice", "99.2"): ("passed", "3", "3"),
        ("bob", "99.1"): ("failed", "0", "2"),
        ("bob", "99.2"): ("failed", "0", "3"),
        ("carol", "99.1"): ("error", "0", "2"),
        ("carol", "99.2"): ("error", "0", "3"),
        ("dave", "99.1"): ("error", "0", "2"),
        ("dave", "99.2"): ("error", "0", "3"),
        ("erin", ""): ("error", "0", "0"),
        ("fay", "99.1"): ("failed", "0", "2"),
        ("fay", "99.2"): ("failed", "0", "3"),
        ("gus", "99.1"): ("error", "0", "2"),
        ("gus", "99.2"): ("error", "0", "3"),
    }
    messages = {(g["learner"], g["exercise"]): g["message"] for g in grades}
    assert "not solved yet (Exercise 99.2)" in messages["bob", "99.2"]
    assert "not valid JSON" in messages["carol", "99.1"]
    assert "not a Jupyter notebook" in messages["dave", "99.1"]
    assert "unknown chapter" in messages["erin", ""]
    assert 'raised ValueError: a, b, "c" (code cell 2, line 8: `raise ValueError(' in messages["fay", "99.1"]
    assert "not found: define `newest_emails`" in messages["fay", "99.2"]
    fours = ", ".join(e.id for e in registry.chapter(4).exercises)
    assert f"holds exercises {fours}, not those of 99_demo" in messages["gus", "99.1"]
    assert all(g["chapter"] == "99_demo" for g in grades if g["learner"] != "erin")
    summary = {s["learner"]: (s["points"], s["max_points"]) for s in _csv(out / "summary.csv")}
    assert summary == {
        "alice": ("5", "5"),
        "bob": ("0", "5"),
        "carol": ("0", "5"),
        "dave": ("0", "5"),
        "erin": ("0", "0"),
        "fay": ("0", "5"),
        "gus": ("0", "5"),
    }
    assert "7 learner(s)" in result.stdout and "grades.csv" in result.stdout


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_grader_that_cannot_run_exits_2(tmp_path: Path, make: str) -> None:
    subs = tmp_path / "subs"
    if make == "empty":
        subs.mkdir()
    result = course("grade", str(subs), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert ("no such file" if make == "missing" else "no notebooks") in result.stderr


def test_csv_keeps_each_grade_on_one_well_formed_line(tmp_path: Path) -> None:
    nasty = 'your code raised ValueError: a, b,\n"c"\r\n\x1b[31mred\x1b[0m\x00 end'
    rows = [GradeRow("ann, the 2nd", "99_demo", "99.1", 0, 2, "failed", nasty, "subs/a.ipynb")]
    _write_csv(tmp_path / "grades.csv", [f.name for f in fields(GradeRow)], [asdict(r).values() for r in rows])
    text = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2, text
    (row,) = _csv(tmp_path / "grades.csv")
    assert row["learner"] == "ann, the 2nd"
    assert row["message"] == 'your code raised ValueError: a, b, "c" red  end'
