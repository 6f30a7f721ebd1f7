"""Checks for chapter 8 (migrations): each runs the learner's code through Alembic on a fresh copy and judges the schema,
the data and the locks it leaves."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, inspect, text

from course.chapters.ch08_migrations import backfill, schema
from course.chapters.ch08_migrations.index_judge import judge_concurrent_index
from course.chapters.ch08_migrations.judging import (
    base_revision,
    expect_no_diff,
    learner_revision,
    new_migrations,
    run_steps,
)
from course.chapters.registry import chapter
from course.checks.base import CheckDB, Registry, call_learner, expect, fail

registry = Registry(chapter(8))
check = registry.check

# Customers the checks put in the previous schema: odd names, a NULL one, non-ASCII, a quote.
CUSTOMERS = [
    ("ana@example.com", "Ana Núñez"),
    ("bo@example.com", None),
    ("chen@example.com", "陈 静"),
    ("dee@example.com", "Dee O'Hara"),
    ("eve@example.com", "  Eve  "),
    ("gap@example.com", "Removed"),  # deleted again: the ids have a gap
    ("fay@example.com", ""),  # an empty name is not a missing one (NULL)
]


async def _add_customers(db: CheckDB) -> dict[int, str | None]:
    async with db.engine.begin() as conn:
        for email, name in CUSTOMERS:
            await conn.execute(
                text("INSERT INTO customers (email, fullname, country) VALUES (:e, :n, 'PT')"),
                {"e": email, "n": name},
            )
        await conn.execute(text("DELETE FROM customers WHERE email = 'gap@example.com'"))
        rows = (await conn.execute(text("SELECT id, fullname FROM customers"))).all()
    return dict(rows)


def _changed_names(names: dict[int, str | None], now: dict[int, Any]) -> list[str]:
    """Each customer whose name is not what it was, exactly (NULL and '' are different names)."""
    return [
        f"customer {key}: {name!r} became {now.get(key)!r}" for key, name in names.items() if now.get(key) != name
    ]


async def _column(db: CheckDB, column: str) -> dict[int, Any]:
    async with db.engine.connect() as conn:
        return dict((await conn.execute(text(f"SELECT id, {column} FROM customers"))).all())


async def _round_trip(db: CheckDB, upgrade: Callable[..., Any], downgrade: Callable[..., Any], after: Any) -> Any:
    """Previous schema at 0001 with customers in it, then the learner's 0002 up: the Migrations, steps, names."""
    migrations = new_migrations(db, schema.customers_v1())
    base_revision(migrations, schema.customers_v1())
    await migrations.upgrade("0001")
    names = await _add_customers(db)
    steps = learner_revision(migrations, upgrade, downgrade)
    await run_steps(migrations, steps, "upgrade", "head")
    expect_no_diff(await migrations.diff(after), "after upgrade the schema differs from the models")
    return migrations, steps, names


async def _back_down(db: CheckDB, migrations: Any, steps: Any) -> None:
    await run_steps(migrations, steps, "downgrade", "0001")
    expect_no_diff(
        await migrations.diff(schema.customers_v1()),
        "after downgrade the schema is not the previous one (downgrade must undo everything upgrade did)",
        "version 1",
    )


# --- 8.1 a migration that reaches the models, and comes back -------------------------------------------------------


@registry.exercise("8.1", timeout=60)
async def _check_add_columns(upgrade: Callable[..., Any], downgrade: Callable[..., Any], db: CheckDB) -> None:
    migrations, steps, names = await _round_trip(db, upgrade, downgrade, schema.exercise_8_1())
    try:
        # Autogenerate's comparison does not look at an index's WHERE: a partial index passes it.
        async with db.engine.connect() as conn:
            indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("customers"))
        partial = [
            ix["name"] for ix in indexes if any(k.endswith("_where") for k in ix.get("dialect_options", {}))
        ]
        expect(
            not partial,
            f"after upgrade {', '.join(map(str, partial))} is a partial index (CREATE INDEX ... WHERE): the models' "
            "index covers every row, and a query outside the WHERE cannot use it",
        )
        expect(
            await _column(db, "fullname") == names,
            "the customers' names changed during the upgrade: this migration only adds, it must not touch data",
        )
        opted = await _column(db, "marketing_opt_in")
        expect(
            all(v in (False, 0) for v in opted.values()),
            "existing customers should have marketing_opt_in = false (the server default fills existing rows)",
        )
        await _back_down(db, migrations, steps)
        expect(await _column(db, "fullname") == names, "the customers' names changed during the downgrade")
    finally:
        migrations.close()


# --- 8.2 a rename that keeps the data -------------------------------------------------------------------------------


@registry.exercise("8.2", timeout=60)
async def _check_rename(upgrade: Callable[..., Any], downgrade: Callable[..., Any], db: CheckDB) -> None:
    migrations, steps, names = await _round_trip(db, upgrade, downgrade, schema.exercise_8_2())
    try:
        kept = await _column(db, "display_name")
        # Every name gone: the column was dropped and added (what autogenerate writes); else some names changed.
        lost = sum(1 for key, name in names.items() if name and kept.get(key) is None)
        expect(
            lost < sum(1 for name in names.values() if name),
            f"{lost} of {len(names)} customers lost their name on the way up: drop_column + add_column is what "
            "autogenerate writes for a rename, and it throws the data away. Rename the column instead",
        )
        changed = _changed_names(names, kept)
        expect(
            not changed,
            f"names changed on the way up ({'; '.join(changed[:2])}): every customer keeps exactly their name, a "
            "NULL as NULL and an empty name as '' (a rename moves the column and touches no value)",
        )
        await _back_down(db, migrations, steps)
        back = await _column(db, "fullname")
        lost = sum(1 for key, name in names.items() if name and back.get(key) is None)
        expect(
            lost < sum(1 for name in names.values() if name),
            f"{lost} customers lost their name on the way down: the downgrade must rename back too",
        )
        changed = _changed_names(names, back)
        expect(
            not changed,
            f"names changed on the way down ({'; '.join(changed[:2])}): the downgrade brings every name back "
            "exactly, a NULL as NULL and an empty name as ''",
        )
    finally:
        migrations.close()


# --- 8.3 a backfill in batches ---------------------------------------------------------------------------------------

BACKFILL_ROWS = 2_345
BATCH_SIZE = 150
# Already filled by hand (e.g. a support fix): a backfill fills NULLs only, it never overwrites.
PREFILLED = {7: "kept@example.org", 2_000: "also.kept@example.org"}


async def _signups_with_gaps(db: CheckDB) -> dict[int, str]:
    await backfill.make_signups(db.engine, BACKFILL_ROWS)
    async with db.engine.begin() as conn:
        # Gaps in the ids (deleted rows), so batches by id arithmetic are not the same as batches by row count.
        await conn.execute(text("DELETE FROM signups WHERE id BETWEEN 300 AND 1100 OR id % 13 = 0"))
        await conn.execute(text("UPDATE signups SET email = 'MiXeD.' || id || '@Example.ORG' WHERE id % 5 = 0"))
        for key, value in PREFILLED.items():
            await conn.execute(text("UPDATE signups SET email_lower = :v WHERE id = :i"), {"v": value, "i": key})
        rows = (await conn.execute(text("SELECT id, email, email_lower FROM signups"))).all()
    return {i: (filled if filled is not None else email.lower()) for i, email, filled in rows}


_UPDATE = re.compile(r"\bUPDATE\b")


class _Transactions:
    """Rows changed by UPDATE statements, per transaction, as the database driver reports them."""

    def __init__(self) -> None:
        self.current = 0
        self.updates = 0
        self.per_transaction: list[int] = []

    def statement(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool
    ) -> None:
        sql = statement.lstrip().upper()
        # UPDATE ..., or WITH ... UPDATE (PostgreSQL); SELECT ... FOR UPDATE changes nothing.
        if _UPDATE.search(sql) and not sql.startswith("SELECT"):
            # An executemany runs the statement once per parameter set: one UPDATE per row, sent in one call.
            self.updates += len(parameters) if executemany and parameters else 1
            changed = cursor.rowcount
            if changed < 0 and conn.dialect.name == "sqlite":
                # Python's sqlite3 reports no rowcount for WITH ... UPDATE: ask SQLite what the statement changed.
                changed = conn.exec_driver_sql("SELECT changes()").scalar()
            self.current += max(changed, 0)

    def end(self, _conn: Any) -> None:
        self.per_transaction.append(self.current)
        self.current = 0


@registry.exercise("8.3", timeout=60)
async def _check_backfill(backfill_email_lower: Callable[..., Any], db: CheckDB) -> None:
    want = await _signups_with_gaps(db)
    missing = sum(1 for key in want if key not in PREFILLED)
    seen = _Transactions()
    sync = db.engine.sync_engine
    listeners: list[tuple[str, Callable[..., Any]]] = [
        ("after_cursor_execute", seen.statement),
        ("commit", seen.end),
        ("rollback", seen.end),
    ]
    for name, fn in listeners:
        event.listen(sync, name, fn)
    try:
        result = await call_learner(backfill_email_lower, db.engine, batch_size=BATCH_SIZE)
    finally:
        for name, fn in listeners:
            event.remove(sync, name, fn)
    # Whatever the learner left uncommitted counts as one more transaction.
    biggest = max([*seen.per_transaction, seen.current])
    async with db.engine.connect() as conn:
        got: dict[int, str | None] = {
            row[0]: row[1] for row in (await conn.execute(text("SELECT id, email_lower FROM signups"))).all()
        }
    empty = [key for key, value in got.items() if value is None]
    expect(
        not empty,
        f"{len(empty):,} of {missing:,} rows still have email_lower NULL after the backfill (the first is id {min(empty) if empty else 0}): "
        "the ids have gaps, so walk the ids that exist (WHERE id > :last ORDER BY id LIMIT :n), not id ranges of batch_size",
    )
    overwritten = [key for key in PREFILLED if got[key] != PREFILLED[key]]
    expect(
        not overwritten,
        f"row {overwritten[:1]} already had an email_lower and the backfill overwrote it: fill only the rows where it is NULL",
    )
    wrong = [key for key, value in got.items() if value != want[key]]
    if wrong:
        fail(f"row id {wrong[0]}: email_lower is {got[wrong[0]]!r}, expected lower(email) = {want[wrong[0]]!r}")
    expect(
        biggest <= BATCH_SIZE,
        f"one transaction updated {biggest:,} rows with batch_size={BATCH_SIZE}: every row an UPDATE touches stays "
        "locked until its transaction commits. Commit after each batch",
    )
    batches = math.ceil(missing / BATCH_SIZE)
    expect(
        seen.updates <= 2 * batches + 2,
        f"{seen.updates:,} UPDATE statements for {missing:,} rows: that is about one per row. Update a whole batch "
        "with one statement (a range of ids)",
    )
    # Batches of batch_size rows need about `batches` UPDATEs (one more for a walk over every row, filled or not);
    # id ranges of batch_size need one per range, and across the gaps most ranges hold few rows or none.
    expect(
        seen.updates <= batches + 2,
        f"{seen.updates:,} UPDATE statements for {missing:,} rows in batches of {BATCH_SIZE}, where {batches} batches "
        "would do: the ids have gaps, so a range of batch_size ids holds fewer rows. Walk the rows that exist — "
        "each batch ends at the id of the batch_size-th next row (WHERE id > :last ORDER BY id LIMIT :n)",
    )
    expect(
        result == missing,
        f"backfill_email_lower returned {result!r}; it should return how many rows it filled ({missing:,})",
    )


# --- 8.4 an index built without blocking writers (PostgreSQL) ----------------------------------------------------


@registry.exercise("8.4", timeout=60)
async def _check_concurrent_index(upgrade: Callable[..., Any], downgrade: Callable[..., Any], db: CheckDB) -> None:
    await backfill.make_signups(db.engine, 20_000)
    migrations = new_migrations(db, None)  # type: ignore[arg-type]
    migrations.add_revision("0001", down_revision=None, upgrade=lambda: None, downgrade=lambda: None)
    await migrations.upgrade("0001")
    steps = learner_revision(migrations, upgrade, downgrade)
    try:
        await judge_concurrent_index(db, migrations, steps)
    finally:
        migrations.close()
