"""Every internal link of a built site resolves: the file exists inside the site, and so does the #anchor."""

from __future__ import annotations

from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    """The ids (and names) a page defines and the links (href, src) it makes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.anchors.add(value)
            elif name in ("href", "src"):
                self.links.append(value)


@cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(site: Path) -> list[str]:
    """`page: link (why)` for every internal link under site that does not resolve; external links are not followed."""
    _parse.cache_clear()
    site = site.resolve()
    problems = []
    for page_path in sorted(site.rglob("*.html")):
        for link in _parse(page_path).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                continue  # http(s):, mailto:, data: images: outside the site
            target = (page_path.parent / unquote(parts.path)).resolve() if parts.path else page_path
            where = f"{page_path.relative_to(site)}: {link}"
            if not target.is_relative_to(site):
                problems.append(f"{where} (points outside the site)")
            elif target.is_dir():
                problems.append(f"{where} (a folder, not a page)")
            elif not target.is_file():
                problems.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                anchors = _parse(target).anchors
                if parts.fragment not in anchors and unquote(parts.fragment) not in anchors:
                    problems.append(f"{where} (no #{unquote(parts.fragment)} on that page)")
    return problems
