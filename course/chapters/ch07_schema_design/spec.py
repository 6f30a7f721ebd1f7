"""Judge for exercise 7.1 (models from a written spec): the learner's tables built in an empty database, then
read back through SQLAlchemy's inspector (columns, types, keys, ON DELETE, names, indexes) and tried with inserts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import permutations
from typing import Any

from sqlalchemy import Column, MetaData, Table, TypeDecorator, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeEngine

from course.chapters.ch07_schema_design.catalog import (
    Scratch,
    TableInfo,
    error_line,
    ondelete,
    type_kind,
)
from course.checks.base import expect, fail

# --- 7.1 ----------------------------------------------------------------------------------------------------------

# table -> column -> (kind, nullable, length)
SPEC_7_1: dict[str, dict[str, tuple[str, bool, int | None]]] = {
    "teams": {
        "id": ("integer", False, None),
        "name": ("string", False, 80),
        "created_at": ("timestamp", False, None),
    },
    "members": {
        "id": ("integer", False, None),
        "team_id": ("integer", False, None),
        "email": ("string", False, 254),
        "role": ("string", False, 16),
    },
    "tasks": {
        "id": ("integer", False, None),
        "team_id": ("integer", False, None),
        "assignee_id": ("integer", True, None),
        "title": ("string", False, 200),
        "estimate_minutes": ("integer", False, None),
        "done": ("boolean", False, None),
    },
}
FKS_7_1 = {
    ("members", "team_id"): ("teams", "CASCADE", "deleting a team deletes its members"),
    ("tasks", "team_id"): ("teams", "CASCADE", "deleting a team deletes its tasks"),
    ("tasks", "assignee_id"): ("members", "SET NULL", "deleting a member leaves their tasks unassigned"),
}
CHECKS_7_1 = {"ck_members_role": "members", "ck_tasks_estimate_not_negative": "tasks"}
UNIQUES_7_1 = {
    ("teams", ("name",)): "uq_teams_name",
    ("members", ("team_id", "email")): "uq_members_team_id_email",
}


def _same_tables(found: dict[str, TableInfo], spec: dict[str, Any], fn_name: str) -> None:
    missing, extra = sorted(set(spec) - set(found)), sorted(set(found) - set(spec))
    expect(not missing, f"{fn_name}() created no table {', '.join(missing)}: name the tables exactly as the spec")
    expect(not extra, f"{fn_name}() also created {', '.join(extra)}: the spec has only {', '.join(sorted(spec))}")


def _columns(found: dict[str, TableInfo]) -> None:
    for table, columns in SPEC_7_1.items():
        info = found[table]
        missing = [c for c in columns if c not in info.columns]
        extra = [c for c in info.columns if c not in columns]
        expect(not missing, f"{table} has no column {', '.join(missing)}")
        expect(not extra, f"{table} has a column the spec does not ask for: {', '.join(extra)}")
        expect(info.primary_key == ("id",), f"{table}'s primary key is {info.primary_key or 'missing'}, not (id)")
        for name, (kind, nullable, length) in columns.items():
            column = info.columns[name]
            got = type_kind(column)
            expect(got == kind, f"{table}.{name} is stored as {column['type']}, but the spec asks for a {kind}")
            if length is not None:
                expect(
                    getattr(column["type"], "length", None) == length,
                    f"{table}.{name} is {column['type']}: the spec limits it to {length} characters",
                )
            if nullable:
                expect(column["nullable"], f"{table}.{name} is NOT NULL, but the spec says it is optional")
            else:
                expect(not column["nullable"], f"{table}.{name} accepts NULL, but the spec says it is required")


def _aware(metadata: MetaData, found: dict[str, TableInfo]) -> None:
    reflected = found["teams"].columns["created_at"]["type"]
    column_type = metadata.tables["teams"].c.created_at.type
    declared: TypeEngine[Any] | type[TypeEngine[Any]] = (
        column_type.impl if isinstance(column_type, TypeDecorator) else column_type
    )
    # SQLite has no timestamp type to read back (every DATETIME reflects without a zone): the declared type is judged.
    stored_aware = getattr(reflected, "timezone", False) or type(reflected).__name__ == "DATETIME"
    expect(
        getattr(declared, "timezone", False) and stored_aware,
        "teams.created_at is a timestamp without time zone: declare it timezone-aware "
        "(DateTime(timezone=True)), or nobody can tell which zone a value meant",
    )


def _keys(found: dict[str, TableInfo]) -> None:
    for (table, column), (target, action, sentence) in FKS_7_1.items():
        fk = found[table].fk(column)
        if fk is None:
            fail(f"{table}.{column} is not a foreign key to {target}.id")
        expect(
            fk["referred_table"] == target and fk["referred_columns"] == ["id"],
            f"{table}.{column} refers to {fk['referred_table']}.{', '.join(fk['referred_columns'])}, not {target}.id",
        )
        expect(
            ondelete(fk) == action,
            f"{table}.{column} says ON DELETE {ondelete(fk)}, but the spec says {sentence}: ON DELETE {action}",
        )
        expect(
            found[table].indexed(column),
            f"no index starts with {table}.{column}: the database searches it on every delete of a {target} row "
            "(and on joins). Index every foreign key",
        )
        expect(
            fk.get("name") == f"fk_{table}_{column}_{target}",
            f"the foreign key on {table}.{column} is named {fk.get('name')!r}: create the tables on a MetaData "
            "with the course's naming convention, which names it fk_<table>_<column>_<referred table>",
        )
    for (table, columns), name in UNIQUES_7_1.items():
        found_name = found[table].unique_on(columns)
        expect(
            found_name is not None,
            f"nothing keeps ({', '.join(columns)}) unique in {table}"
            + (": the same email may join several teams, but only once each" if table == "members" else ""),
        )
        if table == "members":
            expect(
                found["members"].unique_on(("email",)) is None,
                "members.email is unique on its own: the same person could never join a second team. "
                "Make the pair (team_id, email) unique",
            )
        # The spec does not say in which order the pair is written: the convention names it after that order.
        allowed = {f"uq_{table}_{'_'.join(order)}" for order in permutations(columns)}
        expect(
            found_name in allowed,
            f"the unique constraint on {table} ({', '.join(columns)}) is named {found_name!r}, not {name!r}: "
            "use the course's naming convention",
        )
    names = {name for info in found.values() for name, _ in info.checks}
    for name, table in CHECKS_7_1.items():
        expect(
            name in names,
            f"no CHECK constraint named {name} on {table} (found: {sorted(n for n in names if n) or 'none'}): "
            "name it as the spec says, through the naming convention",
        )


async def _behaviour_7_1(scratch: Scratch) -> None:
    # Bare tables with only the columns sent: a Python-side default on the learner's model cannot help here.
    meta = MetaData()
    teams = Table("teams", meta, Column("id"), Column("name"), Column("created_at"))
    members = Table("members", meta, Column("id"), Column("team_id"), Column("email"), Column("role"))
    tasks = Table("tasks", meta, Column("id"), Column("team_id"), Column("title"), Column("estimate_minutes"))
    tasks_done = Table("tasks", MetaData(), Column("id"), Column("done"))
    before = datetime.now(UTC) - timedelta(minutes=5)
    async with scratch.engine.begin() as conn:
        try:
            await conn.execute(insert(teams).values(id=1, name="Core"))
            await conn.execute(insert(members).values(id=1, team_id=1, email="Ana@Example.com"))
            await conn.execute(insert(tasks).values(id=1, team_id=1, title="Plan", estimate_minutes=5))
        except IntegrityError as exc:
            fail(
                f"inserting a team, a member and a task with only the required values failed ({error_line(exc)}): "
                "created_at, role and done need defaults in the database (server_default), not only in Python"
            )
        created = await conn.scalar(select(teams.c.created_at))
        role = await conn.scalar(select(members.c.role))
        done = await conn.scalar(select(tasks_done.c.done))
    expect(
        created is not None, "teams.created_at stayed NULL: give it a database default (server_default=func.now())"
    )
    if isinstance(created, datetime):
        stamp = created if created.tzinfo else created.replace(tzinfo=UTC)
        expect(stamp >= before, f"teams.created_at defaulted to {created}, not to the current time")
    expect(role == "member", f"a member inserted without a role got {role!r}, not 'member'")
    expect(done in (False, 0), f"a task inserted without done got {done!r}, not false")
    try:
        async with scratch.engine.begin() as conn:
            await conn.execute(insert(tasks).values(id=3, team_id=1, title="Nothing to do", estimate_minutes=0))
    except IntegrityError as exc:
        fail(
            f"the database refused a task with estimate_minutes = 0 ({error_line(exc)}): never negative means 0 "
            "is allowed — the CHECK refuses only what is below zero"
        )
    for table, values, why in (
        (members, {"id": 2, "team_id": 1, "email": "x@example.com", "role": "admin"}, "role 'admin'"),
        (tasks, {"id": 2, "team_id": 1, "title": "Oops", "estimate_minutes": -1}, "estimate_minutes = -1"),
    ):
        try:
            async with scratch.engine.begin() as conn:
                await conn.execute(insert(table).values(**values))
        except IntegrityError:
            continue
        fail(f"the database accepted {why}: the spec's CHECK constraint must refuse it")


async def judge_7_1(scratch: Scratch, metadata: MetaData, fn_name: str) -> None:
    found = await scratch.tables()
    _same_tables(found, SPEC_7_1, fn_name)
    _columns(found)
    _aware(metadata, found)
    _keys(found)
    await _behaviour_7_1(scratch)
