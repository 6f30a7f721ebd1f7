"""Answers written by a red team that had not read the checks: each case says what the check must decide.

The modules here (one per chapter) were committed before they were run against the checks, so they test the
checks the way learners will: with answers nobody tuned to them. tests/test_redteam_*.py run them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Case:
    """One answer to one exercise, and the verdict a right check gives it."""

    exercise: str
    fns: tuple[Callable[..., Any], ...]
    expect: Literal["fail", "pass"]
    why: str
    # A piece of the ❌ message the check must give (set once the case has been run and its message reviewed).
    fragment: str = ""

    @property
    def id(self) -> str:
        names = "+".join(getattr(fn, "__name__", "fn") for fn in self.fns)
        return f"{self.exercise}-{self.expect}-{names}"
