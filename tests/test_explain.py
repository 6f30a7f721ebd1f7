"""Tests for course.tools.explain: readable plans and the questions checks ask of them, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased, joinedload

from course.db import make_engine, make_sessionmaker
from course.domain.models import Base, Post, User
from course.tools.explain import Plan, explain, explain_json
from course.tools.instrument import count_queries


async def _engine_with_data(url: str) -> AsyncEngine:
    """The course schema with 1,000 users and 5 posts each, analysed so PostgreSQL's planner sees real sizes."""
    engine = make_engine(url=url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.execute(
            insert(User),
            [{"email": f"u{n}@example.com", "name": f"User {n}", "password_hash": "x"} for n in range(1000)],
        )
        await conn.execute(
            insert(Post), [{"author_id": n // 5 + 1, "title": f"Post {n}", "body": "..."} for n in range(5000)]
        )
    async with engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return engine


@pytest.fixture
async def engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    engine = await _engine_with_data(f"sqlite+aiosqlite:///{tmp_path / 'course.sqlite3'}")
    yield engine
    await engine.dispose()


@pytest.fixture
async def pg_engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await _engine_with_data(pg_url)
    yield engine
    await engine.dispose()


async def test_sqlite_index_search(engine: AsyncEngine) -> None:
    plan = await explain(engine, select(Post).where(Post.author_id == 3))
    assert plan.dialect == "sqlite"
    assert plan.lines[0] == "QUERY PLAN"
    assert "SEARCH posts USING INDEX ix_posts_author_id (author_id=?)" in plan.text
    assert plan.index_names() == {"ix_posts_author_id"}
    assert plan.uses_index() and plan.uses_index("ix_posts_author_id")
    assert not plan.uses_index("ix_other")
    assert not plan.full_scan("posts")


async def test_sqlite_full_scan(engine: AsyncEngine) -> None:
    plan = await explain(engine, select(Post).where(Post.title == "Post 7"))
    assert plan.full_scan("posts")
    assert not plan.full_scan("users")
    assert not plan.uses_index()
    assert plan.index_names() == set()


async def test_sqlite_primary_key_search_counts_as_an_index(engine: AsyncEngine) -> None:
    plan = await explain(engine, select(User).where(User.id.in_([1, 2, 3])))
    assert "USING INTEGER PRIMARY KEY" in plan
    assert plan.uses_index()
    assert plan.index_names() == set()


async def test_sqlite_plan_is_drawn_as_a_tree(engine: AsyncEngine) -> None:
    posts = aliased(Post)
    per_user = select(func.count()).where(posts.author_id == User.id).scalar_subquery()
    plan = await explain(engine, select(User.name, per_user))
    assert plan.lines[1] == "|--SCAN users"
    assert plan.lines[2] == "`--CORRELATED SCALAR SUBQUERY 1"
    assert plan.lines[3].startswith("   `--SEARCH posts_1 USING COVERING INDEX ix_posts_author_id")
    assert plan.full_scan("users")
    # SQLite names the alias posts_1; the plan maps it back to the table.
    assert plan.aliases == {"posts_1": "posts"}
    assert not plan.full_scan("posts")


async def test_sqlite_alias_in_text_sql_maps_back_to_its_table(engine: AsyncEngine) -> None:
    plan = await explain(engine, "SELECT * FROM posts AS p WHERE p.title = :title", params={"title": "Post 1"})
    assert "SCAN p" in plan
    assert plan.full_scan("posts")


async def test_eager_loads_and_typed_parameters_are_compiled_as_sent(engine: AsyncEngine) -> None:
    stmt = select(User).options(joinedload(User.posts)).where(User.id == 1, User.created_at < datetime.now(UTC))
    plan = await explain(engine, stmt)
    assert plan.uses_index("ix_posts_author_id")
    assert plan.aliases == {"posts_1": "posts"}


async def test_session_and_connection_targets_send_one_statement(engine: AsyncEngine) -> None:
    stmt = select(Post.id).where(Post.author_id == 2)
    async with make_sessionmaker(engine)() as session:
        with count_queries(engine) as q:
            from_session = await explain(session, stmt)
    async with engine.connect() as conn:
        from_connection = await explain(conn, stmt)
    assert from_session == from_connection
    assert q.count == 1 and q.statements[0].startswith("EXPLAIN QUERY PLAN SELECT")


async def test_explain_json_is_postgres_only(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        await explain_json(engine, select(User))


async def test_sqlite_explain_does_not_run_the_statement(engine: AsyncEngine) -> None:
    plan = await explain(engine, update(User).where(User.id == 1).values(name="Changed"), analyze=True)
    assert plan.uses_index() and not plan.analyzed
    async with engine.connect() as conn:
        assert await conn.scalar(select(User.name).where(User.id == 1)) == "User 0"


def test_plan_renders_for_notebooks() -> None:
    plan = Plan("postgresql", ("Seq Scan on users u  (cost=0.00..1.20 rows=20)", "  Filter: (id < 3)"))
    assert str(plan) == plan.text == "Seq Scan on users u  (cost=0.00..1.20 rows=20)\n  Filter: (id < 3)"
    assert plan._repr_html_() == f"<pre>{plan.text.replace('<', '&lt;')}</pre>"
    assert plan.full_scan("users") and not plan.full_scan("u")

    printed: list[str] = []

    class Printer:
        def text(self, value: str) -> None:
            printed.append(value)

    plan._repr_pretty_(Printer(), cycle=False)
    assert printed == [plan.text]


def test_postgres_index_names_are_read_from_every_kind_of_index_scan() -> None:
    plan = Plan(
        "postgresql",
        (
            "Nested Loop",
            "  ->  Index Only Scan using uq_users_email on users",
            "  ->  Bitmap Heap Scan on posts",
            "        ->  Bitmap Index Scan on ix_posts_author_id",
            '  ->  Index Scan Backward using "Ix_Mixed" on comments',
        ),
    )
    assert plan.index_names() == {"uq_users_email", "ix_posts_author_id", "ix_mixed"}
    assert plan.uses_index("Ix_Mixed")
    assert not plan.full_scan("posts")


@pytest.mark.postgres
async def test_postgres_index_scan_and_seq_scan(pg_engine: AsyncEngine) -> None:
    indexed = await explain(pg_engine, select(Post).where(Post.author_id == 3))
    assert indexed.dialect == "postgresql" and not indexed.analyzed
    assert indexed.uses_index("ix_posts_author_id"), indexed.text
    assert not indexed.full_scan("posts")
    scanned = await explain(pg_engine, select(Post).where(Post.title == "Post 7"))
    assert scanned.full_scan("posts"), scanned.text
    assert "Seq Scan on posts" in scanned
    assert not scanned.uses_index()


@pytest.mark.postgres
async def test_postgres_analyze_measures_and_rolls_back(pg_engine: AsyncEngine) -> None:
    async with make_sessionmaker(pg_engine)() as session:
        plan = await explain(session, update(User).where(User.id == 1).values(name="Changed"), analyze=True)
        assert plan.analyzed
        assert "actual time=" in plan.text and "Buffers:" in plan.text
        assert plan.uses_index("pk_users")
        # The savepoint was rolled back: the session still sees the old name.
        assert await session.scalar(select(User.name).where(User.id == 1)) == "User 0"


@pytest.mark.postgres
async def test_postgres_text_sql_with_parameters(pg_engine: AsyncEngine) -> None:
    plan = await explain(
        pg_engine, "SELECT * FROM users u WHERE u.email = :email", params={"email": "u1@example.com"}
    )
    assert plan.uses_index("uq_users_email"), plan.text


@pytest.mark.postgres
async def test_postgres_json_plan_measures_and_rolls_back(pg_engine: AsyncEngine) -> None:
    async with make_sessionmaker(pg_engine)() as session:
        stmt = update(User).where(User.id == 1).values(name="Changed")
        plan = await explain_json(session, stmt, analyze=True)
        assert plan[0]["Plan"]["Node Type"] == "ModifyTable"
        assert "Actual Rows" in plan[0]["Plan"]
        # The savepoint was rolled back: the session still sees the old name.
        assert await session.scalar(select(User.name).where(User.id == 1)) == "User 0"
    estimate = await explain_json(pg_engine, "SELECT * FROM users WHERE id = :id", params={"id": 1})
    assert "Actual Rows" not in estimate[0]["Plan"]
