"""aio.run works from plain code and from inside a running loop, as a notebook cell is."""

from course.db import aio


async def _answer() -> int:
    return 42


def test_run_without_a_loop() -> None:
    assert aio.run(_answer()) == 42


async def test_run_inside_a_running_loop() -> None:
    assert aio.run(_answer()) == 42
