"""Load the functions an exercise notebook defines, so tests judge exactly what learners see (one source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def _top_level_await(line: str) -> bool:
    # Setup and check cells await at top level; the function cells never do.
    return line.startswith("await ") or " = await " in line and not line[:1].isspace()


def notebook_namespace(path: str | Path) -> dict[str, Any]:
    """Execute the notebook's code cells, minus top-level awaits, and return the names they define."""
    notebook = nbformat.read(ROOT / path, as_version=4)
    namespace: dict[str, Any] = {"__name__": f"notebook_{Path(path).stem}"}
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not _top_level_await(line))
        # dont_inherit: this module's `from __future__ import annotations` must not leak into the cells (a kernel
        # evaluates annotations, and SQLAlchemy cannot resolve string annotations of classes made in a function).
        code = compile(source, f"{path}:cell", "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102 - our own committed notebooks
    return namespace
