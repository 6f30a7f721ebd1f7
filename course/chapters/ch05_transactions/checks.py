"""Checks for chapter 5 (transactions): the learner's code runs under real concurrency and the books are audited."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidRequestError, PendingRollbackError
from sqlalchemy.orm.exc import StaleDataError

from course import db as course_db
from course.chapters.ch05_transactions import bank
from course.chapters.ch05_transactions.retry import error_code
from course.chapters.registry import chapter
from course.checks.base import CheckDB, LearnerCodeError, Registry, call_learner, expect, fail
from course.checks.sessions import caller_owns_transaction
from course.domain.models import Account, Product, Transfer

registry = Registry(chapter(5))
check = registry.check

TRANSFERS, TASKS = 1_024, 16
# Deliberately uneven opening balances (one nearly empty), so refusals really happen and ties do not hide bugs.
OPENING = (20_000, 5_000, 12_345, 999)


def _describe(exc: BaseException) -> str:
    code = error_code(exc)
    return f"{type(exc).__name__} ({code})" if code else type(exc).__name__


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


async def _fresh_accounts(db: CheckDB, balances: tuple[int, ...]) -> list[int]:
    """Accounts the seed does not use much (the last ones), with the given balances."""
    async with db.Session() as session, session.begin():
        ids = list(
            (await session.scalars(select(Account.id).order_by(Account.id.desc()).limit(len(balances)))).all()
        )
        for account_id, cents in zip(ids, balances, strict=True):
            await session.execute(update(Account).where(Account.id == account_id).values(balance_cents=cents))
    return ids


async def _transfer_alone(transfer: Callable[..., Any], db: CheckDB) -> None:
    rich, poor = await _fresh_accounts(db, (5_000, 100))
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
    ids = await _fresh_accounts(db, OPENING)
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
                errors[_describe(exc.original)] += 1
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


# --- 5.2 a retry wrapper (PostgreSQL) ---------------------------------------------------------------------------------


class _Calls:
    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self) -> int:
        self.times.append(time.perf_counter())
        return len(self.times)


async def _reset_counter(db: CheckDB) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS retry_counter"))
        await conn.execute(text("CREATE TABLE retry_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        await conn.execute(text("INSERT INTO retry_counter VALUES (1, 0), (2, 0)"))


async def _run_wrapper(run: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    try:
        return await call_learner(run, *args, **kwargs), None
    except LearnerCodeError as exc:
        return None, exc.original


@registry.exercise("5.2", timeout=90)
async def _check_retry(run_in_transaction: Callable[..., Any], db: CheckDB) -> None:
    await _reset_counter(db)
    serializable = course_db.make_engine(url=db.url, isolation_level="SERIALIZABLE")
    Serializable = course_db.make_sessionmaker(serializable)
    try:
        await _judge_serialization_failures(run_in_transaction, Serializable)
        await _judge_deadlock(run_in_transaction, db)
        await _judge_other_errors(run_in_transaction, db)
        await _judge_bounded(run_in_transaction, db)
    finally:
        await serializable.dispose()


async def _judge_serialization_failures(run: Callable[..., Any], Session: Any) -> None:
    calls = _Calls()

    async def increment(session: Any) -> int:
        calls()
        n = await session.scalar(text("SELECT n FROM retry_counter WHERE id = 1"))
        await asyncio.sleep(0.05)  # every caller reads before anyone writes: serializable must fail some
        await session.execute(text("UPDATE retry_counter SET n = :n WHERE id = 1"), {"n": n + 1})
        return n + 1

    outcomes = await asyncio.gather(*(_run_wrapper(run, Session, increment, attempts=12) for _ in range(4)))
    failed = [exc for _, exc in outcomes if exc is not None]
    if failed:
        exc = failed[0]
        if isinstance(exc, PendingRollbackError) or error_code(exc) == "25P02":
            fail(
                "after a serialization failure the next attempt ran in the failed transaction: roll back (a new "
                "session and transaction per attempt) before running work again"
            )
        fail(
            f"4 concurrent increments at SERIALIZABLE: {len(failed)} ended with {_describe(exc)} although "
            "attempts=12: retry work when the error's SQLSTATE is 40001 (exc.orig.sqlstate on a DBAPIError)"
        )
    async with Session() as session:
        final = await session.scalar(text("SELECT n FROM retry_counter WHERE id = 1"))
    expect(
        final == 4,
        f"4 increments left the counter at {final}: each attempt must run in its own transaction, and only "
        "the successful one may commit",
    )
    expect(len(calls.times) > 4, "no attempt was ever retried: were the 4 increments really concurrent?")
    expect(
        sorted(value for value, _ in outcomes) == [1, 2, 3, 4],
        f"run_in_transaction returned {[v for v, _ in outcomes]}: return what work returned",
    )


async def _judge_deadlock(run: Callable[..., Any], db: CheckDB) -> None:
    calls = _Calls()

    def locker(first: int, second: int) -> Callable[[Any], Any]:
        async def work(session: Any) -> str:
            calls()
            for row in (first, second):
                await session.execute(text("UPDATE retry_counter SET n = n + 1 WHERE id = :id"), {"id": row})
                await asyncio.sleep(0.1)
            return "ok"

        return work

    outcomes = await asyncio.gather(
        _run_wrapper(run, db.Session, locker(1, 2), attempts=5),
        _run_wrapper(run, db.Session, locker(2, 1), attempts=5),
    )
    failed = [exc for _, exc in outcomes if exc is not None]
    expect(
        not failed,
        f"two transactions that deadlocked: one ended with {_describe(failed[0]) if failed else ''}. "
        "A deadlock (SQLSTATE 40P01) is retryable like a serialization failure",
    )
    expect(len(calls.times) >= 3, "the deadlock victim was not run again")


async def _judge_other_errors(run: Callable[..., Any], db: CheckDB) -> None:
    calls = _Calls()

    async def duplicate(session: Any) -> None:
        calls()
        await session.execute(text("INSERT INTO retry_counter VALUES (1, 99)"))

    _, exc = await _run_wrapper(run, db.Session, duplicate, attempts=5)
    expect(
        isinstance(exc, IntegrityError),
        f"work broke a primary key (IntegrityError) and run_in_transaction "
        f"{'returned normally' if exc is None else f'raised {_describe(exc)}'}: let other errors propagate",
    )
    expect(
        len(calls.times) == 1,
        f"an IntegrityError (SQLSTATE {error_code(exc) if exc is not None else '?'}) was retried {len(calls.times) - 1} times: repeating "
        "cannot fix a broken constraint. Retry only SQLSTATE 40001 and 40P01",
    )
    calls = _Calls()

    async def bug(session: Any) -> None:
        calls()
        raise ValueError("a bug in work")

    _, exc = await _run_wrapper(run, db.Session, bug, attempts=5)
    expect(isinstance(exc, ValueError), "a ValueError raised by work should reach the caller unchanged")
    expect(len(calls.times) == 1, "a ValueError from work was retried: retry only database errors 40001/40P01")


async def _judge_bounded(run: Callable[..., Any], db: CheckDB) -> None:
    calls = _Calls()
    failed_at: list[float] = []

    async def always_conflicts(session: Any) -> None:
        if calls() > 20:
            raise RuntimeError("stopped by the check after 20 attempts")
        # A real 40001 from the server, every time.
        try:
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'simulated conflict' USING ERRCODE = '40001'; END $$")
            )
        finally:
            failed_at.append(time.perf_counter())

    _, exc = await _run_wrapper(run, db.Session, always_conflicts, attempts=3)
    expect(
        len(calls.times) <= 20,
        "work that always fails with 40001 was run more than 20 times with attempts=3: stop after `attempts`",
    )
    expect(
        len(calls.times) == 3,
        f"with attempts=3, work ran {len(calls.times)} times: `attempts` counts every run, the first included",
    )
    expect(
        isinstance(exc, DBAPIError) and error_code(exc) == "40001",
        f"after the last attempt the caller should get the database's error (40001), got "
        f"{'a normal return' if exc is None else _describe(exc)}",
    )
    # From each failure to the next attempt: a rollback and a new session take about a round trip; a pause more.
    # Five gaps (attempts=6): a randomised pause, however small its first draws, makes at least one of them long,
    # while a loop without a pause only ever shows the round trip.
    calls.times.clear()
    failed_at.clear()
    await _run_wrapper(run, db.Session, always_conflicts, attempts=6)
    gaps = [start - failed for failed, start in zip(failed_at, calls.times[1:], strict=False)]
    expect(
        bool(gaps) and max(gaps) >= 0.005,
        f"attempts followed each other after at most {1000 * max(gaps, default=0):.1f} ms, without a pause: "
        "wait a few milliseconds, more with each attempt and randomised, so the colliding transactions spread out",
    )


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
                        f"the import stopped with {_describe(exc.original)} at a bad row: a failed INSERT spoils "
                        "the whole transaction unless it ran inside a savepoint — one begin_nested() per row"
                    )
                raise
        # The caller's transaction goes on: it can still write, and its commit keeps the good rows.
        skus = set((await session.scalars(select(Product.sku).where(Product.sku.ilike("imp-%")))).all())
    expect(
        isinstance(result, list) and all(isinstance(i, int) for i in result),
        f"import_products should return the list of skipped positions, got {result!r}",
    )
    good = {"IMP-0001", "imp-0001", "IMP-0004", "IMP-0005"}
    lost = sorted(good - skus)
    expect(
        not lost,
        f"good rows are missing after the import: {lost}. A bad row must undo only itself — roll back to a "
        "savepoint taken just before it, not the whole transaction",
    )
    async with db.Session() as session:
        saved = set((await session.scalars(select(Product.sku).where(Product.sku.ilike("imp-%")))).all())
        duplicate = await session.scalar(select(Product.name).where(Product.sku == "IMP-0001"))
    expect(
        saved == good, f"after the caller's commit the imported skus are {sorted(saved)}, expected {sorted(good)}"
    )
    expect(duplicate == "Walnut desk", "the first IMP-0001 should be kept and its later duplicate skipped")
    expect(
        sorted(result) == skipped,
        f"import_products returned {result}, but the rows the database refuses are at positions {skipped}",
    )


# --- 5.4 an optimistic update ---------------------------------------------------------------------------------------


async def _account_state(db: CheckDB, account_id: int) -> tuple[int, int]:
    async with db.Session() as session:
        row = (
            await session.execute(select(Account.balance_cents, Account.version).where(Account.id == account_id))
        ).one()
    return row.balance_cents, row.version


@registry.exercise("5.4", timeout=60)
async def _check_optimistic(withdraw: Callable[..., Any], conflict: type, db: CheckDB) -> None:
    expect(
        isinstance(conflict, type) and issubclass(conflict, Exception),
        "Conflict should be an exception class",
    )
    (account_id,) = await _fresh_accounts(db, (10_000,))
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
            f"a stale expected_version raised {_describe(exc.original)}: raise Conflict, so the API can answer "
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
            f"when the version moved during the withdrawal, withdraw raised {_describe(exc.original)} "
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
