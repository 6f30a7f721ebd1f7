"""The schema in two phases, as bulk loads want it: bare tables before the rows, constraints and indexes after."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ForeignKeyConstraint, MetaData, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable


@dataclass
class Plan:
    """The statements that together build exactly `metadata.create_all`, in the order a bulk load wants them.

    bare: each table with its primary key and CHECK constraints, before the rows. per_table: a table's unique
    constraints and indexes, which touch only that table and can be built as soon as its rows are in. foreign_keys:
    last, when every table they point at is full.
    """

    bare: list[str] = field(default_factory=list)
    create: dict[str, str] = field(default_factory=dict)  # each table's statement in bare, by table name
    per_table: dict[str, list[str]] = field(default_factory=dict)
    foreign_keys: list[str] = field(default_factory=list)
    # (table, constraint name) of each foreign key, in the same order: for ADD ... NOT VALID, then VALIDATE.
    foreign_key_names: list[tuple[str, str]] = field(default_factory=list)


def plan(metadata: MetaData, dialect: Dialect) -> Plan:
    """The Plan for metadata on dialect. SQLite cannot add constraints to an existing table, so there UNIQUE and
    FOREIGN KEY stay in CREATE TABLE and only the secondary indexes come after the rows."""
    late_constraints = dialect.name != "sqlite"
    result = Plan()
    # AddConstraint marks its constraint as "not inline" for every later CREATE TABLE: work on a copy, so the
    # models' own metadata (and create_all elsewhere in this process) stays untouched.
    copy = MetaData(naming_convention=metadata.naming_convention)
    tables = [table.to_metadata(copy) for table in metadata.sorted_tables]
    for table in tables:
        after = result.per_table.setdefault(table.name, [])
        if late_constraints:
            bare = table.to_metadata(MetaData(naming_convention=metadata.naming_convention))
            bare.constraints = {c for c in bare.constraints if not isinstance(c, UniqueConstraint)}
            result.create[table.name] = str(
                CreateTable(bare, include_foreign_key_constraints=[]).compile(dialect=dialect)
            )
            unique = [c for c in table.constraints if isinstance(c, UniqueConstraint)]
            after += [str(AddConstraint(c).compile(dialect=dialect)) for c in _by_name(unique)]
        else:
            result.create[table.name] = str(CreateTable(table).compile(dialect=dialect))
        result.bare.append(result.create[table.name])
        after += [str(CreateIndex(index).compile(dialect=dialect)) for index in sorted(table.indexes, key=_name)]
    if late_constraints:
        for table in tables:
            keys = [c for c in table.constraints if isinstance(c, ForeignKeyConstraint)]
            for key in _by_name(keys):
                result.foreign_keys.append(str(AddConstraint(key).compile(dialect=dialect)))
                name = dialect.identifier_preparer.format_constraint(key)
                result.foreign_key_names.append((table.name, str(name)))
    return result


def phases(metadata: MetaData, dialect: Dialect) -> tuple[list[str], list[str]]:
    """(statements before the load, statements after it): the Plan with everything after the rows in one list."""
    built = plan(metadata, dialect)
    after = [statement for statements in built.per_table.values() for statement in statements]
    return built.bare, after + built.foreign_keys


def _name(item: object) -> str:
    return str(getattr(item, "name", "") or "")


def _by_name(items: list) -> list:
    return sorted(items, key=_name)
