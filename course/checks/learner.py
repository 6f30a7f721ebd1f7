"""How a learner's code failed, in words: the stub's "not solved yet", and any other exception at the learner's own line."""

from __future__ import annotations

import re
import traceback

from course.db.copies import current_run_tag

# The stub `course build` writes: `raise NotImplementedError("Exercise 4.2")`.
_STUB_RE = re.compile(r"^Exercise \d+\.\d+$")
# How IPython names the code of a cell: ipykernel writes /tmp/ipykernel_<pid>/<hash>.py, plain IPython
# <ipython-input-N-hash>.
# `course grade`'s check process compiles each cell's definitions as <code cell N> (course/grading/definitions.py).
_CELL_FILE_RE = re.compile(r"(ipykernel_\d+[\\/]\d+\.py$)|(^<ipython-input-)|(^<code cell \d+>$)")
_GRADED_CELL_RE = re.compile(r"^<(code cell \d+)>$")
# A learner's exception text is kept whole up to this size (a runaway message must not flood a report).
MESSAGE_LIMIT = 2000


def is_stub_error(exc: BaseException) -> bool:
    """True only for the exercise stub's own `NotImplementedError("Exercise N.M")`: "not solved yet"."""
    return (
        isinstance(exc, NotImplementedError)
        and len(exc.args) == 1
        and isinstance(exc.args[0], str)
        and bool(_STUB_RE.match(exc.args[0]))
    )


def _in_cell(filename: str) -> bool:
    return bool(_CELL_FILE_RE.search(filename))


def _cell_name(filename: str) -> str | None:
    """`In [5]` for the cell whose code is in filename, when IPython can tell (it numbers cells as they run)."""
    graded = _GRADED_CELL_RE.match(filename)
    if graded:
        return graded[1]
    try:
        from IPython import get_ipython

        shell = get_ipython()
        number = getattr(getattr(shell, "compile", None), "_filename_map", {}).get(filename)
    except Exception:  # noqa: BLE001 - only a nicer label; outside IPython there is none
        return None
    if not isinstance(number, int):
        return None
    # Under `course check` the runner numbers cells as its table does; in JupyterLab the learner sees In [N].
    return f"code cell {number}" if current_run_tag() else f"In [{number}]"


def learner_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The learner's own line: the deepest frame in a notebook cell, whatever library raised the exception.

    Outside a notebook (a test, a script): the deepest frame outside installed libraries and the course package.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    cells = [f for f in frames if _in_cell(f.filename)]
    if cells:
        return cells[-1]
    mine = [
        f for f in frames if "site-packages" not in f.filename and "/course/" not in f.filename.replace("\\", "/")
    ]
    return mine[-1] if mine else None


def describe_learner_error(exc: BaseException) -> str:
    where = learner_frame(exc)
    location = ""
    if where is not None:
        cell = _cell_name(where.filename) if _in_cell(where.filename) else None
        line = (where.line or "").strip()
        location = f" ({cell + ', ' if cell else ''}line {where.lineno}{f': `{line}`' if line else ''})"
    text = " ".join(str(exc).split())
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return f"your code raised {type(exc).__name__}{': ' + text if text else ''}{location}"
