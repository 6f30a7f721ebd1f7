"""`course site`: build the course's static site (lessons executed on SQLite) and check its internal links."""

from __future__ import annotations

import argparse

from course.errors import CourseError


def _chapters(value: str) -> set[int] | None:
    """--execute: `all`, `none`, or chapter numbers separated by commas (`1,4`)."""
    if value == "all":
        return None
    if value == "none":
        return set()
    try:
        return {int(part) for part in value.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected all, none or chapter numbers like 1,4; got {value!r}"
        ) from None


def cmd_site(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from course.settings import get_settings, project_root
    from course.site.links import Launch

    launch = Launch.from_options(repo=args.repo, branch=args.branch, hub=args.hub)
    root = project_root()
    out = Path(args.out).resolve()
    if out == root or root.is_relative_to(out):
        raise CourseError(f"--out {args.out} would replace the course itself: choose a folder of its own")
    # The folder is emptied first: only an earlier site (or nothing) may be there, never notebooks/ or a home.
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise CourseError(f"--out {args.out} is not empty and holds no earlier site: choose an empty folder")

    from course.seed import ensure_seed
    from course.site import build, linkcheck

    if args.execute != set():
        # Seed here, with progress, so the pages show each lesson as a learner sees it (not a one-time "Building
        # the seed" line naming this machine's folders). The kernels use SQLite whatever the environment says.
        ensure_seed(dataclasses.replace(get_settings(backend="sqlite"), database_url=None))
    report = build.build(root, out, launch=launch, execute=args.execute, timeout=args.timeout, progress=True)
    broken = linkcheck.broken_links(out)
    if broken:
        raise CourseError(f"{len(broken)} broken link(s) in the site, first: {broken[0]}")
    print(
        f"site written to {out} ({len(report.pages)} pages, {len(report.executed)} lessons executed, "
        f"every internal link resolves) in {report.seconds:.1f} s; open {out / 'index.html'}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "site",
        help="build the course's static site into a folder (lessons executed on SQLite)",
        description=(
            "Render every lesson (executed in a fresh kernel on SQLite, with its outputs and plots) and every "
            "exercise notebook (the learner's copy, without solutions) to HTML, in the registry's chapter order, "
            "with an index page and launch links (Binder; a JupyterHub via nbgitpuller with --hub). Then check "
            "that every internal link and #anchor resolves. Nothing is downloaded."
        ),
    )
    p.add_argument("--out", default="build/site", metavar="DIR", help="where to write the site (emptied first)")
    p.add_argument(
        "--execute",
        type=_chapters,
        default=None,
        metavar="WHICH",
        help="lessons to execute: all (default), none, or chapter numbers like 1,4 (the rest render as stored)",
    )
    p.add_argument("--hub", metavar="URL", help="a class JupyterHub: adds an nbgitpuller link to every page")
    p.add_argument("--repo", metavar="URL", help="repository for the launch links (default: COURSE_REPO_URL)")
    p.add_argument("--branch", metavar="B", help="branch for the launch links (default: main)")
    p.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="time limit per cell (default 300)"
    )
    p.set_defaults(handler=cmd_site)
