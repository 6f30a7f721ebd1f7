"""Checks for chapter 2 (indexing): each runs the learner's DDL on a fresh copy and judges the plan and the catalog."""

from __future__ import annotations

import inspect as pyinspect
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from course.chapters.ch02_indexing.catalogue import IndexInfo, list_indexes, refresh_statistics
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


# --- 2.4 foreign keys without an index ------------------------------------------------------------------------

# The check's copy loses two FK indexes, gains an index that contains an FK column without starting with it,
# a two-column FK served by nothing but an index on one of its columns, a two-column FK served by an index
# that lists its columns in another order, and a table whose primary key covers one FK but not the other.
_SETUP_2_4 = (
    "DROP INDEX ix_comments_author_id",
    "DROP INDEX ix_order_items_product_id",
    "CREATE INDEX ix_order_items_quantity_product ON order_items (quantity, product_id)",
    "CREATE TABLE post_tag_notes (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, "
    "note TEXT NOT NULL, FOREIGN KEY (tag_id, post_id) REFERENCES post_tags (tag_id, post_id))",
    "CREATE INDEX ix_post_tag_notes_post_id ON post_tag_notes (post_id)",
    "CREATE TABLE tag_followers (user_id INTEGER NOT NULL REFERENCES users (id), "
    "tag_id INTEGER NOT NULL REFERENCES tags (id), PRIMARY KEY (user_id, tag_id))",
    "CREATE TABLE tag_votes (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, "
    "FOREIGN KEY (tag_id, post_id) REFERENCES post_tags (tag_id, post_id))",
    "CREATE INDEX ix_tag_votes_post_tag ON tag_votes (post_id, tag_id, id)",
)
_MISSING_2_4 = {
    ("comments", ("author_id",)),
    ("order_items", ("product_id",)),
    ("post_tag_notes", ("tag_id", "post_id")),
    ("tag_followers", ("tag_id",)),
}
# Then the schema changes and the function is asked again: an answer read from the catalog follows the change.
_CHANGE_2_4 = (
    "CREATE INDEX ix_comments_author_id ON comments (author_id)",
    "CREATE INDEX ix_tag_followers_tag_id ON tag_followers (tag_id)",
    "DROP INDEX ix_posts_author_id",
)
_MISSING_AFTER_CHANGE_2_4 = _MISSING_2_4 - {("comments", ("author_id",)), ("tag_followers", ("tag_id",))} | {
    ("posts", ("author_id",))
}


def _normalise(result: Any) -> set[tuple[str, tuple[str, ...]]]:
    """The learner's answer as {(table, (columns...))}; a bare column name counts as a one-column tuple."""
    example = "return a set of (table, columns) pairs, e.g. {('posts', ('author_id',))}"
    expect(result is not None, f"missing_fk_indexes returned None: {example}")
    expect(
        not isinstance(result, str | bytes | dict),
        f"missing_fk_indexes returned {type(result).__name__}: {example}",
    )
    try:
        items = list(result)
    except TypeError:
        fail(f"missing_fk_indexes returned {type(result).__name__}: {example}")
    found = set()
    for item in items:
        expect(
            isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str),
            f"{item!r} is not a (table, columns) pair: {example}",
        )
        table, columns = item
        found.add((table, (columns,) if isinstance(columns, str) else tuple(columns)))
    return found


async def _foreign_keys(conn: AsyncConnection) -> dict[str, list[tuple[str, ...]]]:
    def read(sync_conn: Any) -> dict[str, list[tuple[str, ...]]]:
        inspector = inspect(sync_conn)
        return {
            t: [tuple(fk["constrained_columns"]) for fk in inspector.get_foreign_keys(t)]
            for t in inspector.get_table_names()
        }

    return await conn.run_sync(read)


async def _explain_extra(
    conn: AsyncConnection, table: str, columns: tuple[str, ...], fks: list[tuple[str, ...]]
) -> str:
    """Why (table, columns) should not be in the answer."""
    label = f"{table} ({', '.join(columns)})"
    if columns not in fks:
        same = [fk for fk in fks if set(fk) == set(columns)]
        if same:
            return (
                f"you report {label}, but that foreign key lists its columns as ({', '.join(same[0])}): "
                "give them in the foreign key's order"
            )
        if any(set(columns) < set(fk) for fk in fks):
            return (
                f"you report {label}, but that is part of a foreign key over several columns: report a composite "
                "foreign key once, with all its columns"
            )
        return f"you report {label}, but {table} has no foreign key on exactly those columns"
    for ix in await list_indexes(conn, table):
        leading = ix.columns[: len(columns)]
        if set(leading) != set(columns):
            continue
        shown = f"({', '.join(ix.columns)})"
        if leading != columns:
            return (
                f"you report {label} as missing an index, but {ix.name} {shown} starts with the same columns in "
                "another order: a lookup on all of them can use it, whatever their order among themselves"
            )
        if ix.primary or ix.unique:
            kind = "the primary key" if ix.primary else "a unique constraint's index"
            return (
                f"you report {label} as missing an index, but {kind} {shown} starts with it. "
                "Primary keys and unique constraints count too, not only get_indexes()"
            )
        return f"you report {label} as missing an index, but {ix.name} {shown} starts with it"
    return f"you report {label}, but it has an index"


_MISSED_2_4 = {
    "order_items": "an index that merely contains a column, after others, cannot serve lookups by it",
    "post_tag_notes": "a foreign key over two columns needs an index that starts with both of them, not only one",
    "tag_followers": "a primary key serves lookups by its leading column only",
}


async def _judge_2_4(fn: Callable[..., Any], db: CheckDB, expected: set[Any], changed: bool) -> None:
    """Run the learner's function on the copy as it is now and compare its answer with expected."""
    # After the schema change, say so: an answer that was right before and is wrong now did not read the catalog.
    before = (
        "after the check added and dropped indexes and asked again, your answer did not follow the change "
        "(read the catalog each time, never return a fixed answer): "
        if changed
        else ""
    )
    async with db.engine.connect() as conn:
        result = await call_learner(conn.run_sync, lambda sync_conn: fn(inspect(sync_conn)))
        if pyinspect.isawaitable(result):
            if pyinspect.iscoroutine(result):
                result.close()
            fail(
                "missing_fk_indexes must be a plain `def`: the Inspector it receives is synchronous, nothing to await"
            )
        found = _normalise(result)
        fks = await _foreign_keys(conn)
        for table, columns in sorted(found - expected):
            fail(before + await _explain_extra(conn, table, columns, fks.get(table, [])))
    for table, columns in sorted(expected - found):
        why = _MISSED_2_4.get(table, "no index starts with its columns")
        fail(
            f"{before}{table} ({', '.join(columns)}) has no usable index, but your function did not report it: {why}"
        )


@registry.exercise("2.4")
async def _check_2_4(fn: Callable[..., Any], db: CheckDB) -> None:
    async with db.engine.begin() as conn:
        for statement in _SETUP_2_4:
            await conn.execute(text(statement))
    await _judge_2_4(fn, db, _MISSING_2_4, changed=False)
    async with db.engine.begin() as conn:
        for statement in _CHANGE_2_4:
            await conn.execute(text(statement))
    await _judge_2_4(fn, db, _MISSING_AFTER_CHANGE_2_4, changed=True)


# --- 2.5 (stretch) redundant indexes: in redundant.py, registered here ----------------------------------------

registry.exercise("2.5")(check_redundant_indexes)
