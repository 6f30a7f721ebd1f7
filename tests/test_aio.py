"""aio.run works from plain code and from inside a running loop, as a notebook cell is."""

import asyncio
import os
import signal
import threading
import time

import pytest

from course.db import aio


async def _answer() -> int:
    return 42


def test_run_without_a_loop() -> None:
    assert aio.run(_answer()) == 42


async def test_run_inside_a_running_loop() -> None:
    assert aio.run(_answer()) == 42


async def test_an_interrupted_caller_cancels_the_coroutine() -> None:
    # As the kernel's interrupt button does to a cell: an exception in the waiting (main) thread.
    class Interrupted(Exception):
        pass

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("cleaned up")

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        started = time.monotonic()
        with pytest.raises(Interrupted):
            aio.run(slow())
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 5
    assert seen == ["cancelled", "cleaned up"]


async def test_an_error_reaches_the_caller() -> None:
    async def failing() -> None:
        raise ValueError("the coroutine's own")

    with pytest.raises(ValueError, match="the coroutine's own"):
        aio.run(failing())
