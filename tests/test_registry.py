"""The chapter registry agrees with what exists: notebooks, exercise headings, checkers, and the start table."""

from __future__ import annotations

import pytest

from course.chapters.registry import CHAPTERS, chapter, with_exercises
from course.errors import CourseError
from course.grading.notebook_format import exercises_in
from tests.nbsource import ROOT


def test_numbers_and_stems_are_unique() -> None:
    assert len({ch.number for ch in CHAPTERS}) == len(CHAPTERS)
    assert [ch.number for ch in CHAPTERS] == sorted(ch.number for ch in CHAPTERS)


@pytest.mark.parametrize("ch", CHAPTERS, ids=[ch.stem for ch in CHAPTERS])
def test_every_chapter_has_its_lesson(ch) -> None:
    assert (ROOT / "notebooks" / ch.notebook).is_file()


def test_every_lesson_is_registered() -> None:
    assert {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} == {ch.stem for ch in CHAPTERS}


@pytest.mark.parametrize("ch", with_exercises(), ids=[ch.stem for ch in with_exercises()])
def test_exercises_match_headings_and_checkers(ch) -> None:
    for folder in ("solutions", "exercises"):
        found = [(e.id, e.title, e.points) for e in exercises_in(ROOT / folder / ch.notebook)]
        assert found == [(e.id, e.title, e.points) for e in ch.exercises], folder
    registry = ch.checks().registry
    assert set(registry.exercises) == {e.id for e in ch.exercises}
    assert all(registry.exercises[e.id].points == e.points for e in ch.exercises)
    assert all(e.id.startswith(f"{ch.number}.") and e.names for e in ch.exercises)


def test_solutions_exist_exactly_for_chapters_with_exercises() -> None:
    assert {p.stem for p in (ROOT / "solutions").glob("*.ipynb")} == {ch.stem for ch in with_exercises()}


def test_lookup_by_number_or_name() -> None:
    assert chapter(4) is chapter("04") is chapter("04_pagination")
    with pytest.raises(CourseError, match="no chapter"):
        chapter(99)
    with pytest.raises(CourseError, match="no exercise 1.9"):
        chapter(1).exercise("1.9")
