"""Tasks a learner's code leaves running when a check moves on: ended while the check's engine still serves them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def no_tasks_left(seconds: float = 5.0) -> AsyncIterator[None]:
    """On the way out, cancel the tasks started inside and still running, and wait for them (seconds at most).

    A learner's asyncio.gather stops at the first error and leaves the other tasks running: mid-statement on a
    session the check is about to close, they never end once its engine is gone, and closing the event loop then
    waits for them for good. Only around code whose tasks, if any, are the learner's.
    """
    before = asyncio.all_tasks()
    try:
        yield
    finally:
        left = {task for task in asyncio.all_tasks() - before if not task.done()}
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=seconds)
