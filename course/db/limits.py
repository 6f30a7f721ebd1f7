"""A time limit that stops the database work itself: SQLite statements are interrupted, PostgreSQL ones time out."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass
class TimeLimit:
    """`seconds` of database time, counted from `start()`; engines made with it stop statements once it expires."""

    seconds: float
    deadline: float = math.inf

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def sqlite_progress(self) -> int:
        """SQLite's progress handler: a non-zero answer aborts the running statement with "interrupted"."""
        return 1 if self.expired else 0

    @property
    def statement_timeout_ms(self) -> str:
        """PostgreSQL's statement_timeout for one statement: never longer than the whole limit."""
        return str(max(1, math.ceil(self.seconds * 1000)))
