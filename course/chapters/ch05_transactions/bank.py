"""The bank under load: transfer functions written four ways, many concurrent tasks hammering a few hot accounts,
and an audit of the ledger afterwards (total unchanged, no negative balance, every transfer applied once or refused).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from course.chapters.ch05_transactions.retry import error_code, is_retryable
from course.domain.models import Account, Transfer

Sessions = async_sessionmaker[AsyncSession]
TransferFn = Callable[[Sessions, int, int, int], Awaitable[bool]]
# SQLite's serialization failure: a transaction that read an old snapshot may not write (WAL mode).
SQLITE_RETRYABLE = frozenset({"SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY"})


class Refused(Exception):
    """Not enough money: the transaction is rolled back and the transfer reported as refused."""


@dataclass(frozen=True)
class Move:
    from_id: int
    to_id: int
    amount_cents: int


def plan_moves(account_ids: Sequence[int], n: int, *, seed: int = 5, max_cents: int = 4_000) -> list[Move]:
    """n transfers between random pairs of the given accounts, in both directions (deterministic)."""
    rng = random.Random(seed)
    moves = []
    for _ in range(n):
        a, b = rng.sample(list(account_ids), 2)
        moves.append(Move(a, b, rng.randint(1, max_cents)))
    return moves


async def open_hot_accounts(Session: Sessions, *, count: int = 4, balance_cents: int = 20_000) -> list[int]:
    """Give the first `count` accounts a known balance: the hot accounts every transfer goes between."""
    async with Session() as session, session.begin():
        ids = list((await session.scalars(select(Account.id).order_by(Account.id).limit(count))).all())
        await session.execute(update(Account).where(Account.id.in_(ids)).values(balance_cents=balance_cents))
    return ids


# --- ways to write a transfer (the FOR UPDATE one is written out in lesson 05, section 5.7) ---------------------


async def naive_transfer(Session: Sessions, from_id: int, to_id: int, amount_cents: int) -> bool:
    """Read both balances, decide in Python, write the new values: correct alone, wrong under concurrency."""
    async with Session() as session, session.begin():
        rows = await session.execute(
            select(Account.id, Account.balance_cents).where(Account.id.in_([from_id, to_id]))
        )
        balance = dict(rows.all())
        if balance[from_id] < amount_cents:
            return False
        new = {from_id: balance[from_id] - amount_cents, to_id: balance[to_id] + amount_cents}
        # Core UPDATEs with values computed from what we read: nothing stops another task writing in between.
        # (Lower id first, so the only bug on show is the lost update, not a deadlock.)
        for account_id in sorted(new):
            await session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(balance_cents=new[account_id], version=Account.version + 1)
            )
        session.add(Transfer(from_account_id=from_id, to_account_id=to_id, amount_cents=amount_cents))
    return True


async def atomic_transfer(Session: Sessions, from_id: int, to_id: int, amount_cents: int) -> bool:
    """Let the database do the arithmetic: guarded UPDATEs (balance >= amount), lower id first."""
    try:
        async with Session() as session, session.begin():
            for account_id in sorted((from_id, to_id)):
                if account_id == from_id:
                    debit = (
                        update(Account)
                        .where(Account.id == from_id, Account.balance_cents >= amount_cents)
                        .values(balance_cents=Account.balance_cents - amount_cents, version=Account.version + 1)
                    )
                    # An UPDATE's result is a CursorResult, which has the row count.
                    if cast(CursorResult[Any], await session.execute(debit)).rowcount != 1:
                        raise Refused
                else:
                    credit = update(Account).where(Account.id == to_id)
                    # Core UPDATEs bump the version themselves: optimistic readers rely on every writer doing it.
                    bumped = {
                        "balance_cents": Account.balance_cents + amount_cents,
                        "version": Account.version + 1,
                    }
                    await session.execute(credit.values(**bumped))
            session.add(Transfer(from_account_id=from_id, to_account_id=to_id, amount_cents=amount_cents))
    except Refused:
        return False
    return True


@dataclass
class RetryStats:
    retries: int = 0
    by_error: Counter = field(default_factory=Counter)


def optimistic_transfer_with(stats: RetryStats, *, attempts: int = 100) -> TransferFn:
    """ORM read, change, flush: version_id_col makes a stale write fail (StaleDataError), and we try again."""

    async def transfer(Session: Sessions, from_id: int, to_id: int, amount_cents: int) -> bool:
        rng = random.Random()
        for attempt in range(attempts):
            try:
                async with Session() as session, session.begin():
                    accounts = {
                        a.id: a
                        for a in await session.scalars(select(Account).where(Account.id.in_([from_id, to_id])))
                    }
                    if accounts[from_id].balance_cents < amount_cents:
                        return False
                    accounts[from_id].balance_cents -= amount_cents
                    accounts[to_id].balance_cents += amount_cents
                    session.add(Transfer(from_account_id=from_id, to_account_id=to_id, amount_cents=amount_cents))
                return True
            except (StaleDataError, DBAPIError) as exc:
                code = "StaleDataError" if isinstance(exc, StaleDataError) else error_code(exc)
                if not (isinstance(exc, StaleDataError) or is_retryable(exc) or code in SQLITE_RETRYABLE):
                    raise
                stats.retries += 1
                stats.by_error[code] += 1
                # Backoff with full jitter: the losers of a collision spread out instead of colliding again.
                await asyncio.sleep(rng.uniform(0, min(0.5, 0.002 * 2**attempt)))
        raise RuntimeError(f"transfer {from_id}->{to_id} still conflicting after {attempts} attempts")

    return transfer


# --- load and audit -------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    applied: int = 0
    refused: int = 0
    errors: Counter = field(default_factory=Counter)  # exception type or SQLSTATE -> count
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def per_second(self) -> float:
        return (self.applied + self.refused) / self.seconds if self.seconds else 0.0


async def hammer(Session: Sessions, transfer: TransferFn, moves: Sequence[Move], *, tasks: int = 16) -> LoadResult:
    """Run every move through `transfer`, spread over `tasks` concurrent tasks (each call opens its own session)."""
    result = LoadResult()

    async def worker(share: Sequence[Move]) -> None:
        for move in share:
            try:
                ok = await transfer(Session, move.from_id, move.to_id, move.amount_cents)
            except Exception as exc:  # noqa: BLE001 - counted and shown: a failed transfer is a result here
                result.errors[error_code(exc) or type(exc).__name__] += 1
                continue
            if ok:
                result.applied += 1
            else:
                result.refused += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(moves[n::tasks]) for n in range(tasks)))
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class Audit:
    total_before: int
    total_after: int
    lowest_balance: int
    ledger_rows: int
    ledger_mismatches: int  # accounts whose balance is not opening balance + money in - money out per the ledger

    @property
    def ok(self) -> bool:
        return self.total_before == self.total_after and self.lowest_balance >= 0 and self.ledger_mismatches == 0


async def balances(Session: Sessions, ids: Sequence[int]) -> dict[int, int]:
    async with Session() as session:
        rows = await session.execute(select(Account.id, Account.balance_cents).where(Account.id.in_(ids)))
        return dict(rows.all())


async def last_transfer_id(Session: Sessions) -> int:
    async with Session() as session:
        return await session.scalar(select(func.coalesce(func.max(Transfer.id), 0))) or 0


async def audit(Session: Sessions, opening: dict[int, int], since_transfer_id: int) -> Audit:
    """Compare the balances now with the opening balances and the ledger rows written since."""
    now = await balances(Session, list(opening))
    async with Session() as session:
        rows = (
            await session.execute(
                select(Transfer.from_account_id, Transfer.to_account_id, Transfer.amount_cents).where(
                    Transfer.id > since_transfer_id
                )
            )
        ).all()
    expected = dict(opening)
    for from_id, to_id, amount in rows:
        expected[from_id] = expected.get(from_id, 0) - amount
        expected[to_id] = expected.get(to_id, 0) + amount
    mismatches = sum(1 for account_id in opening if expected[account_id] != now[account_id])
    return Audit(sum(opening.values()), sum(now.values()), min(now.values()), len(rows), mismatches)
