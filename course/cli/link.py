"""`course link`: the nbgitpuller link (and Binder link) that opens a chapter's notebook for a class."""

from __future__ import annotations

import argparse

from course.chapters.registry import CHAPTERS, chapter


def cmd_link(args: argparse.Namespace) -> int:
    from course.site.links import Kind, Launch

    launch = Launch.from_options(repo=args.repo, branch=args.branch, hub=args.hub)
    kind: Kind = "exercises" if args.exercises else "lesson"
    chapters = [chapter(args.chapter)] if args.chapter is not None else list(CHAPTERS)
    chapters = [ch for ch in chapters if kind == "lesson" or ch.exercises]
    if not chapters:
        print(f"chapter {args.chapter} has no exercises notebook")
        return 1
    for ch in chapters:
        url = launch.binder(ch, kind) if args.binder else launch.hub_link(ch, kind)
        # One chapter: the bare link (easy to paste or script); all chapters: a tab-separated table.
        print(url if args.chapter is not None else f"{ch.stem}\t{url}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "link",
        help="print the nbgitpuller link that opens a chapter on a JupyterHub",
        description=(
            "Print a link that makes a JupyterHub clone (or update) the course repository into the learner's home "
            "with nbgitpuller and open the chapter's notebook in JupyterLab. Without --chapter, one line per "
            "chapter (stem, tab, link). The hub needs the course package installed; the SQLite seed builds itself "
            "on first use."
        ),
    )
    hub = p.add_mutually_exclusive_group(required=True)
    hub.add_argument("--hub", metavar="URL", help="the hub's address, e.g. https://hub.example.edu")
    hub.add_argument("--binder", action="store_true", help="print the mybinder.org link instead")
    p.add_argument("--chapter", metavar="N", help="chapter number (1) or stem (01_crud); default: every chapter")
    p.add_argument("--exercises", action="store_true", help="open the exercises notebook instead of the lesson")
    p.add_argument("--repo", metavar="URL", help="repository to clone (default: COURSE_REPO_URL or the course's)")
    p.add_argument("--branch", metavar="B", help="branch to clone (default: COURSE_REPO_BRANCH or main)")
    p.set_defaults(handler=cmd_link)
