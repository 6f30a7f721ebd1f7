"""Chapter 7 answers written blind (without reading the checks): models from a spec, soft delete, money, ON DELETE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

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
    Text,
    UniqueConstraint,
    column,
    event,
    false,
    func,
    null,
    select,
    table,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
    with_loader_criteria,
)

from course.domain.models import NAMING_CONVENTION, SoftDeleteMixin, User
from tests.redteam import Case

ONLY_ON: dict[str, str] = {}

# ---------------------------------------------------------------- 7.1 project_models

_RIGHT: dict[str, Any] = {
    "convention": True,
    "created_tz": True,
    "created_server": "now",
    "member_team_ondelete": "CASCADE",
    "task_team_ondelete": "CASCADE",
    "assignee_ondelete": "SET NULL",
    "email_unique_alone": False,
    "role_ck_name": "role",
    "role_server_default": True,
    "index_assignee": True,
    "extra_column": False,
    "estimate_ck": "estimate_minutes >= 0",
    "done_server_default": True,
    "name_unique": True,
    "name_length": 80,
    "explicit_indexes": False,
}


def _project(name: str, **changes: Any) -> Callable[[], type[DeclarativeBase]]:
    opts = {**_RIGHT, **changes}

    def project_models() -> type[DeclarativeBase]:
        class Base(DeclarativeBase):
            if opts["convention"]:
                metadata = MetaData(naming_convention=NAMING_CONVENTION)
            else:
                metadata = MetaData()

        created_kwargs: dict[str, Any] = {}
        if opts["created_server"] == "now":
            created_kwargs["server_default"] = func.now()
        elif opts["created_server"] == "current_timestamp":
            created_kwargs["server_default"] = text("CURRENT_TIMESTAMP")
        else:
            created_kwargs["default"] = lambda: datetime.now(UTC)
        explicit = opts["explicit_indexes"]

        class Team(Base):
            __tablename__ = "teams"
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            name: Mapped[str] = mapped_column(String(opts["name_length"]), unique=opts["name_unique"])
            created_at: Mapped[datetime] = mapped_column(DateTime(timezone=opts["created_tz"]), **created_kwargs)

        member_args: list[Any] = [
            CheckConstraint("role IN ('owner', 'member')", name=opts["role_ck_name"]),
        ]
        if not opts["email_unique_alone"]:
            member_args.append(UniqueConstraint("team_id", "email"))
        if explicit:
            member_args.append(Index("ix_members_team_id", "team_id"))

        class Member(Base):
            __tablename__ = "members"
            __table_args__ = tuple(member_args)
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            team_id: Mapped[int] = mapped_column(
                ForeignKey("teams.id", ondelete=opts["member_team_ondelete"]), index=not explicit
            )
            email: Mapped[str] = mapped_column(String(254), unique=opts["email_unique_alone"])
            role: Mapped[str] = (
                mapped_column(String(16), server_default="member")
                if opts["role_server_default"]
                else mapped_column(String(16), default="member")
            )

        task_args: list[Any] = [CheckConstraint(opts["estimate_ck"], name="estimate_not_negative")]
        if explicit:
            task_args += [Index("ix_tasks_team_id", "team_id"), Index("ix_tasks_assignee_id", "assignee_id")]

        class Task(Base):
            __tablename__ = "tasks"
            __table_args__ = tuple(task_args)
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            team_id: Mapped[int] = mapped_column(
                ForeignKey("teams.id", ondelete=opts["task_team_ondelete"]), index=not explicit
            )
            assignee_id: Mapped[int | None] = mapped_column(
                ForeignKey("members.id", ondelete=opts["assignee_ondelete"]),
                index=opts["index_assignee"] and not explicit,
            )
            title: Mapped[str] = mapped_column(String(200))
            estimate_minutes: Mapped[int] = mapped_column(Integer)
            done: Mapped[bool] = (
                mapped_column(Boolean, server_default=false())
                if opts["done_server_default"]
                else mapped_column(Boolean, default=False)
            )
            if opts["extra_column"]:
                updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

        return Base

    project_models.__name__ = name
    return project_models


def project_models_core_style() -> type[DeclarativeBase]:
    """A correct alternative: classic Column() declarations (no Mapped), nullable=False spelled out, sa.text()
    server defaults, and the unique pair written email-first."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    class Team(Base):
        __tablename__ = "teams"
        id = Column(Integer, primary_key=True)
        name = Column(String(80), nullable=False, unique=True)
        created_at = Column(DateTime(timezone=True), nullable=False, server_default=func.current_timestamp())

    class Member(Base):
        __tablename__ = "members"
        __table_args__ = (
            UniqueConstraint("email", "team_id"),
            CheckConstraint("role = 'owner' OR role = 'member'", name="role"),
        )
        id = Column(Integer, primary_key=True)
        team_id = Column(Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True)
        email = Column(String(254), nullable=False)
        role = Column(String(16), nullable=False, server_default=text("'member'"))

    class Task(Base):
        __tablename__ = "tasks"
        __table_args__ = (CheckConstraint("estimate_minutes >= 0", name="estimate_not_negative"),)
        id = Column(Integer, primary_key=True)
        team_id = Column(Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False, index=True)
        assignee_id = Column(Integer, ForeignKey("members.id", ondelete="SET NULL"), nullable=True, index=True)
        title = Column(String(200), nullable=False)
        estimate_minutes = Column(Integer, nullable=False)
        done = Column(Boolean, nullable=False, server_default=false())

    return Base


def project_models_shared_base() -> type[DeclarativeBase]:
    """Reuses the course's own Base: not a new base, and its metadata carries every course table too."""
    from course.domain.models import Base

    return Base


project_models_reference = _project("project_models_reference")
project_models_named_indexes = _project(
    "project_models_named_indexes", explicit_indexes=True, created_server="current_timestamp"
)
project_models_naive_created = _project("project_models_naive_created", created_tz=False)
project_models_python_created = _project("project_models_python_created", created_server="python")
project_models_member_no_cascade = _project("project_models_member_no_cascade", member_team_ondelete=None)
project_models_assignee_cascade = _project("project_models_assignee_cascade", assignee_ondelete="CASCADE")
project_models_email_unique = _project("project_models_email_unique", email_unique_alone=True)
project_models_role_ck_misnamed = _project("project_models_role_ck_misnamed", role_ck_name="role_values")
project_models_role_python_default = _project("project_models_role_python_default", role_server_default=False)
project_models_assignee_unindexed = _project("project_models_assignee_unindexed", index_assignee=False)
project_models_extra_column = _project("project_models_extra_column", extra_column=True)
project_models_estimate_positive = _project("project_models_estimate_positive", estimate_ck="estimate_minutes > 0")
project_models_done_python_default = _project("project_models_done_python_default", done_server_default=False)
project_models_name_not_unique = _project("project_models_name_not_unique", name_unique=False)
project_models_no_convention = _project("project_models_no_convention", convention=False)
project_models_name_too_long = _project("project_models_name_too_long", name_length=100)
project_models_task_team_restrict = _project("project_models_task_team_restrict", task_team_ondelete="RESTRICT")


# ---------------------------------------------------------------- 7.2 soft_delete_sessionmaker


def _criteria(include_aliases: bool = True, target: Any = SoftDeleteMixin) -> Any:
    return with_loader_criteria(target, lambda cls: cls.deleted_at.is_(None), include_aliases=include_aliases)


def soft_delete_sessionmaker_listener(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A Session subclass with a do_orm_execute listener adding the criteria to every select (relationship loads too)."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.execution_options.get("include_deleted", False):
            state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_docs_style(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The criteria on top-level selects only; relationship and column loads inherit them (propagate_to_loaders)."""

    class HidingSession(Session):
        pass

    def _hide(state: Any) -> None:
        if (
            state.is_select
            and not state.is_column_load
            and not state.is_relationship_load
            and not state.execution_options.get("include_deleted", False)
        ):
            state.statement = state.statement.options(
                with_loader_criteria(SoftDeleteMixin, lambda cls: cls.deleted_at == None, include_aliases=True)  # noqa: E711
            )

    event.listen(HidingSession, "do_orm_execute", _hide)
    return async_sessionmaker(bind=engine, sync_session_class=HidingSession)


def soft_delete_sessionmaker_global(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Listens on sqlalchemy.orm.Session itself: every other sessionmaker changes too (and it stays, process-wide)."""
    if not event.contains(Session, "do_orm_execute", _hide_everywhere):
        event.listen(Session, "do_orm_execute", _hide_everywhere)
    return async_sessionmaker(engine, expire_on_commit=False)


def _hide_everywhere(state: Any) -> None:
    if state.is_select and not state.execution_options.get("include_deleted", False):
        state.statement = state.statement.options(_criteria())


def _undo_global() -> None:
    if event.contains(Session, "do_orm_execute", _hide_everywhere):
        event.remove(Session, "do_orm_execute", _hide_everywhere)


# What the harness must undo after a case (a process-wide listener would leak into every later test).
CLEANUP: dict[str, Callable[[], None]] = {"soft_delete_sessionmaker_global": _undo_global}


def soft_delete_sessionmaker_no_aliases(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Forgets include_aliases: aliased(Post) still sees deleted rows."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.execution_options.get("include_deleted", False):
            state.statement = state.statement.options(_criteria(include_aliases=False))

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_no_way_out(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Ignores include_deleted=True: admin views see nothing deleted."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select:
            state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_users_only(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Filters the User model only; posts still show deleted rows."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.execution_options.get("include_deleted", False):
            state.statement = state.statement.options(_criteria(target=User))

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_where_main(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Adds a WHERE on the statement's main entity only: joins and relationship loads leak deleted rows."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if not state.is_select or state.execution_options.get("include_deleted", False):
            return
        mapper = state.bind_mapper
        if mapper is not None and issubclass(mapper.class_, SoftDeleteMixin) and not state.is_relationship_load:
            state.statement = state.statement.where(mapper.class_.deleted_at.is_(None))

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_plain(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Does nothing at all: a plain sessionmaker."""
    return async_sessionmaker(engine, expire_on_commit=False)


def soft_delete_sessionmaker_unwired(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Listener on a Session subclass that the sessionmaker is never told to use."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.execution_options.get("include_deleted", False):
            state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, expire_on_commit=False)


def soft_delete_sessionmaker_recent_only(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Hides only rows deleted more than a minute ago (a 'grace period' nobody asked for)."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.execution_options.get("include_deleted", False):
            cutoff = datetime.now(UTC) - timedelta(minutes=1)
            state.statement = state.statement.options(
                with_loader_criteria(
                    SoftDeleteMixin,
                    lambda cls: cls.deleted_at.is_(None) | (cls.deleted_at > cutoff),
                    include_aliases=True,
                )
            )

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


# ---------------------------------------------------------------- 7.3 wallet_models, withdraw, InsufficientFunds


class InsufficientFunds(ValueError):
    """The wallet does not hold enough money."""


wallets = table("wallets", column("id"), column("balance_cents"))


def _wallet_models(name: str, **opts: Any) -> Callable[[], type[DeclarativeBase]]:
    balance_type = opts.get("balance_type", Integer)
    ck = opts.get("ck", "balance_cents >= 0")
    ck_name = opts.get("ck_name", "balance_not_negative")
    server_default = opts.get("server_default", True)
    nullable = opts.get("nullable", False)

    def wallet_models() -> type[DeclarativeBase]:
        class Base(DeclarativeBase):
            metadata = MetaData(naming_convention=NAMING_CONVENTION)

        args = (CheckConstraint(ck, name=ck_name),) if ck else ()

        class Wallet(Base):
            __tablename__ = "wallets"
            __table_args__ = args
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            owner: Mapped[str] = mapped_column(String(100))
            balance_cents: Mapped[Any] = mapped_column(
                balance_type,
                nullable=nullable,
                **({"server_default": "0"} if server_default else {"default": 0}),
            )

        return Base

    wallet_models.__name__ = name
    return wallet_models


wallet_models_right = _wallet_models("wallet_models_right")
wallet_models_bigint = _wallet_models("wallet_models_bigint", balance_type=BigInteger)
wallet_models_python_default = _wallet_models("wallet_models_python_default", server_default=False)
wallet_models_float = _wallet_models("wallet_models_float", balance_type=Float)
wallet_models_no_check = _wallet_models("wallet_models_no_check", ck=None)
wallet_models_misnamed_check = _wallet_models("wallet_models_misnamed_check", ck_name="non_negative")
wallet_models_strict_check = _wallet_models("wallet_models_strict_check", ck="balance_cents > 0")
wallet_models_nullable = _wallet_models("wallet_models_nullable", nullable=True)


async def withdraw_update_returning(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    try:
        result = await session.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(balance_cents=wallets.c.balance_cents - amount_cents)
            .returning(wallets.c.balance_cents)
        )
        balance = result.scalar_one()
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise InsufficientFunds(f"wallet {wallet_id} cannot pay {amount_cents}") from exc
    return balance


async def withdraw_text(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """text() with bound parameters, then a second read of the balance in the same transaction."""
    try:
        await session.execute(
            text("UPDATE wallets SET balance_cents = balance_cents - :amount WHERE id = :id"),
            {"amount": amount_cents, "id": wallet_id},
        )
        balance = (
            await session.execute(text("SELECT balance_cents FROM wallets WHERE id = :id"), {"id": wallet_id})
        ).scalar_one()
        await session.commit()
        return int(balance)
    except IntegrityError:
        await session.rollback()
        raise InsufficientFunds("not enough") from None


async def withdraw_guarded_update(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """One UPDATE with the guard in its WHERE (the CHECK stays as the database's backstop)."""
    result = await session.execute(
        update(wallets)
        .where(wallets.c.id == wallet_id, wallets.c.balance_cents >= amount_cents)
        .values(balance_cents=wallets.c.balance_cents - amount_cents)
        .returning(wallets.c.balance_cents)
    )
    row = result.first()
    if row is None:
        await session.rollback()
        raise InsufficientFunds("not enough")
    await session.commit()
    return row[0]


async def withdraw_read_decide(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """Reads the balance, decides in Python, writes the computed value: two at once both pass."""
    balance = (
        await session.execute(select(wallets.c.balance_cents).where(wallets.c.id == wallet_id))
    ).scalar_one()
    if balance < amount_cents:
        await session.rollback()
        raise InsufficientFunds("not enough")
    new = balance - amount_cents
    await session.execute(update(wallets).where(wallets.c.id == wallet_id).values(balance_cents=new))
    await session.commit()
    return new


ONLY_ON["withdraw_read_decide"] = "postgres"  # only PostgreSQL's check sends two at once


async def withdraw_no_rollback(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """Turns the refusal into InsufficientFunds but leaves the failed transaction open."""
    try:
        result = await session.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(balance_cents=wallets.c.balance_cents - amount_cents)
            .returning(wallets.c.balance_cents)
        )
        balance = result.scalar_one()
        await session.commit()
        return balance
    except IntegrityError as exc:
        raise InsufficientFunds("not enough") from exc


async def withdraw_leaks_integrity(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """Rolls back but lets IntegrityError through instead of InsufficientFunds."""
    try:
        result = await session.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(balance_cents=wallets.c.balance_cents - amount_cents)
            .returning(wallets.c.balance_cents)
        )
        balance = result.scalar_one()
        await session.commit()
        return balance
    except IntegrityError:
        await session.rollback()
        raise


async def withdraw_no_commit(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """Never commits."""
    try:
        result = await session.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(balance_cents=wallets.c.balance_cents - amount_cents)
            .returning(wallets.c.balance_cents)
        )
        return result.scalar_one()
    except IntegrityError as exc:
        await session.rollback()
        raise InsufficientFunds("not enough") from exc


async def withdraw_returns_old(session: AsyncSession, wallet_id: int, amount_cents: int) -> int:
    """Returns the balance before the withdrawal."""
    try:
        result = await session.execute(
            update(wallets)
            .where(wallets.c.id == wallet_id)
            .values(balance_cents=wallets.c.balance_cents - amount_cents)
            .returning(wallets.c.balance_cents)
        )
        balance = result.scalar_one()
        await session.commit()
        return balance + amount_cents
    except IntegrityError as exc:
        await session.rollback()
        raise InsufficientFunds("not enough") from exc


# ---------------------------------------------------------------- 7.4 helpdesk_models


def _helpdesk(name: str, **opts: Any) -> Callable[[], list[type[DeclarativeBase]]]:
    o = {
        "invoice": "RESTRICT",
        "ticket_customer": "CASCADE",
        "agent": "SET NULL",
        "agent_nullable": True,
        "message": "CASCADE",
        "relationship": {"passive_deletes": True},
        "convention": True,
        "order": "natural",
        **opts,
    }

    def helpdesk_models() -> list[type[DeclarativeBase]]:
        class Base(DeclarativeBase):
            metadata = MetaData(naming_convention=NAMING_CONVENTION) if o["convention"] else MetaData()

        class Customer(Base):
            __tablename__ = "customers"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(100))
            if o["relationship"] is not None:
                tickets: Mapped[list[Ticket]] = relationship(**o["relationship"])

        class Agent(Base):
            __tablename__ = "agents"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(100))

        class Ticket(Base):
            __tablename__ = "tickets"
            id: Mapped[int] = mapped_column(primary_key=True)
            customer_id: Mapped[int] = mapped_column(
                ForeignKey("customers.id", ondelete=o["ticket_customer"]), index=True
            )
            agent_id: Mapped[Any] = mapped_column(
                ForeignKey("agents.id", ondelete=o["agent"]), nullable=o["agent_nullable"], index=True
            )
            title: Mapped[str] = mapped_column(String(200))

        class Message(Base):
            __tablename__ = "messages"
            id: Mapped[int] = mapped_column(primary_key=True)
            ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete=o["message"]), index=True)
            body: Mapped[str] = mapped_column(Text)

        class Invoice(Base):
            __tablename__ = "invoices"
            id: Mapped[int] = mapped_column(primary_key=True)
            customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete=o["invoice"]), index=True)
            amount_cents: Mapped[int] = mapped_column(Integer)

        models = [Customer, Agent, Ticket, Message, Invoice]
        return list(reversed(models)) if o["order"] == "reversed" else models

    helpdesk_models.__name__ = name
    return helpdesk_models


helpdesk_models_right = _helpdesk("helpdesk_models_right")
helpdesk_models_no_action_reversed = _helpdesk(
    "helpdesk_models_no_action_reversed", invoice=None, order="reversed", relationship={"passive_deletes": "all"}
)
helpdesk_models_invoice_cascade = _helpdesk("helpdesk_models_invoice_cascade", invoice="CASCADE")
helpdesk_models_ticket_restrict = _helpdesk("helpdesk_models_ticket_restrict", ticket_customer=None)
helpdesk_models_agent_not_null = _helpdesk("helpdesk_models_agent_not_null", agent_nullable=False)
helpdesk_models_agent_cascade = _helpdesk("helpdesk_models_agent_cascade", agent="CASCADE")
helpdesk_models_message_kept = _helpdesk("helpdesk_models_message_kept", message=None)
helpdesk_models_active_relationship = _helpdesk("helpdesk_models_active_relationship", relationship={})
helpdesk_models_orm_cascade = _helpdesk(
    "helpdesk_models_orm_cascade", relationship={"cascade": "all, delete-orphan"}
)
helpdesk_models_no_relationship = _helpdesk("helpdesk_models_no_relationship", relationship=None)
helpdesk_models_no_convention = _helpdesk("helpdesk_models_no_convention", convention=False)


# ---------------------------------------------------------------- red team C2: 7.2 more answers

_ORIGINAL_SYNC_SESSION_CLASS = AsyncSession.sync_session_class


def soft_delete_sessionmaker_on_sync_maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A correct alternative: the listener goes on a sync `sessionmaker` instance (events accept one and attach to
    the Session subclass it made), whose class the async sessionmaker then uses."""
    sync_maker = sessionmaker()

    @event.listens_for(sync_maker, "do_orm_execute")
    def _hide(state: Any) -> None:
        if not state.is_select:
            return
        if state.execution_options.get("include_deleted"):
            return
        state.statement = state.statement.options(
            with_loader_criteria(SoftDeleteMixin, lambda cls: cls.deleted_at.is_(None), include_aliases=True)
        )

    return async_sessionmaker(engine, sync_session_class=sync_maker.class_, expire_on_commit=False)


def soft_delete_sessionmaker_async_subclass(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """A correct alternative: an AsyncSession subclass whose `sync_session_class` attribute is the filtering
    Session, handed over as `class_=`; the listener is attached with event.listen and compares to null()."""

    class FilteringSession(Session):
        pass

    def _filter(state: Any) -> None:
        if state.is_select and state.execution_options.get("include_deleted", False) is not True:
            state.statement = state.statement.options(
                with_loader_criteria(SoftDeleteMixin, lambda cls: cls.deleted_at == null(), include_aliases=True)
            )

    event.listen(FilteringSession, "do_orm_execute", _filter)

    class FilteringAsyncSession(AsyncSession):
        sync_session_class = FilteringSession

    return async_sessionmaker(bind=engine, class_=FilteringAsyncSession)


def soft_delete_sessionmaker_cutoff_at_build(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Treats a deleted_at in the future as a scheduled deletion and hides rows 'deleted before now' — but takes now
    once, when the sessionmaker is made: a row soft-deleted after that (a second ago) still shows. Violates 'never
    show a soft-deleted row'."""
    built_at = datetime.now(UTC)

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.execution_options.get("include_deleted", False):
            state.statement = state.statement.options(
                with_loader_criteria(
                    SoftDeleteMixin,
                    lambda cls: cls.deleted_at.is_(None) | (cls.deleted_at > built_at),
                    include_aliases=True,
                )
            )

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_option_present(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Tests whether the option is present, not whether it is True: include_deleted=False (a non-default argument an
    admin screen passes when its toggle is off) also turns the filter off. Violates 'A statement with
    .execution_options(include_deleted=True) is the explicit way out' (only True is)."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and "include_deleted" not in state.execution_options:
            state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_local_options(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Reads the way out from `state.local_execution_options` (only what session.execute() was given), so a
    statement carrying .execution_options(include_deleted=True) is still filtered. Violates 'A statement with
    .execution_options(include_deleted=True) ... sees everything'."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if state.is_select and not state.local_execution_options.get("include_deleted", False):
            state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_no_propagation(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Copies the docs' 'skip relationship and column loads' guard but also sets propagate_to_loaders=False, so the
    criteria never reach lazy loads or selectinload: user.posts shows deleted posts. Violates 'relationship loads
    (selectinload, and lazy loads ...)'."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if (
            state.is_select
            and not state.is_relationship_load
            and not state.is_column_load
            and not state.execution_options.get("include_deleted", False)
        ):
            state.statement = state.statement.options(
                with_loader_criteria(
                    SoftDeleteMixin,
                    lambda cls: cls.deleted_at.is_(None),
                    include_aliases=True,
                    propagate_to_loaders=False,
                )
            )

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def _loads_soft_delete_objects(statement: Any) -> bool:
    for desc in getattr(statement, "column_descriptions", []):
        kind = desc.get("type")
        if isinstance(kind, type) and issubclass(kind, SoftDeleteMixin):
            return True
    return False


def soft_delete_sessionmaker_objects_only(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Filters only statements that load whole User/Post objects (to 'leave reports alone'): select(Post.id,
    Post.title) and rows of other models joined to posts still show deleted rows. Violates 'selects of columns'."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if (
            state.is_select
            and not state.execution_options.get("include_deleted", False)
            and _loads_soft_delete_objects(state.statement)
        ):
            state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


def soft_delete_sessionmaker_sticky_way_out(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Remembers the way out in session.info (so objects an admin query loaded can lazy-load their deleted
    children): after one include_deleted=True statement, every later plain query of that session shows deleted
    rows. Violates 'sessions never show a soft-deleted row ... without the query asking'."""

    class HidingSession(Session):
        pass

    @event.listens_for(HidingSession, "do_orm_execute")
    def _hide(state: Any) -> None:
        if not state.is_select:
            return
        if state.execution_options.get("include_deleted", False):
            state.session.info["include_deleted"] = True
        if state.session.info.get("include_deleted"):
            return
        state.statement = state.statement.options(_criteria())

    return async_sessionmaker(engine, sync_session_class=HidingSession, expire_on_commit=False)


class _PatchedHidingSession(Session):
    pass


@event.listens_for(_PatchedHidingSession, "do_orm_execute")
def _patched_hide(state: Any) -> None:
    if state.is_select and not state.execution_options.get("include_deleted", False):
        state.statement = state.statement.options(_criteria())


def soft_delete_sessionmaker_patched_default(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sets AsyncSession.sync_session_class (the class attribute) to the filtering Session: every AsyncSession of
    the process, from any sessionmaker, now filters. Violates 'Sessions made by any other sessionmaker must not
    change'."""
    AsyncSession.sync_session_class = _PatchedHidingSession
    return async_sessionmaker(engine, expire_on_commit=False)


def _undo_patch() -> None:
    AsyncSession.sync_session_class = _ORIGINAL_SYNC_SESSION_CLASS


CLEANUP["soft_delete_sessionmaker_patched_default"] = _undo_patch


# ---------------------------------------------------------------- red team C2: 7.4 more answers


def _helpdesk_c2(name: str, **opts: Any) -> Callable[[], Any]:
    o: dict[str, Any] = {
        "invoice": "RESTRICT",
        "invoice_nullable": False,
        "ticket_customer": "CASCADE",
        "ticket_customer_nullable": False,
        "agent": "SET NULL",
        "message": "CASCADE",
        "message_nullable": False,
        "relationship": {"passive_deletes": True},
        "invoices_relationship": None,
        "returns": "list",
        **opts,
    }

    def helpdesk_models() -> Any:
        class Base(DeclarativeBase):
            metadata = MetaData(naming_convention=NAMING_CONVENTION)

        class Customer(Base):
            __tablename__ = "customers"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(100))
            tickets: Mapped[list[Ticket]] = relationship(**o["relationship"])
            if o["invoices_relationship"] is not None:
                invoices: Mapped[list[Invoice]] = relationship(**o["invoices_relationship"])

        class Agent(Base):
            __tablename__ = "agents"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str] = mapped_column(String(100))

        class Ticket(Base):
            __tablename__ = "tickets"
            id: Mapped[int] = mapped_column(primary_key=True)
            customer_id: Mapped[Any] = mapped_column(
                ForeignKey("customers.id", ondelete=o["ticket_customer"]),
                nullable=o["ticket_customer_nullable"],
                index=True,
            )
            agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete=o["agent"]), index=True)
            title: Mapped[str] = mapped_column(String(200))

        class Message(Base):
            __tablename__ = "messages"
            id: Mapped[int] = mapped_column(primary_key=True)
            ticket_id: Mapped[Any] = mapped_column(
                ForeignKey("tickets.id", ondelete=o["message"]), nullable=o["message_nullable"], index=True
            )
            body: Mapped[str] = mapped_column(Text)

        class Invoice(Base):
            __tablename__ = "invoices"
            id: Mapped[int] = mapped_column(primary_key=True)
            customer_id: Mapped[Any] = mapped_column(
                ForeignKey("customers.id", ondelete=o["invoice"]), nullable=o["invoice_nullable"], index=True
            )
            amount_cents: Mapped[int] = mapped_column(Integer)

        if o["returns"] == "base":
            return Base
        return [Customer, Agent, Ticket, Message, Invoice]

    helpdesk_models.__name__ = name
    return helpdesk_models


helpdesk_models_orm_cascade_passive = _helpdesk_c2(
    "helpdesk_models_orm_cascade_passive", relationship={"cascade": "all, delete-orphan", "passive_deletes": True}
)
helpdesk_models_viewonly_relationship = _helpdesk_c2(
    "helpdesk_models_viewonly_relationship", relationship={"viewonly": True}
)
helpdesk_models_invoice_set_null = _helpdesk_c2(
    "helpdesk_models_invoice_set_null", invoice="SET NULL", invoice_nullable=True
)
helpdesk_models_ticket_set_null = _helpdesk_c2(
    "helpdesk_models_ticket_set_null", ticket_customer="SET NULL", ticket_customer_nullable=True
)
helpdesk_models_agent_restrict = _helpdesk_c2("helpdesk_models_agent_restrict", agent="RESTRICT")
helpdesk_models_message_set_null = _helpdesk_c2(
    "helpdesk_models_message_set_null", message="SET NULL", message_nullable=True
)
helpdesk_models_selectin_tickets = _helpdesk_c2(
    "helpdesk_models_selectin_tickets", relationship={"passive_deletes": True, "lazy": "selectin"}
)
helpdesk_models_returns_base = _helpdesk_c2("helpdesk_models_returns_base", returns="base")
helpdesk_models_invoices_orm_cascade = _helpdesk_c2(
    "helpdesk_models_invoices_orm_cascade", invoices_relationship={"cascade": "all, delete"}
)

_ID = BigInteger().with_variant(Integer, "sqlite")


def helpdesk_models_bigint_back_populates() -> list[type[DeclarativeBase]]:
    """A correct alternative: BigInteger keys (Integer on SQLite, so they still autoincrement), Text names,
    relationships on both sides with back_populates, Agent.tickets passive too, NO ACTION spelled out for
    invoices, and the list in another order."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    class Customer(Base):
        __tablename__ = "customers"
        id: Mapped[int] = mapped_column(_ID, primary_key=True)
        name: Mapped[str] = mapped_column(Text)
        tickets: Mapped[list[HdTicket]] = relationship(back_populates="customer", passive_deletes=True)

    class Agent(Base):
        __tablename__ = "agents"
        id: Mapped[int] = mapped_column(_ID, primary_key=True)
        name: Mapped[str] = mapped_column(Text)
        tickets: Mapped[list[HdTicket]] = relationship(back_populates="agent", passive_deletes=True)

    class HdTicket(Base):
        __tablename__ = "tickets"
        id: Mapped[int] = mapped_column(_ID, primary_key=True)
        customer_id: Mapped[int] = mapped_column(
            _ID, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True
        )
        agent_id: Mapped[int | None] = mapped_column(
            _ID, ForeignKey("agents.id", ondelete="SET NULL"), nullable=True, index=True
        )
        title: Mapped[str] = mapped_column(Text)
        customer: Mapped[Customer] = relationship(back_populates="tickets")
        agent: Mapped[Agent | None] = relationship(back_populates="tickets")

    class HdMessage(Base):
        __tablename__ = "messages"
        id: Mapped[int] = mapped_column(_ID, primary_key=True)
        ticket_id: Mapped[int] = mapped_column(_ID, ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
        body: Mapped[str] = mapped_column(Text)

    class HdInvoice(Base):
        __tablename__ = "invoices"
        id: Mapped[int] = mapped_column(_ID, primary_key=True)
        customer_id: Mapped[int] = mapped_column(_ID, ForeignKey("customers.id", ondelete="NO ACTION"), index=True)
        amount_cents: Mapped[int] = mapped_column(BigInteger)

    return [HdInvoice, HdMessage, HdTicket, Agent, Customer]


CASES = [
    # 7.1
    Case("7.1", (project_models_reference,), "pass", "every sentence of the spec"),
    # blind verdict: FAILED a correct answer (the pair written (email, team_id) gets the name uq_members_email_team_id); fixed in fab39e2: either order of the pair is accepted
    Case(
        "7.1",
        (project_models_core_style,),
        "pass",
        "classic Column(), func.current_timestamp(), text(\"'member'\"), (email, team_id)",
    ),
    Case(
        "7.1",
        (project_models_named_indexes,),
        "pass",
        "Index() objects named as the convention would, CURRENT_TIMESTAMP",
    ),
    Case("7.1", (project_models_shared_base,), "fail", "'a new declarative base' / 'No other tables'"),
    Case("7.1", (project_models_naive_created,), "fail", "'created_at a timezone-aware timestamp'"),
    Case("7.1", (project_models_python_created,), "fail", "'filled in by the database'"),
    Case("7.1", (project_models_member_no_cascade,), "fail", "'deleting a team deletes its members'"),
    Case("7.1", (project_models_task_team_restrict,), "fail", "'deleting a team deletes its tasks'"),
    Case("7.1", (project_models_assignee_cascade,), "fail", "'deleting a member leaves their tasks unassigned'"),
    Case("7.1", (project_models_email_unique,), "fail", "'The same email may belong to several teams'"),
    Case("7.1", (project_models_role_ck_misnamed,), "fail", "'a CHECK named role'"),
    Case("7.1", (project_models_role_python_default,), "fail", "\"'member' unless given (by the database)\""),
    Case("7.1", (project_models_assignee_unindexed,), "fail", "'Every foreign key is indexed'"),
    Case("7.1", (project_models_extra_column,), "fail", "'No other tables or columns'"),
    # blind verdict: failed, but blamed the defaults (estimate 0 was inserted with them); fixed in fab39e2: its own message
    Case("7.1", (project_models_estimate_positive,), "fail", "'never negative' (0 allowed)"),
    Case("7.1", (project_models_done_python_default,), "fail", "'false unless given (by the database)'"),
    Case("7.1", (project_models_name_not_unique,), "fail", "'name ... unique'"),
    Case("7.1", (project_models_no_convention,), "fail", "'MetaData uses the course's naming convention'"),
    Case("7.1", (project_models_name_too_long,), "fail", "'name up to 80 characters'"),
    # 7.2
    Case("7.2", (soft_delete_sessionmaker_listener,), "pass", "listener on a Session subclass, every select"),
    Case(
        "7.2",
        (soft_delete_sessionmaker_docs_style,),
        "pass",
        "top-level selects only; criteria propagate to loaders; == None",
    ),
    Case(
        "7.2",
        (soft_delete_sessionmaker_global,),
        "fail",
        "'Sessions made by any other sessionmaker must not change'",
    ),
    Case("7.2", (soft_delete_sessionmaker_no_aliases,), "fail", "'aliases'"),
    Case("7.2", (soft_delete_sessionmaker_no_way_out,), "fail", "'include_deleted=True ... sees everything'"),
    Case(
        "7.2",
        (soft_delete_sessionmaker_users_only,),
        "fail",
        "'any model built on SoftDeleteMixin (users and posts)'",
    ),
    Case("7.2", (soft_delete_sessionmaker_where_main,), "fail", "'joins ... relationship loads'"),
    Case("7.2", (soft_delete_sessionmaker_plain,), "fail", "'never show a soft-deleted row' (does nothing)"),
    Case(
        "7.2", (soft_delete_sessionmaker_unwired,), "fail", "the listener never reaches the returned sessionmaker"
    ),
    Case("7.2", (soft_delete_sessionmaker_recent_only,), "fail", "'a post deleted a second ago' still shows"),
    # 7.3
    Case(
        "7.3",
        (wallet_models_right, withdraw_update_returning, InsufficientFunds),
        "pass",
        "CHECK decides, UPDATE ... RETURNING",
    ),
    Case(
        "7.3",
        (wallet_models_bigint, withdraw_text, InsufficientFunds),
        "pass",
        "BigInteger cents, text() UPDATE then SELECT",
    ),
    Case(
        "7.3",
        (wallet_models_python_default, withdraw_update_returning, InsufficientFunds),
        "pass",
        "'0 unless given' does not say by the database (7.1 does): a Python-side default meets it",
    ),
    Case(
        "7.3",
        (wallet_models_right, withdraw_guarded_update, InsufficientFunds),
        "pass",
        "a guarded UPDATE is still one UPDATE that decides atomically; the CHECK stays the backstop",
    ),
    Case(
        "7.3",
        (wallet_models_float, withdraw_update_returning, InsufficientFunds),
        "fail",
        "'the balance in integer cents'",
    ),
    Case(
        "7.3",
        (wallet_models_no_check, withdraw_update_returning, InsufficientFunds),
        "fail",
        "'which the database refuses to let go below zero'",
    ),
    # blind verdict: passed (the CHECK's name was never read); fixed in fab39e2
    Case(
        "7.3",
        (wallet_models_misnamed_check, withdraw_update_returning, InsufficientFunds),
        "fail",
        "'a CHECK named balance_not_negative'",
    ),
    Case(
        "7.3",
        (wallet_models_strict_check, withdraw_update_returning, InsufficientFunds),
        "fail",
        "'withdraws a whole balance down to exactly 0'",
    ),
    Case(
        "7.3",
        (wallet_models_nullable, withdraw_update_returning, InsufficientFunds),
        "fail",
        "'balance_cents ... required'",
    ),
    Case(
        "7.3",
        (wallet_models_right, withdraw_read_decide, InsufficientFunds),
        "fail",
        "'must not read the balance first and decide in Python'",
    ),
    Case(
        "7.3",
        (wallet_models_right, withdraw_no_rollback, InsufficientFunds),
        "fail",
        "'leave it unchanged, roll back, and raise'",
    ),
    Case(
        "7.3",
        (wallet_models_right, withdraw_leaks_integrity, InsufficientFunds),
        "fail",
        "'raise InsufficientFunds'",
    ),
    Case(
        "7.3",
        (wallet_models_right, withdraw_no_commit, InsufficientFunds),
        "fail",
        "'take the amount from the wallet and commit'",
    ),
    Case(
        "7.3", (wallet_models_right, withdraw_returns_old, InsufficientFunds), "fail", "'return the new balance'"
    ),
    # 7.4
    Case("7.4", (helpdesk_models_right,), "pass", "RESTRICT / CASCADE / SET NULL / CASCADE, passive_deletes"),
    Case(
        "7.4",
        (helpdesk_models_no_action_reversed,),
        "pass",
        "NO ACTION also refuses; another list order; passive_deletes='all'",
    ),
    Case("7.4", (helpdesk_models_invoice_cascade,), "fail", "'accounting must keep every invoice'"),
    Case(
        "7.4",
        (helpdesk_models_ticket_restrict,),
        "fail",
        "'Deleting a customer (who has no invoices) deletes their tickets'",
    ),
    Case(
        "7.4",
        (helpdesk_models_agent_not_null,),
        "fail",
        "'their tickets stay, unassigned' (a NOT NULL column cannot be emptied)",
    ),
    Case("7.4", (helpdesk_models_agent_cascade,), "fail", "'When an agent leaves ... their tickets stay'"),
    Case("7.4", (helpdesk_models_message_kept,), "fail", "'Deleting a ticket deletes its messages'"),
    Case(
        "7.4",
        (helpdesk_models_active_relationship,),
        "fail",
        "'must leave the deleting to the database: it must not load the customer's tickets'",
    ),
    Case("7.4", (helpdesk_models_orm_cascade,), "fail", "ORM cascade loads the tickets to delete them"),
    Case("7.4", (helpdesk_models_no_relationship,), "fail", "'The customer model has a tickets relationship'"),
    # blind verdict: passed (the naming convention was never looked at); fixed in fab39e2: foreign key names
    Case(
        "7.4", (helpdesk_models_no_convention,), "fail", "'on a new declarative base (with the naming convention)'"
    ),
    # red team C2: 7.2 (blind, committed before running)
    Case(
        "7.2",
        (soft_delete_sessionmaker_on_sync_maker,),
        "pass",
        "listener on a sync sessionmaker instance, its class_ as sync_session_class",
    ),
    Case(
        "7.2",
        (soft_delete_sessionmaker_async_subclass,),
        "pass",
        "AsyncSession subclass with sync_session_class, class_=, event.listen, == null()",
    ),
    # blind verdict: failed, but the message blamed the model coverage alone ('not just posts'); the flaw is the time
    # (the message now names both)
    Case(
        "7.2",
        (soft_delete_sessionmaker_cutoff_at_build,),
        "fail",
        "'never show a soft-deleted row': rows deleted after the sessionmaker was made show",
    ),
    # blind verdict: PASSED a wrong answer (include_deleted=False opens the filter too); fixed, the check tries False
    Case(
        "7.2",
        (soft_delete_sessionmaker_option_present,),
        "fail",
        "'include_deleted=True is the explicit way out': include_deleted=False also opens it",
    ),
    Case(
        "7.2",
        (soft_delete_sessionmaker_local_options,),
        "fail",
        "'A statement with .execution_options(include_deleted=True) ... sees everything'",
    ),
    Case(
        "7.2",
        (soft_delete_sessionmaker_no_propagation,),
        "fail",
        "'relationship loads (selectinload, and lazy loads)': propagate_to_loaders=False",
    ),
    Case("7.2", (soft_delete_sessionmaker_objects_only,), "fail", "'selects of columns'"),
    # blind verdict: PASSED a wrong answer (after one include_deleted=True query, plain queries see deleted rows);
    # fixed, the check runs a plain query after an admin one in the same session
    Case(
        "7.2",
        (soft_delete_sessionmaker_sticky_way_out,),
        "fail",
        "'without the query asking': one admin query opens the whole session",
    ),
    Case(
        "7.2",
        (soft_delete_sessionmaker_patched_default,),
        "fail",
        "'Sessions made by any other sessionmaker must not change' (AsyncSession.sync_session_class patched)",
    ),
    # red team C2: 7.4 (blind, committed before running)
    Case(
        "7.4",
        (helpdesk_models_orm_cascade_passive,),
        "pass",
        "cascade='all, delete-orphan' with passive_deletes=True: the ORM does not load unloaded tickets",
    ),
    Case(
        "7.4",
        (helpdesk_models_viewonly_relationship,),
        "pass",
        "a viewonly tickets relationship: the ORM never touches tickets on delete, the database cascades",
    ),
    Case(
        "7.4",
        (helpdesk_models_bigint_back_populates,),
        "pass",
        "BigInteger keys (Integer variant on SQLite), back_populates, NO ACTION, another order",
    ),
    Case(
        "7.4",
        (helpdesk_models_invoice_set_null,),
        "fail",
        "'A customer who has invoices can never be deleted' (SET NULL keeps the invoices but deletes the customer)",
    ),
    Case(
        "7.4",
        (helpdesk_models_ticket_set_null,),
        "fail",
        "'Deleting a customer ... deletes their tickets' (SET NULL orphans them)",
    ),
    Case(
        "7.4",
        (helpdesk_models_agent_restrict,),
        "fail",
        "'When an agent leaves (is deleted), their tickets stay, unassigned' (RESTRICT refuses the delete)",
    ),
    Case(
        "7.4",
        (helpdesk_models_message_set_null,),
        "fail",
        "'Deleting a ticket deletes its messages' (SET NULL orphans them)",
    ),
    Case(
        "7.4",
        (helpdesk_models_selectin_tickets,),
        "fail",
        "'it must not load the customer's tickets first' (lazy='selectin')",
    ),
    Case(
        "7.4",
        (helpdesk_models_returns_base,),
        "fail",
        "'return the list of the five model classes' (returns the base)",
    ),
    # blind verdict: PASSED a wrong answer (session.delete() of a customer with invoices deletes both); fixed, the
    # check deletes that customer through the ORM too
    Case(
        "7.4",
        (helpdesk_models_invoices_orm_cascade,),
        "fail",
        "'A customer who has invoices can never be deleted' (an ORM delete cascade on Customer.invoices)",
    ),
]

# A piece of the ❌ message each `fail` case must give (chosen from the messages of the blind run, reviewed; none
# where the flaw can show in more than one way under concurrency).
FRAGMENTS: dict[str, str] = {
    "7.2-fail-soft_delete_sessionmaker_option_present": "a query with .execution_options(include_deleted=False)",
    "7.2-fail-soft_delete_sessionmaker_sticky_way_out": "a plain query run after an include_deleted=True one",
    "7.4-fail-helpdesk_models_invoices_orm_cascade": "session.delete(customer) deleted a customer who has an invoice",
    "7.2-fail-soft_delete_sessionmaker_local_options": "with .execution_options(include_deleted=True) the admin view got",
    "7.2-fail-soft_delete_sessionmaker_objects_only": "a plain select(Post.id) filtered on the author returned",
    "7.2-fail-soft_delete_sessionmaker_no_propagation": "user.posts (lazy load) returned soft-deleted post(s)",
    "7.2-fail-soft_delete_sessionmaker_patched_default": "a session from another sessionmaker now hides deleted rows",
    "7.4-fail-helpdesk_models_invoice_set_null": "a customer who has an invoice was deleted: invoices must be kept",
    "7.4-fail-helpdesk_models_ticket_set_null": "deleting a customer left their tickets behind",
    "7.4-fail-helpdesk_models_agent_restrict": "the database refused to let the agent go",
    "7.4-fail-helpdesk_models_message_set_null": "the messages of a deleted customer's tickets are still there",
    "7.4-fail-helpdesk_models_selectin_tickets": "the ORM loaded the tickets and tried to empty their",
    "7.4-fail-helpdesk_models_returns_base": "return the list of your five model classes",
    "7.1-fail-project_models_assignee_cascade": "tasks.assignee_id says ON DELETE CASCADE, but the spec says",
    "7.1-fail-project_models_assignee_unindexed": "no index starts with tasks.assignee_id: the database",
    "7.1-fail-project_models_done_python_default": "need defaults in the database",
    "7.1-fail-project_models_email_unique": "unique in members: the same email may join several teams,",
    "7.1-fail-project_models_estimate_positive": "refused a task with estimate_minutes = 0",
    "7.1-fail-project_models_extra_column": "tasks has a column the spec does not ask for: updated_at",
    "7.1-fail-project_models_member_no_cascade": "members.team_id says ON DELETE NO ACTION, but the spec says",
    "7.1-fail-project_models_naive_created": "teams.created_at is a timestamp without time zone: declare",
    "7.1-fail-project_models_name_not_unique": "unique in teams",
    "7.1-fail-project_models_name_too_long": "teams.name is VARCHAR",
    "7.1-fail-project_models_no_convention": "naming convention, which names it",
    "7.1-fail-project_models_python_created": "need defaults in the database",
    "7.1-fail-project_models_role_ck_misnamed": "name it as the spec says, through the naming convention",
    "7.1-fail-project_models_role_python_default": "need defaults in the database",
    "7.1-fail-project_models_shared_base": "created no table members, tasks, teams: name the tables",
    "7.1-fail-project_models_task_team_restrict": "tasks.team_id says ON DELETE RESTRICT, but the spec says",
    "7.2-fail-soft_delete_sessionmaker_global": "Session class, so it filters every session",
    "7.2-fail-soft_delete_sessionmaker_no_aliases": "every ORM SELECT these sessions run must leave deleted rows",
    "7.2-fail-soft_delete_sessionmaker_no_way_out": "posts: that option is the way out of the filter, and must",
    "7.2-fail-soft_delete_sessionmaker_plain": "every ORM SELECT these sessions run must leave deleted rows",
    "7.2-fail-soft_delete_sessionmaker_recent_only": "every ORM SELECT these sessions run must leave deleted rows",
    "7.2-fail-soft_delete_sessionmaker_unwired": "every ORM SELECT these sessions run must leave deleted rows",
    "7.2-fail-soft_delete_sessionmaker_users_only": "every ORM SELECT these sessions run must leave deleted rows",
    "7.2-fail-soft_delete_sessionmaker_where_main": "every ORM SELECT these sessions run must leave deleted rows",
    "7.3-fail-wallet_models_float+withdraw_update_returning+InsufficientFunds": "money in cents is an integer — a float cannot even hold",
    "7.3-fail-wallet_models_misnamed_check+withdraw_update_returning+InsufficientFunds": "no CHECK constraint named ck_wallets_balance_not_negative",
    "7.3-fail-wallet_models_no_check+withdraw_update_returning+InsufficientFunds": "a plain UPDATE setting a balance to -1 was accepted",
    "7.3-fail-wallet_models_nullable+withdraw_update_returning+InsufficientFunds": "balance_cents accepts NULL: a wallet always has a balance",
    "7.3-fail-wallet_models_right+withdraw_leaks_integrity+InsufficientFunds": "IntegrityError escape: catch it, roll the session back",
    "7.3-fail-wallet_models_right+withdraw_no_commit+InsufficientFunds": "withdraw must commit its change",
    "7.3-fail-wallet_models_right+withdraw_no_rollback+InsufficientFunds": "after a refused withdrawal the session still has a failed",
    "7.3-fail-wallet_models_right+withdraw_read_decide+InsufficientFunds": "withdraw read the balance before updating it: between that",
    "7.3-fail-wallet_models_right+withdraw_returns_old+InsufficientFunds": "it should return the new balance",
    "7.3-fail-wallet_models_strict_check+withdraw_update_returning+InsufficientFunds": "is allowed, only what is below zero is refused",
    "7.4-fail-helpdesk_models_active_relationship": "the ORM loaded the tickets and tried to empty their",
    "7.4-fail-helpdesk_models_agent_cascade": "deleting an agent deleted their tickets: tickets must stay,",
    "7.4-fail-helpdesk_models_agent_not_null": "inserting customers, agents, tickets, messages and invoices",
    "7.4-fail-helpdesk_models_invoice_cascade": "a customer who has an invoice was deleted — and the invoice",
    "7.4-fail-helpdesk_models_message_kept": "deleting a customer must delete their tickets and those",
    "7.4-fail-helpdesk_models_no_convention": "whose MetaData has the course's naming convention",
    "7.4-fail-helpdesk_models_no_relationship": "the customers model has no `tickets` relationship",
    "7.4-fail-helpdesk_models_orm_cascade": "tickets into Python: with ON DELETE CASCADE the database",
    "7.4-fail-helpdesk_models_ticket_restrict": "deleting a customer must delete their tickets and those",
}
CASES = [replace(case, fragment=FRAGMENTS.get(case.id, "")) for case in CASES]
