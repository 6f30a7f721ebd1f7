"""One notebook to one HTML page of the site: nbconvert's JupyterLab look, a navigation bar, no scripts from a CDN."""

from __future__ import annotations

import re
from typing import Any

import jinja2
import nbformat
from nbconvert import HTMLExporter

# The page extends nbconvert's `lab` template. Its MathJax, require.js and mermaid blocks load scripts from a CDN
# that no lesson needs (plots are embedded PNGs), so they are left out: a page reads the same offline.
PAGE_TEMPLATE = """\
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}<style>{{ resources.course.css }}</style>{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.course.nav }}
{%- endblock body_header -%}
{%- block body_footer -%}
{{ resources.course.nav }}
{{ super() }}
{%- endblock body_footer -%}
"""
NAV_CSS = """
.course-nav { display: flex; flex-wrap: wrap; gap: .4em 1.2em; align-items: center; padding: .6em 1em;
  margin: 0 0 1em; background: #f3f5f8; border-bottom: 1px solid #d0d7de; font: 14px/1.4 system-ui, sans-serif; }
.course-nav a { text-decoration: none; }
.course-nav .launch { margin-left: auto; display: flex; gap: .8em; }
.course-nav .launch a { padding: .15em .6em; border: 1px solid #8c959f; border-radius: 4px; }
"""
# A relative link to a notebook (`../exercises/01_crud.ipynb`, `02_indexing.ipynb#2.1`) in markdown or HTML.
_NOTEBOOK_LINK = re.compile(r"(?P<open>\]\(|href=[\"'])(?P<path>(?![a-z][a-z0-9+.-]*:)[^)\"'#\s]+)\.ipynb")


def html_links(source: str) -> str:
    """The markdown source with its relative notebook links pointing at the site's pages instead."""
    return _NOTEBOOK_LINK.sub(lambda m: f"{m['open']}{m['path']}.html", source)


def exporter() -> HTMLExporter:
    """An HTML exporter with the course's page template (made once per site build: it reads the theme's CSS)."""
    loader = jinja2.DictLoader({"course_page.html.j2": PAGE_TEMPLATE})
    html = HTMLExporter(template_name="lab", template_file="course_page.html.j2", extra_loaders=[loader])
    # The site renders only the course's own notebooks: sanitising each cell with bleach (a quarter of the build
    # time) guards against HTML we wrote ourselves, and leaves these pages byte for byte the same.
    html.register_filter("clean_html", _as_text)
    return html


def _as_text(element: str | bytes) -> str:
    return element.decode() if isinstance(element, bytes) else str(element)


def render(notebook: nbformat.NotebookNode, *, title: str, nav: str, html: HTMLExporter) -> str:
    """The page for a notebook (its outputs as they are), with the navigation bar nav above and below it."""
    notebook = nbformat.from_dict(notebook)  # a copy: the links are rewritten in the page only
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = html_links(cell.source)
    resources: dict[str, Any] = {"metadata": {"name": title}, "course": {"nav": nav, "css": NAV_CSS}}
    body, _ = html.from_notebook_node(notebook, resources=resources)
    return body
