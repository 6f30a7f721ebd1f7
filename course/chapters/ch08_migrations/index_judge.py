"""Judging exercise 8.4 on PostgreSQL: the index is built (and dropped) while a busy table keeps taking writes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import text

from course.chapters.ch08_migrations import pglocks
from course.checks.base import CheckDB, expect, fail

INDEX = "ix_signups_email_lower"
BUSY_SECONDS = 1.0


async def _while_busy(
    db: CheckDB, migrations: Any, steps: Any, action: str, target: str, like: str
) -> float | None:
    """Run the migration while another transaction has written to signups and stays open; meanwhile a third
    connection inserts a row. The seconds that insert took, or None if it waited for a lock (was blocked)."""
    # The writer's row id is chosen now: once the migration waits for a lock, even a SELECT on signups may queue.
    row = await _next_signup(db)
    other = await db.engine.connect()
    try:
        await other.begin()
        await other.execute(text("UPDATE signups SET email = email WHERE id = 1"))
        task = asyncio.create_task(getattr(migrations, action)(target))
        waiting = await pglocks.waits_for_a_lock(db.engine, task, like)
        since = time.monotonic()
        blocked = (
            await pglocks.insert_waits(
                db.engine, f"INSERT INTO signups (id, email) VALUES ({row}, 'writer{row}@example.com')"
            )
            if waiting
            else 0.0
        )
        # A busy table's transactions last a while: the open one ends a second after the build started waiting.
        await asyncio.sleep(max(0.0, BUSY_SECONDS - (time.monotonic() - since)) if waiting else 0.0)
        await other.rollback()
        try:
            await task
        except Exception:
            if steps.error is None:
                raise
    finally:
        await other.close()
    if steps.error is not None:
        _explain_postgres_error(steps.error)
        await steps.raise_learner_error()
    return blocked


async def _emails_lower(db: CheckDB) -> int | None:
    """How many signups have email_lower filled; None when the column is not there."""
    async with db.engine.connect() as conn:
        exists = await conn.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'signups' AND column_name = 'email_lower' AND table_schema = current_schema()"
            )
        )
        if not exists:
            return None
        return int(await conn.scalar(text("SELECT count(email_lower) FROM signups")))


async def _next_signup(db: CheckDB) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT coalesce(max(id), 0) FROM signups"))) + 1_000_000


async def judge_concurrent_index(db: CheckDB, migrations: Any, steps: Any) -> None:
    blocked = await _while_busy(db, migrations, steps, "upgrade", "head", "%CREATE%INDEX%")
    async with db.engine.connect() as conn:
        valid = await pglocks.index_is_valid(conn, INDEX)
        columns = (
            await conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE tablename = 'signups' AND indexname = :n"),
                {"n": INDEX},
            )
        ).scalar()
    expect(valid is not None, f"after upgrade there is no index {INDEX} on signups")
    expect(
        valid, f"{INDEX} exists but is INVALID: its concurrent build failed half-way; drop it and build it again"
    )
    expect(
        columns and columns.rstrip().endswith("(email_lower)"), f"{INDEX} should index email_lower only: {columns}"
    )
    expect(
        columns and " UNIQUE " not in f" {columns.upper()} ",
        f"{INDEX} is a UNIQUE index: it would refuse two signups with the same address, a rule nobody asked for. "
        "Build a plain index",
    )
    expect(
        blocked is not None,
        "a one-row INSERT waited more than a second while the index was being built: a plain CREATE INDEX locks out "
        "every writer until it finishes. Build it CONCURRENTLY (postgresql_concurrently=True)",
    )
    filled = await _emails_lower(db)
    # Any DROP that waits (of the index, or wrongly of the column with it) is seen at once.
    blocked = await _while_busy(db, migrations, steps, "downgrade", "0001", "%DROP%")
    async with db.engine.connect() as conn:
        gone = await pglocks.index_is_valid(conn, INDEX) is None
    expect(gone, f"after downgrade the index {INDEX} is still there: the downgrade must drop it")
    after = await _emails_lower(db)
    expect(
        filled is None or (after is not None and after >= filled),  # the busy-table writer may have added one
        "after downgrade the column signups.email_lower (or its values) is gone: the downgrade undoes this "
        "migration alone, which made the index. Drop the index; the column belongs to the migration before",
    )
    expect(
        blocked is not None,
        "a one-row INSERT waited more than a second while the downgrade dropped the index: a plain DROP INDEX "
        "waits for the open transaction and locks out every writer behind it. Drop it CONCURRENTLY too, in an "
        "autocommit block",
    )


def _explain_postgres_error(exc: BaseException) -> None:
    message = str(getattr(exc, "orig", exc))
    if "cannot run inside a transaction block" in message:
        fail(
            "PostgreSQL refused: CREATE/DROP INDEX CONCURRENTLY cannot run inside a transaction block, and Alembic "
            "runs every migration in one. Run it inside op.get_context().autocommit_block()"
        )
    if "lock timeout" in message:
        fail(
            "your migration gave up on a lock timeout: CREATE INDEX CONCURRENTLY waits for the transactions already "
            "writing to the table to finish, and your lock_timeout applies to that wait too. Leave it out for this "
            "statement, or allow a few seconds"
        )
