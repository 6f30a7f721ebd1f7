"""Chapter 7 checks have teeth: plausible wrong schemas and sessions fail with the right hint; correct variants pass.

No `from __future__ import annotations` here: the models below are built inside functions, and SQLAlchemy reads
their annotations as real objects (as in a notebook).
"""

import uuid
from datetime import datetime
from functools import partial
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    column,
    event,
    false,
    func,
    select,
    table,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, with_loader_criteria

from course.chapters.ch07_schema_design.checks import check
from course.chapters.ch07_schema_design.keys import uuid7, uuid7_time_ms
from course.domain.models import NAMING_CONVENTION, Post, SoftDeleteMixin, User, UTCDateTime
from course.settings import Settings
from tests import teeth

SOURCE = "solutions/07_schema_design.ipynb"
SOLVED = teeth.solved(SOURCE)
fails_with = partial(teeth.fails_with, check)


def _base(convention: bool = True) -> type[DeclarativeBase]:
    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION) if convention else MetaData()

    return Base


# --- 7.1 models from a written spec -----------------------------------------------------------------------------


def project(
    *,
    convention: bool = True,
    created: Any = "server",
    aware: bool = True,
    team_ondelete: str | None = "CASCADE",
    assignee_ondelete: str | None = "SET NULL",
    assignee_nullable: bool = True,
    index_assignee: bool = True,
    unique_pair: bool = True,
    role_check: bool = True,
    done_default: bool = True,
    id_type: Any = Integer,
    created_type: Any = None,
    name_length: int = 80,
    email_nullable: bool = False,
    done_type: Any = Boolean,
) -> type[DeclarativeBase]:
    """The spec's models, with one knob per requirement sentence (defaults: all correct)."""
    Base = _base(convention)
    stamp = created_type or DateTime(timezone=aware)
    created_kw = {"server_default": func.now()} if created == "server" else {"default": datetime.now}

    class Team(Base):
        __tablename__ = "teams"
        id = mapped_column(id_type, primary_key=True)
        name = mapped_column(String(name_length), unique=True, nullable=False)
        created_at = mapped_column(stamp, nullable=False, **created_kw)

    member_args: list[Any] = [UniqueConstraint("team_id", "email") if unique_pair else UniqueConstraint("email")]
    if role_check:
        member_args.append(CheckConstraint("role IN ('owner', 'member')", name="role"))

    class Member(Base):
        __tablename__ = "members"
        __table_args__ = tuple(member_args)
        id = mapped_column(id_type, primary_key=True)
        team_id = mapped_column(ForeignKey("teams.id", ondelete=team_ondelete), index=True, nullable=False)
        email = mapped_column(String(254), nullable=email_nullable)
        role = mapped_column(String(16), server_default="member", nullable=False)

    class Task(Base):
        __tablename__ = "tasks"
        __table_args__ = (CheckConstraint("estimate_minutes >= 0", name="estimate_not_negative"),)
        id = mapped_column(id_type, primary_key=True)
        team_id = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True, nullable=False)
        assignee_id = mapped_column(
            ForeignKey("members.id", ondelete=assignee_ondelete), index=index_assignee, nullable=assignee_nullable
        )
        title = mapped_column(String(200), nullable=False)
        estimate_minutes = mapped_column(Integer, nullable=False)
        done_kw = {"server_default": false() if done_type is Boolean else "0"} if done_default else {}
        done = mapped_column(done_type, nullable=False, **done_kw)

    return Base


def project_core() -> MetaData:
    """Correct too: plain Core tables on a MetaData, BIGINT keys, a composite index that starts with the FK."""
    meta = MetaData(naming_convention=NAMING_CONVENTION)
    Table(
        "teams",
        meta,
        Column("id", BigInteger, primary_key=True),
        Column("name", String(80), nullable=False, unique=True),
        Column("created_at", UTCDateTime(), nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    )
    Table(
        "members",
        meta,
        Column("id", BigInteger, primary_key=True),
        Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
        Column("email", String(254), nullable=False),
        Column("role", String(16), nullable=False, server_default=text("'member'")),
        UniqueConstraint("team_id", "email"),
        CheckConstraint("role = 'owner' OR role = 'member'", name="role"),
    )
    Table(
        "tasks",
        meta,
        Column("id", BigInteger, primary_key=True),
        Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
        Column("assignee_id", ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True),
        Column("title", String(200), nullable=False),
        Column("estimate_minutes", Integer, nullable=False),
        Column("done", Boolean, nullable=False, server_default=false()),
        CheckConstraint("estimate_minutes >= 0", name="estimate_not_negative"),
        Index("ix_tasks_team_done", "team_id", "done"),
    )
    return meta


async def test_7_1_other_correct_answers_pass(tiny: Settings) -> None:
    await check("7.1", lambda: project(id_type=BigInteger, created_type=UTCDateTime()), settings=tiny)
    await check("7.1", project_core, settings=tiny)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"convention": False}, "naming convention"),
        ({"created": "python"}, "defaults in the database"),
        ({"aware": False}, "timestamp without time zone"),
        ({"team_ondelete": None}, "deleting a team deletes its members: ON DELETE CASCADE"),
        ({"assignee_ondelete": "CASCADE"}, "leaves their tasks unassigned: ON DELETE SET NULL"),
        ({"assignee_nullable": False}, "tasks.assignee_id is NOT NULL, but the spec says it is optional"),
        ({"index_assignee": False}, "no index starts with tasks.assignee_id"),
        ({"unique_pair": False}, "nothing keeps (team_id, email) unique"),
        ({"role_check": False}, "no CHECK constraint named ck_members_role"),
        ({"done_default": False}, "defaults in the database"),
        ({"name_length": 100}, "the spec limits it to 80 characters"),
        ({"email_nullable": True}, "members.email accepts NULL, but the spec says it is required"),
        ({"done_type": Integer}, "the spec asks for a boolean"),
    ],
    ids=lambda v: str(v)[:40],
)
async def test_7_1_wrong_answers_fail(tiny: Settings, kwargs: dict, fragment: str) -> None:
    await fails_with(tiny, "7.1", fragment, lambda: project(**kwargs))


async def test_7_1_extra_table_and_wrong_return(tiny: Settings) -> None:
    def with_extra() -> MetaData:
        meta = project_core()
        Table("notes", meta, Column("id", Integer, primary_key=True))
        return meta

    await fails_with(tiny, "7.1", "also created notes", with_extra)
    await fails_with(tiny, "7.1", "return your declarative base class", lambda: "teams")


# --- 7.2 soft-delete session ------------------------------------------------------------------------------------


def soft_sessions(
    *,
    target: Any = SoftDeleteMixin,
    aliases: bool = True,
    opt_out: bool = True,
    relationship_loads: bool = True,
    on_global: bool = False,
    criterion: Any = None,
):
    """A soft-delete session factory with one knob per requirement (defaults: correct)."""
    condition = criterion or (lambda cls: cls.deleted_at.is_(None))

    def factory(engine):
        class Soft(Session):
            pass

        def hide(state) -> None:
            if not state.is_select or (opt_out and state.execution_options.get("include_deleted", False)):
                return
            if not relationship_loads and state.is_relationship_load:
                return
            targets = target if isinstance(target, tuple) else (target,)
            state.statement = state.statement.options(
                *(
                    with_loader_criteria(
                        t, condition, include_aliases=aliases, propagate_to_loaders=relationship_loads
                    )
                    for t in targets
                )
            )

        event.listen(Session if on_global else Soft, "do_orm_execute", hide)
        return async_sessionmaker(engine, sync_session_class=Soft, expire_on_commit=False)

    return factory


def plain_sessions(engine):
    return async_sessionmaker(engine, expire_on_commit=False)


def where_on_posts(engine):
    # Adds WHERE deleted_at IS NULL to statements that select Post: relationship loads and users slip through.
    class Soft(Session):
        pass

    @event.listens_for(Soft, "do_orm_execute")
    def hide(state) -> None:
        if (
            state.is_select
            and not state.is_relationship_load
            and not state.execution_options.get("include_deleted")
        ):
            froms = {getattr(d.get("entity"), "__name__", None) for d in state.statement.column_descriptions}
            if "Post" in froms:
                state.statement = state.statement.where(Post.deleted_at.is_(None))

    return async_sessionmaker(engine, sync_session_class=Soft)


async def test_7_2_other_correct_answers_pass(tiny: Settings) -> None:
    for right in (
        soft_sessions(criterion=lambda cls: cls.deleted_at == None),  # noqa: E711 - SQL, not Python
        # Naming each soft-deletable model instead of the mixin works too (for this schema).
        soft_sessions(target=(User, Post)),
    ):
        await check("7.2", right, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (soft_sessions(on_global=True), "registered on SQLAlchemy's own Session class"),
        (soft_sessions(target=Post), "returned the soft-deleted user"),
        # On the mixin itself, include_aliases=False filters nothing at all (caught by the first query);
        # on the models it misses only aliases.
        (soft_sessions(aliases=False), "a plain select(Post.id)"),
        (soft_sessions(target=(User, Post), aliases=False), "include_aliases=True"),
        (soft_sessions(opt_out=False), "include_deleted=True"),
        (soft_sessions(relationship_loads=False), "Relationship loads must be filtered too"),
        (plain_sessions, "a plain select(Post.id)"),
        (where_on_posts, "returned the soft-deleted user"),
    ],
    ids=[
        "global-session",
        "posts-only",
        "mixin-no-aliases",
        "models-no-aliases",
        "no-opt-out",
        "no-relationship-loads",
        "plain",
        "where",
    ],
)
async def test_7_2_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "7.2", fragment, wrong)


async def test_7_2_global_listener_is_removed_after_the_check(tiny: Settings) -> None:
    await fails_with(tiny, "7.2", "own Session class", soft_sessions(on_global=True))
    # The check cleaned up: a session made afterwards still sees deleted posts.
    from course.db import make_engine, make_sessionmaker
    from course.seed.fresh import fresh_copy

    async with fresh_copy(tiny) as copy:
        engine = make_engine(url=copy.url)
        async with make_sessionmaker(engine)() as session:
            deleted = await session.scalar(
                select(func.count()).select_from(Post).where(Post.deleted_at.is_not(None))
            )
        await engine.dispose()
    assert deleted > 0


# --- 7.3 money ---------------------------------------------------------------------------------------------------

InsufficientFunds = SOLVED["InsufficientFunds"]
WALLETS = table("wallets", column("id"), column("balance_cents"))


def wallets_model(*, balance_type: Any = BigInteger, check_sql: str | None = "balance_cents >= 0"):
    def models():
        Base = _base()
        args = (CheckConstraint(check_sql, name="balance_not_negative"),) if check_sql else ()

        class Wallet(Base):
            __tablename__ = "wallets"
            __table_args__ = args
            id = mapped_column(Integer, primary_key=True)
            owner = mapped_column(String(100), nullable=False)
            balance_cents = mapped_column(balance_type, nullable=False, server_default="0")

        return Base

    return models


right_models = wallets_model()
solved_withdraw = SOLVED["withdraw"]


async def withdraw_then_select(session, wallet_id, amount_cents):
    # Correct too: UPDATE without RETURNING, read the balance afterwards, hand-written SQL.
    try:
        await session.execute(
            text("UPDATE wallets SET balance_cents = balance_cents - :a WHERE id = :i"),
            {"a": amount_cents, "i": wallet_id},
        )
    except IntegrityError:
        await session.rollback()
        raise InsufficientFunds("not enough") from None
    balance = await session.scalar(select(WALLETS.c.balance_cents).where(WALLETS.c.id == wallet_id))
    await session.commit()
    return int(balance)


async def withdraw_read_first(session, wallet_id, amount_cents):
    balance = await session.scalar(select(WALLETS.c.balance_cents).where(WALLETS.c.id == wallet_id))
    if balance < amount_cents:
        raise InsufficientFunds("not enough")
    await session.execute(
        update(WALLETS).where(WALLETS.c.id == wallet_id).values(balance_cents=balance - amount_cents)
    )
    await session.commit()
    return balance - amount_cents


async def withdraw_no_rollback(session, wallet_id, amount_cents):
    stmt = update(WALLETS).where(WALLETS.c.id == wallet_id)
    stmt = stmt.values(balance_cents=WALLETS.c.balance_cents - amount_cents).returning(WALLETS.c.balance_cents)
    try:
        balance = (await session.execute(stmt)).scalar_one()
    except IntegrityError:
        raise InsufficientFunds("not enough") from None
    await session.commit()
    return balance


async def withdraw_lets_error_out(session, wallet_id, amount_cents):
    stmt = update(WALLETS).where(WALLETS.c.id == wallet_id)
    stmt = stmt.values(balance_cents=WALLETS.c.balance_cents - amount_cents).returning(WALLETS.c.balance_cents)
    balance = (await session.execute(stmt)).scalar_one()
    await session.commit()
    return balance


async def withdraw_without_commit(session, wallet_id, amount_cents):
    stmt = update(WALLETS).where(WALLETS.c.id == wallet_id)
    stmt = stmt.values(balance_cents=WALLETS.c.balance_cents - amount_cents).returning(WALLETS.c.balance_cents)
    try:
        return (await session.execute(stmt)).scalar_one()
    except IntegrityError:
        await session.rollback()
        raise InsufficientFunds("not enough") from None


async def test_7_3_other_correct_answers_pass(tiny: Settings) -> None:
    await check("7.3", wallets_model(balance_type=Integer), withdraw_then_select, InsufficientFunds, settings=tiny)


@pytest.mark.parametrize(
    ("models", "withdraw", "fragment"),
    [
        (wallets_model(balance_type=Float), solved_withdraw, "a float cannot even hold 0.10"),
        (wallets_model(check_sql=None), solved_withdraw, "a plain UPDATE setting a balance to -1 was accepted"),
        (wallets_model(check_sql="balance_cents > 0"), solved_withdraw, "a balance of exactly 0 is allowed"),
        (right_models, withdraw_read_first, "read the balance before updating it"),
        (right_models, withdraw_no_rollback, "roll it back before raising"),
        (right_models, withdraw_lets_error_out, "let the database's IntegrityError escape"),
        (right_models, withdraw_without_commit, "withdraw must commit"),
    ],
    ids=["float", "no-check", "check-gt-zero", "read-first", "no-rollback", "error-escapes", "no-commit"],
)
async def test_7_3_wrong_answers_fail(tiny: Settings, models, withdraw, fragment: str) -> None:
    await fails_with(tiny, "7.3", fragment, models, withdraw, InsufficientFunds)


# --- 7.4 ON DELETE for a help desk --------------------------------------------------------------------------------


def helpdesk(
    *,
    invoice: str | None = "RESTRICT",
    agent: str | None = "SET NULL",
    agent_nullable: bool = True,
    messages: str | None = "CASCADE",
    tickets: str | None = "CASCADE",
    relationship_kw: dict | None = None,
):
    """The help desk's models with one knob per policy sentence (defaults: correct)."""

    def models():
        Base = _base()

        class Ticket(Base):
            __tablename__ = "tickets"
            id = mapped_column(Integer, primary_key=True)
            customer_id = mapped_column(ForeignKey("customers.id", ondelete=tickets), index=True, nullable=False)
            agent_id = mapped_column(ForeignKey("agents.id", ondelete=agent), index=True, nullable=agent_nullable)
            title = mapped_column(String(200), nullable=False)

        class Customer(Base):
            __tablename__ = "customers"
            id = mapped_column(Integer, primary_key=True)
            name = mapped_column(String(100), nullable=False)
            tickets: Mapped[list[Ticket]] = relationship(
                **({"passive_deletes": True} if relationship_kw is None else relationship_kw)
            )

        class Agent(Base):
            __tablename__ = "agents"
            id = mapped_column(Integer, primary_key=True)
            name = mapped_column(String(100), nullable=False)

        class Message(Base):
            __tablename__ = "messages"
            id = mapped_column(Integer, primary_key=True)
            ticket_id = mapped_column(ForeignKey("tickets.id", ondelete=messages), index=True, nullable=False)
            body = mapped_column(String(500), nullable=False)

        class Invoice(Base):
            __tablename__ = "invoices"
            id = mapped_column(Integer, primary_key=True)
            customer_id = mapped_column(ForeignKey("customers.id", ondelete=invoice), index=True, nullable=False)
            amount_cents = mapped_column(BigInteger, nullable=False)

        return [Customer, Agent, Ticket, Message, Invoice]

    return models


async def test_7_4_other_correct_answers_pass(tiny: Settings) -> None:
    # NO ACTION (the default) refuses the delete as RESTRICT does; an ORM cascade that trusts the database.
    await check(
        "7.4",
        helpdesk(invoice=None, relationship_kw={"cascade": "all, delete-orphan", "passive_deletes": True}),
        settings=tiny,
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"invoice": "CASCADE"}, "and the invoice with them"),
        ({"agent": "CASCADE"}, "deleting an agent deleted their tickets"),
        ({"agent_nullable": False}, "tickets.agent_id is NOT NULL"),
        ({"agent": None}, "Their tickets must stay, unassigned"),
        ({"relationship_kw": {}}, "tried to empty their customer_id"),
        ({"relationship_kw": {"cascade": "all, delete-orphan"}}, "first loaded the customer's tickets"),
        ({"messages": None}, "those tickets' messages"),
        ({"tickets": None}, "deleting a customer must delete their tickets"),
    ],
    ids=lambda v: str(v)[:40],
)
async def test_7_4_wrong_answers_fail(tiny: Settings, kwargs: dict, fragment: str) -> None:
    await fails_with(tiny, "7.4", fragment, helpdesk(**kwargs))


async def test_7_4_needs_model_classes(tiny: Settings) -> None:
    await fails_with(tiny, "7.4", "return the list of your five model classes", lambda: _base())


# --- the lesson's UUID v7 helper ----------------------------------------------------------------------------------


def test_uuid7_layout_and_order() -> None:
    made = [uuid7() for _ in range(5_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert {u.version for u in made} == {7} and {u.variant for u in made} == {uuid.RFC_4122}
    fixed = uuid7(ms=1_700_000_000_123)
    assert uuid7_time_ms(fixed) == 1_700_000_000_123
    with pytest.raises(ValueError, match="48 bits"):
        uuid7(ms=1 << 48)
    with pytest.raises(ValueError, match="not version 7"):
        uuid7_time_ms(uuid.uuid4())


async def withdraw_locked_read(session, wallet_id, amount_cents):
    # Safe on PostgreSQL (the row is locked), but not what the exercise asks: it decides in Python.
    stmt = select(WALLETS.c.balance_cents).where(WALLETS.c.id == wallet_id).with_for_update()
    balance = await session.scalar(stmt)
    if balance < amount_cents:
        await session.rollback()
        raise InsufficientFunds("not enough")
    await session.execute(
        update(WALLETS).where(WALLETS.c.id == wallet_id).values(balance_cents=balance - amount_cents)
    )
    await session.commit()
    return balance - amount_cents


async def test_7_3_locked_read_is_named(tiny: Settings, backend: str) -> None:
    # SQLite has no FOR UPDATE (SQLAlchemy leaves it out), so there it is a plain read first.
    fragment = "locks the row and reads the balance" if backend == "postgres" else "read the balance before"
    await fails_with(tiny, "7.3", fragment, right_models, withdraw_locked_read, InsufficientFunds)
