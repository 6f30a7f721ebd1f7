"""The speed-ups DESIGN.md promises, and how a benchmark script reports whether this machine reached them.

Lesson notebooks only assert the direction of each effect, with a floor far below these (a busy laptop must not
fail a lesson); the targets themselves are checked here, by the scripts next to this file.
"""

from __future__ import annotations

import sys

# name: (minimum ratio, what is compared)
TARGETS: dict[str, tuple[float, str]] = {
    "index": (100, "index lookup vs full scan, at 1M rows and more"),
    "keyset": (20, "keyset vs OFFSET at the deepest page"),
    "bulk": (20, "bulk insert vs one ORM object and one commit per row"),
    "eager": (10, "eager loading vs N+1"),
    "pool": (5, "a pooled connection vs connecting per request (PostgreSQL)"),
    # A ratio of times: the fastest known load path over `course seed` end to end (at most twice as slow).
    "seed": (0.5, "fastest load path / `course seed` end to end, at large"),
    "seed-small": (1, "3 s / `course seed` at small (under 3 s)"),
}

_missed: list[str] = []


def verdict(name: str, ratio: float) -> str:
    """One line: the measured ratio against its target, remembered for `finish()`."""
    target, what = TARGETS[name]
    met = ratio >= target
    if not met:
        _missed.append(name)
    return f"target {name}: {what} >= {target:g}x; measured {ratio:,.2f}x: {'met' if met else 'MISSED'}"


def finish() -> None:
    """Exit with status 1 when a target was missed, so a script run can be used as a gate."""
    if _missed:
        print(f"missed: {', '.join(_missed)}")
        sys.exit(1)
