"""Judges for exercises 7.1 (models from a written spec) and 7.4 (ON DELETE rules for a scenario).

Both build the learner's tables in an empty database and judge what the database itself then holds and does:
the catalog read through SQLAlchemy's inspector, and the rows left after inserts and deletes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Column, MetaData, Table, TypeDecorator, delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from course.chapters.ch07_schema_design.catalog import (
    Scratch,
    TableInfo,
    create_all,
    error_line,
    ondelete,
    type_kind,
)
from course.checks.base import expect, fail
from course.tools.instrument import count_queries

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
    declared = metadata.tables["teams"].c.created_at.type
    declared = declared.impl if isinstance(declared, TypeDecorator) else declared
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
        expect(fk is not None, f"{table}.{column} is not a foreign key to {target}.id")
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
        expect(
            found_name == name,
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
            await conn.execute(insert(tasks).values(id=1, team_id=1, title="Plan", estimate_minutes=0))
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


# --- 7.4 ----------------------------------------------------------------------------------------------------------

COLUMNS_7_4 = {
    "customers": ("id", "name"),
    "agents": ("id", "name"),
    "tickets": ("id", "customer_id", "agent_id", "title"),
    "messages": ("id", "ticket_id", "body"),
    "invoices": ("id", "customer_id", "amount_cents"),
}
ROWS_7_4 = {
    "customers": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Bo"}, {"id": 3, "name": "Cy"}],
    "agents": [{"id": 1, "name": "Lin"}, {"id": 2, "name": "Mo"}],
    "tickets": [
        {"id": 1, "customer_id": 1, "agent_id": 1, "title": "login"},
        {"id": 2, "customer_id": 1, "agent_id": None, "title": "refund"},
        {"id": 3, "customer_id": 2, "agent_id": 1, "title": "copy of invoice"},
        {"id": 4, "customer_id": 3, "agent_id": 2, "title": "bug"},
    ],
    "messages": [
        {"id": i, "ticket_id": t, "body": f"m{i}"} for i, t in ((1, 1), (2, 1), (3, 2), (4, 3), (5, 4), (6, 4))
    ],
    "invoices": [{"id": 1, "customer_id": 2, "amount_cents": 9_99}],
}


async def _ids(scratch: Scratch, table: Table, **where: int) -> list[int]:
    stmt = select(table.c.id).order_by(table.c.id)
    for column, value in where.items():
        stmt = stmt.where(table.c[column] == value)
    async with scratch.engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


def _customer_class(models: list[type]) -> type:
    customer = next((m for m in models if getattr(m, "__tablename__", None) == "customers"), None)
    expect(customer is not None, "none of the models you returned is mapped to the customers table")
    expect(
        "tickets" in inspect(customer).relationships,
        "the customers model has no `tickets` relationship (policy 5 deletes a customer through the ORM)",
    )
    return customer


async def judge_7_4(scratch: Scratch, models: list[type], fn_name: str) -> None:
    customer_class = _customer_class(models)
    t = customer_class.metadata.tables
    for table, columns in COLUMNS_7_4.items():
        expect(table in t, f"{fn_name}() defines no {table} table")
        missing = [c for c in columns if c not in t[table].c]
        expect(not missing, f"{table} has no column {', '.join(missing)}")
    await create_all(scratch, customer_class.metadata, fn_name)
    try:
        async with scratch.engine.begin() as conn:
            for table, rows in ROWS_7_4.items():
                await conn.execute(insert(t[table]), rows)
    except IntegrityError as exc:
        unassigned = (
            "tickets.agent_id is NOT NULL, yet a new ticket has no agent yet (and policy 3 needs the NULL)"
            if not t["tickets"].c.agent_id.nullable
            else "the tables must accept a small, ordinary help desk"
        )
        fail(
            f"inserting customers, agents, tickets, messages and invoices failed ({error_line(exc)}): {unassigned}"
        )

    # An agent leaves: their tickets stay, unassigned.
    try:
        async with scratch.engine.begin() as conn:
            await conn.execute(delete(t["agents"]).where(t["agents"].c.id == 1))
    except IntegrityError as exc:
        hint = (
            "tickets.agent_id is NOT NULL, so there is nowhere to put the NULL"
            if not t["tickets"].c.agent_id.nullable
            else "the database refused to let the agent go"
        )
        fail(
            f"deleting an agent failed ({error_line(exc)}): {hint}. Their tickets must stay, unassigned (SET NULL)"
        )
    expect(
        await _ids(scratch, t["tickets"], customer_id=1) == [1, 2]
        and await _ids(scratch, t["tickets"], customer_id=2),
        "deleting an agent deleted their tickets: tickets must stay, unassigned (ON DELETE SET NULL)",
    )
    async with scratch.engine.connect() as conn:
        agents = (await conn.execute(select(t["tickets"].c.agent_id).where(t["tickets"].c.id.in_([1, 3])))).all()
    expect(all(a is None for (a,) in agents), "after deleting an agent their tickets still point at them")

    # A customer with an invoice can never be deleted.
    try:
        async with scratch.engine.begin() as conn:
            await conn.execute(delete(t["customers"]).where(t["customers"].c.id == 2))
        refused = False
    except IntegrityError:
        refused = True
    invoices = await _ids(scratch, t["invoices"])
    expect(
        refused and invoices == [1],
        "a customer who has an invoice was deleted"
        + (" — and the invoice with them" if not invoices else "")
        + ": invoices must be kept, so the database must refuse the delete (ON DELETE RESTRICT)",
    )

    # session.delete(customer): the database cascades to tickets and their messages, nothing is loaded first.
    Session = async_sessionmaker(scratch.engine, expire_on_commit=False)
    async with Session() as session:
        customer = await session.get(customer_class, 1)
        try:
            with count_queries(scratch.engine) as sent:
                await session.delete(customer)
                await session.commit()
        except IntegrityError as exc:
            nulled = any(s.lstrip().upper().startswith("UPDATE") and "tickets" in s for s in sent.statements)
            why = (
                "the ORM loaded the tickets and tried to empty their customer_id. Let the database delete them "
                "(ON DELETE CASCADE, and passive_deletes=True on the relationship)"
                if nulled
                else "deleting a customer must delete their tickets and those tickets' messages "
                "(ON DELETE CASCADE on both foreign keys)"
            )
            fail(f"session.delete(customer) failed ({error_line(exc)}): {why}")
    loads = [s for s in sent.statements if s.lstrip().upper().startswith("SELECT") and "tickets" in s]
    expect(
        not loads,
        "session.delete(customer) first loaded the customer's tickets into Python: with ON DELETE CASCADE "
        "the database can do it alone; tell the relationship so (passive_deletes=True)",
    )
    expect(
        await _ids(scratch, t["tickets"]) == [3, 4],
        "deleting a customer left their tickets behind: a customer's tickets go with them (ON DELETE CASCADE)",
    )
    expect(
        await _ids(scratch, t["messages"]) == [4, 5, 6],
        "the messages of a deleted customer's tickets are still there: deleting a ticket deletes its messages",
    )

    # A ticket is deleted: its messages go too.
    try:
        async with scratch.engine.begin() as conn:
            await conn.execute(delete(t["tickets"]).where(t["tickets"].c.id == 4))
    except IntegrityError as exc:
        fail(f"deleting a ticket failed ({error_line(exc)}): its messages must go with it (ON DELETE CASCADE)")
    expect(
        await _ids(scratch, t["messages"]) == [4],
        "a deleted ticket's messages are still there (ON DELETE CASCADE)",
    )
