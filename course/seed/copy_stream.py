"""The seed as a stream of PostgreSQL COPY text, drawn in this process or in a second one that runs ahead of the load.

Why a second process: drawing the rows is Python and numpy work on one core, while PostgreSQL parses and stores
them on the other. In one process they take turns; with the rows drawn in a child process (which never waits for
the server, since this side buffers what it sends) the two overlap, and `course seed --scale large` takes about
as long as the slower of the two rather than their sum.
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from course.errors import CourseError
from course.seed.generate import TableRows, build_tables, word_lists

CHUNK = 20_000
# Characters that COPY's text format would read as separators or escapes: the seed's word lists must not hold any.
_SPECIAL = ("\\", "\t", "\n", "\r")

# What the stream carries, in order, for each table: ("table", name, columns), ("rows", text, n)..., ("end", count);
# after the last table ("done",), or ("error", message) when drawing failed.
Message = tuple[Any, ...]


def copy_text(columns: list[list[Any]], start: int, stop: int) -> bytes:
    """Rows start..stop of the columns as COPY text: tab between values, newline after each row."""
    part = [_as_text(column[start:stop]) for column in columns]
    return ("\n".join(map("\t".join, zip(*part, strict=True))) + "\n").encode()


def _as_text(values: list[Any]) -> list[str]:
    # A column holds one type: whole numbers (drawn as ints) or text already in COPY form ("copy" encoding).
    if values and type(values[0]) is int:
        return list(map(str, values))
    return values


def messages(tables: list[TableRows]) -> Iterator[Message]:
    """The stream for tables built with the "copy" encoding, one table drawn at a time."""
    _check_plain_words()
    for t in tables:
        yield ("table", t.table, t.columns)
        columns = [list(c) for c in t.data()]
        for start in range(0, t.count, CHUNK):
            stop = min(start + CHUNK, t.count)
            yield ("rows", copy_text(columns, start, stop), stop - start)
        yield ("end", t.count)
    yield ("done",)


def _check_plain_words() -> None:
    vocab = word_lists()
    for word in (*vocab.words, *vocab.first_names, *vocab.last_names):
        if any(c in word for c in _SPECIAL):
            raise CourseError(f"the seed's word list holds {word!r}, which COPY text would misread")


def _produce(scale: str) -> None:
    """Child process (`python -m course.seed.copy_stream SCALE`): draw every table, pickle each message to stdout."""
    out = sys.stdout.buffer
    try:
        for message in messages(build_tables(scale, "copy")):
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent as a message
        pickle.dump(("error", f"drawing the seed's rows failed: {type(exc).__name__}: {exc}"), out)
    out.flush()


async def in_process(tables: list[TableRows]) -> AsyncGenerator[Message, None]:
    for message in messages(tables):
        yield message


async def from_child(scale: str) -> AsyncGenerator[Message, None]:
    """The stream drawn by a child process; a reader thread buffers it, so the child never waits for the server.

    The child is a fresh interpreter started with -m (not multiprocessing), so it works from a script, a kernel
    or `python -c` alike, and imports nothing of the parent's but the course package.
    """
    child = subprocess.Popen(
        [sys.executable, "-m", "course.seed.copy_stream", scale],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Message] = asyncio.Queue()
    pipe = child.stdout
    assert pipe is not None

    def read() -> None:
        while True:
            try:
                message = pickle.load(pipe)
            except (EOFError, OSError, pickle.UnpicklingError):
                message = ("error", "the process drawing the seed's rows ended unexpectedly")
            try:
                loop.call_soon_threadsafe(queue.put_nowait, message)
            except RuntimeError:  # the load gave up and its event loop is closed: nobody is listening
                return
            if message[0] in ("done", "error"):
                return

    reader = threading.Thread(target=read, name="course-seed-reader", daemon=True)
    reader.start()
    try:
        while True:
            message = await queue.get()
            yield message
            if message[0] == "done":
                return
    finally:
        if child.poll() is None:
            child.kill()
        await asyncio.to_thread(child.wait)
        pipe.close()


if __name__ == "__main__":
    _produce(sys.argv[1])
