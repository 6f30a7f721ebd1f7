"""The learner's definitions from a notebook's code cells: functions, classes, imports and assignments to names.

A check process loads these, never the notebook's other top-level statements, so what a cell *did* (a loop that
never ends, an `await` that never returns, a file it wrote, a print) cannot reach the check; only what the learner
defined. Assignments that await are cells' work and are left out; the others run (a module-level key or table the
functions use), within the check process's time limit for loading.
"""

from __future__ import annotations

import ast
from typing import Any

# The file name the learner's definitions are compiled under: the audit hooks know learner frames by it.
LEARNER_FILE = "<learner-notebook>"
_KEPT = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


def _names_only(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    return isinstance(target, ast.Tuple | ast.List) and all(_names_only(t) for t in target.elts)


def _waits(node: ast.AST) -> bool:
    # An assignment that awaits is a cell's work (a query, a sleep), not a definition.
    return any(isinstance(n, ast.Await | ast.Yield | ast.YieldFrom) for n in ast.walk(node))


def _kept(node: ast.stmt) -> bool:
    if isinstance(node, _KEPT):
        return True
    # Module-level values the functions use (`CURSOR_KEY = secrets.token_hex(32)`, `RETRYABLE = {...}`).
    if isinstance(node, ast.Assign):
        return all(_names_only(t) for t in node.targets) and not _waits(node.value)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.value is not None and not _waits(node.value)
    return False


def _python_only(source: str) -> str:
    # IPython syntax (%magic, !shell, ?help) is no Python: those lines become blank, so line numbers still match.
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append("" if stripped[:1] in ("%", "!", "?") or stripped.endswith("?") else line)
    return "\n".join(lines)


def cell_file(number: int) -> str:
    """The file name a code cell's definitions are compiled under (number: 1-based, as `course check` counts)."""
    return f"<code cell {number}>"


def extract(nb: dict[str, Any]) -> list[tuple[str, str]]:
    """(file name, source) per code cell: its definitions only, every other line blank so line numbers still match.

    A cell that is not valid Python is left out whole, as the kernel would have failed it. Run in order, a later
    definition replaces an earlier one, as in the notebook.
    """
    found: list[tuple[str, str]] = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for number, cell in enumerate(code, start=1):
        source = cell.get("source", "")
        source = _python_only("".join(source) if isinstance(source, list) else str(source))
        try:
            tree = compile(source, LEARNER_FILE, "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except (SyntaxError, ValueError):
            continue
        lines = source.splitlines()
        keep = [False] * len(lines)
        for node in tree.body:
            if _kept(node):
                first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
                for i in range(first - 1, (node.end_lineno or node.lineno)):
                    keep[i] = True
        if any(keep):
            found.append(
                (cell_file(number), "\n".join(line if k else "" for line, k in zip(lines, keep, strict=True)))
            )
    return found


def learner_files(chunks: list[tuple[str, str]]) -> set[str]:
    return {LEARNER_FILE, *(name for name, _ in chunks)}
