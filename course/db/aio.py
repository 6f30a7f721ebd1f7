"""Run a coroutine to completion from sync code, even where an event loop is already running (Jupyter)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Seconds an interrupted coroutine gets to finish its cleanup (closing connections) once cancelled.
CLEANUP_SECONDS = 10.0


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, or the same in a helper thread when this thread's loop is busy (as in a notebook cell).

    In the helper thread's case, interrupting the caller (the kernel's interrupt button, a timeout) cancels the
    coroutine too: it does not go on running, unseen, after the cell has stopped.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A running loop cannot be re-entered: give the coroutine a loop of its own on another thread.
    return _Helper(coro).result()


class _Helper:
    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._done = threading.Event()
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outcome: tuple[bool, Any] = (False, None)
        # A daemon: a coroutine that ignores its cancellation cannot keep the interpreter from exiting.
        threading.Thread(target=self._run, name="course-aio", daemon=True).start()

    def _run(self) -> None:
        async def main() -> Any:
            self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
            return await self._coro

        try:
            self._outcome = (True, asyncio.run(main()))
        except BaseException as exc:  # handed to the caller's thread, whatever it is
            self._outcome = (False, exc)
        finally:
            self._done.set()

    def result(self) -> Any:
        try:
            self._done.wait()
        except BaseException:
            if self._loop is not None and self._task is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    self._loop.call_soon_threadsafe(self._task.cancel)
            self._done.wait(CLEANUP_SECONDS)
            raise
        ok, value = self._outcome
        if ok:
            return value
        raise value
