"""The small schemas chapter 7's lesson builds beside the course's tables, on their own MetaData.

Each demo table starts with `demo_` so it can never be mistaken for (or collide with) the domain schema,
and the course's naming convention names every constraint, as it does in course/domain/models.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    func,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from course.domain.models import NAMING_CONVENTION, UTCDateTime, utcnow


class DemoBase(DeclarativeBase):
    """Declarative base for the lesson's demo tables, with the course's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- foreign keys: one parent, three kinds of children ---------------------------------------------------------


class Customer(DemoBase):
    __tablename__ = "demo_customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))

    # passive_deletes: the database deletes the tickets (ON DELETE CASCADE); the ORM need not load them first.
    tickets: Mapped[list[Ticket]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )


class Agent(DemoBase):
    __tablename__ = "demo_agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Ticket(DemoBase):
    __tablename__ = "demo_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("demo_customers.id", ondelete="CASCADE"), index=True)
    # Nullable: SET NULL needs somewhere to put the NULL.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("demo_agents.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(200))

    customer: Mapped[Customer] = relationship(back_populates="tickets")


class Invoice(DemoBase):
    __tablename__ = "demo_invoices"
    __table_args__ = (CheckConstraint("amount_cents >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("demo_customers.id", ondelete="RESTRICT"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)


# --- ORM cascade against database cascade ------------------------------------------------------------------------


class Folder(DemoBase):
    """Its files are deleted by the ORM: it loads them, then deletes them, then the folder."""

    __tablename__ = "demo_folders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    files: Mapped[list[File]] = relationship(cascade="all, delete-orphan")


class File(DemoBase):
    __tablename__ = "demo_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("demo_folders.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))


class Album(DemoBase):
    """Its photos are deleted by the database: one DELETE, nothing loaded."""

    __tablename__ = "demo_albums"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photos: Mapped[list[Photo]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Photo(DemoBase):
    __tablename__ = "demo_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    album_id: Mapped[int] = mapped_column(ForeignKey("demo_albums.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))


# --- constraints, money, timestamps, soft delete -----------------------------------------------------------------


class Wallet(DemoBase):
    __tablename__ = "demo_wallets"
    __table_args__ = (CheckConstraint("balance_cents >= 0", name="balance_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_email: Mapped[str] = mapped_column(String(254), unique=True)
    # BIGINT: 2^31 cents is only about 21 million in money.
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerLine(DemoBase):
    """One amount stored three ways, to compare their sums."""

    __tablename__ = "demo_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount_float: Mapped[float] = mapped_column(Float)
    amount_cents: Mapped[int] = mapped_column(BigInteger)


class Note(DemoBase):
    """created_at from the server's clock; updated_at from Python's, refreshed by the ORM on every UPDATE."""

    __tablename__ = "demo_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Account(DemoBase):
    """A soft-deletable account whose email is unique among live accounts only."""

    __tablename__ = "demo_accounts"
    __table_args__ = (
        # A partial unique index: a deleted account's email may be registered again.
        Index(
            "uq_demo_accounts_email_live",
            "email",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


async def create_demo_tables(engine: AsyncEngine) -> list[str]:
    """Create (or re-create) every demo table; returns their names."""
    async with engine.begin() as conn:
        await conn.run_sync(DemoBase.metadata.drop_all)
        await conn.run_sync(DemoBase.metadata.create_all)
    return sorted(DemoBase.metadata.tables)


async def foreign_keys_enforced(conn: AsyncConnection) -> bool:
    """Does this connection enforce foreign keys? Always on PostgreSQL; on SQLite only with the pragma on."""
    if conn.dialect.name != "sqlite":
        return True
    return bool(await conn.scalar(text("PRAGMA foreign_keys")))


def error_line(exc: BaseException) -> str:
    """The database's own message for a refused statement: the first line of the driver's error."""
    original = getattr(exc, "orig", exc)
    return f"{type(original).__name__}: {str(original).splitlines()[0]}"
