"""One-call set-up of the `%sql` magic (ipython-sql) on the course database, with errors that raise."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from course.db import describe, sync_url
from course.errors import CourseError

# Enough rows to see the shape of a result without flooding the notebook.
DISPLAY_LIMIT = 20


def _current_connection() -> Any:
    import sql.connection

    return sql.connection.Connection.current


def _check_reachable(target: URL) -> None:
    """Connect once ourselves: ipython-sql would print a long traceback and carry on."""
    engine = create_engine(target, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise CourseError(f"%sql could not connect to {describe(target)}: {reason} (try: course doctor)") from None
    finally:
        engine.dispose()


def setup_sql_magic(url: str | URL, *, ip: Any = None, displaylimit: int = DISPLAY_LIMIT) -> str:
    """Load ipython-sql in the running IPython and connect `%sql` to url's database.

    url may be the course's async URL: %sql gets the synchronous twin of the same database.
    short_errors is switched off so a bad statement raises (and fails a notebook run) instead of
    printing a message that nbval would miss. Returns the connection, password hidden, for printing.
    """
    if ip is None:
        try:
            from IPython import get_ipython
        except ImportError:
            get_ipython = None
        ip = get_ipython() if get_ipython else None
    if ip is None:
        raise CourseError("setup_sql_magic only works inside Jupyter or IPython; in a script use make_engine()")

    target = sync_url(url)
    _check_reachable(target)
    ip.run_line_magic("load_ext", "sql")
    ip.run_line_magic("config", "SqlMagic.short_errors = False")
    ip.run_line_magic("config", "SqlMagic.autopandas = False")
    ip.run_line_magic("config", f"SqlMagic.displaylimit = {int(displaylimit)}")
    # One connection line in the output is enough; the connection string after every query is noise.
    ip.run_line_magic("config", "SqlMagic.displaycon = False")
    ip.run_line_magic("sql", target.render_as_string(hide_password=False))

    # ipython-sql prints a failure instead of raising, and may reuse a connection whose name is similar.
    current = _current_connection()
    if current is None or current.url != target:
        raise CourseError(
            f"%sql did not connect to {describe(target)}: restart the kernel and run this cell again"
        )
    if target.get_backend_name() == "sqlite":
        # %sql uses one connection for the whole session; enforce foreign keys on it as the course engine does.
        current.internal_connection.exec_driver_sql("PRAGMA foreign_keys=ON")
    return describe(target)
