"""Check 2.4: foreign keys that no index serves, found from the catalog through SQLAlchemy's Inspector."""

from __future__ import annotations

import inspect as pyinspect
from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from course.chapters.ch02_indexing.catalogue import list_indexes
from course.checks.base import CheckDB, call_learner, expect, fail

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


def answer_items(result: Any, function: str, example: str) -> list[Any]:
    """The items of a learner's collection answer; None, a string, a dict or a non-iterable fail with the example."""
    expect(result is not None, f"{function} returned None: {example}")
    expect(not isinstance(result, str | bytes | dict), f"{function} returned {type(result).__name__}: {example}")
    try:
        return list(result)
    except TypeError:
        fail(f"{function} returned {type(result).__name__}: {example}")


def _normalise(result: Any) -> set[tuple[str, tuple[str, ...]]]:
    """The learner's answer as {(table, (columns...))}; a bare column name counts as a one-column tuple."""
    example = "return a set of (table, columns) pairs, e.g. {('posts', ('author_id',))}"
    items = answer_items(result, "missing_fk_indexes", example)
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
        # An answer that wants the very same columns, no more, needs to hear that a longer index serves too.
        longer = (
            " (columns after the key's are fine: an index serves every prefix of itself)"
            if len(ix.columns) > len(columns)
            else ""
        )
        if ix.primary or ix.unique:
            kind = "the primary key" if ix.primary else "a unique constraint's index"
            return (
                f"you report {label} as missing an index, but {kind} {shown} starts with it{longer}. "
                "Primary keys and unique constraints count too, not only get_indexes()"
            )
        return f"you report {label} as missing an index, but {ix.name} {shown} starts with it{longer}"
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


async def check_fk_indexes(fn: Callable[..., Any], db: CheckDB) -> None:
    async with db.engine.begin() as conn:
        for statement in _SETUP_2_4:
            await conn.execute(text(statement))
    await _judge_2_4(fn, db, _MISSING_2_4, changed=False)
    async with db.engine.begin() as conn:
        for statement in _CHANGE_2_4:
            await conn.execute(text(statement))
    await _judge_2_4(fn, db, _MISSING_AFTER_CHANGE_2_4, changed=True)
