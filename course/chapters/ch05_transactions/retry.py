"""Which database errors mean "run the whole transaction again" (the retry loops themselves are written in the
lesson and in exercise 5.2: the package holds no answer)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

# PostgreSQL's two "not your fault, try again" SQLSTATEs: serialization_failure and deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# SQLite's result codes for a lock it could not get: SQLITE_BUSY (5) and SQLITE_BUSY_SNAPSHOT (517).
SQLITE_BUSY_CODES = {5: "SQLITE_BUSY", 517: "SQLITE_BUSY_SNAPSHOT", 6: "SQLITE_LOCKED"}


def error_code(exc: BaseException) -> str | None:
    """The SQLSTATE (PostgreSQL) or SQLITE_* name behind an error SQLAlchemy wrapped, or None."""
    orig = getattr(exc, "orig", exc)
    # asyncpg's exceptions carry .sqlstate; SQLAlchemy's adapter exposes .pgcode on its wrapper too.
    for attr in ("sqlstate", "pgcode"):
        code = getattr(orig, attr, None)
        if isinstance(code, str):
            return code
    # Some adapters keep the driver's own exception as __cause__.
    cause = getattr(orig, "__cause__", None)
    code = getattr(cause, "sqlstate", None)
    if isinstance(code, str):
        return code
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return SQLITE_BUSY_CODES.get(sqlite_code, f"SQLITE_{sqlite_code}")
    return None


def is_retryable(exc: BaseException) -> bool:
    """True for a serialization failure or a deadlock (SQLSTATE 40001, 40P01), and nothing else."""
    return isinstance(exc, DBAPIError) and error_code(exc) in RETRYABLE_SQLSTATES


@dataclass
class Attempts:
    """How many times a transaction ran, and the retryable errors that made it run again."""

    count: int = 0
    retried: int = 0
