"""Judging exercise 5.4's optimistic update: the version column moves, a stale write is refused, a race has one winner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.exc import StaleDataError

from course.chapters.ch05_transactions.retry_judge import describe
from course.checks.base import CheckDB, LearnerCodeError, call_learner, expect, fail
from course.domain.models import Account


async def fresh_accounts(db: CheckDB, balances: tuple[int, ...]) -> list[int]:
    """Accounts the seed does not use much (the last ones), with the given balances."""
    async with db.Session() as session, session.begin():
        ids = list(
            (await session.scalars(select(Account.id).order_by(Account.id.desc()).limit(len(balances)))).all()
        )
        for account_id, cents in zip(ids, balances, strict=True):
            await session.execute(update(Account).where(Account.id == account_id).values(balance_cents=cents))
    return ids


async def _account_state(db: CheckDB, account_id: int) -> tuple[int, int]:
    async with db.Session() as session:
        row = (
            await session.execute(select(Account.balance_cents, Account.version).where(Account.id == account_id))
        ).one()
    return row.balance_cents, row.version


async def judge_optimistic(withdraw: Callable[..., Any], conflict: type, db: CheckDB) -> None:
    expect(
        isinstance(conflict, type) and issubclass(conflict, Exception),
        "Conflict should be an exception class",
    )
    (account_id,) = await fresh_accounts(db, (10_000,))
    async with db.engine.begin() as conn:
        # A version that is not 1: the check moves it on, as real traffic would.
        await conn.execute(update(Account).where(Account.id == account_id).values(version=7))
    new_version = await call_learner(withdraw, db.Session, account_id, 2_500, expected_version=7)
    balance, version = await _account_state(db, account_id)
    expect(balance == 7_500, f"withdrawing 2500 from 10000 left {balance}")
    expect(
        version == 8,
        f"the version went from 7 to {version}: every successful update must bump it by one",
    )
    expect(new_version == 8, f"withdraw returned {new_version!r}, expected the new version (8)")
    # A client that read version 7 comes back after the account changed: a clear Conflict, nothing written.
    try:
        await call_learner(withdraw, db.Session, account_id, 1_000, expected_version=7)
    except LearnerCodeError as exc:
        expect(
            isinstance(exc.original, conflict),
            f"a stale expected_version raised {describe(exc.original)}: raise Conflict, so the API can answer "
            "409 and the client can reload",
        )
    else:
        fail("withdraw with a stale expected_version (7, the account is at 8) did not raise Conflict")
    expect(
        await _account_state(db, account_id) == (7_500, 8),
        "a refused (conflicting) withdrawal changed the account",
    )
    if db.dialect == "postgresql":
        await _judge_race(withdraw, conflict, db, account_id)


async def _judge_race(withdraw: Callable[..., Any], conflict: type, db: CheckDB, account_id: int) -> None:
    """Another writer moves the version between the learner's read and write: the write must not overwrite it."""
    async with db.engine.connect() as other:
        await other.begin()
        await other.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(balance_cents=Account.balance_cents - 100, version=Account.version + 1)
        )
        call = asyncio.create_task(call_learner(withdraw, db.Session, account_id, 500, expected_version=8))
        await asyncio.sleep(0.3)  # the learner's transaction reads version 8 (still committed) and tries to write
        await other.commit()
    try:
        await call
    except LearnerCodeError as exc:
        if isinstance(exc.original, StaleDataError):
            fail(
                "StaleDataError reached the caller: SQLAlchemy noticed the version moved — catch it and raise "
                "Conflict instead"
            )
        expect(
            isinstance(exc.original, conflict),
            f"when the version moved during the withdrawal, withdraw raised {describe(exc.original)} "
            "instead of Conflict",
        )
    else:
        balance, version = await _account_state(db, account_id)
        fail(
            f"another writer committed version 9 while your withdrawal was between its check and its write, and "
            f"your write went through anyway (balance {balance}, version {version}): the version must be part "
            "of the UPDATE's WHERE clause, so a moved version matches no row"
        )
    expect(
        await _account_state(db, account_id) == (7_400, 9),
        "the other writer's change was overwritten: check the version in the same UPDATE that writes",
    )
