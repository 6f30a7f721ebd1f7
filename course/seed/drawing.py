"""The costliest tables drawn in a second process while the loader works: both cores busy.

A thread could not do it: drawing and the loader's per-row work both need the GIL. The child (serve, below)
builds the same TableRows (build_tables is deterministic), draws the tables it is given in that order, and writes
each one's columns to its stdout without waiting; a reader thread here takes each as it comes. The columns travel
packed (pack/unpack: one string per text column, one int64 array per integer column): the child packs and pickles
every table of `large` in 1.2 s where pickling the lists took 1.9 s; unpacking here costs what unpickling did
(1.1 s). A plain subprocess (`python -c`), not multiprocessing:
its spawn start imports the caller's `__main__` again in the child (a learner's unguarded script would seed
twice). Below CHILD_FROM_ROWS, starting the child (~0.5 s: a fresh interpreter importing numpy) costs more than
it saves, and everything is drawn in-process.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from course.seed.generate import SIZES, TableRows, build_tables

CHILD_FROM_ROWS = 1_000_000  # rows in the scale's main tables (Sizes): only `large` has more
PATIENCE = 120.0  # seconds without a table from the child before drawing in-process instead
_SEP = "\x00"  # joins a text column's values: the seed's text never contains it (pack checks)


@contextmanager
def drawing_beside(
    scale: str, backend: str, names: Sequence[str]
) -> Iterator[Callable[[list[TableRows]], list[TableRows]]]:
    """While open, a child process draws the tables named (in that order), started at once.

    Yields serve(tables): tables with the named ones' data() taken from the child. Load the others first, while
    the child works. A table the child has not sent yet makes data() wait for it; if the child fails, data()
    draws in-process (the same values, only slower). The child is stopped on the way out, whatever happened.
    """
    if sum(astuple(SIZES[scale])) < CHILD_FROM_ROWS or not names:
        yield lambda tables: tables
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_IMPORT_ROOT, os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, scale, backend, *names],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert child.stdout is not None
    reader = _Reader(child.stdout, list(names))
    try:
        yield lambda tables: [replace(t, data=reader.server_for(t)) if t.table in names else t for t in tables]
    finally:
        child.kill()
        child.wait()
        reader.join()  # it sees the end of the pipe and stops
        child.stdout.close()


# The child registers course.seed as a bare package, skipping its __init__ (which imports the loaders, SQLAlchemy
# and the drivers): it starts drawing ~0.5 s sooner.
_CHILD = """
import os, sys, types, course
package = types.ModuleType("course.seed")
package.__path__ = [os.path.join(folder, "seed") for folder in course.__path__]
sys.modules["course.seed"] = package
from course.seed.drawing import serve
serve(sys.argv[1], sys.argv[2], sys.argv[3:])
"""
# The folder that holds the course package, so the child imports this very code.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


class _Reader:
    """Reads (in a thread) and keeps the child's tables as they come, so the child never waits for the loader."""

    def __init__(self, stream: IO[bytes], order: list[str]) -> None:
        self._stream, self._order = stream, order
        self._ready: dict[str, Sequence[list[Any]]] = {}
        self._taken: set[str] = set()
        self._failed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="seed-drawing-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for name in self._order:
            try:
                columns = unpack(pickle.load(self._stream))
            except Exception:  # the child died or was stopped: what is missing is drawn in-process
                with self._changed:
                    self._failed = True
                    self._changed.notify_all()
                return
            with self._changed:
                self._ready[name] = columns
                self._changed.notify_all()

    def server_for(self, table: TableRows) -> Any:
        def data() -> Sequence[list[Any]]:
            with self._changed:
                while table.table not in self._taken | self._ready.keys() and not self._failed:
                    if not self._changed.wait(PATIENCE):  # a child stuck for so long will not help any more
                        self._failed = True
                self._taken.add(table.table)
                columns = self._ready.pop(table.table, None)
            # A second call, or a failed child: drawn here.
            return table.data() if columns is None else columns

        return data

    def join(self) -> None:
        self._thread.join()


def pack(columns: Sequence[list[Any]]) -> list[tuple[Any, ...]]:
    """columns in a form that pickles at memory speed: unpack(pack(c)) == c, value for value (str subclasses come
    back as str). Only C-level loops here: a Python loop over the values cost as much as pickling them."""
    packed: list[tuple[Any, ...]] = []
    for column in columns:
        missing = None
        values = column
        if column.count(None):
            boxed = np.array(column, dtype=object)
            missing = boxed == None  # noqa: E711 - element by element, not identity
            values = boxed[~missing].tolist()
        try:
            joined = _SEP.join(values)  # TypeError unless every value is a str
            if not values or joined.count(_SEP) == len(values) - 1:
                packed.append(("text", joined, len(values), missing))
                continue
        except TypeError:
            numbers = np.array(values)  # int64 only when every value is an int that fits (not bool, not float)
            if numbers.dtype == np.int64 and len(values):
                packed.append(("int", numbers, missing))
                continue
        packed.append(("list", column))
    return packed


def unpack(packed: list[tuple[Any, ...]]) -> list[list[Any]]:
    columns = []
    for kind, *parts in packed:
        if kind == "list":
            columns.append(parts[0])
            continue
        if kind == "text":
            joined, count, missing = parts
            values: list[Any] = joined.split(_SEP) if count else []
        else:
            array, missing = parts
            values = array.tolist()
        if missing is not None:
            full = np.full(len(missing), None, dtype=object)
            full[~missing] = values
            values = full.tolist()
        columns.append(values)
    return columns


def serve(scale: str, backend: str, names: list[str]) -> None:
    """In the child: each named table's packed columns, pickled, to stdout, in order."""
    gc.disable()  # millions of new objects, no cycles (see load.gc_paused)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything else printed goes to stderr, not into the pickles
    tables = {t.table: t for t in build_tables(scale, backend)}
    try:
        for name in names:
            pickle.dump(pack(tables[name].data()), out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
    except BrokenPipeError:  # the loader stopped early
        pass
