"""Check 2.5 (stretch): redundant indexes, found from the catalog through SQLAlchemy's Inspector."""

from __future__ import annotations

import inspect as pyinspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, text

from course.chapters.ch02_indexing.fk_indexes import answer_items
from course.checks.base import CheckDB, call_learner, expect, fail

# The check's copy gains: a longer index that makes one redundant; a longer one that does not start with the
# column; a duplicate whose name sorts first; a unique index that covers a plain one; a unique prefix (never
# reported); a partial index that covers nothing; a partial prefix (never reported); two- and three-column chains;
# a plain twin of a unique index whose name sorts first; the same columns as another prefix in another order; a
# plain index covered only by a longer unique one; a table outside the models.
SETUP = (
    "CREATE INDEX ix_orders_user_created ON orders (user_id, created_at)",
    "CREATE INDEX ix_orders_user_status ON orders (user_id, status)",
    "CREATE INDEX ix_orders_user_status_total ON orders (user_id, status, total_cents)",
    "CREATE INDEX ix_comments_post_author ON comments (post_id, author_id)",
    "CREATE INDEX ix_posts_status_author ON posts (status, author_id)",
    "CREATE INDEX ix_posts_author_published ON posts (author_id, published_at) WHERE status = 'published'",
    "CREATE INDEX ix_posts_live_created ON posts (created_at) WHERE deleted_at IS NULL",
    "CREATE INDEX ix_posts_created_title ON posts (created_at, title)",
    "CREATE INDEX ix_order_items_order_dup ON order_items (order_id)",
    "CREATE UNIQUE INDEX ux_transfers_from_id ON transfers (from_account_id, id)",
    "CREATE UNIQUE INDEX ux_accounts_user_id_id ON accounts (user_id, id)",
    "CREATE INDEX ix_accounts_user_id_id_balance ON accounts (user_id, id, balance_cents)",
    # Identical to the unique ux_transfers_from_id and its name sorts first: redundant only because the twin is unique.
    "CREATE INDEX ix_transfers_from_id ON transfers (from_account_id, id)",
    # The columns of ix_orders_user_status in the other order: not served by any index that starts with user_id.
    "CREATE INDEX ix_orders_status_user ON orders (status, user_id)",
    # Covered only by a longer index that happens to be unique: a longer index covers, unique or not.
    "CREATE UNIQUE INDEX ux_products_name_id ON products (name, id)",
    "CREATE INDEX ix_products_name ON products (name)",
    # A table the course's models do not know: the catalog lists it, and its redundant index counts too.
    "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, actor_id INTEGER NOT NULL, at TIMESTAMP)",
    "CREATE INDEX ix_audit_log_actor ON audit_log (actor_id)",
    "CREATE INDEX ix_audit_log_actor_at ON audit_log (actor_id, at)",
)
EXPECTED = {
    ("orders", "ix_orders_user_id"),
    ("orders", "ix_orders_user_status"),
    ("comments", "ix_comments_post_id"),
    ("order_items", "ix_order_items_order_id"),
    ("transfers", "ix_transfers_from_account_id"),
    ("transfers", "ix_transfers_from_id"),
    ("accounts", "ix_accounts_user_id"),
    ("products", "ix_products_name"),
    ("audit_log", "ix_audit_log_actor"),
}
# Then the schema changes and the function is asked again: an answer read from the catalog follows the change.
CHANGE = ("DROP INDEX ix_comments_post_author", "CREATE INDEX ix_posts_author_title ON posts (author_id, title)")
EXPECTED_AFTER_CHANGE = EXPECTED - {("comments", "ix_comments_post_id")} | {("posts", "ix_posts_author_id")}


@dataclass(frozen=True)
class _Index:
    name: str
    columns: tuple[str, ...]
    unique: bool
    partial: bool


def _catalog(sync_conn: Any) -> dict[str, list[_Index]]:
    inspector = inspect(sync_conn)
    found = {}
    for table in inspector.get_table_names():
        found[table] = [
            _Index(
                ix["name"] or "",
                tuple(c or "" for c in ix["column_names"]),
                bool(ix["unique"]),
                any(key.endswith("_where") for key in ix.get("dialect_options", {})),
            )
            for ix in inspector.get_indexes(table)
        ]
    return found


def _coverer(index: _Index, others: list[_Index]) -> _Index | None:
    """The index that makes `index` redundant, if there is one (the rule the exercise text states)."""
    for other in others:
        if other.name == index.name or other.partial or other.columns[: len(index.columns)] != index.columns:
            continue
        if len(other.columns) > len(index.columns) or other.unique or other.name < index.name:
            return other
    return None


def _why_not(index: _Index, others: list[_Index]) -> str:
    label = f"{index.name} ({', '.join(index.columns)})"
    if index.unique:
        return f"{label} is unique: it enforces a rule, and dropping it would drop the rule. Never report a unique index"
    if index.partial:
        return f"{label} is partial: it holds other rows than a full index does. Never report a partial index"
    same = [o for o in others if o.name != index.name and o.columns[: len(index.columns)] == index.columns]
    if same and all(o.partial for o in same):
        return (
            f"{label} is covered only by the partial index {same[0].name}, which holds only some rows: a query "
            f"outside its WHERE still needs {index.name} (and an index on another table never covers one here)"
        )
    if same:
        return (
            f"{label} and {same[0].name} have the same columns: of two identical indexes keep the one whose name "
            "sorts first and report the other"
        )
    inside = next((o for o in others if set(index.columns) <= set(o.columns) and o.name != index.name), None)
    if inside is not None:
        return (
            f"{label}: its columns are in {inside.name} ({', '.join(inside.columns)}) but not first, in the same "
            "order, so a lookup on them cannot use that index"
        )
    return f"{label}: no other index on its table starts with its columns"


def _normalise(result: Any) -> set[tuple[str, str]]:
    example = "return a set of (table, index_name) pairs, e.g. {('orders', 'ix_orders_user_id')}"
    items = answer_items(result, "redundant_indexes", example)
    for item in items:
        expect(
            isinstance(item, tuple | list) and len(item) == 2 and all(isinstance(part, str) for part in item),
            f"{item!r} is not a (table, index_name) pair: {example}",
        )
    return {(table, name) for table, name in items}


async def _judge(fn: Callable[..., Any], db: CheckDB, expected: set[tuple[str, str]], changed: bool) -> None:
    before = (
        "after the check dropped and added indexes and asked again, your answer did not follow the change "
        "(read the catalog each time): "
        if changed
        else ""
    )
    async with db.engine.connect() as conn:
        result = await call_learner(conn.run_sync, lambda sync_conn: fn(inspect(sync_conn)))
        if pyinspect.isawaitable(result):
            if pyinspect.iscoroutine(result):
                result.close()
            fail("redundant_indexes must be a plain `def`: the Inspector it receives is synchronous")
        found = _normalise(result)
        catalog = await conn.run_sync(_catalog)
    for table, name in sorted(found - expected):
        indexes = catalog.get(table, [])
        index = next((ix for ix in indexes if ix.name == name), None)
        if index is None:
            fail(f"{before}you report {table}.{name}, but {table} has no index of that name")
        fail(f"{before}you report {_why_not(index, indexes)}")
    for table, name in sorted(expected - found):
        indexes = catalog[table]
        index = next(ix for ix in indexes if ix.name == name)
        cover = _coverer(index, indexes)
        assert cover is not None, f"check set-up error: nothing covers {name}"
        kind = "the unique index" if cover.unique else "the index"
        fail(
            f"{before}{table}.{name} ({', '.join(index.columns)}) is redundant but missing from your answer: "
            f"{kind} {cover.name} ({', '.join(cover.columns)}) starts with the same columns in the same order"
            + (", and a unique index serves lookups as well as a plain one" if cover.unique else "")
        )


async def check_redundant_indexes(fn: Callable[..., Any], db: CheckDB) -> None:
    async with db.engine.begin() as conn:
        for statement in SETUP:
            await conn.execute(text(statement))
    await _judge(fn, db, EXPECTED, changed=False)
    async with db.engine.begin() as conn:
        for statement in CHANGE:
            await conn.execute(text(statement))
    await _judge(fn, db, EXPECTED_AFTER_CHANGE, changed=True)
