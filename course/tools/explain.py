"""Query plans on both backends: `explain()` returns a `Plan` that reads well in a notebook and answers checks."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.sql import ClauseElement, Executable

# Index names in a SQLite plan line: "SEARCH p USING [COVERING] INDEX ix_p (author_id=?)".
_SQLITE_INDEX = re.compile(r"USING (?:COVERING )?INDEX (\S+)")
# "SCAN users", "SCAN u" (an alias) or, before SQLite 3.36, "SCAN TABLE users".
_SQLITE_SCAN = re.compile(r"^SCAN (?:TABLE )?(\S+)(.*)$")
# SQLite's "|  `--" and PostgreSQL's "  ->  " in front of a plan step.
_TREE_DRAWING = re.compile(r"^[\s|`]*(?:--|->)?\s*")
_PG_INDEX = re.compile(r"(?:Index (?:Only )?Scan(?: Backward)? using|Bitmap Index Scan on) (\S+)")
_PG_SEQ_SCAN = re.compile(r"Seq Scan on (\S+)")
# "FROM users AS u", "JOIN posts p": SQLite plans name aliases, checks ask about tables.
_FROM_ALIAS = re.compile(r"\b(?:FROM|JOIN)\s+([\w.\"]+)\s+(?:AS\s+)?([\w\"]+)", re.IGNORECASE)
_NOT_ALIASES = {"where", "on", "join", "left", "right", "inner", "outer", "full", "cross", "natural", "group"}
_NOT_ALIASES |= {"order", "limit", "offset", "using", "union", "except", "intersect", "having", "window", "for"}


def _unquote(name: str) -> str:
    return name.strip('"').rsplit(".", 1)[-1].strip('"').lower()


@dataclass(frozen=True)
class Plan:
    """A query plan: `lines` as the database printed them (a tree on SQLite), plus checks' questions."""

    dialect: str
    lines: tuple[str, ...]
    analyzed: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def _steps(self) -> Iterator[str]:
        """Plan lines without tree drawing or indentation."""
        for line in self.lines:
            yield _TREE_DRAWING.sub("", line).rstrip()

    def index_names(self) -> set[str]:
        """Names of the indexes the plan reads (lower case; SQLite's temporary automatic indexes excluded)."""
        pattern = _SQLITE_INDEX if self.dialect == "sqlite" else _PG_INDEX
        return {_unquote(m.group(1)) for step in self._steps() for m in pattern.finditer(step)}

    def uses_index(self, name: str | None = None) -> bool:
        """Does the plan read the named index (any index, or a primary-key search, when name is None)?"""
        if name is not None:
            return _unquote(name) in self.index_names()
        return bool(self.index_names()) or any("USING INTEGER PRIMARY KEY" in s for s in self._steps())

    def full_scan(self, table: str) -> bool:
        """Does the plan read every row of table (SQLite `SCAN t` without an index, PostgreSQL `Seq Scan`)?"""
        wanted = _unquote(table)
        for step in self._steps():
            if self.dialect == "sqlite":
                match = _SQLITE_SCAN.match(step)
                if match is None or "INDEX" in match.group(2) or "VIRTUAL TABLE" in match.group(2):
                    continue
            else:
                match = _PG_SEQ_SCAN.search(step)
                if match is None:
                    continue
            scanned = _unquote(match.group(1))
            if wanted in (scanned, self.aliases.get(scanned)):
                return True
        return False

    def __contains__(self, fragment: str) -> bool:
        return fragment in self.text

    def __str__(self) -> str:
        return self.text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text)

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.text)}</pre>"


def _sqlite_tree(rows: Sequence[Sequence[Any]]) -> tuple[str, ...]:
    """Draw EXPLAIN QUERY PLAN rows (id, parent, notused, detail) as the sqlite3 shell does."""
    children: dict[int, list[tuple[int, str]]] = {}
    for node_id, parent, _unused, detail in rows:
        children.setdefault(parent, []).append((node_id, detail))
    lines = ["QUERY PLAN"]

    def draw(parent: int, prefix: str) -> None:
        nodes = children.get(parent, [])
        for position, (node_id, detail) in enumerate(nodes):
            last = position == len(nodes) - 1
            lines.append(f"{prefix}{'`--' if last else '|--'}{detail}")
            draw(node_id, prefix + ("   " if last else "|  "))

    draw(0, "")
    return tuple(lines)


def _aliases(sql: str) -> dict[str, str]:
    """alias -> table for the FROM and JOIN clauses of sql."""
    found = {}
    for table, alias in _FROM_ALIAS.findall(sql):
        if alias.lower() not in _NOT_ALIASES and table.lower() != "select":
            found[_unquote(alias)] = _unquote(table)
    return found


@asynccontextmanager
async def _connection(target: AsyncConnection | AsyncSession | AsyncEngine) -> Any:
    if isinstance(target, AsyncEngine):
        # Never committed: whatever EXPLAIN ANALYZE changed is rolled back on close.
        async with target.connect() as conn:
            yield conn
    elif isinstance(target, AsyncSession):
        yield await target.connection()
    elif isinstance(target, AsyncConnection):
        yield target
    else:
        raise TypeError(f"explain needs an async engine, connection or session, not {type(target).__name__}")


def _run_prefixed(sync_conn: Connection, stmt: Executable, prefix: str, params: Mapping[str, Any]) -> list[Any]:
    """Execute stmt with prefix in front of its final SQL and return the plan rows.

    SQLAlchemy still compiles the statement for this dialect and binds its parameters (types,
    IN lists, eager loads and all); only the text sent to the driver gains the EXPLAIN prefix.
    """
    captured: list[Any] = []

    def prefix_sql(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> Any:
        return f"{prefix} {statement}", parameters

    def grab_rows(_conn: object, cursor: Any, *_: object) -> None:
        # The plan rows are read here, before the result object tries to map them to stmt's columns.
        captured.extend(cursor.fetchall())

    event.listen(sync_conn, "before_cursor_execute", prefix_sql, retval=True)
    event.listen(sync_conn, "after_cursor_execute", grab_rows)
    try:
        sync_conn.execute(stmt, dict(params)).close()
    finally:
        event.remove(sync_conn, "before_cursor_execute", prefix_sql)
        event.remove(sync_conn, "after_cursor_execute", grab_rows)
    return captured


async def explain(
    target: AsyncConnection | AsyncSession | AsyncEngine,
    stmt: Executable | str,
    *,
    params: Mapping[str, Any] | None = None,
    analyze: bool = False,
) -> Plan:
    """The plan the database chooses for stmt (a SQLAlchemy statement or SQL text with :name parameters).

    With analyze=True PostgreSQL runs the statement (EXPLAIN ANALYZE, BUFFERS) inside a savepoint
    that is rolled back, so explaining an UPDATE changes nothing; SQLite has no EXPLAIN ANALYZE
    (its EXPLAIN QUERY PLAN never runs the statement) and shows the plan only.
    """
    statement = text(stmt) if isinstance(stmt, str) else stmt
    async with _connection(target) as conn:
        dialect = conn.dialect.name
        # Every statement explain() is given is a ClauseElement; Executable alone does not promise compile().
        sql = str(cast(ClauseElement, statement).compile(dialect=conn.dialect))
        if dialect == "sqlite":
            rows = await conn.run_sync(_run_prefixed, statement, "EXPLAIN QUERY PLAN", params or {})
            return Plan(dialect, _sqlite_tree(rows), analyzed=False, aliases=_aliases(sql))
        if dialect != "postgresql":
            raise ValueError(f"explain supports SQLite and PostgreSQL, not {dialect}")
        prefix = "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)" if analyze else "EXPLAIN (FORMAT TEXT)"
        rows = await _postgres_plan(conn, statement, prefix, params, analyze=analyze)
        return Plan(dialect, tuple(row[0] for row in rows), analyzed=analyze, aliases=_aliases(sql))


async def explain_json(
    target: AsyncConnection | AsyncSession | AsyncEngine,
    stmt: Executable | str,
    *,
    params: Mapping[str, Any] | None = None,
    analyze: bool = False,
) -> Any:
    """PostgreSQL's plan for stmt as parsed JSON (EXPLAIN (FORMAT JSON)), for code that reads numbers out of it.

    With analyze=True the statement runs inside a savepoint that is rolled back, as in `explain()`. SQLite has
    no JSON plan: ValueError.
    """
    statement = text(stmt) if isinstance(stmt, str) else stmt
    async with _connection(target) as conn:
        if conn.dialect.name != "postgresql":
            raise ValueError(f"explain_json needs PostgreSQL, not {conn.dialect.name}")
        prefix = "EXPLAIN (ANALYZE, FORMAT JSON)" if analyze else "EXPLAIN (FORMAT JSON)"
        plan = (await _postgres_plan(conn, statement, prefix, params, analyze=analyze))[0][0]
        # psycopg parses the json column, asyncpg hands over its text.
        return json.loads(plan) if isinstance(plan, str) else plan


async def _postgres_plan(
    conn: AsyncConnection, statement: Executable, prefix: str, params: Mapping[str, Any] | None, *, analyze: bool
) -> list[Any]:
    """The plan rows; an analysed statement runs in a savepoint that is rolled back, so it changes nothing."""
    if not analyze:
        return await conn.run_sync(_run_prefixed, statement, prefix, params or {})
    savepoint = await conn.begin_nested()
    try:
        return await conn.run_sync(_run_prefixed, statement, prefix, params or {})
    finally:
        await savepoint.rollback()
