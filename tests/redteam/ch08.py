"""Chapter 8 answers written blind (without reading the checks): migrations, a rename, a backfill, a concurrent index."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.redteam import Case

ONLY_ON: dict[str, str] = {}

# ---------------------------------------------------------------- 8.1: right answers


def upgrade_batch() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"])


def downgrade_batch() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_country")
        batch.drop_column("marketing_opt_in")
        batch.drop_column("phone")


def upgrade_plain_ops() -> None:
    """op.add_column / op.create_index directly (SQLite can ADD COLUMN and CREATE INDEX without a batch)."""
    op.add_column("customers", sa.Column("phone", sa.String(length=30)))
    op.add_column(
        "customers", sa.Column("marketing_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_index(op.f("ix_customers_country"), "customers", ["country"], unique=False)


def downgrade_plain_then_batch() -> None:
    """The index dropped directly; the columns in a batch (the part SQLite cannot do in place everywhere)."""
    op.drop_index(op.f("ix_customers_country"), table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("marketing_opt_in")
        batch.drop_column("phone")


# ---------------------------------------------------------------- 8.1: wrong answers


def upgrade_not_null_no_default() -> None:
    """A NOT NULL column without a server default on a table that has rows."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False))
        batch.create_index("ix_customers_country", ["country"])


def upgrade_default_removed() -> None:
    """Uses the server default to fill the rows, then removes it: the models keep it."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"])
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("marketing_opt_in", existing_type=sa.Boolean(), server_default=None)


def upgrade_index_misnamed() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("customers_country_idx", ["country"])


def downgrade_misnamed_index() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("customers_country_idx")
        batch.drop_column("marketing_opt_in")
        batch.drop_column("phone")


def downgrade_keeps_index() -> None:
    """Drops the columns but forgets the index."""
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("marketing_opt_in")
        batch.drop_column("phone")


def downgrade_recreates_table() -> None:
    """Drops the table and creates version 1 again: the schema is right, the customers are gone."""
    op.drop_table("customers")
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("fullname", sa.String(200), nullable=True),
        sa.Column("country", sa.String(2), nullable=False, server_default="US"),
        sa.Column(
            "tier",
            sa.Enum("free", "pro", name="customer_tier", create_type=False),
            nullable=False,
            server_default="free",
        ),
    )


def upgrade_phone_too_short() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(20), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"])


def upgrade_unique_index() -> None:
    """A unique index on country: many customers share a country."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"], unique=True)


def downgrade_nothing() -> None:
    """A downgrade that does nothing."""


def upgrade_opt_in_nullable() -> None:
    """marketing_opt_in left nullable."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=True, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"])


# ---------------------------------------------------------------- 8.2: right answers


def upgrade_rename_batch() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "fullname", new_column_name="display_name", existing_type=sa.String(200), existing_nullable=True
        )


def downgrade_rename_batch() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "display_name", new_column_name="fullname", existing_type=sa.String(200), existing_nullable=True
        )


def upgrade_add_copy_drop() -> None:
    """Expand, copy in SQL, contract."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET display_name = fullname")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def downgrade_add_copy_drop() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("fullname", sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET fullname = display_name")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("display_name")


def upgrade_rename_sql() -> None:
    """Both databases know ALTER TABLE ... RENAME COLUMN (SQLite since 3.25)."""
    op.execute("ALTER TABLE customers RENAME COLUMN fullname TO display_name")


def downgrade_rename_sql() -> None:
    op.execute("ALTER TABLE customers RENAME COLUMN display_name TO fullname")


# ---------------------------------------------------------------- 8.2: wrong answers


def upgrade_autogenerated() -> None:
    """What autogenerate wrote: add + drop, every name lost."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        batch.drop_column("fullname")


def downgrade_autogenerated() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("fullname", sa.String(length=200), nullable=True))
        batch.drop_column("display_name")


def downgrade_rename_nothing() -> None:
    """The downgrade forgotten."""


def upgrade_rename_not_null() -> None:
    """Renames and makes the column NOT NULL: the NULL name breaks it (and the models say nullable)."""
    op.execute("UPDATE customers SET fullname = '' WHERE fullname IS NULL")
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "fullname", new_column_name="display_name", existing_type=sa.String(200), nullable=False
        )


def upgrade_copy_by_formatting() -> None:
    """Copies name by name with f-strings: the quote breaks it (and it is one statement per row)."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    bind = op.get_bind()
    for customer_id, name in bind.execute(text("SELECT id, fullname FROM customers")).all():
        if name is not None:
            op.execute(f"UPDATE customers SET display_name = '{name}' WHERE id = {customer_id}")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def downgrade_wrong_name() -> None:
    """Renames back to full_name instead of fullname."""
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "display_name", new_column_name="full_name", existing_type=sa.String(200), existing_nullable=True
        )


def upgrade_copy_wider() -> None:
    """Copies the data but into a String(255) column: the models say String(200)."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=255), nullable=True))
    op.execute("UPDATE customers SET display_name = fullname")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def upgrade_copy_keep_old() -> None:
    """Adds and copies, never drops fullname."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET display_name = fullname")


def downgrade_drop_new() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("display_name")


# ---------------------------------------------------------------- 8.3: right answers


async def backfill_max_subquery(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """The keyset of the hint: the batch's last id, then one range UPDATE."""
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            upper = (
                await conn.execute(
                    text(
                        "SELECT max(id) FROM (SELECT id FROM signups WHERE id > :last ORDER BY id LIMIT :n) AS b"
                    ),
                    {"last": last, "n": batch_size},
                )
            ).scalar()
            if upper is None:
                return filled
            result = await conn.execute(
                text(
                    "UPDATE signups SET email_lower = lower(email) "
                    "WHERE id > :last AND id <= :upper AND email_lower IS NULL"
                ),
                {"last": last, "upper": upper},
            )
            filled += result.rowcount
            last = upper


async def backfill_null_keyset(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Walks only the NULL rows: their ids in order after the last one, then UPDATE ... WHERE id IN (...)."""
    signups = sa.table("signups", sa.column("id"), sa.column("email"), sa.column("email_lower"))
    filled, last = 0, None
    while True:
        async with engine.begin() as conn:
            query = sa.select(signups.c.id).where(signups.c.email_lower.is_(None)).order_by(signups.c.id)
            if last is not None:
                query = query.where(signups.c.id > last)
            ids = (await conn.execute(query.limit(batch_size))).scalars().all()
            if not ids:
                return filled
            result = await conn.execute(
                sa.update(signups)
                .where(signups.c.id.in_(ids), signups.c.email_lower.is_(None))
                .values(email_lower=sa.func.lower(signups.c.email))
            )
            filled += result.rowcount
            last = ids[-1]


async def backfill_update_returning(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """One statement per batch: UPDATE ... WHERE id IN (the next NULL ids after the last) RETURNING id."""
    filled, last = 0, -1
    while True:
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        text(
                            "UPDATE signups SET email_lower = lower(email) WHERE id IN ("
                            "SELECT id FROM signups WHERE id > :last AND email_lower IS NULL ORDER BY id LIMIT :n"
                            ") RETURNING id"
                        ),
                        {"last": last, "n": batch_size},
                    )
                )
                .scalars()
                .all()
            )
        if not ids:
            return filled
        filled += len(ids)
        last = max(ids)


# ---------------------------------------------------------------- 8.3: wrong answers


async def backfill_one_update(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Everything in one UPDATE and one transaction."""
    async with engine.begin() as conn:
        result = await conn.execute(
            text("UPDATE signups SET email_lower = lower(email) WHERE email_lower IS NULL")
        )
        return result.rowcount


async def backfill_offset(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """OFFSET over the NULL rows: once a batch is filled the next offset skips rows still NULL."""
    filled, page = 0, 0
    while True:
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        text("SELECT id FROM signups WHERE email_lower IS NULL ORDER BY id LIMIT :n OFFSET :o"),
                        {"n": batch_size, "o": page * batch_size},
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return filled
            result = await conn.execute(
                sa.text("UPDATE signups SET email_lower = lower(email) WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": list(ids)},
            )
            filled += result.rowcount
            page += 1


async def backfill_id_ranges(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Counts by ids, not rows (the hint warns): with gaps the batches are short and the statements many."""
    async with engine.connect() as conn:
        top = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM signups"))).scalar_one()
    filled, last = 0, 0
    while last < top:
        async with engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE signups SET email_lower = lower(email) "
                    "WHERE id > :last AND id <= :upper AND email_lower IS NULL"
                ),
                {"last": last, "upper": last + batch_size},
            )
            filled += result.rowcount
        last += batch_size
    return filled


async def backfill_row_by_row(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Batches of ids, but one UPDATE per row."""
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        text(
                            "SELECT id FROM signups WHERE id > :last AND email_lower IS NULL ORDER BY id LIMIT :n"
                        ),
                        {"last": last, "n": batch_size},
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return filled
            for row_id in ids:
                await conn.execute(
                    text("UPDATE signups SET email_lower = lower(email) WHERE id = :id"), {"id": row_id}
                )
                filled += 1
            last = ids[-1]


async def backfill_overwrites(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Keyset batches, but rewrites rows that already had a value."""
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            upper = (
                await conn.execute(
                    text(
                        "SELECT max(id) FROM (SELECT id FROM signups WHERE id > :last ORDER BY id LIMIT :n) AS b"
                    ),
                    {"last": last, "n": batch_size},
                )
            ).scalar()
            if upper is None:
                return filled
            result = await conn.execute(
                text("UPDATE signups SET email_lower = lower(email) WHERE id > :last AND id <= :upper"),
                {"last": last, "upper": upper},
            )
            filled += result.rowcount
            last = upper


async def backfill_counts_batches(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Right work, returns the number of batches instead of rows filled."""
    batches, last = 0, 0
    while True:
        async with engine.begin() as conn:
            upper = (
                await conn.execute(
                    text(
                        "SELECT max(id) FROM (SELECT id FROM signups WHERE id > :last ORDER BY id LIMIT :n) AS b"
                    ),
                    {"last": last, "n": batch_size},
                )
            ).scalar()
            if upper is None:
                return batches
            await conn.execute(
                text(
                    "UPDATE signups SET email_lower = lower(email) "
                    "WHERE id > :last AND id <= :upper AND email_lower IS NULL"
                ),
                {"last": last, "upper": upper},
            )
            batches += 1
            last = upper


async def backfill_fixed_batch(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Ignores batch_size: always 1,000."""
    return await backfill_max_subquery(engine, batch_size=1_000)


async def backfill_one_transaction(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Batches of statements, but all inside one transaction."""
    filled, last = 0, 0
    async with engine.begin() as conn:
        while True:
            upper = (
                await conn.execute(
                    text(
                        "SELECT max(id) FROM (SELECT id FROM signups WHERE id > :last ORDER BY id LIMIT :n) AS b"
                    ),
                    {"last": last, "n": batch_size},
                )
            ).scalar()
            if upper is None:
                return filled
            result = await conn.execute(
                text(
                    "UPDATE signups SET email_lower = lower(email) "
                    "WHERE id > :last AND id <= :upper AND email_lower IS NULL"
                ),
                {"last": last, "upper": upper},
            )
            filled += result.rowcount
            last = upper


async def backfill_one_too_many(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Off by one: batches of batch_size + 1 rows."""
    return await backfill_max_subquery(engine, batch_size=batch_size + 1)


async def backfill_python_lower(engine: AsyncEngine, *, batch_size: int = 1_000) -> int:
    """Lower-cases in Python (str.lower is not the database's lower()) with one executemany per batch."""
    filled, last = 0, 0
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, email FROM signups WHERE id > :last AND email_lower IS NULL ORDER BY id LIMIT :n"
                    ),
                    {"last": last, "n": batch_size},
                )
            ).all()
            if not rows:
                return filled
            await conn.execute(
                text("UPDATE signups SET email_lower = :v WHERE id = :id"),
                [{"v": email.lower() if email is not None else None, "id": i} for i, email in rows],
            )
            filled += len(rows)
            last = rows[-1][0]


# ---------------------------------------------------------------- 8.4: right answers


def upgrade_concurrently() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_signups_email_lower", "signups", ["email_lower"], postgresql_concurrently=True)


def downgrade_concurrently() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_signups_email_lower", table_name="signups", postgresql_concurrently=True)


def upgrade_concurrently_sql() -> None:
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_signups_email_lower ON signups (email_lower)")


def downgrade_concurrently_sql() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_signups_email_lower")


# ---------------------------------------------------------------- 8.4: wrong answers


def upgrade_plain_index() -> None:
    op.create_index("ix_signups_email_lower", "signups", ["email_lower"])


def downgrade_plain_index() -> None:
    op.drop_index("ix_signups_email_lower", table_name="signups")


def upgrade_concurrently_in_transaction() -> None:
    """CONCURRENTLY inside the migration's transaction: PostgreSQL refuses it."""
    op.create_index("ix_signups_email_lower", "signups", ["email_lower"], postgresql_concurrently=True)


def upgrade_concurrently_misnamed() -> None:
    with op.get_context().autocommit_block():
        op.create_index("signups_email_lower_idx", "signups", ["email_lower"], postgresql_concurrently=True)


def downgrade_concurrently_misnamed() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("signups_email_lower_idx", table_name="signups", postgresql_concurrently=True)


def upgrade_expression_index() -> None:
    """An index on lower(email) under the right name: not on the email_lower column."""
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY ix_signups_email_lower ON signups (lower(email))")


def upgrade_unique_concurrently() -> None:
    """A unique index: email_lower may repeat."""
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_signups_email_lower", "signups", ["email_lower"], unique=True, postgresql_concurrently=True
        )


def downgrade_index_nothing() -> None:
    """The downgrade forgotten."""


# ---------------------------------------------------------------- red team C2: 8.4 more answers


def upgrade_sql_upper_unquoted() -> None:
    """A correct alternative: raw SQL in capitals with unquoted names, which PostgreSQL folds to lower case (the
    index is ix_signups_email_lower)."""
    with op.get_context().autocommit_block():
        op.execute(text("CREATE INDEX CONCURRENTLY IX_SIGNUPS_EMAIL_LOWER ON SIGNUPS (EMAIL_LOWER)"))


def downgrade_sql_upper_unquoted() -> None:
    with op.get_context().autocommit_block():
        op.execute(text("DROP INDEX CONCURRENTLY IX_SIGNUPS_EMAIL_LOWER"))


def upgrade_op_f_if_not_exists() -> None:
    """A correct alternative: op.f() names, if_not_exists, unique=False spelled out, through the bind's connection."""
    with op.get_context().autocommit_block():
        op.create_index(
            op.f("ix_signups_email_lower"),
            "signups",
            ["email_lower"],
            unique=False,
            if_not_exists=True,
            postgresql_concurrently=True,
        )


def downgrade_bind_if_exists() -> None:
    with op.get_context().autocommit_block():
        op.get_bind().execute(text("DROP INDEX CONCURRENTLY IF EXISTS ix_signups_email_lower"))


def upgrade_autocommit_plain() -> None:
    """An autocommit block around a plain CREATE INDEX (the block taken for the fix, CONCURRENTLY forgotten): the
    SHARE lock still waits behind the open writer and stops every insert behind it. Violates 'the application can
    keep writing to signups while the index is built'."""
    with op.get_context().autocommit_block():
        op.create_index("ix_signups_email_lower", "signups", ["email_lower"])


def upgrade_index_on_email() -> None:
    """The right name and CONCURRENTLY, but on the email column (the neighbour). Violates 'an index
    ix_signups_email_lower on email_lower'."""
    with op.get_context().autocommit_block():
        op.create_index("ix_signups_email_lower", "signups", ["email"], postgresql_concurrently=True)


def upgrade_two_columns() -> None:
    """A composite index (email, email_lower) under the right name: email_lower is not its leading column, so it
    serves no lookup by email_lower. Violates 'an index ix_signups_email_lower on email_lower'."""
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_signups_email_lower", "signups", ["email", "email_lower"], postgresql_concurrently=True
        )


def upgrade_mixed_case_name() -> None:
    """The name written IX_Signups_Email_Lower: SQLAlchemy quotes a mixed-case name, so PostgreSQL keeps the capitals
    and there is no ix_signups_email_lower. Violates 'an index ix_signups_email_lower'."""
    with op.get_context().autocommit_block():
        op.create_index("IX_Signups_Email_Lower", "signups", ["email_lower"], postgresql_concurrently=True)


def downgrade_mixed_case_name() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("IX_Signups_Email_Lower", table_name="signups", postgresql_concurrently=True)


def downgrade_concurrently_in_transaction() -> None:
    """DROP INDEX CONCURRENTLY inside the migration's transaction (the autocommit block only in the upgrade):
    PostgreSQL refuses it and the index stays. Violates 'downgrade_8_4() that drops it the same way' / 'the
    downgrade removes it'."""
    op.drop_index("ix_signups_email_lower", table_name="signups", postgresql_concurrently=True)


def downgrade_drops_column() -> None:
    """Drops the email_lower column (and the index with it): the index is gone, but so is the column and its data,
    under an ACCESS EXCLUSIVE lock. Violates 'downgrade_8_4() that drops it [the index] the same way'."""
    op.drop_column("signups", "email_lower")


# ---------------------------------------------------------------- red team C4: 8.1 (blind)


def upgrade_plain_index_first() -> None:
    """Right: the index first (op.f, outside a batch), then both columns; phone written as Unicode(30), which is
    VARCHAR(30) on both databases."""
    op.create_index(op.f("ix_customers_country"), "customers", ["country"])
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.Unicode(30), nullable=True))
        batch.add_column(
            sa.Column("marketing_opt_in", sa.Boolean(), server_default=sa.sql.expression.false(), nullable=False)
        )


def downgrade_batch_columns_then_index() -> None:
    """Right: the columns dropped in a batch first, the index afterwards (plain op)."""
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("phone")
        batch.drop_column("marketing_opt_in")
    op.drop_index("ix_customers_country", table_name="customers")


def downgrade_plain_ops() -> None:
    """Right: plain op.drop_index / op.drop_column (SQLite has DROP COLUMN since 3.35)."""
    op.drop_index("ix_customers_country", table_name="customers")
    op.drop_column("customers", "marketing_opt_in")
    op.drop_column("customers", "phone")


def upgrade_opt_in_default_true() -> None:
    """server_default=sa.true(): every existing customer is opted in to marketing. Violates 'the schema must equal
    the models exactly (... server defaults included)' (the models say sa.false())."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.create_index("ix_customers_country", ["country"])


def upgrade_opt_in_default_string() -> None:
    """server_default="false" (a string): PostgreSQL reads 'false' as false, SQLite stores the text 'false' in every
    existing row and as the default. Violates '... server defaults included' and 'It runs on SQLite too'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default="false"))
        batch.create_index("ix_customers_country", ["country"])


ONLY_ON["upgrade_opt_in_default_string"] = "sqlite"  # PostgreSQL folds 'false' to false


def upgrade_index_country_tier() -> None:
    """The index on (country, tier) 'for the queries that filter by both'. Violates 'Index("ix_customers_country",
    "country")' / 'equal the models exactly'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country", "tier"])


def upgrade_phone_text() -> None:
    """phone as Text (no length). Violates 'Column("phone", String(30), ...)' / 'equal the models exactly'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.Text(), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"])


def upgrade_partial_index() -> None:
    """A partial index that leaves out the common country 'US'. Violates 'equal the models exactly' (the models'
    index covers every row)."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index(
        "ix_customers_country",
        "customers",
        ["country"],
        postgresql_where=sa.text("country <> 'US'"),
        sqlite_where=sa.text("country <> 'US'"),
    )


def upgrade_phone_default_empty() -> None:
    """phone gets server_default='' 'so it is never NULL'. Violates 'Column("phone", String(30), nullable=True)'
    with no server default / '... server defaults included'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("phone", sa.String(30), nullable=True, server_default=""))
        batch.add_column(sa.Column("marketing_opt_in", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.create_index("ix_customers_country", ["country"])


def downgrade_leaves_phone() -> None:
    """Drops the index and marketing_opt_in, forgets phone. Violates 'after downgrade, it must equal version 1
    again'."""
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_country")
        batch.drop_column("marketing_opt_in")


# ---------------------------------------------------------------- red team C4: 8.2 (blind)


def upgrade_rename_no_column_keyword() -> None:
    """Right: ALTER TABLE ... RENAME old TO new (COLUMN is optional on both databases), quoted names."""
    op.execute('ALTER TABLE "customers" RENAME "fullname" TO "display_name"')


def downgrade_rename_no_column_keyword() -> None:
    op.execute('ALTER TABLE "customers" RENAME "display_name" TO "fullname"')


def upgrade_copy_python_params() -> None:
    """Right: expand, copy in Python with bound parameters (executemany keyed by id), contract."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    bind = op.get_bind()
    pairs = [
        {"i": customer_id, "n": name}
        for customer_id, name in bind.execute(text("SELECT id, fullname FROM customers")).all()
    ]
    if pairs:
        bind.execute(text("UPDATE customers SET display_name = :n WHERE id = :i"), pairs)
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def downgrade_copy_core() -> None:
    """Right: expand, copy with a Core UPDATE on sa.table, contract."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("fullname", sa.String(length=200), nullable=True))
    customers = sa.table("customers", sa.column("fullname"), sa.column("display_name"))
    op.execute(sa.update(customers).values(fullname=customers.c.display_name))
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("display_name")


def upgrade_copy_coalesce() -> None:
    """Copies coalesce(fullname, ''): the customer without a name gets ''. Violates 'every customer keeps their
    name under display_name' (NULL is not '')."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET display_name = coalesce(fullname, '')")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def upgrade_copy_trimmed() -> None:
    """Copies trim(fullname): leading and trailing spaces lost. Violates 'every customer keeps their name'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET display_name = trim(fullname)")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def upgrade_copy_non_empty() -> None:
    """Copies only names that are not empty: a '' name becomes NULL. Violates 'every customer keeps their name'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET display_name = fullname WHERE fullname IS NOT NULL AND fullname <> ''")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def upgrade_copy_by_position() -> None:
    """Reads the names in id order and writes the k-th to id k: right only while ids are 1..n without gaps.
    Violates 'every customer keeps their name under display_name'."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
    bind = op.get_bind()
    names = bind.execute(text("SELECT fullname FROM customers ORDER BY id")).scalars().all()
    for position, name in enumerate(names, start=1):
        bind.execute(text("UPDATE customers SET display_name = :n WHERE id = :i"), {"n": name, "i": position})
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("fullname")


def upgrade_copy_inside_batch() -> None:
    """The copy written inside the batch block: op.execute runs at once, the batch's add/drop only when the block
    ends, so the UPDATE meets no display_name column. Violates 'so that the schema reaches the models, every
    customer keeps their name' (the migration fails)."""
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=200), nullable=True))
        op.execute("UPDATE customers SET display_name = fullname")
        batch.drop_column("fullname")


def downgrade_rename_nullif() -> None:
    """Renames back, then 'cleans' empty names to NULL. Violates 'the downgrade brings back fullname with the names
    in it'."""
    with op.batch_alter_table("customers") as batch:
        batch.alter_column(
            "display_name", new_column_name="fullname", existing_type=sa.String(200), existing_nullable=True
        )
    op.execute("UPDATE customers SET fullname = NULL WHERE fullname = ''")


CASES = [
    # 8.1
    Case("8.1", (upgrade_batch, downgrade_batch), "pass", "batch add/create_index, reverse order back"),
    Case("8.1", (upgrade_plain_ops, downgrade_plain_then_batch), "pass", "plain ops up, batch only for the drops"),
    Case(
        "8.1",
        (upgrade_not_null_no_default, downgrade_batch),
        "fail",
        "'The table already has customers' (a NOT NULL column needs a value)",
    ),
    # blind verdict: failed, with a Python repr (DefaultClause(<sqlalchemy...) in the message; fixed in fab39e2: the default's SQL
    Case(
        "8.1",
        (upgrade_default_removed, downgrade_batch),
        "fail",
        "'equal the models exactly ... server defaults included'",
    ),
    Case("8.1", (upgrade_index_misnamed, downgrade_misnamed_index), "fail", "'ix_customers_country' is the name"),
    Case(
        "8.1", (upgrade_batch, downgrade_keeps_index), "fail", "'after downgrade, it must equal version 1 again'"
    ),
    Case(
        "8.1",
        (upgrade_batch, downgrade_recreates_table),
        "fail",
        "'they must keep their data' (a migration that drops and re-adds)",
    ),
    Case("8.1", (upgrade_phone_too_short, downgrade_batch), "fail", "'phone String(30)'"),
    Case("8.1", (upgrade_unique_index, downgrade_batch), "fail", "the models' index is not unique"),
    Case("8.1", (upgrade_batch, downgrade_nothing), "fail", "'downgrade_8_1' must return to version 1"),
    Case("8.1", (upgrade_opt_in_nullable, downgrade_batch), "fail", "'marketing_opt_in ... nullable=False'"),
    # 8.2
    Case("8.2", (upgrade_rename_batch, downgrade_rename_batch), "pass", "alter_column new_column_name in a batch"),
    Case("8.2", (upgrade_add_copy_drop, downgrade_add_copy_drop), "pass", "expand, copy in SQL, contract"),
    Case("8.2", (upgrade_rename_sql, downgrade_rename_sql), "pass", "ALTER TABLE ... RENAME COLUMN"),
    Case("8.2", (upgrade_autogenerated, downgrade_autogenerated), "fail", "'every customer keeps their name'"),
    Case("8.2", (upgrade_rename_batch, downgrade_rename_nothing), "fail", "'the downgrade brings back fullname'"),
    Case(
        "8.2",
        (upgrade_rename_not_null, downgrade_rename_batch),
        "fail",
        "'(same type, still nullable)' and the NULL name",
    ),
    Case(
        "8.2",
        (upgrade_copy_by_formatting, downgrade_add_copy_drop),
        "fail",
        "'(non-ASCII names, a quote, ...)': f-string SQL",
    ),
    Case("8.2", (upgrade_rename_batch, downgrade_wrong_name), "fail", "'the downgrade brings back fullname'"),
    Case("8.2", (upgrade_copy_wider, downgrade_add_copy_drop), "fail", "'(same type, ...)': String(255)"),
    Case(
        "8.2",
        (upgrade_copy_keep_old, downgrade_drop_new),
        "fail",
        "'change nothing else' / reach the models: fullname left",
    ),
    Case(
        "8.2",
        (upgrade_rename_batch, downgrade_autogenerated),
        "fail",
        "'the downgrade brings back fullname with the names in it'",
    ),
    # 8.3
    Case("8.3", (backfill_max_subquery,), "pass", "the hint's keyset"),
    Case("8.3", (backfill_null_keyset,), "pass", "keyset over the NULL rows, Core, UPDATE ... IN"),
    Case("8.3", (backfill_update_returning,), "pass", "one UPDATE ... IN (subquery LIMIT) RETURNING per batch"),
    Case("8.3", (backfill_one_update,), "fail", "'never updating more than batch_size rows in one transaction'"),
    Case("8.3", (backfill_offset,), "fail", "'Walk the primary key in order' (OFFSET skips rows)"),
    # blind verdict: passed (16 UPDATEs fit the 2 * batches + 2 bound); fixed in fab39e2: at most batches + 2, and the text says batches are of batch_size rows
    Case("8.3", (backfill_id_ranges,), "fail", "'the ids have gaps' (counting ids, not rows)"),
    Case("8.3", (backfill_row_by_row,), "fail", "'One UPDATE per batch, not one per row'"),
    Case("8.3", (backfill_overwrites,), "fail", "'rows that already have a value keep it'"),
    Case("8.3", (backfill_counts_batches,), "fail", "'return how many rows it filled'"),
    Case("8.3", (backfill_fixed_batch,), "fail", "ignores the batch_size argument"),
    Case("8.3", (backfill_one_transaction,), "fail", "'in one transaction': every batch in the same one"),
    Case("8.3", (backfill_one_too_many,), "fail", "'never more than batch_size' (batch_size + 1)"),
    # blind verdict: passed (an executemany counted as one UPDATE); fixed in fab39e2: counted once per parameter set
    Case(
        "8.3",
        (backfill_python_lower,),
        "fail",
        "'set email_lower = lower(email)' / one UPDATE per row (executemany)",
    ),
    # 8.4 (PostgreSQL only)
    Case("8.4", (upgrade_concurrently, downgrade_concurrently), "pass", "CONCURRENTLY in autocommit blocks"),
    Case("8.4", (upgrade_concurrently_sql, downgrade_concurrently_sql), "pass", "the same in raw SQL"),
    Case(
        "8.4",
        (upgrade_plain_index, downgrade_plain_index),
        "fail",
        "'the application can keep writing ... while the index is built'",
    ),
    Case(
        "8.4",
        (upgrade_concurrently_in_transaction, downgrade_concurrently),
        "fail",
        "'one condition about transactions'",
    ),
    Case(
        "8.4",
        (upgrade_concurrently_misnamed, downgrade_concurrently_misnamed),
        "fail",
        "'an index ix_signups_email_lower'",
    ),
    # blind verdict: passed (the downgrade ran with no writer around); fixed in fab39e2: the downgrade runs on a busy table too
    Case(
        "8.4",
        (upgrade_concurrently, downgrade_plain_index),
        "fail",
        "'downgrade_8_4() that drops it the same way'",
    ),
    Case("8.4", (upgrade_concurrently, downgrade_index_nothing), "fail", "'the downgrade removes it'"),
    Case("8.4", (upgrade_expression_index, downgrade_concurrently), "fail", "'on email_lower'"),
    # blind verdict: passed; fixed in fab39e2: a UNIQUE index is refused
    Case(
        "8.4",
        (upgrade_unique_concurrently, downgrade_concurrently),
        "fail",
        "a unique index is not what was asked",
    ),
    # red team C2: 8.4 (blind, committed before running)
    Case(
        "8.4",
        (upgrade_sql_upper_unquoted, downgrade_sql_upper_unquoted),
        "pass",
        "raw SQL in capitals, unquoted names fold to ix_signups_email_lower",
    ),
    Case(
        "8.4",
        (upgrade_op_f_if_not_exists, downgrade_bind_if_exists),
        "pass",
        "op.f(), if_not_exists, unique=False; DROP ... IF EXISTS through op.get_bind()",
    ),
    Case(
        "8.4",
        (upgrade_autocommit_plain, downgrade_concurrently),
        "fail",
        "'the application can keep writing ... while the index is built' (autocommit, no CONCURRENTLY)",
    ),
    Case("8.4", (upgrade_index_on_email, downgrade_concurrently), "fail", "'an index ... on email_lower' (email)"),
    Case(
        "8.4",
        (upgrade_two_columns, downgrade_concurrently),
        "fail",
        "'an index ... on email_lower' ((email, email_lower))",
    ),
    Case(
        "8.4",
        (upgrade_mixed_case_name, downgrade_mixed_case_name),
        "fail",
        "'an index ix_signups_email_lower' (quoted IX_Signups_Email_Lower)",
    ),
    Case(
        "8.4",
        (upgrade_concurrently, downgrade_concurrently_in_transaction),
        "fail",
        "'downgrade_8_4() that drops it the same way' (CONCURRENTLY in a transaction)",
    ),
    # blind verdict: PASSED a wrong answer (the downgrade dropped the column, and the index with it); fixed, the
    # check looks for the column and its values after the downgrade
    Case(
        "8.4",
        (upgrade_concurrently, downgrade_drops_column),
        "fail",
        "'downgrade_8_4() that drops it the same way' (drops the column)",
    ),
    # red team C4: 8.1 and 8.2 (blind, committed before running)
    Case(
        "8.1",
        (upgrade_plain_index_first, downgrade_batch_columns_then_index),
        "pass",
        "index first with op.f, Unicode(30); columns dropped before the index",
    ),
    Case("8.1", (upgrade_plain_ops, downgrade_plain_ops), "pass", "plain ops both ways (SQLite DROP COLUMN)"),
    Case("8.1", (upgrade_opt_in_default_true, downgrade_batch), "fail", "'server defaults included': sa.true()"),
    Case(
        "8.1",
        (upgrade_opt_in_default_string, downgrade_batch),
        "fail",
        "'server defaults included' / 'runs on SQLite too': server_default='false'",
    ),
    Case(
        "8.1", (upgrade_index_country_tier, downgrade_batch), "fail", "'Index(... \"country\")': (country, tier)"
    ),
    Case("8.1", (upgrade_phone_text, downgrade_batch), "fail", "'phone String(30)': Text"),
    # blind verdict (red team C4): PASSED a wrong answer; autogenerate's comparison does not see the index's WHERE (fixed in the check)
    Case("8.1", (upgrade_partial_index, downgrade_batch), "fail", "'equal the models exactly': partial index"),
    Case("8.1", (upgrade_phone_default_empty, downgrade_batch), "fail", "'server defaults included': phone ''"),
    Case(
        "8.1", (upgrade_batch, downgrade_leaves_phone), "fail", "'after downgrade ... version 1 again': phone left"
    ),
    Case(
        "8.2",
        (upgrade_rename_no_column_keyword, downgrade_rename_no_column_keyword),
        "pass",
        "ALTER TABLE ... RENAME old TO new without COLUMN",
    ),
    Case("8.2", (upgrade_copy_python_params, downgrade_copy_core), "pass", "Python executemany copy; Core copy"),
    # blind verdict (red team C4): PASSED a wrong answer; the NULL name came back as '' (fixed in the check)
    Case(
        "8.2",
        (upgrade_copy_coalesce, downgrade_rename_batch),
        "fail",
        "'every customer keeps their name': NULL->''",
    ),
    Case("8.2", (upgrade_copy_trimmed, downgrade_rename_batch), "fail", "'every customer keeps their name': trim"),
    # blind verdict (red team C4): PASSED a wrong answer; '' became NULL (or no '' name in the table) (fixed in the check)
    Case(
        "8.2",
        (upgrade_copy_non_empty, downgrade_rename_batch),
        "fail",
        "'every customer keeps their name': ''->NULL",
    ),
    # blind verdict (red team C4): PASSED a wrong answer; the check's customers have ids 1..n without gaps (fixed in the check)
    Case(
        "8.2",
        (upgrade_copy_by_position, downgrade_rename_batch),
        "fail",
        "'every customer keeps their name': k-th name to id k",
    ),
    Case(
        "8.2", (upgrade_copy_inside_batch, downgrade_rename_batch), "fail", "the copy runs before the add: fails"
    ),
    # blind verdict (red team C4): PASSED a wrong answer; '' became NULL on the way down (or no '' name) (fixed in the check)
    Case(
        "8.2",
        (upgrade_rename_batch, downgrade_rename_nullif),
        "fail",
        "'the downgrade brings back fullname with the names in it': ''->NULL",
    ),
]

# A piece of the ❌ message each `fail` case must give (chosen from the messages of the blind run, reviewed; none
# where the flaw can show in more than one way under concurrency).
FRAGMENTS: dict[str, str] = {
    "8.4-fail-upgrade_concurrently+downgrade_drops_column": "after downgrade the column signups.email_lower",
    "8.4-fail-upgrade_autocommit_plain+downgrade_concurrently": "a one-row INSERT waited more than a second while the index",
    "8.4-fail-upgrade_index_on_email+downgrade_concurrently": "ix_signups_email_lower should index email_lower only:",
    "8.4-fail-upgrade_two_columns+downgrade_concurrently": "ix_signups_email_lower should index email_lower only:",
    "8.4-fail-upgrade_mixed_case_name+downgrade_mixed_case_name": "after upgrade there is no index ix_signups_email_lower on",
    "8.4-fail-upgrade_concurrently+downgrade_concurrently_in_transaction": "PostgreSQL refused: CREATE/DROP INDEX CONCURRENTLY cannot",
    "8.1-fail-upgrade_batch+downgrade_keeps_index": "index ix_customers_country is there but not in version",
    "8.1-fail-upgrade_batch+downgrade_nothing": "column customers.marketing_opt_in is there but not in",
    "8.1-fail-upgrade_batch+downgrade_recreates_table": "names changed during the downgrade",
    "8.1-fail-upgrade_default_removed+downgrade_batch": "the server default differs",
    "8.1-fail-upgrade_index_misnamed+downgrade_misnamed_index": "after upgrade the schema differs from the models: index",
    "8.1-fail-upgrade_not_null_no_default+downgrade_batch": "a NOT NULL column added to a table that has rows needs a",
    "8.1-fail-upgrade_opt_in_nullable+downgrade_batch": "the NULL-ability differs",
    "8.1-fail-upgrade_phone_too_short+downgrade_batch": "the type differs",
    "8.1-fail-upgrade_unique_index+downgrade_batch": "the database refused your migration",
    "8.2-fail-upgrade_autogenerated+downgrade_autogenerated": "customers lost their name on the way up: drop_column +",
    "8.2-fail-upgrade_copy_by_formatting+downgrade_add_copy_drop": "the database refused your migration",
    "8.2-fail-upgrade_copy_keep_old+downgrade_drop_new": "column customers.fullname is there but not in the models",
    "8.2-fail-upgrade_copy_wider+downgrade_add_copy_drop": "the type differs",
    "8.2-fail-upgrade_rename_batch+downgrade_autogenerated": "customers lost their name on the way down: the downgrade",
    "8.2-fail-upgrade_rename_batch+downgrade_rename_nothing": "column customers.fullname is missing; column",
    "8.2-fail-upgrade_rename_batch+downgrade_wrong_name": "column customers.fullname is missing; column",
    "8.2-fail-upgrade_rename_not_null+downgrade_rename_batch": "the NULL-ability differs",
    "8.3-fail-backfill_counts_batches": "it should return how many rows it filled",
    "8.3-fail-backfill_fixed_batch": "every row an UPDATE touches stays locked until its",
    "8.3-fail-backfill_id_ranges": "the ids have gaps, so a range of batch_size ids holds fewer rows",
    "8.3-fail-backfill_offset": "rows still have email_lower NULL after the backfill",
    "8.3-fail-backfill_one_too_many": "every row an UPDATE touches stays locked until its",
    "8.3-fail-backfill_one_transaction": "every row an UPDATE touches stays locked until its",
    "8.3-fail-backfill_one_update": "every row an UPDATE touches stays locked until its",
    "8.3-fail-backfill_overwrites": "already had an email_lower and the backfill overwrote it:",
    "8.3-fail-backfill_python_lower": "that is about one per row",
    "8.3-fail-backfill_row_by_row": "that is about one per row",
    "8.4-fail-upgrade_concurrently+downgrade_index_nothing": "after downgrade the index ix_signups_email_lower is still",
    "8.4-fail-upgrade_concurrently+downgrade_plain_index": "while the downgrade dropped the index",
    "8.4-fail-upgrade_concurrently_in_transaction+downgrade_concurrently": "PostgreSQL refused: CREATE/DROP INDEX CONCURRENTLY cannot",
    "8.4-fail-upgrade_concurrently_misnamed+downgrade_concurrently_misnamed": "after upgrade there is no index ix_signups_email_lower on",
    "8.4-fail-upgrade_expression_index+downgrade_concurrently": "ix_signups_email_lower should index email_lower only:",
    "8.4-fail-upgrade_plain_index+downgrade_plain_index": "a one-row INSERT waited more than a second while the index",
    "8.4-fail-upgrade_unique_concurrently+downgrade_concurrently": "ix_signups_email_lower is a UNIQUE index: it would refuse",
    "8.1-fail-upgrade_opt_in_default_true+downgrade_batch": "the server default differs",
    "8.1-fail-upgrade_opt_in_default_string+downgrade_batch": "the server default differs",
    "8.1-fail-upgrade_index_country_tier+downgrade_batch": "index ix_customers_country is there but not in the models",
    "8.1-fail-upgrade_phone_text+downgrade_batch": "the type differs",
    "8.1-fail-upgrade_phone_default_empty+downgrade_batch": "the server default differs",
    "8.1-fail-upgrade_batch+downgrade_leaves_phone": "column customers.phone is there but not in version 1",
    "8.2-fail-upgrade_copy_trimmed+downgrade_rename_batch": "'  Eve  ' became 'Eve'",
    "8.1-fail-upgrade_partial_index+downgrade_batch": "is a partial index (CREATE INDEX ... WHERE)",
    "8.2-fail-upgrade_copy_coalesce+downgrade_rename_batch": "names changed on the way up",
    "8.2-fail-upgrade_copy_non_empty+downgrade_rename_batch": "names changed on the way up",
    "8.2-fail-upgrade_copy_by_position+downgrade_rename_batch": "names changed on the way up",
    "8.2-fail-upgrade_rename_batch+downgrade_rename_nullif": "names changed on the way down",
    "8.2-fail-upgrade_copy_inside_batch+downgrade_rename_batch": "the database refused your migration",
}
CASES = [replace(case, fragment=FRAGMENTS.get(case.id, "")) for case in CASES]
