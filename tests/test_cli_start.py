"""`course start NN` copies a chapter's exercise notebook into my/, and never overwrites the learner's copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course.cli.main import main
from course.cli.start import start_copy
from course.errors import CourseError
from tests.nbsource import ROOT


@pytest.fixture
def course_folder(tmp_path: Path) -> Path:
    (tmp_path / "exercises").mkdir()
    shutil.copyfile(ROOT / "exercises" / "01_crud.ipynb", tmp_path / "exercises" / "01_crud.ipynb")
    return tmp_path


def test_start_copies_once_and_keeps_the_learners_work(course_folder: Path) -> None:
    target, new = start_copy("1", root=course_folder)
    assert new and target == course_folder / "my" / "01_crud.ipynb"
    assert target.read_bytes() == (course_folder / "exercises" / "01_crud.ipynb").read_bytes()
    target.write_text("my work", encoding="utf-8")
    again, new = start_copy("01", root=course_folder)
    assert again == target and not new and target.read_text(encoding="utf-8") == "my work"


def test_start_refuses_what_it_cannot_start(course_folder: Path) -> None:
    with pytest.raises(CourseError, match="has no exercises"):
        start_copy("0", root=course_folder)
    with pytest.raises(CourseError, match="course build"):
        start_copy("2", root=course_folder)
    with pytest.raises(CourseError, match="no chapter"):
        start_copy("42", root=course_folder)


def test_start_command_prints_the_path(monkeypatch: pytest.MonkeyPatch, course_folder: Path, capsys) -> None:
    monkeypatch.setattr("course.settings.project_root", lambda: course_folder)
    assert main(["start", "1"]) == 0
    assert "my/01_crud.ipynb" in capsys.readouterr().out
    assert main(["start", "99"]) == 2
    assert "no chapter" in capsys.readouterr().err
