"""The Hermitage anomalies as data: each schedule's steps, the judge that reads a run, and the published results.

A schedule opens two or three connections to a scratch table `anomaly_test (id, value)` holding (1, 10) and
(2, 20) and runs its steps in the listed order; `Run` records what each connection saw, which steps waited for a
lock and which failed; the schedule's judge says from that record whether the anomaly happened. anomalies.py runs
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ANOMALIES = ("G0", "G1a", "G1b", "G1c", "OTV", "PMP", "P4", "G-single", "G2-item", "G2")
POSTGRES_LEVELS = ("read committed", "repeatable read", "serializable")
# SQLite has one level between connections: serializable (read uncommitted exists only in shared-cache mode).
SQLITE_LEVELS = ("serializable",)

# Martin Kleppmann's Hermitage project, https://github.com/ept/hermitage — the summary table of README.md and the
# test scripts of postgres.md: which anomalies each PostgreSQL isolation level prevents.
PUBLISHED_POSTGRES: dict[str, dict[str, str]] = {
    "read committed": dict.fromkeys(ANOMALIES[:5], "prevented") | dict.fromkeys(ANOMALIES[5:], "allowed"),
    "repeatable read": dict.fromkeys(ANOMALIES[:8], "prevented") | dict.fromkeys(ANOMALIES[8:], "allowed"),
    "serializable": dict.fromkeys(ANOMALIES, "prevented"),
}
NAMES = {
    "G0": "write cycles (dirty writes)",
    "G1a": "aborted reads",
    "G1b": "intermediate reads",
    "G1c": "circular information flow",
    "OTV": "observed transaction vanishes",
    "PMP": "predicate-many-preceders (phantom)",
    "P4": "lost update",
    "G-single": "read skew",
    "G2-item": "write skew",
    "G2": "write skew on a predicate (anti-dependency cycle)",
}


@dataclass(frozen=True)
class Step:
    tx: int  # 1, 2 or 3
    sql: str  # "commit" and "rollback" end the transaction


@dataclass
class Run:
    """What one schedule did: rows each read step returned, steps that waited, errors, and the final table."""

    reads: list[tuple[int, int, dict[int, int]]] = field(default_factory=list)  # (tx, step number, {id: value})
    blocked: list[int] = field(default_factory=list)  # step numbers that had to wait for a lock
    errors: dict[int, str] = field(default_factory=dict)  # tx -> "40001", "SQLITE_BUSY", ...
    committed: set[int] = field(default_factory=set)
    final: dict[int, int] = field(default_factory=dict)

    def saw(self, tx: int) -> list[dict[int, int]]:
        return [rows for t, _, rows in self.reads if t == tx]

    def seen_values(self, tx: int) -> set[int]:
        return {v for rows in self.saw(tx) for v in rows.values()}

    @property
    def how(self) -> str:
        """A short account for the table's notes: which errors stopped which transaction, what waited."""
        parts = [f"T{tx}: {code}" for tx, code in sorted(self.errors.items())]
        if self.blocked:
            parts.append(f"{len(self.blocked)} step(s) waited for a lock")
        return "; ".join(parts) or "no waits, no errors"


@dataclass(frozen=True)
class Schedule:
    anomaly: str
    steps: tuple[Step, ...]
    allowed: Callable[[Run], bool]  # True when the run shows the anomaly
    setup: tuple[str, ...] = ()


def _s(tx: int, sql: str) -> Step:
    return Step(tx, sql)


ALL = "SELECT id, value FROM anomaly_test ORDER BY id"


def _g0(run: Run) -> bool:
    # Each row's last writer must be the same transaction: (11, 21) or (12, 22). A mix is a dirty write.
    return (run.final.get(1), run.final.get(2)) not in ((11, 21), (12, 22))


def _otv(run: Run) -> bool:
    # T3 observed T1's writes; if a later read shows a row as it was before T1, T1 "vanished".
    seen = run.saw(3)
    for n, rows in enumerate(seen):
        if {11, 19} & set(rows.values()) and any({10, 20} & set(later.values()) for later in seen[n + 1 :]):
            return True
    # T2's writes seen by T3's second read, before T2 committed, are a dirty read as well.
    return len(seen) > 1 and bool({12, 18} & set(seen[1].values()))


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "G0",
        (
            _s(1, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(2, "UPDATE anomaly_test SET value = 12 WHERE id = 1"),
            _s(1, "UPDATE anomaly_test SET value = 21 WHERE id = 2"),
            _s(1, "commit"),
            _s(2, "UPDATE anomaly_test SET value = 22 WHERE id = 2"),
            _s(2, "commit"),
        ),
        _g0,
    ),
    Schedule(
        "G1a",
        (
            _s(1, "UPDATE anomaly_test SET value = 101 WHERE id = 1"),
            _s(2, ALL),
            _s(1, "rollback"),
            _s(2, ALL),
            _s(2, "commit"),
        ),
        lambda run: 101 in run.seen_values(2),
    ),
    Schedule(
        "G1b",
        (
            _s(1, "UPDATE anomaly_test SET value = 101 WHERE id = 1"),
            _s(2, ALL),
            _s(1, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(1, "commit"),
            _s(2, ALL),
            _s(2, "commit"),
        ),
        lambda run: 101 in run.seen_values(2),
    ),
    Schedule(
        "G1c",
        (
            _s(1, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(2, "UPDATE anomaly_test SET value = 22 WHERE id = 2"),
            _s(1, "SELECT id, value FROM anomaly_test WHERE id = 2"),
            _s(2, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(1, "commit"),
            _s(2, "commit"),
        ),
        # Each saw the other's uncommitted write: information flowed both ways.
        lambda run: 22 in run.seen_values(1) and 11 in run.seen_values(2),
    ),
    Schedule(
        "OTV",
        (
            _s(1, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(1, "UPDATE anomaly_test SET value = 19 WHERE id = 2"),
            _s(2, "UPDATE anomaly_test SET value = 12 WHERE id = 1"),
            _s(1, "commit"),
            _s(3, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(2, "UPDATE anomaly_test SET value = 18 WHERE id = 2"),
            _s(3, "SELECT id, value FROM anomaly_test WHERE id = 2"),
            _s(2, "commit"),
            _s(3, "SELECT id, value FROM anomaly_test WHERE id = 2"),
            _s(3, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(3, "commit"),
        ),
        _otv,
    ),
    Schedule(
        "PMP",
        (
            _s(1, "SELECT id, value FROM anomaly_test WHERE value = 30"),
            _s(2, "INSERT INTO anomaly_test (id, value) VALUES (3, 30)"),
            _s(2, "commit"),
            _s(1, "SELECT id, value FROM anomaly_test WHERE value % 3 = 0"),
            _s(1, "commit"),
        ),
        # The second read of T1 found a row the first read (same predicate family) said did not exist.
        lambda run: 30 in run.seen_values(1),
    ),
    Schedule(
        "P4",
        (
            # Both read the counter (10) and both write "what I read + 1".
            _s(1, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(2, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(1, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(2, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(1, "commit"),
            _s(2, "commit"),
        ),
        # Two increments committed, one survives: an update was lost.
        lambda run: run.committed == {1, 2},
    ),
    Schedule(
        "G-single",
        (
            _s(1, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(2, "SELECT id, value FROM anomaly_test WHERE id = 1"),
            _s(2, "SELECT id, value FROM anomaly_test WHERE id = 2"),
            _s(2, "UPDATE anomaly_test SET value = 12 WHERE id = 1"),
            _s(2, "UPDATE anomaly_test SET value = 18 WHERE id = 2"),
            _s(2, "commit"),
            _s(1, "SELECT id, value FROM anomaly_test WHERE id = 2"),
            _s(1, "commit"),
        ),
        # T1 saw 1 => 10 (before T2) and 2 => 18 (after T2): a total of 28 that never existed.
        lambda run: 18 in run.seen_values(1),
    ),
    Schedule(
        "G2-item",
        (
            _s(1, "SELECT id, value FROM anomaly_test WHERE id IN (1, 2)"),
            _s(2, "SELECT id, value FROM anomaly_test WHERE id IN (1, 2)"),
            _s(1, "UPDATE anomaly_test SET value = 11 WHERE id = 1"),
            _s(2, "UPDATE anomaly_test SET value = 21 WHERE id = 2"),
            _s(1, "commit"),
            _s(2, "commit"),
        ),
        lambda run: run.committed == {1, 2},
    ),
    Schedule(
        "G2",
        (
            _s(1, "SELECT id, value FROM anomaly_test WHERE value % 3 = 0"),
            _s(2, "SELECT id, value FROM anomaly_test WHERE value % 3 = 0"),
            _s(1, "INSERT INTO anomaly_test (id, value) VALUES (3, 30)"),
            _s(2, "INSERT INTO anomaly_test (id, value) VALUES (4, 42)"),
            _s(1, "commit"),
            _s(2, "commit"),
        ),
        lambda run: run.committed == {1, 2},
    ),
)
