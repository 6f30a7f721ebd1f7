"""Audit hooks for a check process: they notice learner code reaching for the grader and record what they saw.

Installed (sys.addaudithook) before the learner's definitions are loaded; Python offers no way to remove them. What
counts as reaching for the grader: importing the grading modules, opening the verdict channel, another process's
memory or solutions/, starting processes or sending signals, tracing or profiling, ctypes, the garbage collector's
object lists, and frames (sys._getframe, a traceback's or coroutine's frame) taken while learner code runs. Any of
it makes the verdict `tampered` with the list of what was seen, for the instructor to look at.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
import traceback
from collections.abc import Iterable
from types import FrameType
from typing import Any

from course.grading.definitions import LEARNER_FILE

base_tasks = importlib.import_module("asyncio.base_tasks")

# Modules a learner has no business importing during a check.
FORBIDDEN_IMPORTS = ("course.grading", "course.checks.grader")
# Events that are tampering whoever raises them once the watch is armed.
_ALWAYS = {
    "subprocess.Popen": "started a process",
    "os.system": "started a shell",
    "os.fork": "forked the check process",
    "os.forkpty": "forked the check process",
    "os.posix_spawn": "started a process",
    "os.spawn": "started a process",
    "os.exec": "replaced the check process",
    "pty.spawn": "started a process",
    "signal.pthread_kill": "sent a signal",
    "gc.get_objects": "listed the garbage collector's objects",
    "gc.get_referrers": "asked the garbage collector for referrers",
    "gc.get_referents": "asked the garbage collector for referents",
    "sys._current_frames": "took every thread's frame",
    "sys.settrace": "installed a trace function",
    "sys.setprofile": "installed a profile function",
    "sys.addaudithook": "installed an audit hook",
}
# Standard modules whose purpose is to hand frames to their caller (a task's stack comes from asyncio's).
_FRAME_MODULES = {inspect.__file__, traceback.__file__, base_tasks.__file__}
# Attributes that hand out frames of code further up the stack.
_FRAME_ATTRIBUTES = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}


class Tampering(RuntimeError):
    """Raised into learner code that reached for the grader (what it did is also recorded)."""


class Watch:
    """One check process's watch: `install()` early, `arm()` just before the learner's definitions are loaded."""

    def __init__(self, *, forbidden_paths: Iterable[str] = (), channel_fd: int | None = None) -> None:
        self.armed = False
        self.seen: list[str] = []
        self.learner_files = {LEARNER_FILE}
        self._forbidden = tuple(str(p) for p in forbidden_paths if str(p))
        self._channel = channel_fd
        self._busy = threading.local()

    def install(self) -> None:
        sys.addaudithook(self._hook)
        self._guard_signal_handlers()

    def _guard_signal_handlers(self) -> None:
        """A Python signal handler is given the frame that was running: learner code may not install one.

        signal.signal calls _signal.signal, which is replaced here; the original sits in a default value, which
        Python audits when read (`__defaults__`).
        """
        import _signal

        def guarded(signalnum: int, handler: Any, _install: Any = _signal.signal, _watch: Watch = self) -> Any:
            if _watch.armed and _watch._learner_on_stack():
                _watch.deny("installed a signal handler (it would be handed the running frame)")
            return _install(signalnum, handler)

        _signal.signal = guarded

    def arm(self) -> None:
        self.armed = True

    def note(self, what: str) -> None:
        if what not in self.seen and len(self.seen) < 20:
            self.seen.append(what)

    def deny(self, what: str) -> None:
        """Note it, and stop it: the frame, the object list or the file is never handed to learner code."""
        self.note(what)
        raise Tampering(f"course grade: not allowed during a check: {what}")

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.armed or getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:
            self._judge(event, args)
        except Tampering:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken hook must not stop honest code
            self.note(f"the audit hook failed on {event}: {type(exc).__name__}")
        finally:
            self._busy.on = False

    def _judge(self, event: str, args: tuple[Any, ...]) -> None:
        if event in ("os.kill", "os.killpg"):
            # Signal 0 only asks whether a process exists (the course's own clean-up does that).
            if len(args) > 1 and args[1] != 0:
                self.deny(f"sent signal {args[1]} to process {args[0]} ({event})")
        elif event in _ALWAYS:
            self.deny(f"{_ALWAYS[event]} ({event})")
        elif event.startswith("ctypes."):
            self.deny(f"used ctypes ({event})")
        elif event == "import":
            name = str(args[0])
            if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_IMPORTS):
                self.deny(f"imported {name}")
        elif event == "open":
            self._judge_open(args[0])
        elif event == "sys._getframe":
            if self._hands_frames_to_learner(sys._getframe(2)):
                self.deny("took a frame with sys._getframe (inspect.currentframe, inspect.stack)")
        elif event == "object.__getattr__":
            if args[1] in _FRAME_ATTRIBUTES and self._hands_frames_to_learner(sys._getframe(2)):
                self.deny(f"took a frame through .{args[1]}")
        elif event in ("exec", "compile") and self._learner_on_stack():
            # Code the learner compiles runs under another file name: it counts as the learner's from now on.
            code = args[0]
            filename = getattr(code, "co_filename", None) if event == "exec" else args[1]
            if isinstance(filename, str):
                self.learner_files.add(filename)
        elif event == "_thread.start_new_thread":
            target = getattr(getattr(args[0], "__self__", None), "_target", None) or args[0]
            code = getattr(target, "__code__", None)
            if code is not None and code.co_filename in self.learner_files:
                self.deny("started a thread")

    def _judge_open(self, path: object) -> None:
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        if not isinstance(path, str):
            return
        if path.startswith("/proc/") and (path.endswith("/mem") or "/environ" in path):
            self.deny(f"opened {path}")
        elif self._channel is not None and path in (f"/proc/self/fd/{self._channel}", f"/dev/fd/{self._channel}"):
            self.deny("opened the verdict channel")
        elif any(path == p or path.startswith(p.rstrip("/") + "/") for p in self._forbidden):
            self.deny(f"opened {path}")

    def _hands_frames_to_learner(self, caller: FrameType) -> bool:
        """True when the code asking for a frame is the learner's, or inspect/traceback called by learner code.

        Libraries that look at their caller's frame for their own use (namedtuple, enum, logging) are left alone:
        they never hand the frame on.
        """
        filename = caller.f_code.co_filename
        if filename in self.learner_files:
            return True
        return filename in _FRAME_MODULES and self._learner_on_stack() and not _summarised_only(caller)

    def _learner_on_stack(self) -> bool:
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            if frame.f_code.co_filename in self.learner_files:
                return True
            frame = frame.f_back
        return False


def _summarised_only(frame: FrameType) -> bool:
    """True when the traceback module reads frames into summaries for printing and hands no frame on.

    traceback.print_exc(), format_exc(), logging.exception() and print_stack() read the frames of a traceback (or
    of the stack) into FrameSummary objects: file, line, function and source, no frame and (unless capture_locals)
    no local variable. Honest code prints its errors this way; walk_tb(), walk_stack() and inspect.stack(), which
    yield the frames themselves, and capture_locals=True, which copies every frame's locals, stay tampering.
    """
    if frame.f_code.co_filename != traceback.__file__:
        return False
    if frame.f_code.co_name in ("extract_stack", "print_stack", "format_stack"):
        return True  # they read the caller's stack into StackSummary.extract(...) without locals
    current: FrameType | None = frame
    # A generator's f_back is the frame that is running it: walk_tb's is the summary maker that consumes it.
    while current is not None and current.f_code.co_filename == traceback.__file__:
        if current.f_code.co_name == "_extract_from_extended_frame_gen":
            return not current.f_locals.get("capture_locals")
        current = current.f_back
    return False
