"""The table `course check` prints for one notebook: exercise, pass or fail, points, and the check's message."""

from __future__ import annotations

import shutil
import textwrap
from typing import TYPE_CHECKING

from course.grading.nbval_hooks import clip

if TYPE_CHECKING:
    from course.grading.runner import NotebookResult


def format_result(result: NotebookResult, *, width: int | None = None) -> str:
    """A table for the terminal: one line per exercise, ✅/❌/⏭ and points, each message whole, wrapped to width.

    width: the terminal's (or $COLUMNS, else 100 when not a terminal).
    """
    width = width or shutil.get_terminal_size((100, 24)).columns
    skipped = [e for e in result.exercises if e.status == "skipped"]
    head = f"{result.path.name}: {result.points}/{result.max_points} points in {result.seconds:.1f} s"
    if skipped:
        head += f" ({len(skipped)} exercise{'s' * (len(skipped) != 1)} skipped on this database)"
    lines = [head]
    if result.error:
        lines += _wrapped(f"❌ {result.error}", width, "  ", "    ")
    id_w = max(len("exercise"), *(len(e.id) for e in result.exercises))
    title_w = min(30, max(len("title"), *(len(e.title) for e in result.exercises)))
    lines.append(f"  {'exercise':<{id_w}}  {'title':<{title_w}}  ok  {'points':>6}  message")
    indent = " " * (len(lines[-1]) - len("message"))
    if width - len(indent) < 30:
        indent = " " * 6  # a narrow terminal: messages go under the row, not beside it
    for e in result.exercises:
        mark = {"passed": "✅", "skipped": "⏭"}.get(e.status, "❌")
        points = "–" if e.status == "skipped" else f"{e.points}/{e.max_points}"
        row = f"  {e.id:<{id_w}}  {clip(e.title, title_w):<{title_w}}  {mark}  {points:>6}"
        message = "" if e.passed else e.message.removeprefix(f"❌ Exercise {e.id}: ")
        if e.status == "tampered":
            message = f"tampered: {message}"
        if result.error and e.message == result.error:
            message = "the run stopped before its check (see above)"
        wrapped = _wrapped(message, width, indent, indent) if message else []
        if wrapped and len(indent) > 6:
            lines.append(f"{row}  {wrapped[0].lstrip()}")
            lines += wrapped[1:]
        else:
            lines += [row, *wrapped]
    if result.cell_errors:
        lines.append("  cells that failed or ran out of time:")
        for problem in result.cell_errors:
            lines += _wrapped(f"- {problem}", width, "    ", "      ")
    return "\n".join(lines)


def _wrapped(text: str, width: int, first: str, rest: str) -> list[str]:
    # Whole messages, never cut: long words (URLs, SQL) may run past the edge rather than be split.
    return textwrap.wrap(
        " ".join(text.split()), width=max(width, len(first) + 20), initial_indent=first,
        subsequent_indent=rest, break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip
