"""`course link` (course/cli/link.py, course/site/links.py): the links a class JupyterHub and Binder open."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from course.chapters.registry import CHAPTERS
from course.cli.main import main
from course.site.links import DEFAULT_REPO, Launch
from tests.nbsource import ROOT


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["link", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query, strict_parsing=True).items()}


def test_the_hub_link_clones_the_repo_and_opens_the_chapter(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "--hub",
        "https://hub.example.edu/",
        "--chapter",
        "4",
        "--repo",
        "https://github.com/acme/dbcourse.git",
    )
    assert code == 0 and out.count("\n") == 1
    url = out.strip()
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "hub.example.edu", "/hub/user-redirect/git-pull")
    # nbgitpuller clones into a folder named after the repository; JupyterLab opens the lesson there.
    assert _query(url) == {
        "repo": "https://github.com/acme/dbcourse",
        "urlpath": "lab/tree/dbcourse/notebooks/04_pagination.ipynb",
        "branch": "main",
    }
    # Every value is percent-encoded: a hub reads `repo` whole, not cut at its own slashes or colons.
    assert "repo=https%3A%2F%2Fgithub.com%2Facme%2Fdbcourse&" in url


def test_exercises_branch_and_a_hub_under_a_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "--hub", "https://uni.example.org/jupyter/hub/home", "--chapter", "01_crud", "--exercises",
        "--branch", "spring-2026",
    )  # fmt: skip
    url = out.strip()
    assert code == 0 and url.startswith("https://uni.example.org/jupyter/hub/user-redirect/git-pull?")
    query = _query(url)
    assert query["branch"] == "spring-2026"
    assert query["repo"] == DEFAULT_REPO
    folder = DEFAULT_REPO.rsplit("/", 1)[-1]
    assert query["urlpath"] == f"lab/tree/{folder}/exercises/01_crud.ipynb"
    assert (ROOT / "exercises" / "01_crud.ipynb").is_file()


def test_without_a_chapter_one_line_per_chapter_in_registry_order(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSE_REPO_URL", "https://github.com/acme/fork")
    code, out, _ = _run(capsys, "--hub", "http://localhost:8000")
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and [stem for stem, _ in rows] == [ch.stem for ch in CHAPTERS]
    for (stem, url), ch in zip(rows, CHAPTERS, strict=True):
        assert _query(url)["urlpath"] == f"lab/tree/fork/notebooks/{ch.notebook}", stem
        assert (ROOT / "notebooks" / ch.notebook).is_file()
        assert _query(url)["repo"] == "https://github.com/acme/fork"


def test_binder_link(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--binder", "--chapter", "2", "--repo", "https://github.com/acme/dbcourse")
    assert code == 0
    assert (
        out.strip()
        == "https://mybinder.org/v2/gh/acme/dbcourse/main?urlpath=lab%2Ftree%2Fnotebooks%2F02_indexing.ipynb"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hub", "hub.example.edu", "--chapter", "1"], "the hub address must be an http(s) URL"),
        (["--hub", "https://hub.example.edu", "--chapter", "12"], "the course has no chapter '12'"),
        (
            ["--hub", "https://h.example", "--repo", "git@github.com:a/b.git"],
            "the repository must be an https URL",
        ),
        (["--binder", "--repo", "https://gitlab.com/a/b"], "Binder links need a GitHub repository"),
        (["--hub", "https://h.example", "--branch", "two words"], "not a branch name"),
    ],
)
def test_bad_input_gets_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1, err


def test_chapter_without_exercises(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--hub", "https://h.example", "--chapter", "0", "--exercises")
    assert code == 1 and "has no exercises notebook" in out


def test_the_hub_base_is_kept_whatever_page_was_pasted() -> None:
    for pasted in (
        "https://h.example",
        "https://h.example/",
        "https://h.example/hub",
        "https://h.example/hub/home",
    ):
        assert Launch.from_options(hub=pasted).hub == "https://h.example", pasted
