"""Watch a pool and its sessions: checkouts at once, connections opened, and which sessions were never closed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.util import await_only


@dataclass
class PoolWatch:
    """Counts from pool events: connections opened, checkouts, and the most connections checked out at once."""

    connects: int = 0
    checkouts: int = 0
    checkins: int = 0
    invalidated: int = 0
    out: int = 0
    most_out: int = 0

    def _on_connect(self, *_: Any) -> None:
        self.connects += 1

    def _on_checkout(self, *_: Any) -> None:
        self.checkouts += 1
        self.out += 1
        self.most_out = max(self.most_out, self.out)

    def _on_checkin(self, *_: Any) -> None:
        self.checkins += 1
        self.out -= 1

    def _on_invalidate(self, *_: Any) -> None:
        self.invalidated += 1

    def __str__(self) -> str:
        return (
            f"{self.connects} connects, {self.checkouts} checkouts, at most {self.most_out} out at once, "
            f"{self.invalidated} invalidated"
        )


_EVENTS = {"connect": "_on_connect", "checkout": "_on_checkout", "checkin": "_on_checkin"}


@contextmanager
def watch_pool(engine: AsyncEngine) -> Iterator[PoolWatch]:
    """Pool events of engine while the block runs (they live on the sync engine's pool)."""
    watch = PoolWatch()
    pool = engine.sync_engine.pool
    handlers = [(name, getattr(watch, attr)) for name, attr in _EVENTS.items()]
    handlers += [("invalidate", watch._on_invalidate), ("soft_invalidate", watch._on_invalidate)]
    for name, handler in handlers:
        event.listen(pool, name, handler)
    try:
        yield watch
    finally:
        for name, handler in handlers:
            event.remove(pool, name, handler)


@contextmanager
def hold_each_statement(engine: AsyncEngine, seconds: float) -> Iterator[None]:
    """Keep the connection checked out a little after each statement, so concurrent tasks really overlap.

    On a tiny SQLite copy a count returns in microseconds: an unbounded fan-out can then finish each query before
    the next task checks out, and look bounded. Holding each connection for `seconds` makes overlap certain.
    """

    def hold(*_: Any) -> None:
        await_only(asyncio.sleep(seconds))

    event.listen(engine.sync_engine, "after_cursor_execute", hold)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", hold)


@dataclass
class SessionLedger:
    """Every session a factory made, kept alive on purpose: an unclosed one keeps its connection where we can see it."""

    made: list[AsyncSession] = field(default_factory=list)
    closed: set[int] = field(default_factory=set)

    @property
    def unclosed(self) -> int:
        return sum(1 for s in self.made if id(s) not in self.closed)

    async def close_all(self) -> None:
        """Close what the learner's code left open, once it has been judged, so no connection outlives the check."""
        for session in self.made:
            if id(session) not in self.closed:
                await session.close()


def tracked_sessionmaker(engine: AsyncEngine) -> tuple[async_sessionmaker[AsyncSession], SessionLedger]:
    """A session factory like the course's, whose sessions report to a ledger when they are made and closed."""
    ledger = SessionLedger()

    class TrackedSession(AsyncSession):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            ledger.made.append(self)

        async def close(self) -> None:
            ledger.closed.add(id(self))
            await super().close()

    return async_sessionmaker(engine, class_=TrackedSession, expire_on_commit=False), ledger
