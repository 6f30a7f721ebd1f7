"""Chapter 3's instruments: what a session loaded (objects per class, rows per statement) and a simulated delay."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import ORMExecuteState

from course.tools.instrument import _TRANSACTION_CONTROL


@dataclass
class Loads:
    """What one session fetched inside a `count_loads` block.

    `objects` counts the distinct ORM objects the session built, by class name; `rows` holds the number of rows
    each statement sent through the session returned (a joined eager load returns one row per child, so row
    multiplication shows up here and not in `objects`).
    """

    objects: Counter[str] = field(default_factory=Counter)
    rows: list[int] = field(default_factory=list)
    # Rows the driver received for every statement on the session's engine, Core ones through
    # session.connection() included (the ORM's count above sees only statements sent through the session).
    fetched: int = 0

    @property
    def total_rows(self) -> int:
        return max(sum(self.rows), self.fetched)

    @property
    def total_objects(self) -> int:
        return sum(self.objects.values())

    def __str__(self) -> str:
        built = ", ".join(f"{n:,} {name}" for name, n in sorted(self.objects.items())) or "no objects"
        return f"{self.total_rows:,} rows in {len(self.rows)} result(s) → {built}"


@contextmanager
def count_loads(session: AsyncSession) -> Iterator[Loads]:
    """Record the objects and rows `session` loads inside the block (lazy and eager loads included)."""
    sync = session.sync_session
    loads = Loads()

    def on_load(_session: object, instance: Any) -> None:
        loads.objects[type(instance).__name__] += 1

    def on_execute(state: ORMExecuteState) -> Any:
        # Run the statement here and keep its rows in memory, so they can be counted and still handed on.
        frozen = state.invoke_statement().freeze()
        loads.rows.append(len(frozen.data))
        return frozen()

    def on_cursor(_conn: object, cursor: Any, *_args: object) -> None:
        # SQLAlchemy's async adapters (aiosqlite, asyncpg) buffer a result's rows in `_rows` as soon as the
        # statement has run: their number is what the database sent. Other drivers: 0, the ORM count remains.
        buffered = getattr(cursor, "_rows", None)
        loads.fetched += len(buffered) if buffered is not None else 0

    engine = session.bind.sync_engine if isinstance(session.bind, AsyncEngine) else None
    event.listen(sync, "loaded_as_persistent", on_load)
    event.listen(sync, "do_orm_execute", on_execute)
    if engine is not None:
        event.listen(engine, "after_cursor_execute", on_cursor)
    try:
        yield loads
    finally:
        event.remove(sync, "loaded_as_persistent", on_load)
        event.remove(sync, "do_orm_execute", on_execute)
        if engine is not None:
            event.remove(engine, "after_cursor_execute", on_cursor)


@contextmanager
def simulated_latency(engine: AsyncEngine, *, ms: float) -> Iterator[None]:
    """SIMULATED network delay: wait `ms` before every statement, as a database across a network would.

    The wait blocks the event loop (time.sleep): right for timing one request at a time, which is what the
    lesson does; it is a stand-in for a round trip, not a model of a concurrent server.
    """
    seconds = ms / 1000

    def wait(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not _TRANSACTION_CONTROL.match(statement):
            time.sleep(seconds)

    event.listen(engine.sync_engine, "before_cursor_execute", wait)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", wait)
