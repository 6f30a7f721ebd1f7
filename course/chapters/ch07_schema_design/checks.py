"""Checks for chapter 7 (schema design): each builds the learner's schema or session and judges what the database does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, MetaData, Table, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session

from course.chapters.ch07_schema_design.catalog import (
    create_all,
    error_line,
    metadata_of,
    scratch_database,
    type_kind,
)
from course.chapters.ch07_schema_design.ondelete import judge_7_4
from course.chapters.ch07_schema_design.soft_delete import judge_7_2, listeners
from course.chapters.ch07_schema_design.spec import judge_7_1
from course.chapters.registry import chapter
from course.checks.base import CheckDB, Registry, call_learner, expect, fail
from course.tools.instrument import count_queries

registry = Registry(chapter(7))
check = registry.check


# --- 7.1 models from a written spec ----------------------------------------------------------------------------


@registry.exercise("7.1")
async def _check_7_1(project_models: Callable[[], Any], db: CheckDB) -> None:
    metadata = metadata_of(await call_learner(project_models), "project_models")
    async with scratch_database(db) as scratch:
        await create_all(scratch, metadata, "project_models")
        await judge_7_1(scratch, metadata, "project_models")


# --- 7.2 a soft-delete filter that cannot be forgotten ---------------------------------------------------------


@registry.exercise("7.2")
async def _check_7_2(soft_delete_sessionmaker: Callable[..., Any], db: CheckDB) -> None:
    before = listeners()
    try:
        factory = await call_learner(soft_delete_sessionmaker, db.engine)
        expect(
            isinstance(factory, async_sessionmaker),
            f"soft_delete_sessionmaker returned {type(factory).__name__}: return an async_sessionmaker",
        )
        leaked = listeners() - before
        expect(
            not leaked,
            "your do_orm_execute listener is registered on SQLAlchemy's own Session class, so it filters every "
            "session in the program. Register it on a Session subclass of your own (sync_session_class=...)",
        )
        await judge_7_2(factory, db)
    finally:
        # A listener on the global Session would outlive the check and change every later session: remove it.
        for listener in listeners() - before:
            event.remove(Session, "do_orm_execute", listener)


# --- 7.3 money that cannot go negative ------------------------------------------------------------------------

WALLETS = {1: 1_000, 2: 30, 3: 0, 4: 100}


async def _balance(engine: Any, wallet_id: int) -> int:
    wallets = Table("wallets", MetaData(), Column("id"), Column("balance_cents"))
    async with engine.connect() as conn:
        return int(await conn.scalar(select(wallets.c.balance_cents).where(wallets.c.id == wallet_id)))


async def _withdraw_ok(
    withdraw: Any, insufficient: type, Session: Any, engine: Any, wallet_id: int, amount: int, left: int
) -> None:
    async with Session() as session:
        with count_queries(engine) as sent:
            try:
                result = await call_learner(withdraw, session, wallet_id, amount)
            except Exception as exc:  # noqa: BLE001 - a refusal here is judged, anything else reported as is
                if not isinstance(getattr(exc, "original", exc), insufficient):
                    raise
                fail(
                    f"withdrawing {amount} cents from a balance of {amount + left} was refused: it leaves {left}, "
                    "and a balance of exactly 0 is allowed (the CHECK refuses only what is below zero)"
                )
    with_sent = [" ".join(s.split()).upper() for s in sent.statements]
    first_update = next((i for i, s in enumerate(with_sent) if s.startswith("UPDATE")), None)
    expect(first_update is not None, "withdraw sent no UPDATE: take the money with one UPDATE statement")
    reads = [s for s in with_sent[:first_update] if s.startswith("SELECT")]
    if any("FOR UPDATE" in s for s in reads):
        fail(
            "withdraw locks the row and reads the balance before updating it: safe, but it decides in Python and "
            "costs a round trip more. The exercise asks for one UPDATE that does the arithmetic, with the CHECK "
            "refusing a negative result"
        )
    expect(
        not reads,
        "withdraw read the balance before updating it: between that SELECT and the UPDATE another withdrawal can "
        "take the same money. Let one UPDATE do the arithmetic (balance_cents = balance_cents - :amount) and the "
        "CHECK refuse a negative result",
    )
    expect(
        await _balance(engine, wallet_id) == left,
        f"after withdrawing {amount} cents the balance is {await _balance(engine, wallet_id)}, not {left}: "
        "withdraw must commit its change",
    )
    expect(result == left, f"withdraw returned {result!r}; it should return the new balance, {left}")


async def _withdraw_refused(
    withdraw: Any, insufficient: type, Session: Any, engine: Any, wallet_id: int, amount: int
) -> None:
    before = await _balance(engine, wallet_id)
    async with Session() as session:
        try:
            await call_learner(withdraw, session, wallet_id, amount)
        except Exception as exc:  # noqa: BLE001 - the learner's exception, judged by type below
            original = getattr(exc, "original", exc)
            if isinstance(original, IntegrityError):
                fail(
                    f"withdrawing {amount} cents from {before} let the database's IntegrityError escape: catch it, "
                    "roll the session back and raise InsufficientFunds, which the caller can answer (HTTP 409)"
                )
            if not isinstance(original, insufficient):
                raise
        else:
            fail(
                f"withdrawing {amount} cents from a balance of {before} did not raise InsufficientFunds "
                f"(the balance is now {await _balance(engine, wallet_id)})"
            )
        expect(
            not session.in_transaction(),
            "after a refused withdrawal the session still has a failed transaction open: roll it back before "
            "raising InsufficientFunds, so the caller can use the session again",
        )
    expect(await _balance(engine, wallet_id) == before, "a refused withdrawal changed the balance")


@registry.exercise("7.3")
async def _check_7_3(wallet_models: Callable[[], Any], withdraw: Any, insufficient: Any, db: CheckDB) -> None:
    expect(
        isinstance(insufficient, type) and issubclass(insufficient, Exception),
        "the third name given to check must be the InsufficientFunds exception class",
    )
    metadata = metadata_of(await call_learner(wallet_models), "wallet_models")
    expect("wallets" in metadata.tables, "wallet_models() defines no wallets table")
    async with scratch_database(db) as scratch:
        await create_all(scratch, metadata, "wallet_models")
        column = (await scratch.tables())["wallets"].columns.get("balance_cents")
        if column is None:
            fail("the wallets table has no balance_cents column")
        kind = type_kind(column)
        expect(
            kind == "integer",
            f"balance_cents is stored as {column['type']} ({kind}): money in cents is an integer "
            + ("— a float cannot even hold 0.10 exactly" if kind == "float" else ""),
        )
        expect(not column["nullable"], "balance_cents accepts NULL: a wallet always has a balance")
        wallets = Table("wallets", MetaData(), Column("id"), Column("owner"), Column("balance_cents"))
        try:
            async with scratch.engine.begin() as conn:
                rows = [{"id": i, "owner": f"owner {i}", "balance_cents": b} for i, b in WALLETS.items()]
                await conn.execute(insert(wallets), rows)
        except IntegrityError as exc:
            fail(
                f"the database refused the check's wallets, one of them with a balance of 0 ({error_line(exc)}): "
                "a balance of exactly 0 is allowed, only what is below zero is refused"
            )
        try:
            async with scratch.engine.begin() as conn:
                await conn.execute(update(wallets).where(wallets.c.id == 3).values(balance_cents=-1))
            fail(
                "a plain UPDATE setting a balance to -1 was accepted: the rule must live in the database "
                "(a CHECK constraint), where every client and every bug meets it"
            )
        except IntegrityError:
            pass
        checks = sorted(name or "(unnamed)" for name, _ in (await scratch.tables())["wallets"].checks)
        expect(
            "ck_wallets_balance_not_negative" in checks,
            f"no CHECK constraint named ck_wallets_balance_not_negative on wallets (found: {checks or 'none'}): "
            "name it balance_not_negative, and the naming convention prefixes it",
        )
        Session = async_sessionmaker(scratch.engine, expire_on_commit=False)
        await _withdraw_ok(withdraw, insufficient, Session, scratch.engine, 1, 999, 1)
        await _withdraw_refused(withdraw, insufficient, Session, scratch.engine, 1, 2)
        await _withdraw_ok(withdraw, insufficient, Session, scratch.engine, 2, 30, 0)
        await _withdraw_refused(withdraw, insufficient, Session, scratch.engine, 3, 1)
        if db.dialect == "postgresql":
            await _concurrent(withdraw, insufficient, Session, scratch.engine)


async def _concurrent(withdraw: Any, insufficient: type, Session: Any, engine: Any) -> None:
    """Two withdrawals of 70 from 100 at the same time: exactly one may succeed."""

    async def attempt() -> bool:
        async with Session() as session:
            try:
                await call_learner(withdraw, session, 4, 70)
            except Exception as exc:  # noqa: BLE001 - InsufficientFunds is the expected refusal
                if isinstance(getattr(exc, "original", exc), insufficient):
                    return False
                raise
            return True

    outcomes = await asyncio.wait_for(asyncio.gather(attempt(), attempt()), 20)
    left = await _balance(engine, 4)
    expect(
        outcomes.count(True) == 1 and left == 30,
        f"two withdrawals of 70 from 100 ran at the same time: {outcomes.count(True)} succeeded and the "
        f"balance is {left}. Exactly one may succeed: do the arithmetic in the UPDATE so the second one sees "
        "the first one's result",
    )


# --- 7.4 ON DELETE rules for a scenario ------------------------------------------------------------------------


@registry.exercise("7.4")
async def _check_7_4(helpdesk_models: Callable[[], Any], db: CheckDB) -> None:
    models = await call_learner(helpdesk_models)
    expect(
        isinstance(models, list | tuple) and models and all(isinstance(m, type) for m in models),
        f"helpdesk_models() returned {type(models).__name__}: return the list of your five model classes",
    )
    expect(
        all(hasattr(m, "__mapper__") for m in models),
        "helpdesk_models() must return mapped model classes (subclasses of your declarative base)",
    )
    async with scratch_database(db) as scratch:
        await judge_7_4(scratch, list(models), "helpdesk_models")
