"""The schema keeps its promises on both backends: every FK indexed, constraints enforced, names predictable."""

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from course import db
from course.domain.models import DOMAIN_TABLES, Base
from course.seed import fresh
from course.settings import Settings


def test_every_foreign_key_has_a_leading_index() -> None:
    for table in Base.metadata.sorted_tables:
        leading = {ix.columns[0].name for ix in table.indexes} | {
            c.columns[0].name
            for c in table.constraints
            if hasattr(c, "columns")
            and c.columns
            and c.__class__.__name__ in ("UniqueConstraint", "PrimaryKeyConstraint")
        }
        for fk in table.foreign_keys:
            assert fk.parent.name in leading, f"{table.name}.{fk.parent.name} has no index"


def test_naming_convention() -> None:
    users = Base.metadata.tables["users"]
    names = {c.name for c in users.constraints}
    assert {"pk_users", "uq_users_email", "ck_users_status"} <= names
    assert "ix_posts_author_id" in {ix.name for ix in Base.metadata.tables["posts"].indexes}


async def test_schema_in_database_matches_models(tiny: Settings) -> None:
    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        async with engine.connect() as conn:

            def read(sync_conn):
                insp = inspect(sync_conn)
                return {t: {ix["name"] for ix in insp.get_indexes(t)} for t in insp.get_table_names()}

            indexes = await conn.run_sync(read)
        await engine.dispose()
    assert {t.name for t in DOMAIN_TABLES} <= set(indexes)
    assert "ix_comments_post_id" in indexes["comments"]
    assert "ix_transfers_to_account_id" in indexes["transfers"]


async def test_display_name_is_nullable_and_left_null_by_the_seed(tiny: Settings) -> None:
    # The seed does not fill display_name: the column must still be there, nullable, NULL everywhere, and clearable.
    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        async with engine.begin() as conn:
            columns = await conn.run_sync(lambda sync: {c["name"]: c for c in inspect(sync).get_columns("users")})
            filled = await conn.scalar(text("SELECT count(*) FROM users WHERE display_name IS NOT NULL"))
            users = await conn.scalar(text("SELECT count(*) FROM users"))
            await conn.execute(text("UPDATE users SET display_name = 'Ren' WHERE id = 1"))
            await conn.execute(text("UPDATE users SET display_name = NULL WHERE id = 1"))
            cleared = await conn.scalar(text("SELECT display_name FROM users WHERE id = 1"))
        await engine.dispose()
    assert columns["display_name"]["nullable"] and not columns["name"]["nullable"]
    assert users > 0 and filled == 0 and cleared is None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET balance_cents = -1 WHERE id = 1",
        "INSERT INTO transfers (from_account_id, to_account_id, amount_cents, created_at) VALUES (1, 2, 0, '2024-01-01')",
        "INSERT INTO transfers (from_account_id, to_account_id, amount_cents, created_at) VALUES (1, 1, 5, '2024-01-01')",
        "UPDATE users SET status = 'banned' WHERE id = 1",
        "UPDATE users SET email = (SELECT email FROM users WHERE id = 2) WHERE id = 1",
    ],
)
async def test_constraints_are_enforced(tiny: Settings, statement: str) -> None:
    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        await engine.dispose()
