"""Checks for chapter 2 (indexing): each runs the learner's DDL on a fresh copy and judges the plan and the catalog."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.sql import Select

from course.chapters.ch02_indexing.catalogue import IndexInfo, list_indexes, refresh_statistics
from course.chapters.ch02_indexing.fk_indexes import check_fk_indexes
from course.chapters.ch02_indexing.redundant import check_redundant_indexes
from course.chapters.registry import chapter
from course.checks.base import CheckDB, Registry, call_learner, expect, fail
from course.domain.models import Post, User
from course.tools.explain import Plan, explain

registry = Registry(chapter(2))
check = registry.check


# --- shared: run the learner's DDL, then ask the planner ------------------------------------------------------


async def _indexes_added_by(fn: Callable[..., Any], db: CheckDB, table: str) -> list[IndexInfo]:
    """Call fn(conn) and commit; return the indexes on table that were not there before."""
    async with db.engine.connect() as conn:
        before = {ix.name for ix in await list_indexes(conn, table)}
        await call_learner(fn, conn)
        # Committing twice is harmless: the learner may or may not have committed already.
        await conn.commit()
        after = await list_indexes(conn, table)
    return [ix for ix in after if ix.name not in before]


async def _plan(db: CheckDB, stmt: Select, table: str) -> Plan:
    """The plan for stmt with fresh statistics.

    On PostgreSQL sequential scans are switched off for this one EXPLAIN: on a small copy a scan
    can be cheaper than any index, and the question here is whether the index *can* serve the query.
    """
    await refresh_statistics(db.engine, table)
    async with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
        return await explain(conn, stmt)


def _sorts(plan: Plan) -> bool:
    """Does the plan have a sort step (SQLite's temp B-tree, PostgreSQL's Sort or Incremental Sort)?"""
    return "USE TEMP B-TREE FOR" in plan if plan.dialect == "sqlite" else "Sort" in plan


def _show(ix: IndexInfo) -> str:
    where = f" WHERE {ix.where}" if ix.where else ""
    return f"{ix.name} ({', '.join(ix.columns)}){where}"


def _mentions(column: str, key: str) -> bool:
    return re.search(rf"\b{column}\b", key) is not None


# --- 2.1 a lookup that uses an index --------------------------------------------------------------------------


@registry.exercise("2.1")
async def _check_2_1(fn: Callable[..., Any], db: CheckDB) -> None:
    async with db.Session() as session:
        name = await session.scalar(select(User.name).order_by(User.id).limit(1).offset(6))
    lookup = select(User.id, User.email).where(User.name == name)
    added = await _indexes_added_by(fn, db, "users")
    plan = await _plan(db, lookup, "users")
    if any(ix.columns[0] == "name" and plan.uses_index(ix.name) for ix in added):
        return
    expect(added, "no new index on users: the lookup by name still reads every row. Create an index it can use")
    for ix in added:
        if ix.columns[0] != "name" and _mentions("name", ix.columns[0]):
            fail(
                f"your index {_show(ix)} is on an expression, but the query compares name itself: "
                "an expression index only serves queries that use the very same expression"
            )
        if ix.columns[0] == "name" and ix.partial:
            fail(
                f"your index {_show(ix)} is partial, and the lookup has no such condition, so the database "
                "cannot be sure every matching user is in it: it scans instead"
            )
        if ix.columns[0] == "name":
            # SQLite's catalog text loses COLLATE: an index on name that the plan ignores compares another way.
            fail(
                f"your index {_show(ix)} starts with name, yet the plan does not use it: it must compare names "
                "the way the query does (an index with COLLATE NOCASE, say, only serves NOCASE comparisons)"
            )
        if any(_mentions("name", key) for key in ix.columns[1:]):
            fail(
                f"your index {_show(ix)} contains name but does not start with it: an index is sorted by its "
                "first column, so it only serves lookups on its leading column(s)"
            )
    fail(
        f"the plan still reads every row of users; your index {_show(added[0])} does not help a filter on "
        "name. Index the column the WHERE clause compares"
    )


# --- 2.2 a composite index that also sorts --------------------------------------------------------------------


@registry.exercise("2.2")
async def _check_2_2(fn: Callable[..., Any], db: CheckDB) -> None:
    async with db.Session() as session:
        # The most prolific author: the most posts to sort, so the difference is real.
        author = await session.scalar(
            select(Post.author_id).group_by(Post.author_id).order_by(func.count().desc(), Post.author_id).limit(1)
        )
    latest = select(Post.id, Post.title, Post.created_at).where(Post.author_id == author)
    latest = latest.order_by(Post.created_at.desc()).limit(10)
    added = await _indexes_added_by(fn, db, "posts")
    plan = await _plan(db, latest, "posts")
    everything = await list_indexes(db.engine, "posts")
    serving = [
        ix for ix in everything if ix.columns[:2] == ("author_id", "created_at") and plan.uses_index(ix.name)
    ]
    if serving and not _sorts(plan) and not plan.full_scan("posts"):
        expect(
            len(added) == 1,
            f"the plan is right, but you created {len(added)} indexes on posts "
            f"({'; '.join(_show(ix) for ix in added)}): one index does both jobs, and every index costs on "
            "every write (lesson section 2.8). Create only that one",
        )
        return
    expect(added, "no new index on posts: the plan still finds the author's posts and then sorts them all")
    for ix in added:
        if ix.columns[0] == "created_at":
            fail(
                f"your index {_show(ix)} starts with created_at: to use it the database walks every post in "
                "date order and skips other authors' ones. Put the column compared with = first, then the "
                "ORDER BY column"
            )
    if all(len(ix.columns) == 1 for ix in added):
        fail(
            "an index on a single column either finds one author's posts or keeps posts in date order, not "
            "both, so the plan still sorts. One index must do both jobs"
        )
    fail(
        f"the plan still sorts the author's posts ({'; '.join(_show(ix) for ix in added)}): the index must hold "
        "each author's posts together, in date order, with nothing in between"
    )


# --- 2.3 a partial index for the feed -------------------------------------------------------------------------

_FEED_FILTER = (Post.status == "published", Post.deleted_at.is_(None))


async def _rows_kept(db: CheckDB, index: IndexInfo) -> tuple[int, int, int]:
    """(rows the index's WHERE keeps, rows the feed can show, rows that are both) on the check's copy."""
    feed_filter = " AND ".join(
        str(c.compile(db.engine, compile_kwargs={"literal_binds": True})) for c in _FEED_FILTER
    )
    async with db.engine.connect() as conn:
        held = await conn.scalar(text(f"SELECT count(*) FROM posts WHERE {index.where}"))
        shown = await conn.scalar(text(f"SELECT count(*) FROM posts WHERE {feed_filter}"))
        both = await conn.scalar(text(f"SELECT count(*) FROM posts WHERE ({index.where}) AND {feed_filter}"))
    return held, shown, both


@registry.exercise("2.3")
async def _check_2_3(fn: Callable[..., Any], db: CheckDB) -> None:
    feed = select(Post.id, Post.title, Post.published_at).where(*_FEED_FILTER)
    feed = feed.order_by(Post.published_at.desc()).limit(20)
    added = await _indexes_added_by(fn, db, "posts")
    expect(added, "no new index on posts: the feed still reads the whole table and sorts it")
    partial = [ix for ix in added if ix.partial]
    expect(
        partial,
        f"your index {_show(added[0])} is not partial: it holds every post, drafts and deleted ones too. "
        "Give it a WHERE so it keeps only the rows the feed can show",
    )
    plan = await _plan(db, feed, "posts")
    used = [ix for ix in partial if plan.uses_index(ix.name)]
    index = (used or partial)[0]
    held, shown, both = await _rows_kept(db, index)
    if not used and held == shown == both:
        fail(
            f"your partial index {_show(index)} keeps the right posts, but the plan does not use it: an index "
            "on that column does not help this query. Index the column the feed orders by"
        )
    expect(
        used,
        f"the plan does not use your partial index {_show(index)}: the database uses a partial index only "
        "when the query's own WHERE guarantees that every row it wants is in the index",
    )
    expect(
        held == both,
        f"your partial index {_show(index)} holds {held:,} posts, but the feed can only ever show {shown:,}: "
        "its WHERE keeps rows the feed never reads. Match every condition of the feed's filter",
    )
    expect(
        not _sorts(plan),
        f"the plan uses {index.name} but still sorts the posts: index the column the feed orders by",
    )


# --- 2.4 foreign keys without an index, and 2.5 (stretch) redundant indexes: in their own modules ----------------

registry.exercise("2.4")(check_fk_indexes)
registry.exercise("2.5")(check_redundant_indexes)
