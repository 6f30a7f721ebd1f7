"""The bank under load on the current backend (the figures of lesson 5.7), and the anomaly table.

    .venv/bin/python benchmarks/transactions.py                       # SQLite
    COURSE_BACKEND=postgres .venv/bin/python benchmarks/transactions.py --transfers 2048 --tasks 32

For each way of writing a transfer it runs the same transfers between 4 hot accounts across the given number of
concurrent tasks (each transfer in its own session), then audits the books, and prints throughput, retries, failures
and whether the books balance. Then it runs the isolation-anomaly schedules and prints their table.
"""

from __future__ import annotations

import argparse
import asyncio

from sqlalchemy import select

from course.chapters.ch05_transactions import anomalies, bank
from course.domain.models import Account, Transfer
from course.tools.lesson import setup


async def locking_transfer(Session: bank.Sessions, from_id: int, to_id: int, amount_cents: int) -> bool:
    """Lesson 05's FOR UPDATE transfer (section 5.7 writes it out; the package holds no answer to exercise 5.1)."""
    async with Session() as session, session.begin():
        await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})  # ignored by PostgreSQL
        stmt = select(Account).where(Account.id.in_([from_id, to_id])).order_by(Account.id).with_for_update()
        accounts = {account.id: account for account in await session.scalars(stmt)}
        if accounts[from_id].balance_cents < amount_cents:
            return False
        accounts[from_id].balance_cents -= amount_cents
        accounts[to_id].balance_cents += amount_cents
        session.add(Transfer(from_account_id=from_id, to_account_id=to_id, amount_cents=amount_cents))
    return True


async def main(transfers: int, tasks: int, hot: int, skip_anomalies: bool) -> None:
    # A pool as large as the number of tasks: the figures measure the database, not a queue for connections.
    lesson = await setup(quiet=True, pool_size=tasks)
    try:
        print(f"{lesson.dialect}: {transfers:,} transfers between {hot} hot accounts, {tasks} concurrent tasks")
        print(
            f"{'approach':<14} {'applied':>8} {'refused':>8} {'failed':>7} {'retries':>8} {'retries/tr':>10} "
            f"{'tr/s':>7} {'seconds':>8}  books"
        )
        stats = bank.RetryStats()
        approaches = {
            "naive": bank.naive_transfer,
            "FOR UPDATE": locking_transfer,
            "atomic UPDATE": bank.atomic_transfer,
            "optimistic": bank.optimistic_transfer_with(stats),
        }
        for name, transfer in approaches.items():
            ids = await bank.open_hot_accounts(lesson.Session, count=hot, balance_cents=20_000)
            opening, since = await bank.balances(lesson.Session, ids), await bank.last_transfer_id(lesson.Session)
            before = stats.retries
            load = await bank.hammer(lesson.Session, transfer, bank.plan_moves(ids, transfers), tasks=tasks)
            books = await bank.audit(lesson.Session, opening, since)
            retries = stats.retries - before
            verdict = "balance" if books.ok else f"WRONG (total {books.total_before:,} -> {books.total_after:,})"
            print(
                f"{name:<14} {load.applied:>8,} {load.refused:>8,} {load.failed:>7,} {retries:>8,} "
                f"{retries / transfers:>10.2f} {load.per_second:>7.0f} {load.seconds:>8.1f}  {verdict}"
                + (f"  errors: {dict(load.errors)}" if load.errors else "")
            )
        if not skip_anomalies:
            table = await anomalies.anomaly_table(lesson.url)
            print()
            print(table.tsv())
            if lesson.dialect == "postgresql":
                same = table.outcomes == anomalies.PUBLISHED_POSTGRES
                print("matches Hermitage's published PostgreSQL results:", "yes" if same else "NO")
    finally:
        await lesson.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=1_024)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--hot", type=int, default=4, help="number of hot accounts")
    parser.add_argument("--no-anomalies", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.transfers, args.tasks, args.hot, args.no_anomalies))
