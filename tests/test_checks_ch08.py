"""Chapter 8 checks have teeth: plausible wrong migrations and backfills fail with the right hint; correct
alternatives pass, on both backends."""

from __future__ import annotations

from functools import partial

import pytest
import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from course.chapters.ch08_migrations.checks import check
from course.settings import Settings
from tests import teeth

SOURCE = "solutions/08_migrations.ipynb"
SOLVED = teeth.solved(SOURCE)

fails_with = partial(teeth.fails_with, check)


# --- 8.1 a migration that reaches the models -----------------------------------------------------------------------

DOWN_8_1 = SOLVED["downgrade_8_1"]
UP_8_1 = SOLVED["upgrade_8_1"]


def _columns(*, opt_in: sa.Column | None = None, phone_length: int = 30, index: bool = True) -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(phone_length), nullable=True))
        batch.add_column(
            opt_in
            if opt_in is not None
            else sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        if index:
            batch.create_index("ix_customers_country", ["country"])


def up_without_index() -> None:
    _columns(index=False)


def down_without_index() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("marketing_opt_in")
        batch.drop_column("phone")


def up_nullable_opt_in() -> None:
    _columns(opt_in=sa.Column("marketing_opt_in", sa.Boolean(), nullable=True, server_default=sa.false()))


def up_default_true() -> None:
    _columns(opt_in=sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.true()))


def up_no_server_default() -> None:
    _columns(opt_in=sa.Column("marketing_opt_in", sa.Boolean(), nullable=False))


def up_fill_then_not_null() -> None:
    # Adds the column nullable, fills it, then makes it NOT NULL: the data is right, but the default is missing.
    _columns(opt_in=sa.Column("marketing_opt_in", sa.Boolean(), nullable=True))
    op.execute(sa.text("UPDATE customers SET marketing_opt_in = false"))
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("marketing_opt_in", existing_type=sa.Boolean(), nullable=False)


def up_everyone_opted_in() -> None:
    # Schema right, data wrong: existing customers never said yes.
    UP_8_1()
    op.execute(sa.text("UPDATE customers SET marketing_opt_in = true"))


def up_typo() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("phone_number")


def up_wrong_length() -> None:
    _columns(phone_length=20)


def up_recreate_table() -> None:
    op.drop_table("customers")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE customer_tier")
    from course.chapters.ch08_migrations.schema import exercise_8_1

    exercise_8_1().create_all(op.get_bind())


def down_nothing() -> None:
    pass


def up_plain_ops() -> None:
    # No batch mode: SQLite can ADD COLUMN (with a constant default) and CREATE INDEX without copying the table.
    op.add_column("customers", sa.Column("phone", sa.String(30), nullable=True))
    op.add_column(
        "customers", sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_customers_country", "customers", ["country"])


def down_plain_ops() -> None:
    op.drop_index("ix_customers_country", table_name="customers")
    op.drop_column("customers", "marketing_opt_in")
    op.drop_column("customers", "phone")


async def test_8_1_plain_operations_pass(tiny: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    await check("8.1", up_plain_ops, down_plain_ops, settings=tiny)
    assert "✅ Exercise 8.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("upgrade", "downgrade", "fragment"),
    [
        (up_without_index, down_without_index, "index ix_customers_country is missing"),
        (up_nullable_opt_in, DOWN_8_1, "customers.marketing_opt_in: the NULL-ability differs"),
        (up_default_true, DOWN_8_1, "customers.marketing_opt_in: the server default differs"),
        (up_fill_then_not_null, DOWN_8_1, "customers.marketing_opt_in: the server default differs"),
        (up_wrong_length, DOWN_8_1, "customers.phone: the type differs"),
        (up_no_server_default, DOWN_8_1, "needs a server_default for them"),
        (up_recreate_table, DOWN_8_1, "the customers' names changed during the upgrade"),
        (up_everyone_opted_in, DOWN_8_1, "existing customers should have marketing_opt_in = false"),
        (up_typo, DOWN_8_1, "phone_number"),  # SQLite: Alembic raises; PostgreSQL: the database refuses
        (UP_8_1, down_nothing, "after downgrade the schema is not the previous one"),
        (UP_8_1, down_without_index, "after downgrade the schema is not the previous one"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:24] or None,
)
async def test_8_1_wrong_answers_fail(tiny: Settings, upgrade, downgrade, fragment: str) -> None:
    await fails_with(tiny, "8.1", fragment, upgrade, downgrade)


# --- 8.2 a rename that keeps the data ------------------------------------------------------------------------------


def up_drop_add() -> None:
    # What autogenerate writes for a rename.
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        batch.drop_column("fullname")


def down_drop_add() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("fullname", sa.String(length=200), nullable=True))
        batch.drop_column("display_name")


def up_copy_then_drop() -> None:
    # Expand/contract in one revision: add, copy, drop. Correct, if slower than a rename.
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(200), nullable=True))
    op.execute(text("UPDATE customers SET display_name = fullname"))
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def down_copy_then_drop() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("fullname", sa.String(200), nullable=True))
    op.execute(text("UPDATE customers SET fullname = display_name"))
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("display_name")


def up_rename_wider() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("fullname", new_column_name="display_name", type_=sa.String(300))


async def test_8_2_copy_then_drop_passes(tiny: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    await check("8.2", up_copy_then_drop, down_copy_then_drop, settings=tiny)
    assert "✅ Exercise 8.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("upgrade", "downgrade", "fragment"),
    [
        (up_drop_add, down_drop_add, "lost their name on the way up"),
        (SOLVED["upgrade_8_2"], down_drop_add, "lost their name on the way down"),
        (SOLVED["upgrade_8_2"], down_nothing, "after downgrade the schema is not the previous one"),
        (up_rename_wider, SOLVED["downgrade_8_2"], "customers.display_name: the type differs"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:24] or None,
)
async def test_8_2_wrong_answers_fail(tiny: Settings, upgrade, downgrade, fragment: str) -> None:
    await fails_with(tiny, "8.2", fragment, upgrade, downgrade)


# --- 8.3 a backfill in batches -------------------------------------------------------------------------------------

FILL = "UPDATE signups SET email_lower = lower(email)"


async def one_update(engine, *, batch_size=1_000):
    async with engine.begin() as conn:
        return (await conn.execute(text(f"{FILL} WHERE email_lower IS NULL"))).rowcount


async def one_update_in_a_cte(engine, *, batch_size=1_000):
    # The same single UPDATE, dressed as a common table expression.
    async with engine.begin() as conn:
        result = await conn.execute(
            text(
                f"WITH todo AS (SELECT id FROM signups WHERE email_lower IS NULL) {FILL} WHERE id IN (SELECT id FROM todo)"
            )
        )
        return result.rowcount


async def batches_one_transaction(engine, *, batch_size=1_000):
    # Batches, but one transaction around all of them: every row stays locked until the end.
    filled, last = 0, 0
    async with engine.begin() as conn:
        while True:
            upper = await conn.scalar(
                text("SELECT max(id) FROM (SELECT id FROM signups WHERE id > :l ORDER BY id LIMIT :n) AS b"),
                {"l": last, "n": batch_size},
            )
            if upper is None:
                return filled
            result = await conn.execute(
                text(f"{FILL} WHERE id > :l AND id <= :u AND email_lower IS NULL"), {"l": last, "u": upper}
            )
            filled += result.rowcount
            last = upper


async def row_by_row(engine, *, batch_size=1_000):
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, email FROM signups WHERE id > :l AND email_lower IS NULL ORDER BY id LIMIT :n"
                    ),
                    {"l": last, "n": batch_size},
                )
            ).all()
            if not rows:
                return filled
            for row_id, email in rows:
                await conn.execute(
                    text("UPDATE signups SET email_lower = :v WHERE id = :i"), {"v": email.lower(), "i": row_id}
                )
            filled += len(rows)
            last = rows[-1][0]


async def id_arithmetic(engine, *, batch_size=1_000):
    # Batches of ids, stopping at the first empty batch: a gap longer than a batch ends the backfill early.
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(f"{FILL} WHERE id > :l AND id <= :u AND email_lower IS NULL"),
                {"l": last, "u": last + batch_size},
            )
        if result.rowcount == 0:
            return filled
        filled += result.rowcount
        last += batch_size


async def overwrites(engine, *, batch_size=1_000):
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            upper = await conn.scalar(
                text("SELECT max(id) FROM (SELECT id FROM signups WHERE id > :l ORDER BY id LIMIT :n) AS b"),
                {"l": last, "n": batch_size},
            )
            if upper is None:
                return filled
            result = await conn.execute(text(f"{FILL} WHERE id > :l AND id <= :u"), {"l": last, "u": upper})
        filled += result.rowcount
        last = upper


async def forgets_lower(engine, *, batch_size=1_000):
    filled = 0
    while True:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE signups SET email_lower = email WHERE id IN "
                    "(SELECT id FROM signups WHERE email_lower IS NULL ORDER BY id LIMIT :n)"
                ),
                {"n": batch_size},
            )
        if result.rowcount == 0:
            return filled
        filled += result.rowcount


async def returns_batches(engine, *, batch_size=1_000):
    await SOLVED["backfill_email_lower"](engine, batch_size=batch_size)
    return None


async def null_subquery(engine, *, batch_size=1_000):
    # Correct: the next batch is always "the first n rows still NULL" (no keyset, but bounded and complete).
    filled = 0
    while True:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    f"{FILL} WHERE id IN (SELECT id FROM signups WHERE email_lower IS NULL ORDER BY id LIMIT :n)"
                ),
                {"n": batch_size},
            )
        if result.rowcount == 0:
            return filled
        filled += result.rowcount


async def test_8_3_subquery_batches_pass(tiny: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    await check("8.3", null_subquery, settings=tiny)
    assert "✅ Exercise 8.3 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("backfill", "fragment"),
    [
        (one_update, "one transaction updated"),
        (one_update_in_a_cte, "one transaction updated"),
        (batches_one_transaction, "one transaction updated"),
        (row_by_row, "UPDATE statements for"),
        (id_arithmetic, "still have email_lower NULL"),
        (overwrites, "overwrote it"),
        (forgets_lower, "expected lower(email)"),
        (returns_batches, "should return how many rows it filled"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
async def test_8_3_wrong_answers_fail(tiny: Settings, backfill, fragment: str) -> None:
    await fails_with(tiny, "8.3", fragment, backfill)


# --- 8.4 an index built without blocking writers (PostgreSQL) ----------------------------------------------------

INDEX = "ix_signups_email_lower"


def up_plain_index() -> None:
    op.create_index(INDEX, "signups", ["email_lower"])


def down_plain_index() -> None:
    op.drop_index(INDEX, "signups")


def up_concurrently_in_transaction() -> None:
    op.create_index(INDEX, "signups", ["email_lower"], postgresql_concurrently=True)


def up_wrong_column() -> None:
    with op.get_context().autocommit_block():
        op.create_index(INDEX, "signups", ["email"], postgresql_concurrently=True)


def up_raw_sql_with_lock_timeout() -> None:
    # Correct too: raw SQL, IF NOT EXISTS for a retried deploy, and a lock_timeout so it never queues for long.
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '5s'")
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON signups (email_lower)")


def up_impatient() -> None:
    # Online-safe in spirit, but a lock_timeout shorter than the wait for transactions already writing.
    with op.get_context().autocommit_block():
        op.execute("SET lock_timeout = '50ms'")
        op.create_index(INDEX, "signups", ["email_lower"], postgresql_concurrently=True)


@pytest.fixture
def pg_tiny(pg_admin_url: str) -> Settings:
    from course.settings import get_settings

    return get_settings(scale="tiny", backend="postgres")


async def test_8_4_raw_sql_passes(pg_tiny: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    await check("8.4", up_raw_sql_with_lock_timeout, SOLVED["downgrade_8_4"], settings=pg_tiny)
    assert "✅ Exercise 8.4 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("upgrade", "downgrade", "fragment"),
    [
        (up_plain_index, down_plain_index, "a one-row INSERT waited more than a second"),
        (up_concurrently_in_transaction, SOLVED["downgrade_8_4"], "cannot run inside a transaction block"),
        (up_wrong_column, SOLVED["downgrade_8_4"], "should index email_lower only"),
        (up_impatient, SOLVED["downgrade_8_4"], "your migration gave up on a lock timeout"),
        (SOLVED["upgrade_8_4"], down_nothing, "the index ix_signups_email_lower is still there"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
async def test_8_4_wrong_answers_fail(pg_tiny: Settings, upgrade, downgrade, fragment: str) -> None:
    await fails_with(pg_tiny, "8.4", fragment, upgrade, downgrade)


async def test_8_4_is_skipped_on_sqlite(capsys: pytest.CaptureFixture[str]) -> None:
    from course.settings import get_settings

    await check(
        "8.4",
        SOLVED["upgrade_8_4"],
        SOLVED["downgrade_8_4"],
        settings=get_settings(scale="tiny", backend="sqlite"),
    )
    assert "⏭ Exercise 8.4 skipped" in capsys.readouterr().out
