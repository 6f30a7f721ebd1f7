"""The pytest plugin inside a notebook check run (`-p course.grading.nbval_hooks`): it logs each cell and notices dead kernels.

It also holds what the kernel runs at start-up (OUTPUT_CAP) and the small helpers course/grading/runner.py shares with it.
It imports nothing from the course package, so the pytest process stays light and never loads course.checks.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from queue import Empty
from typing import Any

# Where the pytest hook below appends each cell's outcome (course/grading/runner.py sets it and reads the file).
CELLS_ENV = "COURSE_CHECK_CELLS"
# How often a cell's wait checks that the kernel is still alive.
KERNEL_POLL = 0.5
# Run in the kernel at start-up: a cell that prints without end would otherwise fill the memory of the pytest
# process (messages pile up faster than they are read). Outputs play no part in checking.
OUTPUT_CAP = """\
import sys


def _course_check_cap(stream, budget=4_000_000):
    write, sent = stream.write, [0]

    def capped(text):
        sent[0] += len(text)
        if sent[0] <= budget:
            return write(text)
        if sent[0] - len(text) <= budget:
            write("\\n[course check: output past 4 MB is dropped]\\n")
        return len(text)

    stream.write = capped


_course_check_cap(sys.stdout)
_course_check_cap(sys.stderr)
del _course_check_cap
"""
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The kernel's last line for an error: `NameError: name 'x' is not defined`, `KeyboardInterrupt`, `SystemExit: 3`.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Failed)\b")


class KernelDied(RuntimeError):
    """The kernel process ended while a cell ran; the message says how."""

    PREFIX = "the kernel process ended"


def clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def killed_by(number: int) -> str:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return f"killed by {name}" + (" (out of memory?)" if number == signal.SIGKILL else "")


def pytest_configure(config: Any) -> None:
    """Teach nbval's kernel wrapper to notice a dead kernel at once.

    nbval waits for a reply until the cell's time limit even when the kernel is gone: without this, a cell that
    calls os._exit() or crashes costs the whole limit and is reported as too slow.
    """
    from nbval.kernel import RunningKernel

    if not hasattr(RunningKernel.get_message, "__wrapped__"):
        RunningKernel.get_message = _watching(RunningKernel.get_message)


def _watching(get_message: Any) -> Any:
    def watched(self: Any, stream: str, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = KERNEL_POLL if deadline is None else max(0.0, min(KERNEL_POLL, deadline - time.monotonic()))
            try:
                return get_message(self, stream, timeout=left)
            except Empty:
                if not self.is_alive():
                    raise KernelDied(f"{KernelDied.PREFIX}{_exit_status(self)}") from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    watched.__wrapped__ = get_message  # type: ignore[attr-defined]
    return watched


def _exit_status(kernel: Any) -> str:
    process = getattr(getattr(getattr(kernel, "km", None), "provisioner", None), "process", None)
    code = getattr(process, "returncode", None)
    if code is None:
        return ""
    return f" ({killed_by(-code)})" if code < 0 else f" (exit code {code})"


def pytest_runtest_makereport(item: Any, call: Any) -> None:
    """Append each cell's outcome (ok, error line, timed out, kernel alive) to $COURSE_CHECK_CELLS."""
    path = os.environ.get(CELLS_ENV)
    cell = getattr(item, "cell_num", None)
    if not path or cell is None or call.when not in ("setup", "call"):
        return None
    if call.when == "setup" and call.excinfo is None:
        return None
    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is not None and type(exc).__name__ == "Skipped":
        return None
    message = str(exc) if exc is not None else ""
    kernel = getattr(item.parent, "kernel", None)
    outcome = {
        "cell": cell,
        "when": call.when,
        "ok": exc is None,
        "error": _error_line(exc) if exc is not None else None,
        "timed_out": message.startswith("Timeout of"),
        "kernel_alive": bool(kernel is not None and kernel.is_alive()),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(outcome, ensure_ascii=False) + "\n")
    return None


def _error_line(exc: BaseException) -> str:
    """The kernel's `Name: message` line for a cell error, else the exception's own text."""
    inner = getattr(exc, "inner_traceback", None)
    if inner:
        lines = [line.strip() for line in ANSI_RE.sub("", inner).splitlines() if line.strip()]
        named = [line for line in lines if _EXCEPTION_LINE.match(line)]
        if named or lines:
            return clip((named or lines)[-1], 2000)
    return clip(str(exc) or type(exc).__name__, 2000)
