"""Tests for course.chapters.ch02_indexing.catalogue: catalog reading, statistics, and the lesson's demo tables, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from course.chapters.ch02_indexing import catalogue as indexing
from course.chapters.ch02_indexing.loading import load_then_index
from course.chapters.ch02_indexing.search import compare_match, fts5_query
from course.db import make_engine
from course.seed.fresh import fresh_copy
from course.settings import Settings


@pytest.fixture
async def seeded(tiny: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh copy of the tiny seed."""
    async with fresh_copy(tiny) as copy:
        engine = make_engine(url=copy.url)
        try:
            yield engine
        finally:
            await engine.dispose()


@pytest.fixture
async def empty(empty_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url=empty_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("sql", "columns", "where"),
    [
        ("CREATE INDEX ix ON posts (author_id)", ("author_id",), None),
        ('CREATE INDEX "ix" ON "posts" ("author_id", created_at DESC)', ("author_id", "created_at"), None),
        ("CREATE INDEX ix ON users (name COLLATE NOCASE ASC)", ("name",), None),
        (
            "CREATE INDEX ix ON users (substr(name, 1, 3), lower(email))",
            ("substr(name, 1, 3)", "lower(email)"),
            None,
        ),
        (
            "CREATE INDEX ix ON posts(published_at) WHERE status = 'published' AND deleted_at IS NULL",
            ("published_at",),
            "status = 'published' AND deleted_at IS NULL",
        ),
        ("create unique index ix on t (a)\n  where b in ('x)', 'y,')", ("a",), "b in ('x)', 'y,')"),
    ],
)
def test_parse_create_index(sql: str, columns: tuple[str, ...], where: str | None) -> None:
    assert indexing.parse_create_index(sql) == (columns, where)


def test_parse_create_index_refuses_other_statements() -> None:
    with pytest.raises(ValueError, match="not a CREATE INDEX"):
        indexing.parse_create_index("CREATE TABLE t (a INTEGER)")


async def test_seeded_indexes_are_listed(seeded: AsyncEngine) -> None:
    users = {ix.columns: ix for ix in await indexing.list_indexes(seeded, "users")}
    assert users[("email",)].unique and not users[("email",)].partial
    post_tags = {ix.columns: ix for ix in await indexing.list_indexes(seeded, "post_tags")}
    # The composite primary key has an index of its own on both backends, and it counts as an index here.
    assert post_tags[("post_id", "tag_id")].primary
    assert not post_tags[("tag_id",)].unique


async def test_expression_partial_and_descending_indexes(seeded: AsyncEngine) -> None:
    await indexing.run_ddl(
        seeded,
        "CREATE INDEX ix_feed ON posts (published_at DESC) WHERE status = 'published' AND deleted_at IS NULL",
        "CREATE INDEX ix_lower_name ON users (lower(name))",
    )
    feed = next(ix for ix in await indexing.list_indexes(seeded, "posts") if ix.name == "ix_feed")
    assert feed.columns == ("published_at",) and feed.partial
    assert "published" in feed.where and "deleted_at IS NULL" in feed.where
    lower = next(ix for ix in await indexing.list_indexes(seeded, "users") if ix.name == "ix_lower_name")
    assert lower.columns[0].startswith("lower(") and "name" in lower.columns[0]
    # The predicate as the catalog prints it is valid SQL: checks count the rows it keeps.
    async with seeded.connect() as conn:
        kept = await conn.scalar(text(f"SELECT count(*) FROM posts WHERE {feed.where}"))
    assert 0 < kept < 1000


async def test_include_columns(seeded: AsyncEngine) -> None:
    # PostgreSQL has INCLUDE; on SQLite a covering index simply lists the extra column as a key column.
    if seeded.dialect.name == "postgresql":
        ddl, columns, include = (
            "CREATE INDEX ix_spend ON orders (user_id) INCLUDE (total_cents)",
            ("user_id",),
            ("total_cents",),
        )
    else:
        ddl, columns, include = (
            "CREATE INDEX ix_spend ON orders (user_id, total_cents)",
            ("user_id", "total_cents"),
            (),
        )
    await indexing.run_ddl(seeded, ddl)
    spend = next(ix for ix in await indexing.list_indexes(seeded, "orders") if ix.name == "ix_spend")
    assert (spend.columns, spend.include) == (columns, include)


async def test_show_indexes_is_a_table(seeded: AsyncEngine) -> None:
    frame = await indexing.show_indexes(seeded, "orders")
    assert list(frame.columns) == ["name", "columns", "unique", "primary", "where", "include"]
    assert "user_id" in set(frame["columns"])
    assert not frame["where"].isna().any()


async def test_index_size(seeded: AsyncEngine) -> None:
    size = await indexing.index_size(seeded, "ix_posts_author_id")
    # SQLite builds without the dbstat table answer None; otherwise a few pages.
    assert size is None or size >= 4096


async def test_fill_lookup_table_grows_and_is_idempotent(empty: AsyncEngine) -> None:
    await indexing.fill_lookup_table(empty, 1_000)
    await indexing.fill_lookup_table(empty, 2_500)
    await indexing.fill_lookup_table(empty, 2_000)
    async with empty.connect() as conn:
        count, distinct, top = (
            await conn.execute(text("SELECT count(*), count(DISTINCT code), max(id) FROM lookup_demo"))
        ).one()
        code = await conn.scalar(text("SELECT code FROM lookup_demo WHERE id = 1234"))
    assert (count, distinct, top) == (2_500, 2_500, 2_500)
    assert code == "code-1234"


async def test_insert_cost(empty: AsyncEngine) -> None:
    frame = await indexing.insert_cost(empty, rows=2_000, index_counts=(0, 3), repeat=1)
    assert list(frame["extra indexes"]) == [0, 3]
    assert frame["relative"].iloc[0] == 1.0 and (frame["seconds"] > 0).all()
    assert frame["indexed"].iloc[1] == "(email), (amount), (category, created)"
    # The scratch table is gone afterwards.
    async with empty.connect() as conn:
        left = await conn.run_sync(lambda c: c.dialect.has_table(c, indexing.WRITE_TABLE))
    assert not left


async def test_insert_cost_refuses_more_indexes_than_it_has(empty: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="at most 3"):
        await indexing.insert_cost(empty, rows=10, index_counts=(4,))


async def test_show_indexes_marks_descending_columns(seeded: AsyncEngine) -> None:
    async with seeded.begin() as conn:
        await conn.execute(text("CREATE INDEX ix_orders_user_newest ON orders (user_id, created_at DESC)"))
    frame = (await indexing.show_indexes(seeded, "orders")).set_index("name")
    assert frame.loc["ix_orders_user_newest", "columns"] == "user_id, created_at DESC"
    assert frame.loc["ix_orders_user_id", "columns"] == "user_id"
    (newest,) = [ix for ix in await indexing.list_indexes(seeded, "orders") if ix.name == "ix_orders_user_newest"]
    assert newest.columns == ("user_id", "created_at") and newest.descending == (False, True)


@pytest.mark.parametrize(
    ("box", "query"),
    [
        ("garden kitchen", '"garden" "kitchen"'),
        ("garden-kitchen", '"garden-kitchen"'),
        ('say "hi', '"say" """hi"'),
        ("  O'Hara   c++ ", '"O\'Hara" "c++"'),
        ("", ""),
    ],
)
def test_fts5_query_quotes_every_term(box: str, query: str) -> None:
    assert fts5_query(box) == query


async def test_quoted_search_box_text_never_breaks_match(empty: AsyncEngine) -> None:
    if empty.dialect.name != "sqlite":
        pytest.skip("FTS5 is SQLite's")
    async with empty.begin() as conn:
        await conn.execute(text("CREATE VIRTUAL TABLE notes USING fts5(body)"))
        await conn.execute(text("INSERT INTO notes (body) VALUES ('a garden-kitchen for O''Hara'), ('c++ notes')"))
    frame = (await compare_match(empty, "notes", ["garden-kitchen", "O'Hara", "c++"])).set_index("search box")
    assert frame["raw MATCH"].str.startswith("error").all()
    assert list(frame["quoted MATCH"]) == ["1 rows", "1 rows", "1 rows"]


async def test_load_then_index_ends_with_the_same_table_gone(empty: AsyncEngine) -> None:
    frame = await load_then_index(empty, rows=2_000, repeat=1)
    assert list(frame["rows"]) == [2_000, 2_000] and (frame["seconds"] > 0).all()
    async with empty.connect() as conn:
        left = await conn.run_sync(lambda c: c.dialect.has_table(c, indexing.WRITE_TABLE))
    assert not left
