"""Tests for course.tools.sqlmagic: %sql set up in a real IPython shell against a temporary SQLite file."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sql.connection
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from traitlets.config import Config

from course.errors import CourseError
from course.tools.sqlmagic import setup_sql_magic


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    """One IPython shell for the module; its profile, history and global flags do not outlive the module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        # A shell replaces __main__ and sets builtins and prompts; put them back afterwards.
        patch.setitem(sys.modules, "__main__", sys.modules["__main__"])
        for name in ("__IPYTHON__", "display"):
            patch.setattr(builtins, name, None, raising=False)
        for name in ("ps1", "ps2", "ps3"):
            patch.setattr(sys, name, None, raising=False)
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        yield InteractiveShell.instance(config=config)
    _close_sql_connections()
    InteractiveShell.clear_instance()


def _close_sql_connections() -> None:
    """ipython-sql keeps its connections in a class attribute: close them so no file or server stays open."""
    for connection in sql.connection.Connection.connections.values():
        connection.internal_connection.close()
        connection.internal_connection.engine.dispose()
    sql.connection.Connection.connections.clear()
    sql.connection.Connection.current = None


def _sql(shell: InteractiveShell, statement: str) -> Any:
    return shell.run_line_magic("sql", statement)


def test_sql_magic_runs_queries_on_the_course_database(shell: InteractiveShell, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'course.sqlite3'}"
    assert setup_sql_magic(url, ip=shell) == f"sqlite:///{tmp_path / 'course.sqlite3'}"
    result = _sql(shell, "SELECT 1 AS one, 'two' AS two")
    assert result.keys == ["one", "two"]
    assert list(result[0]) == [1, "two"]
    magic = shell.find_magic("sql").__self__
    assert (magic.short_errors, magic.autopandas, magic.displaylimit) == (False, False, 20)


def test_bad_sql_raises(shell: InteractiveShell, tmp_path: Path) -> None:
    setup_sql_magic(f"sqlite+aiosqlite:///{tmp_path / 'course.sqlite3'}", ip=shell)
    with pytest.raises(OperationalError, match="syntax error"):
        _sql(shell, "SELEC 1")


def test_foreign_keys_are_enforced_as_in_the_course_engine(shell: InteractiveShell, tmp_path: Path) -> None:
    setup_sql_magic(f"sqlite+aiosqlite:///{tmp_path / 'course.sqlite3'}", ip=shell)
    _sql(shell, "CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    _sql(shell, "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id))")
    with pytest.raises(IntegrityError, match="FOREIGN KEY constraint failed"):
        _sql(shell, "INSERT INTO child (id, parent_id) VALUES (1, 42)")


def test_switching_databases_follows_the_latest_call(shell: InteractiveShell, tmp_path: Path) -> None:
    setup_sql_magic(f"sqlite:///{tmp_path / 'first.sqlite3'}", ip=shell)
    _sql(shell, "CREATE TABLE only_in_first (id INTEGER)")
    setup_sql_magic(f"sqlite:///{tmp_path / 'second.sqlite3'}", ip=shell)
    with pytest.raises(OperationalError, match="no such table"):
        _sql(shell, "SELECT * FROM only_in_first")


@pytest.mark.postgres
def test_postgres_is_reached_through_psycopg(shell: InteractiveShell, pg_url: str) -> None:
    try:
        shown = setup_sql_magic(pg_url, ip=shell)
        assert shown.startswith("postgresql+psycopg://")
        assert _sql(shell, "SELECT current_database() AS name")[0][0] == pg_url.rsplit("/", 1)[1]
        with pytest.raises(ProgrammingError, match="does not exist"):
            _sql(shell, "SELECT * FROM no_such_table")
    finally:
        # The test database is dropped next: let go of it first.
        _close_sql_connections()


def test_unreachable_database_is_one_readable_line(shell: InteractiveShell) -> None:
    with pytest.raises(CourseError, match=r"^%sql could not connect to postgresql\+psycopg://") as caught:
        setup_sql_magic("postgresql+asyncpg://nobody@127.0.0.1:1/course", ip=shell)
    assert "\n" not in str(caught.value)


def test_outside_ipython_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("IPython.get_ipython", lambda: None)
    with pytest.raises(CourseError, match="only works inside Jupyter or IPython"):
        setup_sql_magic("sqlite+aiosqlite:///unused.sqlite3")
