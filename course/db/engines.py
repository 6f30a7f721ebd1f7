"""Engines and sessions: the one place that turns a URL into a database connection."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from course.db.urls import async_url
from course.settings import Settings

# How long a connection waits for another one's write lock before SQLITE_BUSY ("database is locked"): long enough
# that sixteen busy writers on a loaded laptop do not starve one another (SQLite's waiters poll; they do not queue).
SQLITE_BUSY_TIMEOUT_MS = 20_000


def _enforce_sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    # SQLite ignores FOREIGN KEY clauses unless each connection switches them on.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_real_transactions(dbapi_connection: object, _record: object) -> None:
    """On connect: the driver stops managing transactions, WAL journal, and a busy timeout."""
    # The sqlite3 driver's own handling sends BEGIN only before INSERT/UPDATE/DELETE, so a SELECT runs outside any
    # transaction (no snapshot) and SAVEPOINTs do not nest. Switched off here; _sqlite_begin sends BEGIN instead.
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL: readers keep reading their snapshot while one writer writes, and a commit never waits for readers.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """SQLAlchemy starts a transaction: send BEGIN ourselves (BEGIN IMMEDIATE when asked, see below)."""
    # execution_options(sqlite_begin="IMMEDIATE") takes the write lock at BEGIN, as FOR UPDATE would elsewhere:
    # a transaction that reads and then writes cannot be refused at its first write with SQLITE_BUSY.
    options = connection.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return  # asked for no transaction: every statement commits on its own
    mode = str(options.get("sqlite_begin", "")).upper()
    if mode not in ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE, not {mode!r}")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


def make_engine(*, url: str | URL, echo: bool = False, **kwargs: object) -> AsyncEngine:
    """An AsyncEngine for url; on SQLite: foreign keys enforced and real transactions (BEGIN, WAL, busy timeout)."""
    engine = create_async_engine(async_url(url), echo=echo, **kwargs)
    if engine.dialect.name == "sqlite":
        # Events go on the sync engine: the async engine is a thin proxy around it.
        event.listen(engine.sync_engine, "connect", _enforce_sqlite_foreign_keys)
        event.listen(engine.sync_engine, "connect", _sqlite_real_transactions)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory every lesson uses."""
    # expire_on_commit=False keeps loaded attributes usable after commit, without a lazy load (which async forbids).
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(settings: Settings) -> bool:
    return settings.backend == "postgres"
