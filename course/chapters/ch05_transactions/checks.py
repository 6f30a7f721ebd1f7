"""Checks for chapter 5 (transactions): the learner's code runs under real concurrency and the books are audited."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, InvalidRequestError, PendingRollbackError

from course import db as course_db
from course.chapters.ch05_transactions import bank, optimistic_judge, retry_judge
from course.chapters.ch05_transactions.optimistic_judge import fresh_accounts
from course.chapters.ch05_transactions.retry_judge import describe
from course.chapters.registry import chapter
from course.checks.base import CheckDB, LearnerCodeError, Registry, call_learner, expect, fail
from course.checks.sessions import caller_owns_transaction
from course.domain.models import Account, Product, Transfer

registry = Registry(chapter(5))
check = registry.check

TRANSFERS, TASKS = 1_024, 16
# Deliberately uneven opening balances (one nearly empty), so refusals really happen and ties do not hide bugs.
OPENING = (20_000, 5_000, 12_345, 999)


def _explain_errors(errors: Counter, what: str) -> str:
    code, count = errors.most_common(1)[0]
    what = (
        f"the transfers (stopped after {sum(errors.values())} errors)" if sum(errors.values()) >= TASKS else what
    )
    if "40P01" in code:
        return (
            f"{count} of {what} failed with a deadlock (SQLSTATE 40P01): two transfers locked the same two "
            "accounts in opposite orders. Lock (or update) the two accounts in one fixed order, e.g. lower id first"
        )
    if "SQLITE_BUSY" in code:
        return (
            f"{count} of {what} failed with {code} (database is locked): on SQLite a transaction that reads first "
            "may not write once another one has committed. Take the write lock when the transaction starts "
            '(session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})), or start with the UPDATE'
        )
    if "40001" in code:
        return (
            f"{count} of {what} failed with a serialization failure (SQLSTATE 40001): lock the rows you read, "
            "or let a single UPDATE do the arithmetic, so concurrent transfers wait instead of failing"
        )
    if "StaleDataError" in code:
        return (
            f"{count} of {what} raised StaleDataError: another transfer changed the account first (its version "
            "moved). Lock the rows (with_for_update()) or let a single UPDATE do the arithmetic"
        )
    return f"{count} of {what} raised {code}: a transfer should return True or False, never fail"


# --- 5.1 a transfer under load ----------------------------------------------------------------------------------------


async def _transfer_alone(transfer: Callable[..., Any], db: CheckDB) -> None:
    rich, poor = await fresh_accounts(db, (5_000, 100))
    since = await bank.last_transfer_id(db.Session)
    # Exactly the whole balance: allowed (>=, not >).
    done = await call_learner(transfer, db.Session, rich, poor, 5_000)
    expect(done is True, f"transfer of the whole balance (50.00 of 50.00) returned {done!r}, expected True")
    now = await bank.balances(db.Session, [rich, poor])
    expect(
        now == {rich: 0, poor: 5_100},
        f"after moving 5000 cents the balances are {now}, expected {{{rich}: 0, {poor}: 5100}}",
    )
    refused = await call_learner(transfer, db.Session, rich, poor, 1)
    expect(refused is False, f"a transfer from an empty account returned {refused!r}, expected False")
    expect(
        await bank.balances(db.Session, [rich, poor]) == now,
        "a refused transfer changed the balances: refuse before writing, or roll back",
    )
    async with db.Session() as session:
        rows = (
            await session.execute(
                select(Transfer.from_account_id, Transfer.to_account_id, Transfer.amount_cents).where(
                    Transfer.id > since
                )
            )
        ).all()
    expect(
        [tuple(r) for r in rows] == [(rich, poor, 5_000)],
        f"expected one Transfer row ({rich} → {poor}, 5000 cents) for the one applied transfer, found "
        f"{[tuple(r) for r in rows]}: write exactly one ledger row per applied transfer, none for a refused one",
    )


@registry.exercise("5.1", timeout=240)
async def _check_transfer(transfer: Callable[..., Any], db: CheckDB) -> None:
    await _transfer_alone(transfer, db)
    ids = await fresh_accounts(db, OPENING)
    opening = await bank.balances(db.Session, ids)
    since = await bank.last_transfer_id(db.Session)
    moves = bank.plan_moves(ids, TRANSFERS, seed=51, max_cents=3_000)
    returned: Counter = Counter()
    errors: Counter = Counter()

    async def worker(share: list[bank.Move]) -> None:
        for move in share:
            if sum(errors.values()) >= TASKS:
                return  # the verdict is clear; a deadlock costs a second each, so stop early
            try:
                result = await call_learner(transfer, db.Session, move.from_id, move.to_id, move.amount_cents)
            except LearnerCodeError as exc:
                errors[describe(exc.original)] += 1
                continue
            returned[result if isinstance(result, bool) else repr(result)] += 1

    totals: set[int] = set()
    running = True

    async def auditor() -> None:
        # Another connection reads the total while transfers run: one transaction per transfer means it never
        # sees money in flight (debited but not yet credited).
        while running:
            async with db.Session() as session:
                total = await session.scalar(select(func.sum(Account.balance_cents)).where(Account.id.in_(ids)))
            totals.add(total or 0)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(auditor())
    try:
        await asyncio.gather(*(worker(moves[n::TASKS]) for n in range(TASKS)))
    finally:
        running = False
        await watcher
    what = f"{TRANSFERS} concurrent transfers ({TASKS} tasks)"
    books = await bank.audit(db.Session, opening, since)
    # A lost update is the worst outcome: reported first, even when some transfers also failed.
    if books.total_after != books.total_before or books.ledger_mismatches:
        fail(
            f"after {what} the books do not balance: the total went from {books.total_before} to "
            f"{books.total_after} cents and {books.ledger_mismatches} of {len(ids)} balances disagree with the "
            "ledger. Two transfers read the same balance and both wrote what they computed from it — a lost update. "
            "Lock both rows before reading them (in a fixed order), or let the UPDATE do the arithmetic"
        )
    if errors:
        fail(_explain_errors(errors, what))
    in_flight = sorted(totals - {sum(opening.values())})
    expect(
        not in_flight,
        f"while transfers ran, another connection saw the four balances add up to {in_flight[0] if in_flight else 0} "
        f"instead of {sum(opening.values())}: a debit was committed before its credit. Do both in one transaction",
    )
    odd = [value for value in returned if not isinstance(value, bool)]
    expect(not odd, f"transfer returned {odd[0] if odd else ''}: return True (applied) or False (refused)")
    expect(books.lowest_balance >= 0, f"a balance went negative ({books.lowest_balance} cents)")
    expect(
        books.ledger_rows == returned[True],
        f"{returned[True]} calls returned True but {books.ledger_rows} Transfer rows were written: "
        "write exactly one ledger row per applied transfer, in the same transaction",
    )
    expect(
        returned[False] < TRANSFERS // 4,
        f"{returned[False]} of {TRANSFERS} transfers were refused, far more than the balances explain: "
        "refuse only when the from-account holds less than the amount (wait for a lock rather than give up)",
    )


# --- 5.2 a retry wrapper (PostgreSQL): judged in retry_judge.py ----------------------------------------------


@registry.exercise("5.2", timeout=90)
async def _check_retry(run_in_transaction: Callable[..., Any], db: CheckDB) -> None:
    await retry_judge.reset_counter(db)
    serializable = course_db.make_engine(url=db.url, isolation_level="SERIALIZABLE")
    Serializable = course_db.make_sessionmaker(serializable)
    try:
        await retry_judge.judge_serialization_failures(run_in_transaction, Serializable)
        await retry_judge.judge_commit_failure(run_in_transaction, Serializable)
        await retry_judge.judge_deadlock(run_in_transaction, db)
        await retry_judge.judge_other_errors(run_in_transaction, db)
        await retry_judge.judge_bounded(run_in_transaction, db)
    finally:
        await serializable.dispose()


# --- 5.3 a batch import with savepoints -------------------------------------------------------------------------------


def _batch(taken_sku: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows to import and the positions a correct import skips."""
    rows: list[dict[str, Any]] = [
        {"sku": "IMP-0001", "name": "Walnut desk", "price_cents": 45_900},
        {"sku": taken_sku, "name": "Duplicate of a product we sell", "price_cents": 1_000},  # sku taken
        {"sku": "imp-0001", "name": "Lower-case sku is another sku", "price_cents": 1},
        {"sku": "IMP-0002", "name": "Refund voucher", "price_cents": -500},  # CHECK price_cents >= 0
        {"sku": "IMP-0003", "name": None, "price_cents": 700},  # NOT NULL name
        {"sku": "IMP-0004", "name": "Free sticker", "price_cents": 0},
        {"sku": "IMP-0001", "name": "Same sku twice in one batch", "price_cents": 2_000},  # duplicate in the batch
        {"sku": "IMP-0005", "name": "Lamp", "price_cents": 3_250},
        {"sku": "IMP-0002", "name": "Gift card", "price_cents": 2_500},  # refused above, good this time
        {"sku": "IMP-0006", "name": "  Shelf  ", "price_cents": 1_200},  # stored as sent, spaces and all
    ]
    return rows, [1, 3, 4, 6]


@registry.exercise("5.3")
async def _check_import(import_products: Callable[..., Any], db: CheckDB) -> None:
    async with db.Session() as session:
        taken = await session.scalar(select(Product.sku).order_by(Product.id.desc()).limit(1))
    expect(taken is not None, "the seed has no products: rebuild it with `course seed --force`")
    rows, skipped = _batch(str(taken))
    async with db.Session() as session, session.begin():
        async with caller_owns_transaction(session):
            try:
                result = await call_learner(import_products, session, [dict(r) for r in rows])
            except LearnerCodeError as exc:
                if isinstance(exc.original, InvalidRequestError) and "closed transaction" in str(exc.original):
                    fail(
                        "your function ended the caller's transaction (a commit or a rollback) in the middle of "
                        "the batch: leave it to the caller, and roll back only a bad row, to a savepoint taken "
                        "just before it (begin_nested())"
                    )
                if isinstance(exc.original, PendingRollbackError | DBAPIError):
                    fail(
                        f"the import stopped with {describe(exc.original)} at a bad row: a failed INSERT spoils "
                        "the whole transaction unless it ran inside a savepoint — one begin_nested() per row"
                    )
                raise
        # Nothing may be visible outside the caller's transaction before the caller commits: rows written through
        # another session (or committed behind the caller's back) are not the caller's to commit or roll back.
        async with db.Session() as other:
            early = sorted((await other.scalars(select(Product.sku).where(Product.sku.ilike("imp-%")))).all())
        expect(
            not early,
            f"other connections saw {early} before the caller committed: insert the rows in the caller's session "
            "(inside its transaction) and leave the commit, or the rollback, to the caller",
        )
        # The caller's transaction goes on: it can still write, and its commit keeps the good rows.
        skus = set((await session.scalars(select(Product.sku).where(Product.sku.ilike("imp-%")))).all())
    expect(
        isinstance(result, list) and all(isinstance(i, int) for i in result),
        f"import_products should return the list of skipped positions, got {result!r}",
    )
    good = {"IMP-0001", "imp-0001", "IMP-0004", "IMP-0005", "IMP-0002", "IMP-0006"}
    lost = sorted(good - skus)
    expect(
        "IMP-0002" not in lost or len(lost) > 1,
        "IMP-0002 was refused once (a negative price), then came again in a good row, which is missing: only the "
        "refused row is skipped. Count a sku as taken only once the database has accepted its row",
    )
    expect(
        not lost,
        f"good rows are missing after the import: {lost}. A bad row must undo only itself — roll back to a "
        "savepoint taken just before it, not the whole transaction",
    )
    async with db.Session() as session:
        saved = set((await session.scalars(select(Product.sku).where(Product.sku.ilike("imp-%")))).all())
        duplicate = await session.scalar(select(Product.name).where(Product.sku == "IMP-0001"))
        shelf = await session.scalar(select(Product.name).where(Product.sku == "IMP-0006"))
    expect(
        saved == good, f"after the caller's commit the imported skus are {sorted(saved)}, expected {sorted(good)}"
    )
    expect(duplicate == "Walnut desk", "the first IMP-0001 should be kept and its later duplicate skipped")
    expect(
        shelf == "  Shelf  ",
        f"IMP-0006's name was sent as '  Shelf  ' and stored as {shelf!r}: insert each row as it comes, values "
        "unchanged (cleaning input is another job, done before the import and said so)",
    )
    expect(
        sorted(result) == skipped,
        f"import_products returned {result}, but the rows the database refuses are at positions {skipped}",
    )


# --- 5.4 an optimistic update: judged in optimistic_judge.py ---------------------------------------------------


@registry.exercise("5.4", timeout=60)
async def _check_optimistic(withdraw: Callable[..., Any], conflict: type, db: CheckDB) -> None:
    await optimistic_judge.judge_optimistic(withdraw, conflict, db)
