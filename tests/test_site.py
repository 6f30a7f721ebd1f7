"""The rendered course site (course/site/): built once here, with ONE lesson executed, then judged as a reader would.

Executing every lesson takes minutes (`make site` does); lesson 1 is executed because it proves the most: its plot
becomes an <img>, and it runs in a data folder where no seed was ever built (a fresh clone on a JupyterHub, with the
package installed and no `course seed`), so the SQLite seed must build itself on first use.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest

from course.chapters.registry import CHAPTERS
from course.cli.main import main
from course.grading.build import MARKER_RE
from course.site import build, linkcheck, render
from course.site.build import SiteReport
from course.site.links import Launch
from tests.nbsource import ROOT

HUB = "https://hub.example.edu"
EXECUTED = 1
# Both launch kinds on every page: a hub is configured for this build.
LAUNCH = Launch(repo="https://github.com/example/db-course", branch="spring", hub=HUB)
# The tests that read the built site share one kernel run: marked with one xdist group, they go to one worker,
# which builds the site once (module-scoped fixture).


@pytest.fixture(scope="module")
def fresh_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fresh-clone-data")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, fresh_data: Path) -> SiteReport:
    assert not any(fresh_data.iterdir()), "the data folder must start empty: no seed built"
    out = tmp_path_factory.mktemp("site")
    # The kernel gets an empty data folder of its own and no scale: the default (small), as a learner has it.
    return build.build(
        ROOT, out, launch=LAUNCH, execute={EXECUTED}, env={"COURSE_DATA_DIR": str(fresh_data)}, timeout=240
    )


def _text(page: Path) -> str:
    """What a reader sees: the page without styles and tags, entities decoded (pygments splits code into spans)."""
    body = re.sub(r"<(style|script)\b.*?</\1>", "", page.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", body))


@pytest.mark.notebooks
@pytest.mark.xdist_group("site")
def test_every_internal_link_and_anchor_resolves(site: SiteReport) -> None:
    assert linkcheck.broken_links(site.out) == []
    index = (site.out / "index.html").read_text(encoding="utf-8")
    lesson = (site.out / "notebooks" / "00_start_here.html").read_text(encoding="utf-8")
    # The checker saw real links: the contents page, and the start page's chapter table rewritten to .html pages.
    assert 'href="notebooks/01_crud.html"' in index and 'href="exercises/01_crud.html"' in index
    assert 'href="../exercises/04_pagination.html"' in lesson
    assert not re.search(r'href="(?!https?:)[^"]*\.ipynb', lesson), "a link to a notebook file, not its page"


@pytest.mark.notebooks
@pytest.mark.xdist_group("site")
def test_pages_follow_the_registry_order(site: SiteReport) -> None:
    index = (site.out / "index.html").read_text(encoding="utf-8")
    lessons = re.findall(r'href="notebooks/(\d\d_[a-z_]+)\.html"', index)
    assert lessons == [ch.stem for ch in CHAPTERS]
    # Next links chain every page in reading order: each lesson, then its exercises.
    order = [p.href for p in site.pages]
    assert [h for h in order if h.startswith("notebooks/")] == [f"notebooks/{ch.stem}.html" for ch in CHAPTERS]
    for before, after in zip(order, order[1:], strict=False):
        page = (site.out / before).read_text(encoding="utf-8")
        assert re.search(rf'href="\.\./{re.escape(after)}">[^<]*→</a>', page), f"{before} does not lead to {after}"
    assert order[:4] == [
        "notebooks/00_start_here.html",
        "notebooks/01_crud.html",
        "exercises/01_crud.html",
        "notebooks/02_indexing.html",
    ]


def _solution_lines(solution: Path, exercise: Path) -> set[str]:
    """Lines between BEGIN/END SOLUTION that the learner's notebook does not contain anywhere (the answers)."""
    stub = "\n".join(cell.source for cell in nbformat.read(exercise, as_version=4).cells)
    stub_lines = {line.strip() for line in stub.splitlines()}
    hidden = set()
    for cell in nbformat.read(solution, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            marker = MARKER_RE.match(line)
            if marker:
                inside = marker["kind"] == "BEGIN"
            # A line of brackets alone (`)`, `]`) gives nothing away; any line with a word in it may.
            elif inside and re.search(r"\w", line) and line.strip() not in stub_lines:
                hidden.add(line.strip())
    return hidden


def _leaks(page: Path, hidden: set[str]) -> list[str]:
    text = {line.strip() for line in _text(page).splitlines()}
    return sorted(hidden & text)


@pytest.mark.notebooks
@pytest.mark.xdist_group("site")
def test_exercise_pages_carry_no_solution_code(site: SiteReport, tmp_path: Path) -> None:
    chapters = [ch for ch in CHAPTERS if ch.exercises]
    for ch in chapters:
        hidden = _solution_lines(ROOT / "solutions" / ch.notebook, ROOT / "exercises" / ch.notebook)
        assert len(hidden) >= len(ch.exercises), f"{ch.stem}: too few solution lines found to judge by"
        assert _leaks(site.out / "exercises" / f"{ch.stem}.html", hidden) == [], ch.stem
        assert "BEGIN SOLUTION" not in _text(site.out / "exercises" / f"{ch.stem}.html")
    # Guard the guard: a page rendered from a solutions notebook is caught by the same comparison.
    ch = chapters[0]
    leaked = tmp_path / "leak.html"
    notebook = nbformat.read(ROOT / "solutions" / ch.notebook, as_version=4)
    leaked.write_text(render.render(notebook, title="x", nav="", html=render.exporter()), encoding="utf-8")
    hidden = _solution_lines(ROOT / "solutions" / ch.notebook, ROOT / "exercises" / ch.notebook)
    assert len(_leaks(leaked, hidden)) == len(hidden)


@pytest.mark.notebooks
@pytest.mark.xdist_group("site")
def test_the_executed_lesson_shows_its_outputs_and_plot(site: SiteReport) -> None:
    assert set(site.executed) == {CHAPTERS[EXECUTED].stem}
    page = (site.out / "notebooks" / f"{CHAPTERS[EXECUTED].stem}.html").read_text(encoding="utf-8")
    assert re.search(r'<img[^>]+src="data:image/png;base64,[A-Za-z0-9+/]{1000}', page), "no embedded plot"
    assert "Backend: sqlite" in page and "Traceback" not in page
    # A lesson not executed is rendered as stored: no outputs.
    other = (site.out / "notebooks" / f"{CHAPTERS[EXECUTED + 1].stem}.html").read_text(encoding="utf-8")
    assert "<img" not in other and "Backend:" not in other


@pytest.mark.notebooks
@pytest.mark.xdist_group("site")
def test_chapter_1_ran_where_no_seed_had_been_built(site: SiteReport, fresh_data: Path) -> None:
    # The fixture asserted the folder was empty; the lesson's `await setup()` built the default seed itself.
    assert CHAPTERS[EXECUTED].stem in site.executed
    assert [p.name for p in fresh_data.glob("*.sqlite3")] == ["course_small.sqlite3"]


@pytest.mark.notebooks
@pytest.mark.xdist_group("site")
def test_every_page_launches_its_own_notebook(site: SiteReport) -> None:
    for page in site.pages:
        body = html.unescape((site.out / page.href).read_text(encoding="utf-8"))
        folder = "notebooks" if page.kind == "lesson" else "exercises"
        binder = f"https://mybinder.org/v2/gh/example/db-course/spring?urlpath=lab%2Ftree%2F{folder}%2F{page.chapter.notebook}"
        assert binder in body, page.href
        hub = re.search(r'href="(https://hub\.example\.edu/hub/user-redirect/git-pull\?[^"]+)"', body)
        assert hub, page.href
        query = parse_qs(urlsplit(hub[1]).query)
        assert query["urlpath"] == [f"lab/tree/db-course/{folder}/{page.chapter.notebook}"]
        assert (ROOT / folder / page.chapter.notebook).is_file()
        # Nothing is fetched from a CDN: the pages read the same offline.
        assert not re.search(r'<script[^>]+src="https?:', body), page.href


def test_the_link_checker_finds_missing_pages_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1 id="top">x</h1><a href="a/p.html#here">ok</a><a href="#top">ok</a><a href="https://x.org/y">out</a>'
        '<a href="a/missing.html">1</a><a href="a/p.html#nowhere">2</a><a href="../outside.html">3</a>'
        '<img src="a/none.png"><a href="a/">4</a>'
    )
    (tmp_path / "a" / "p.html").write_text('<h2 id="here">p</h2><a href="../index.html#top">back</a>')
    broken = linkcheck.broken_links(tmp_path)
    assert [b.split(" (")[0] for b in broken] == [
        "index.html: a/missing.html",
        "index.html: a/p.html#nowhere",
        "index.html: ../outside.html",
        "index.html: a/none.png",
        "index.html: a/",
    ]


def test_notebook_links_become_page_links() -> None:
    source = (
        "[next](02_indexing.ipynb), [ex](../exercises/01_crud.ipynb#Exercise-1.1), [web](https://x.org/a.ipynb)"
    )
    assert render.html_links(source) == (
        "[next](02_indexing.html), [ex](../exercises/01_crud.html#Exercise-1.1), [web](https://x.org/a.ipynb)"
    )


def test_course_site_refuses_to_replace_the_course(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "--out", str(ROOT), "--execute", "none"]) == 2
    assert "would replace the course" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["site", "--execute", "one,two"])
