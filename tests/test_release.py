"""`course release OUT`: the learner-facing course, in which no reference answer survives, and which still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from course.errors import CourseError
from course.grading.release import find_leaks, release, solution_regions
from course.settings import project_root

ROOT = project_root()


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("release") / "course"
    release(ROOT, folder)
    return folder


def test_the_release_holds_the_course_and_no_solutions(out: Path) -> None:
    assert not (out / "solutions").exists() and not (out / "tests").exists()
    for folder in ("notebooks", "exercises", "course", "data"):
        assert any((out / folder).iterdir()), folder
    assert sorted(p.name for p in (out / "exercises").glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "solutions").glob("*.ipynb")
    )
    assert (out / "pyproject.toml").is_file() and (out / "Makefile").is_file()
    assert not list(out.rglob("*.sqlite3")) and not list(out.rglob("__pycache__"))
    # The exercise notebooks hold stubs only: no marker, let alone what sat between markers.
    text = "\n".join(p.read_text(encoding="utf-8") for p in (out / "exercises").glob("*.ipynb"))
    assert "BEGIN SOLUTION" not in text and "NotImplementedError" in text


def test_no_reference_answer_survives_in_the_release(out: Path) -> None:
    assert len(solution_regions(ROOT / "solutions")) >= 20
    leaks = sorted((leak.exercise, leak.file) for leak in find_leaks(out, ROOT / "solutions"))
    assert not leaks, f"reference answers in the release: {leaks}"


def test_planted_answers_are_found(out: Path) -> None:
    # Every reference answer pasted into a module of the package: nearly all must be reported (the rest are a
    # line or two that a lesson also shows, which is taught material).
    regions = solution_regions(ROOT / "solutions")
    planted = out / "course" / "planted.py"
    planted.write_text("\n".join(f"    {line}" for _, lines in regions for line in lines) + "\n")
    try:
        found = {leak.exercise for leak in find_leaks(out, ROOT / "solutions") if leak.file == "course/planted.py"}
    finally:
        planted.unlink()
    exercises = {exercise for exercise, _ in regions}
    assert len(found) >= 0.7 * len(exercises), sorted(exercises - found)


def test_the_release_holds_the_whole_package_and_builds_without_solutions(out: Path) -> None:
    package = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "course").rglob("*.py") if "__pycache__" not in p.parts
    }
    assert package <= {p.relative_to(out).as_posix() for p in (out / "course").rglob("*.py")}
    # The release's own package (cwd first on sys.path), not the repository's editable install.
    probe = "import course, sys; from course.cli.main import main; print(course.__file__); sys.exit(main(['build', '--check']))"
    run = subprocess.run([sys.executable, "-c", probe], cwd=out, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith(str(out)) and "student release" in run.stdout
    assert sorted(p.name for p in (out / "exercises").glob("*.ipynb"))  # nothing was deleted


def test_release_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(CourseError, match="not empty"):
        release(ROOT, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
