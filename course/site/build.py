"""`course site`: the course as static HTML pages — lessons executed on SQLite, exercises without solutions.

The chapter order, titles and points come from the chapter registry. Lessons come from notebooks/ (executed in a
fresh kernel on SQLite, so the pages show real outputs and plots, or rendered as stored when not executed), and
exercise pages from exercises/, the generated learner copies, never from solutions/. Every page carries launch
links (Binder, and a JupyterHub through nbgitpuller when a hub is configured).
"""

from __future__ import annotations

import html
import os
import shutil
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.chapters.registry import CHAPTERS, Chapter
from course.errors import CourseError
from course.site import render
from course.site.links import Kind, Launch

DEFAULT_CELL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Page:
    chapter: Chapter
    kind: Kind
    source: Path

    @property
    def href(self) -> str:
        """Where the page sits in the site, relative to its root: the notebook's folder and name, .html."""
        return f"{self.source.parent.name}/{self.chapter.stem}.html"

    @property
    def title(self) -> str:
        suffix = " — exercises" if self.kind == "exercises" else ""
        return f"{self.chapter.number}. {self.chapter.title}{suffix}"


@dataclass
class SiteReport:
    """What a build wrote: the pages in reading order and the seconds each executed lesson took."""

    out: Path
    pages: list[Page] = field(default_factory=list)
    executed: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def pages(root: Path) -> list[Page]:
    """Every page in reading order: each chapter's lesson, then its exercises (from the registry)."""
    found = []
    for ch in CHAPTERS:
        lesson = root / "notebooks" / ch.notebook
        if not lesson.is_file():
            raise CourseError(f"the registry lists chapter {ch.stem} but {lesson} does not exist")
        found.append(Page(ch, "lesson", lesson))
        if ch.exercises:
            exercises = root / "exercises" / ch.notebook
            if not exercises.is_file():
                raise CourseError(f"{exercises} is missing: run `course build`")
            found.append(Page(ch, "exercises", exercises))
    return found


def build(
    root: Path,
    out: Path,
    *,
    launch: Launch,
    execute: Collection[int] | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float = DEFAULT_CELL_TIMEOUT,
    progress: bool = False,
) -> SiteReport:
    """Write the site to out (emptied first) from the notebooks under root.

    execute: the chapter numbers whose lessons run before rendering (None: every lesson); the others are rendered
    as stored. env: variables set (None: removed) in the kernels over this process's environment; the backend is
    SQLite.
    """
    started = time.perf_counter()
    report = SiteReport(out=out, pages=pages(root))
    if out.exists():
        shutil.rmtree(out)
    (out / "notebooks").mkdir(parents=True)
    (out / "exercises").mkdir()
    html_exporter = render.exporter()
    for i, page in enumerate(report.pages):
        notebook = nbformat.read(page.source, as_version=4)
        if page.kind == "lesson" and (execute is None or page.chapter.number in execute):
            if progress:
                print(f"executing {page.source.relative_to(root)} ...", flush=True)
            seconds = execute_lesson(notebook, page.source, env=env, timeout=timeout)
            report.executed[page.chapter.stem] = seconds
            if progress:
                print(f"  {page.chapter.stem}: executed in {seconds:.1f} s", flush=True)
        before = report.pages[i - 1] if i else None
        after = report.pages[i + 1] if i + 1 < len(report.pages) else None
        body = render.render(notebook, title=page.title, nav=nav(page, before, after, launch), html=html_exporter)
        (out / page.href).write_text(body, encoding="utf-8")
    (out / "index.html").write_text(index(report.pages, launch), encoding="utf-8")
    report.seconds = time.perf_counter() - started
    return report


def execute_lesson(
    notebook: nbformat.NotebookNode, path: Path, *, env: Mapping[str, str | None] | None, timeout: float
) -> float:
    """Run the lesson in a fresh kernel on SQLite, in place; return the seconds it took. Raises CourseError if a cell fails."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    kernel_env = {k: v for k, v in os.environ.items() if k not in ("COURSE_DATABASE_URL", "COURSE_BACKEND")}
    for name, value in (env or {}).items():
        if value is None:
            kernel_env.pop(name, None)
        else:
            kernel_env[name] = value
    kernel_env["COURSE_BACKEND"] = "sqlite"
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    try:
        client.execute(env=kernel_env)
    except (CellExecutionError, CellTimeoutError) as exc:
        last = [line for line in str(exc).splitlines() if line.strip()][-1:] or ["no message"]
        raise CourseError(f"{path.name} failed while executing for the site: {last[0]}") from exc
    return time.perf_counter() - started


def _link(href: str, text: str, **attrs: str) -> str:
    extra = "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items())
    return f'<a href="{html.escape(href)}"{extra}>{html.escape(text)}</a>'


def launch_links(page_chapter: Chapter, kind: Kind, launch: Launch) -> str:
    links = [_link(launch.binder(page_chapter, kind), "Launch on Binder", rel="nofollow")]
    if launch.hub:
        links.append(_link(launch.hub_link(page_chapter, kind), "Open on the class JupyterHub", rel="nofollow"))
    return " ".join(links)


def nav(page: Page, before: Page | None, after: Page | None, launch: Launch) -> str:
    """The bar above and below a page: the contents, the previous and next pages, and the launch links."""
    parts = [_link("../index.html", "Contents")]
    if before:
        parts.append(_link(f"../{before.href}", f"← {before.title}"))
    if after:
        parts.append(_link(f"../{after.href}", f"{after.title} →"))
    parts.append(f'<span class="launch">{launch_links(page.chapter, page.kind, launch)}</span>')
    return f'<nav class="course-nav">{" ".join(parts)}</nav>'


def index(all_pages: list[Page], launch: Launch) -> str:
    """The contents page: one row per chapter in the registry's order, with its pages, time, points and links."""
    rows = []
    for ch in CHAPTERS:
        own = {p.kind: p for p in all_pages if p.chapter is ch}
        lesson = _link(own["lesson"].href, f"{ch.number}. {ch.title}")
        exercises = (
            _link(own["exercises"].href, f"{len(ch.exercises)} exercises, {ch.max_points} points")
            if "exercises" in own
            else "–"
        )
        rows.append(
            f"<tr><td>{lesson}</td><td>{ch.minutes} min</td><td>{exercises}</td>"
            f"<td>{launch_links(ch, 'lesson', launch)}</td></tr>"
        )
    return INDEX.format(rows="\n".join(rows), css=render.NAV_CSS, repo=html.escape(launch.repo))


INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Backend database practice with async SQLAlchemy</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #1f2328; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .4em .6em; border-bottom: 1px solid #d0d7de; }}
{css}
</style>
</head>
<body>
<h1 id="contents">Backend database practice with async SQLAlchemy</h1>
<p>Interactive lessons on the database work a backend does every day, for SQLAlchemy 2.x with asyncio. These pages
show each lesson as it ran on SQLite (every number on them was measured when the site was built) and each exercise
notebook as learners receive it. To run them yourself, launch a chapter on Binder, or clone
<a href="{repo}">the repository</a> and run <code>make lab</code>.</p>
<table>
<thead><tr><th>Chapter</th><th>Time</th><th>Exercises</th><th>Run it</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""
