"""The schema in two phases, as bulk loads want it: bare tables before the rows, constraints and indexes after."""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, MetaData, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable


def phases(metadata: MetaData, dialect: Dialect) -> tuple[list[str], list[str]]:
    """(statements before the load, statements after it) that together build exactly `metadata.create_all`.

    Before: each table with its primary key and CHECK constraints. After: unique constraints, foreign keys and
    indexes, which are cheaper to build once over the loaded rows than to maintain row by row. SQLite cannot
    add constraints to an existing table, so there UNIQUE and FOREIGN KEY stay in CREATE TABLE.
    """
    late_constraints = dialect.name != "sqlite"
    before: list[str] = []
    after: list[str] = []
    # AddConstraint marks its constraint as "not inline" for every later CREATE TABLE: work on a copy, so the
    # models' own metadata (and create_all elsewhere in this process) stays untouched.
    copy = MetaData(naming_convention=metadata.naming_convention)
    tables = [table.to_metadata(copy) for table in metadata.sorted_tables]
    for table in tables:
        if late_constraints:
            bare = table.to_metadata(MetaData(naming_convention=metadata.naming_convention))
            bare.constraints = {c for c in bare.constraints if not isinstance(c, UniqueConstraint)}
            before.append(str(CreateTable(bare, include_foreign_key_constraints=[]).compile(dialect=dialect)))
            unique = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
            after += [str(AddConstraint(c).compile(dialect=dialect)) for c in _by_name(unique)]
        else:
            before.append(str(CreateTable(table).compile(dialect=dialect)))
        after += [str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=_name)]
    if late_constraints:
        # Foreign keys last: every table they point at exists and is full.
        for table in tables:
            keys = [c for c in table.constraints if isinstance(c, ForeignKeyConstraint)]
            after += [str(AddConstraint(c).compile(dialect=dialect)) for c in _by_name(keys)]
    return before, after


def _name(item: object) -> str:
    return str(getattr(item, "name", "") or "")


def _by_name(items: list) -> list:
    return sorted(items, key=_name)
