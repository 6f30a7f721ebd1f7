"""The learner's definitions from a notebook's code cells: functions, classes, imports and constant assignments only.

A check process loads these, never the notebook's other top-level statements, so what a cell *did* (a loop that
never ends, an `await` that never returns, a file it wrote) cannot reach the check; only what the learner defined.
"""

from __future__ import annotations

import ast
from typing import Any

# The file name the learner's definitions are compiled under: the audit hooks know learner frames by it.
LEARNER_FILE = "<learner-notebook>"
_KEPT = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def _is_constant(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _kept(node: ast.stmt) -> bool:
    if isinstance(node, _KEPT):
        return True
    if isinstance(node, ast.Assign):
        return all(isinstance(t, ast.Name) for t in node.targets) and _is_constant(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and _is_constant(node.value)
    return False


def _python_only(source: str) -> str:
    # IPython syntax (%magic, !shell, ?help) is no Python: those lines become blank, so line numbers still match.
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append("" if stripped[:1] in ("%", "!", "?") or stripped.endswith("?") else line)
    return "\n".join(lines)


def extract(nb: dict[str, Any]) -> str:
    """The source of every definition in the notebook's code cells, in order (a later one replaces an earlier one).

    A cell that is not valid Python is left out whole, as the kernel would have failed it.
    """
    kept: list[ast.stmt] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        try:
            tree = compile(
                _python_only(source),
                LEARNER_FILE,
                "exec",
                flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
        except (SyntaxError, ValueError):
            continue
        kept += [node for node in tree.body if _kept(node)]
    module = ast.Module(body=kept, type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(module))
