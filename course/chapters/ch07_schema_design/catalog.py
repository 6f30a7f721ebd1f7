"""What chapter 7's checks read back from a database: an empty place to build a learner's schema, and its catalog."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase

from course import db
from course.checks.base import CheckDB, fail


@dataclass
class TableInfo:
    """One table as the database's catalog (SQLAlchemy's inspector) describes it."""

    name: str
    columns: dict[str, dict[str, Any]]
    primary_key: tuple[str, ...]
    foreign_keys: list[dict[str, Any]]
    uniques: list[tuple[str | None, tuple[str, ...]]]
    indexes: list[tuple[str | None, tuple[str, ...], bool]]
    checks: list[tuple[str | None, str]] = field(default_factory=list)

    def fk(self, column: str) -> dict[str, Any] | None:
        return next((fk for fk in self.foreign_keys if fk["constrained_columns"] == [column]), None)

    def indexed(self, column: str) -> bool:
        """Is there an index (or unique constraint, or primary key) whose first column is `column`?"""
        leads = [cols[0] for _, cols, _ in self.indexes if cols] + [cols[0] for _, cols in self.uniques if cols]
        return column in leads or self.primary_key[:1] == (column,)

    def unique_on(self, columns: tuple[str, ...]) -> str | None:
        """The name of a unique constraint or unique index on exactly these columns (any order), or ''."""
        for name, cols in self.uniques:
            if set(cols) == set(columns):
                return name or ""
        for name, cols, unique in self.indexes:
            if unique and set(cols) == set(columns):
                return name or ""
        return None


@dataclass
class Scratch:
    """An empty place for a learner's schema: its own SQLite file, or its own PostgreSQL schema in the check's copy."""

    engine: AsyncEngine
    schema: str | None

    async def tables(self) -> dict[str, TableInfo]:
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda c: _read_catalog(c, self.schema))


def _read_catalog(conn: Any, schema: str | None) -> dict[str, TableInfo]:
    inspector = inspect(conn)
    found = {}
    for name in inspector.get_table_names(schema=schema):
        found[name] = TableInfo(
            name=name,
            columns={c["name"]: c for c in inspector.get_columns(name, schema=schema)},
            primary_key=tuple(inspector.get_pk_constraint(name, schema=schema)["constrained_columns"]),
            foreign_keys=inspector.get_foreign_keys(name, schema=schema),
            uniques=[
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name, schema=schema)
            ],
            indexes=[
                (i["name"], tuple(c for c in i["column_names"] if c), bool(i["unique"]))
                for i in inspector.get_indexes(name, schema=schema)
            ],
            checks=[(c["name"], c["sqltext"]) for c in inspector.get_check_constraints(name, schema=schema)],
        )
    return found


@asynccontextmanager
async def scratch_database(check_db: CheckDB) -> AsyncIterator[Scratch]:
    """An empty database for the learner's tables, removed afterwards.

    SQLite: a new file. PostgreSQL: a new schema in the check's own copy (the check's role owns that database,
    so it can always create one), first on the search_path of every connection.
    """
    if check_db.dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="course-ch07-") as folder:
            engine = db.make_engine(url=db.sqlite_url(Path(folder) / "empty.sqlite3"))
            try:
                yield Scratch(engine, None)
            finally:
                await engine.dispose()
        return
    schema = f"scratch_{secrets.token_hex(4)}"
    async with check_db.engine.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    # search_path makes the new schema the default for every statement, hand-written SQL included.
    engine = db.make_engine(url=check_db.url, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield Scratch(engine, None)
    finally:
        await engine.dispose()
        async with check_db.engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def metadata_of(result: Any, fn_name: str) -> MetaData:
    """The MetaData behind what the learner's function returned: a declarative base class or a MetaData."""
    if isinstance(result, MetaData):
        return result
    if isinstance(result, type) and issubclass(result, DeclarativeBase):
        return result.metadata
    fail(
        f"{fn_name}() returned {type(result).__name__}: return your declarative base class "
        "(the class your models inherit from)"
    )


async def create_all(scratch: Scratch, metadata: MetaData, fn_name: str) -> None:
    """Create the learner's tables in the scratch database; a refused schema is their mistake, said in one line."""
    try:
        async with scratch.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    except Exception as exc:  # noqa: BLE001 - any DDL error is the learner's schema, reported as such
        first = str(getattr(exc, "orig", exc)).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"the database refused the tables {fn_name}() defines: {first}")


def type_kind(column: dict[str, Any]) -> str:
    """A reflected column type as a family: integer, string, timestamp, boolean, float, numeric, or its SQL name."""
    name = type(column["type"]).__name__.upper()
    if "INT" in name:
        return "integer"
    if name in ("VARCHAR", "STRING", "CHAR", "NVARCHAR", "TEXT"):
        return "string"
    if name in ("DATETIME", "TIMESTAMP"):
        return "timestamp"
    if name == "BOOLEAN":
        return "boolean"
    if name in ("FLOAT", "REAL", "DOUBLE", "DOUBLE_PRECISION"):
        return "float"
    if name in ("NUMERIC", "DECIMAL"):
        return "numeric"
    return name.lower()


def ondelete(fk: dict[str, Any]) -> str:
    """The ON DELETE action of a reflected foreign key; NO ACTION when none was given."""
    return str((fk.get("options") or {}).get("ondelete") or "NO ACTION").upper()


def error_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", exc)
    return str(original).splitlines()[0] if str(original) else type(original).__name__
