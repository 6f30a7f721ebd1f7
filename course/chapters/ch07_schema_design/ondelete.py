"""Judge for exercise 7.4 (ON DELETE rules for a help desk): the learner's tables in an empty database, filled,
then an agent, a customer with an invoice, a customer through the ORM and a ticket deleted; what remains is judged.
"""

from __future__ import annotations

from sqlalchemy import Table, delete, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from course.chapters.ch07_schema_design.catalog import Scratch, create_all, error_line
from course.checks.base import expect, fail
from course.tools.instrument import count_queries

COLUMNS_7_4 = {
    "customers": ("id", "name"),
    "agents": ("id", "name"),
    "tickets": ("id", "customer_id", "agent_id", "title"),
    "messages": ("id", "ticket_id", "body"),
    "invoices": ("id", "customer_id", "amount_cents"),
}
FKS_7_4 = (
    ("tickets", "customer_id", "customers"),
    ("tickets", "agent_id", "agents"),
    ("messages", "ticket_id", "tickets"),
    ("invoices", "customer_id", "customers"),
)
ROWS_7_4: dict[str, list[dict[str, int | str | None]]] = {
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


def _customer_class(models: list[type[DeclarativeBase]]) -> type[DeclarativeBase]:
    customer = next((m for m in models if getattr(m, "__tablename__", None) == "customers"), None)
    if customer is None:
        fail("none of the models you returned is mapped to the customers table")
    expect(
        "tickets" in inspect(customer).relationships,
        "the customers model has no `tickets` relationship (policy 5 deletes a customer through the ORM)",
    )
    return customer


async def judge_7_4(scratch: Scratch, models: list[type[DeclarativeBase]], fn_name: str) -> None:
    customer_class = _customer_class(models)
    t = customer_class.metadata.tables
    for table, columns in COLUMNS_7_4.items():
        expect(table in t, f"{fn_name}() defines no {table} table")
        missing = [c for c in columns if c not in t[table].c]
        expect(not missing, f"{table} has no column {', '.join(missing)}")
    await create_all(scratch, customer_class.metadata, fn_name)
    found = await scratch.tables()
    for table, column, target in FKS_7_4:
        fk = found[table].fk(column)
        expect(fk is not None, f"{table}.{column} is not a foreign key to {target}.id")
        expect(
            fk is not None and fk.get("name") == f"fk_{table}_{column}_{target}",
            f"the foreign key on {table}.{column} is named {fk.get('name') if fk else None!r}: build the models on "
            "a new declarative base whose MetaData has the course's naming convention (fk_<table>_<column>_<referred "
            "table>)",
        )
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
    await _expect_invoice_kept(
        scratch,
        t,
        refused,
        "a customer who has an invoice was deleted",
        " — and the invoice with them",
        ": invoices must be kept, so the database must refuse the delete (ON DELETE RESTRICT)",
    )

    # ...not through the ORM either: a relationship that cascades deletes to invoices removes them itself first.
    Session = async_sessionmaker(scratch.engine, expire_on_commit=False)
    async with Session() as session:
        try:
            await session.delete(await session.get(customer_class, 2))
            await session.commit()
            refused = False
        except IntegrityError:
            refused = True
            await session.rollback()
    await _expect_invoice_kept(
        scratch,
        t,
        refused,
        "session.delete(customer) deleted a customer who has an invoice",
        " — and the invoice with them: the relationship to invoices cascades deletes",
        ". Invoices must be kept: no delete cascade to them, in the ORM or the database",
    )

    # session.delete(customer): the database cascades to tickets and their messages, nothing is loaded first.
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


async def _expect_invoice_kept(
    scratch: Scratch, t: dict[str, Table], refused: bool, deleted: str, with_invoice: str, rule: str
) -> None:
    """The delete of customer 2 (who has invoice 1) was refused and the invoice is there; else say what went."""
    invoices = await _ids(scratch, t["invoices"])
    expect(refused and invoices == [1], deleted + (with_invoice if not invoices else "") + rule)
