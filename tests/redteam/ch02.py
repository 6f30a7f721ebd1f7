"""Chapter 2 (Indexing): answers written from the exercise text alone, before the checks were read."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, text
from sqlalchemy.engine import Inspector
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.redteam import Case


async def _sql(conn: AsyncConnection, *statements: str) -> None:
    for statement in statements:
        await conn.execute(text(statement))


# ---------------------------------------------------------------- 2.1 add_name_index


async def add_name_index_ref(conn):
    await _sql(conn, "CREATE INDEX IF NOT EXISTS ix_users_name ON users (name)")


async def add_name_index_covering(conn):
    # name first, email carried along: the lookup can even skip the table.
    await _sql(conn, "CREATE INDEX ix_users_name_email ON users (name, email)")


async def add_name_index_sqlalchemy(conn):
    # A throw-away Table object, so the course's shared metadata is not touched.
    users = Table("users", MetaData(), Column("name", String(100)))
    index = Index("ix_rt_users_name_desc", users.c.name.desc())
    await conn.run_sync(lambda sync_conn: index.create(sync_conn))


async def add_name_index_on_email(conn):
    await _sql(conn, "CREATE INDEX ix_users_email2 ON users (email)")


async def add_name_index_lower(conn):
    await _sql(conn, "CREATE INDEX ix_users_lower_name ON users (lower(name))")


async def add_name_index_second_column(conn):
    await _sql(conn, "CREATE INDEX ix_users_email_name ON users (email, name)")


async def add_name_index_partial(conn):
    await _sql(conn, "CREATE INDEX ix_users_live_name ON users (name) WHERE deleted_at IS NULL")


async def add_name_index_wrong_table(conn):
    await _sql(conn, "CREATE INDEX ix_posts_title ON posts (title)")


async def add_name_index_analyze_only(conn):
    await _sql(conn, "ANALYZE users")


async def add_name_index_status_first(conn):
    await _sql(conn, "CREATE INDEX ix_users_status_name ON users (status, name)")


# ---------------------------------------------------------------- 2.2 add_author_feed_index


async def add_author_feed_index_ref(conn):
    await _sql(conn, "CREATE INDEX ix_posts_author_created ON posts (author_id, created_at DESC)")


async def add_author_feed_index_asc(conn):
    # Ascending is fine: a B-tree is read backwards for DESC.
    await _sql(conn, "CREATE INDEX ix_posts_author_created_asc ON posts (author_id, created_at)")


async def add_author_feed_index_three_columns(conn):
    await _sql(conn, "CREATE INDEX ix_posts_author_created_id ON posts (author_id, created_at DESC, id DESC)")


async def add_author_feed_index_sqlalchemy(conn):
    posts = Table("posts", MetaData(), Column("author_id", Integer), Column("created_at", DateTime(timezone=True)))
    index = Index("ix_rt_posts_feed", posts.c.author_id, posts.c.created_at.desc())
    await conn.run_sync(lambda sync_conn: index.create(sync_conn))


async def add_author_feed_index_swapped(conn):
    await _sql(conn, "CREATE INDEX ix_posts_created_author ON posts (created_at DESC, author_id)")


async def add_author_feed_index_created_only(conn):
    await _sql(conn, "CREATE INDEX ix_posts_created ON posts (created_at DESC)")


async def add_author_feed_index_author_again(conn):
    await _sql(conn, "CREATE INDEX ix_posts_author_again ON posts (author_id)")


async def add_author_feed_index_published(conn):
    await _sql(conn, "CREATE INDEX ix_posts_author_published ON posts (author_id, published_at DESC)")


async def add_author_feed_index_two(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_a ON posts (author_id, id)",
        "CREATE INDEX ix_posts_c ON posts (created_at DESC)",
    )


async def add_author_feed_index_plus_spare(conn):
    # The right index, and a second one "in case": the text asks for one.
    await _sql(
        conn,
        "CREATE INDEX ix_posts_author_created2 ON posts (author_id, created_at DESC)",
        "CREATE INDEX ix_posts_created_spare ON posts (created_at DESC)",
    )


async def add_author_feed_index_by_id(conn):
    # id grows with created_at in a seed, not in general.
    await _sql(conn, "CREATE INDEX ix_posts_author_id_id ON posts (author_id, id DESC)")


async def add_author_feed_index_partial(conn):
    await _sql(
        conn, "CREATE INDEX ix_posts_author_live ON posts (author_id, created_at DESC) WHERE deleted_at IS NULL"
    )


async def add_author_feed_index_title_between(conn):
    await _sql(conn, "CREATE INDEX ix_posts_author_title_created ON posts (author_id, title, created_at)")


# ---------------------------------------------------------------- 2.3 add_feed_index


async def add_feed_index_ref(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed ON posts (published_at DESC) WHERE status = 'published' AND deleted_at IS NULL",
    )


async def add_feed_index_asc_swapped(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed2 ON posts (published_at) WHERE deleted_at IS NULL AND status = 'published'",
    )


async def add_feed_index_with_id(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed3 ON posts (published_at DESC, id DESC)"
        " WHERE status = 'published' AND deleted_at IS NULL",
    )


async def add_feed_index_sqlalchemy(conn):
    posts = Table(
        "posts",
        MetaData(),
        Column("status", String(16)),
        Column("deleted_at", DateTime(timezone=True)),
        Column("published_at", DateTime(timezone=True)),
    )
    where = (posts.c.status == text("'published'")) & posts.c.deleted_at.is_(None)
    index = Index("ix_rt_posts_feed", posts.c.published_at.desc(), sqlite_where=where, postgresql_where=where)
    await conn.run_sync(lambda sync_conn: index.create(sync_conn))


async def add_feed_index_not_partial(conn):
    await _sql(conn, "CREATE INDEX ix_posts_published_at ON posts (published_at DESC)")


async def add_feed_index_status_only(conn):
    await _sql(conn, "CREATE INDEX ix_posts_feed_s ON posts (published_at DESC) WHERE status = 'published'")


async def add_feed_index_live_only(conn):
    await _sql(conn, "CREATE INDEX ix_posts_feed_l ON posts (published_at DESC) WHERE deleted_at IS NULL")


async def add_feed_index_created_key(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed_c ON posts (created_at DESC) WHERE status = 'published' AND deleted_at IS NULL",
    )


async def add_feed_index_published_not_null(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed_p ON posts (published_at DESC) WHERE published_at IS NOT NULL",
    )


async def add_feed_index_recent_only(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed_r ON posts (published_at DESC)"
        " WHERE status = 'published' AND deleted_at IS NULL AND published_at > '2025-01-01'",
    )


async def add_feed_index_capitalised(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed_cap ON posts (published_at DESC) WHERE status = 'Published' AND deleted_at IS NULL",
    )


async def add_feed_index_deleted_typo(conn):
    await _sql(
        conn,
        "CREATE INDEX ix_posts_feed_t ON posts (published_at DESC)"
        " WHERE status = 'published' AND deleted_at IS NOT NULL",
    )


# ---------------------------------------------------------------- 2.4 missing_fk_indexes


def _sorted_lists(inspector: Inspector, table: str, *, pk=True, unique=True) -> list[list[str]]:
    lists = [list(ix["column_names"]) for ix in inspector.get_indexes(table)]
    if pk:
        pk_cols = inspector.get_pk_constraint(table).get("constrained_columns") or []
        if pk_cols:
            lists.append(list(pk_cols))
    if unique:
        lists += [list(uc["column_names"]) for uc in inspector.get_unique_constraints(table)]
    return lists


def missing_fk_indexes_ref(inspector):
    missing = set()
    for table in inspector.get_table_names():
        lists = _sorted_lists(inspector, table)
        for fk in inspector.get_foreign_keys(table):
            cols = tuple(fk["constrained_columns"])
            if not any(len(lst) >= len(cols) and set(lst[: len(cols)]) == set(cols) for lst in lists):
                missing.add((table, cols))
    return missing


def missing_fk_indexes_multi(inspector):
    # The get_multi_* calls: one catalog query per kind instead of one per table.
    fks = inspector.get_multi_foreign_keys()
    indexes = inspector.get_multi_indexes()
    pks = inspector.get_multi_pk_constraint()
    uniques = inspector.get_multi_unique_constraints()
    missing = set()
    for key, table_fks in fks.items():
        prefixes = [tuple(ix["column_names"]) for ix in indexes.get(key, [])]
        pk = pks.get(key) or {}
        if pk.get("constrained_columns"):
            prefixes.append(tuple(pk["constrained_columns"]))
        prefixes += [tuple(u["column_names"]) for u in uniques.get(key, [])]
        for fk in table_fks:
            cols = tuple(fk["constrained_columns"])
            wanted = frozenset(cols)
            if not any(frozenset(p[: len(cols)]) == wanted and len(p) >= len(cols) for p in prefixes):
                missing.add((key[1], cols))
    return missing


def _missing_with(inspector, served, *, pk=True, unique=True, order=None):
    missing = set()
    for table in inspector.get_table_names():
        lists = _sorted_lists(inspector, table, pk=pk, unique=unique)
        for fk in inspector.get_foreign_keys(table):
            cols = tuple(fk["constrained_columns"])
            if not any(served(lst, cols) for lst in lists):
                missing.add((table, tuple(order(cols)) if order else cols))
    return missing


def _prefix_any_order(lst, cols):
    return len(lst) >= len(cols) and set(lst[: len(cols)]) == set(cols)


def missing_fk_indexes_exact_order(inspector):
    return _missing_with(inspector, lambda lst, cols: tuple(lst[: len(cols)]) == cols)


def missing_fk_indexes_anywhere(inspector):
    return _missing_with(inspector, lambda lst, cols: set(cols) <= set(lst))


def missing_fk_indexes_no_pk(inspector):
    return _missing_with(inspector, _prefix_any_order, pk=False)


def missing_fk_indexes_no_unique(inspector):
    return _missing_with(inspector, _prefix_any_order, unique=False)


def missing_fk_indexes_first_column(inspector):
    return _missing_with(inspector, lambda lst, cols: bool(lst) and lst[0] in cols)


def missing_fk_indexes_sorted_columns(inspector):
    return _missing_with(inspector, _prefix_any_order, order=sorted)


def missing_fk_indexes_exact_match(inspector):
    return _missing_with(inspector, lambda lst, cols: set(lst) == set(cols))


def missing_fk_indexes_nothing(inspector):
    # "Every foreign key is indexed" on the lesson's copy.
    return set()


def missing_fk_indexes_single_only(inspector):
    missing = set()
    for table in inspector.get_table_names():
        lists = _sorted_lists(inspector, table)
        for fk in inspector.get_foreign_keys(table):
            cols = tuple(fk["constrained_columns"])
            if len(cols) == 1 and not any(lst and lst[0] == cols[0] for lst in lists):
                missing.add((table, cols))
    return missing


def missing_fk_indexes_referred(inspector):
    missing = set()
    for table in inspector.get_table_names():
        lists = _sorted_lists(inspector, table)
        for fk in inspector.get_foreign_keys(table):
            cols = tuple(fk["constrained_columns"])
            if not any(_prefix_any_order(lst, cols) for lst in lists):
                missing.add((fk["referred_table"], tuple(fk["referred_columns"])))
    return missing


# ---------------------------------------------------------------- 2.5 redundant_indexes


def _is_partial(index) -> bool:
    return any(k.endswith("_where") and v is not None for k, v in (index.get("dialect_options") or {}).items())


def redundant_indexes_ref(inspector):
    found = set()
    for table in inspector.get_table_names():
        indexes = inspector.get_indexes(table)
        for ix in indexes:
            if ix["unique"] or _is_partial(ix):
                continue
            cols = list(ix["column_names"])
            for other in indexes:
                if other is ix or _is_partial(other):
                    continue
                ocols = list(other["column_names"])
                if ocols[: len(cols)] != cols:
                    continue
                if len(ocols) > len(cols) or (
                    len(ocols) == len(cols) and (other["unique"] or other["name"] < ix["name"])
                ):
                    found.add((table, ix["name"]))
                    break
    return found


def redundant_indexes_keep_best(inspector):
    # For each group of identical column lists keep the best (unique first, then the first name); then drop
    # non-unique, non-partial indexes whose columns are a strict prefix of a full index's.
    found = set()
    for table in inspector.get_table_names():
        full = [ix for ix in inspector.get_indexes(table) if not _is_partial(ix)]
        by_cols: dict[tuple, list] = {}
        for ix in full:
            by_cols.setdefault(tuple(ix["column_names"]), []).append(ix)
        for cols, group in by_cols.items():
            group.sort(key=lambda ix: (not ix["unique"], ix["name"]))
            for ix in group[1:]:
                if not ix["unique"]:
                    found.add((table, ix["name"]))
            longer = any(len(o) > len(cols) and o[: len(cols)] == cols for o in by_cols)
            if longer:
                found.update((table, ix["name"]) for ix in group if not ix["unique"])
    return found


def _redundant(inspector, *, skip_unique=True, skip_partial=True, partial_counts=False, tie=None, prefix=None):
    tie = tie or (lambda ix, other: other["unique"] or other["name"] < ix["name"])
    prefix = prefix or (lambda ocols, cols: ocols[: len(cols)] == cols)
    found = set()
    for table in inspector.get_table_names():
        indexes = inspector.get_indexes(table)
        for ix in indexes:
            if (skip_unique and ix["unique"]) or (skip_partial and _is_partial(ix)):
                continue
            cols = list(ix["column_names"])
            for other in indexes:
                if other is ix or (_is_partial(other) and not partial_counts):
                    continue
                ocols = list(other["column_names"])
                if not prefix(ocols, cols):
                    continue
                if len(ocols) > len(cols) or (len(ocols) == len(cols) and tie(ix, other)):
                    found.add((table, ix["name"]))
                    break
    return found


def redundant_indexes_reports_unique(inspector):
    return _redundant(inspector, skip_unique=False)


def redundant_indexes_reports_partial(inspector):
    return _redundant(inspector, skip_partial=False)


def redundant_indexes_partial_covers(inspector):
    return _redundant(inspector, partial_counts=True)


def redundant_indexes_both_twins(inspector):
    return _redundant(inspector, tie=lambda ix, other: True)


def redundant_indexes_no_twins(inspector):
    return _redundant(inspector, tie=lambda ix, other: False)


def redundant_indexes_keeps_last_name(inspector):
    return _redundant(inspector, tie=lambda ix, other: other["unique"] or other["name"] > ix["name"])


def redundant_indexes_ignores_unique_twin(inspector):
    return _redundant(inspector, tie=lambda ix, other: other["name"] < ix["name"])


def redundant_indexes_any_order(inspector):
    return _redundant(inspector, prefix=lambda ocols, cols: set(cols) <= set(ocols[: len(cols)]))


def redundant_indexes_contains(inspector):
    return _redundant(inspector, prefix=lambda ocols, cols: set(cols) <= set(ocols))


def redundant_indexes_hardcoded(inspector):
    return set()


# Cases whose verdict holds on some backends only: PostgreSQL's get_indexes() lists unique constraints' indexes
# too, so ignoring get_unique_constraints() is a right answer there (the text says "depending on the database").
EXPECT_ONLY_ON: dict[str, tuple[str, ...]] = {"2.4-fail-missing_fk_indexes_no_unique": ("sqlite",)}

CASES = [
    # 2.1
    Case("2.1", (add_name_index_ref,), "pass", "index on users(name)"),
    Case("2.1", (add_name_index_covering,), "pass", "(name, email): name first, covering"),
    Case(
        "2.1", (add_name_index_sqlalchemy,), "pass", "Index(name DESC).create via run_sync: equality still seeks"
    ),
    Case("2.1", (add_name_index_on_email,), "fail", "wrong column: the plan still scans"),
    Case("2.1", (add_name_index_lower,), "fail", "lower(name) cannot serve name = :name"),
    Case("2.1", (add_name_index_second_column,), "fail", "(email, name): name is not first"),
    Case("2.1", (add_name_index_partial,), "fail", "partial on live users: the query has no deleted_at filter"),
    Case("2.1", (add_name_index_wrong_table,), "fail", "index on another table"),
    Case("2.1", (add_name_index_analyze_only,), "fail", "no index at all"),
    Case("2.1", (add_name_index_status_first,), "fail", "(status, name): name second"),
    # 2.2
    Case("2.2", (add_author_feed_index_ref,), "pass", "(author_id, created_at DESC)"),
    Case("2.2", (add_author_feed_index_asc,), "pass", "(author_id, created_at) read backwards"),
    Case("2.2", (add_author_feed_index_three_columns,), "pass", "(author_id, created_at DESC, id DESC)"),
    Case("2.2", (add_author_feed_index_sqlalchemy,), "pass", "the same index through SQLAlchemy's Index"),
    Case("2.2", (add_author_feed_index_swapped,), "fail", "(created_at, author_id): rule 1, column order"),
    Case(
        "2.2", (add_author_feed_index_created_only,), "fail", "created_at only: does not find the author's posts"
    ),
    Case("2.2", (add_author_feed_index_author_again,), "fail", "author_id only: still a sort"),
    Case("2.2", (add_author_feed_index_published,), "fail", "published_at instead of created_at: still a sort"),
    Case("2.2", (add_author_feed_index_two,), "fail", "two indexes, neither serves both: '**one** index'"),
    # blind verdict: passed (only the plan was judged); fixed in 0469173
    Case(
        "2.2",
        (add_author_feed_index_plus_spare,),
        "fail",
        "the right index plus a spare one: 'create **one** index'",
        fragment="you created 2 indexes on posts",
    ),
    Case("2.2", (add_author_feed_index_by_id,), "fail", "(author_id, id): id order is not created_at order"),
    Case(
        "2.2",
        (add_author_feed_index_partial,),
        "fail",
        "partial on live posts: the query does not filter deleted_at",
    ),
    Case("2.2", (add_author_feed_index_title_between,), "fail", "(author_id, title, created_at): still a sort"),
    # 2.3
    Case(
        "2.3",
        (add_feed_index_ref,),
        "pass",
        "(published_at DESC) WHERE status = 'published' AND deleted_at IS NULL",
    ),
    Case("2.3", (add_feed_index_asc_swapped,), "pass", "ascending key, conditions in the other order"),
    Case("2.3", (add_feed_index_with_id,), "pass", "(published_at DESC, id DESC), same condition"),
    Case("2.3", (add_feed_index_sqlalchemy,), "pass", "Index(..., sqlite_where=, postgresql_where=)"),
    Case("2.3", (add_feed_index_not_partial,), "fail", "not partial: 'a partial index'"),
    Case(
        "2.3",
        (add_feed_index_status_only,),
        "fail",
        "keeps deleted posts: 'exactly the posts the feed can ever show'",
    ),
    Case("2.3", (add_feed_index_live_only,), "fail", "keeps drafts: 'exactly the posts the feed can ever show'"),
    Case(
        "2.3",
        (add_feed_index_created_key,),
        "fail",
        "key created_at: the feed sorts by published_at ('without a sort step')",
    ),
    Case(
        "2.3",
        (add_feed_index_published_not_null,),
        "fail",
        "published_at IS NOT NULL: drafts/deleted with a date, wrong set",
    ),
    Case("2.3", (add_feed_index_recent_only,), "fail", "only recent posts: 'not only the 20 on the page'"),
    Case("2.3", (add_feed_index_capitalised,), "fail", "'Published': holds no post"),
    Case("2.3", (add_feed_index_deleted_typo,), "fail", "deleted_at IS NOT NULL: the deleted posts"),
    # 2.4
    Case("2.4", (missing_fk_indexes_ref,), "pass", "per table: indexes + pk + unique, prefix in any order"),
    Case("2.4", (missing_fk_indexes_multi,), "pass", "get_multi_* variant"),
    Case(
        "2.4",
        (missing_fk_indexes_exact_order,),
        "fail",
        "prefix in the same order only: '(a, b) is served by (b, a)'",
    ),
    Case("2.4", (missing_fk_indexes_anywhere,), "fail", "columns anywhere in the index: 'starts with'"),
    Case("2.4", (missing_fk_indexes_no_pk,), "fail", "ignores primary keys: 'get_pk_constraint'"),
    Case("2.4", (missing_fk_indexes_no_unique,), "fail", "ignores unique constraints: 'get_unique_constraints'"),
    Case(
        "2.4",
        (missing_fk_indexes_first_column,),
        "fail",
        "first column only: '(a, b) is not served by (a,) alone'",
    ),
    Case("2.4", (missing_fk_indexes_sorted_columns,), "fail", "columns sorted: 'in the foreign key's order'"),
    # blind verdict: failed, but the message blamed ignoring primary keys (this answer reads them); message fixed
    Case(
        "2.4",
        (missing_fk_indexes_exact_match,),
        "fail",
        "same column set only: '(a,) is served by (a, b)'",
        fragment="columns after the key's are fine",
    ),
    Case("2.4", (missing_fk_indexes_nothing,), "fail", "always empty: true of the seed only"),
    Case("2.4", (missing_fk_indexes_single_only,), "fail", "skips composite foreign keys"),
    Case("2.4", (missing_fk_indexes_referred,), "fail", "reports the referred side: 'the referencing side'"),
    # 2.5
    Case("2.5", (redundant_indexes_ref,), "pass", "the rule as written, index by index"),
    Case(
        "2.5", (redundant_indexes_keep_best,), "pass", "groups of identical column lists, keep unique/first name"
    ),
    Case(
        "2.5", (redundant_indexes_reports_unique,), "fail", "reports unique indexes: 'never report a unique index'"
    ),
    Case(
        "2.5",
        (redundant_indexes_reports_partial,),
        "fail",
        "reports partial indexes: 'never report ... a partial one'",
    ),
    Case(
        "2.5",
        (redundant_indexes_partial_covers,),
        "fail",
        "a partial index makes others redundant: 'never makes another one redundant'",
    ),
    Case("2.5", (redundant_indexes_both_twins,), "fail", "reports both of two identical indexes: 'keep one'"),
    Case("2.5", (redundant_indexes_no_twins,), "fail", "reports neither of two identical indexes"),
    Case(
        "2.5",
        (redundant_indexes_keeps_last_name,),
        "fail",
        "keeps the name that sorts last: 'has a name that sorts first'",
    ),
    # blind verdict: passed (no plain index had a unique twin whose name sorts later); fixed in 0469173
    Case(
        "2.5",
        (redundant_indexes_ignores_unique_twin,),
        "fail",
        "a unique twin does not make it redundant unless its name sorts first: 'is unique or'",
        fragment="ix_transfers_from_id (from_account_id, id) is redundant but missing",
    ),
    # blind verdict: passed (no index had another's prefix columns in another order); fixed in 0469173
    Case(
        "2.5",
        (redundant_indexes_any_order,),
        "fail",
        "prefix in any order: 'in the same order'",
        fragment="you report ix_orders_status_user (status, user_id)",
    ),
    Case("2.5", (redundant_indexes_contains,), "fail", "columns anywhere: 'starts with'"),
    Case("2.5", (redundant_indexes_hardcoded,), "fail", "always empty"),
]


# ---------------------------------------------------------------- red team C3 (blind): more 2.5 redundant_indexes


def redundant_indexes_twins_only(inspector):
    """Only identical column lists: an index that is a strict prefix of a longer one is missed ('has more columns')."""
    return _redundant(inspector, prefix=lambda ocols, cols: ocols == cols)


def redundant_indexes_first_column_only(inspector):
    """Compares first columns only: (a, b) is called redundant next to (a, c, d), 'starts with all of its columns'."""
    return _redundant(inspector, prefix=lambda ocols, cols: ocols[:1] == cols[:1])


def redundant_indexes_single_column_only(inspector):
    """Only single-column indexes can be redundant: (a, b) next to (a, b, c) is missed ('an index is redundant')."""
    found = _redundant(inspector)
    return {
        (table, name)
        for table, name in found
        for ix in inspector.get_indexes(table)
        if ix["name"] == name and len(ix["column_names"]) == 1
    }


def redundant_indexes_longer_unique_ignored(inspector):
    """A longer unique index does not count as covering (the learner keeps unique ones 'for rules only').

    Violates 'another index on the same table, not partial, starts with all of its columns ... and has more
    columns': a unique index is another index too. Identical unique twins still count, as the text says.
    """
    found = set()
    for table in inspector.get_table_names():
        indexes = inspector.get_indexes(table)
        for ix in indexes:
            if ix["unique"] or _is_partial(ix):
                continue
            cols = list(ix["column_names"])
            for other in indexes:
                if other is ix or _is_partial(other):
                    continue
                ocols = list(other["column_names"])
                if ocols[: len(cols)] != cols:
                    continue
                longer = len(ocols) > len(cols) and not other["unique"]
                twin = len(ocols) == len(cols) and (other["unique"] or other["name"] < ix["name"])
                if longer or twin:
                    found.add((table, ix["name"]))
                    break
    return found


def _is_partial_pg_only(index) -> bool:
    return (index.get("dialect_options") or {}).get("postgresql_where") is not None


def redundant_indexes_pg_partial_only(inspector):
    """Detects partial indexes by 'postgresql_where' only: on SQLite ('sqlite_where') partial indexes count as full.

    Violates 'A partial index has a key ending in _where in its dialect_options'. Right on PostgreSQL.
    """
    found = set()
    for table in inspector.get_table_names():
        indexes = inspector.get_indexes(table)
        for ix in indexes:
            if ix["unique"] or _is_partial_pg_only(ix):
                continue
            cols = list(ix["column_names"])
            for other in indexes:
                if other is ix or _is_partial_pg_only(other):
                    continue
                ocols = list(other["column_names"])
                if ocols[: len(cols)] != cols:
                    continue
                if len(ocols) > len(cols) or (
                    len(ocols) == len(cols) and (other["unique"] or other["name"] < ix["name"])
                ):
                    found.add((table, ix["name"]))
                    break
    return found


def redundant_indexes_across_tables(inspector):
    """Pools every table's indexes before comparing: posts' author_id index vs comments' one ('on the same table')."""
    pooled = []
    for table in inspector.get_table_names():
        pooled += [(table, ix) for ix in inspector.get_indexes(table)]
    found = set()
    for table, ix in pooled:
        if ix["unique"] or _is_partial(ix):
            continue
        cols = list(ix["column_names"])
        for _other_table, other in pooled:
            if other is ix or _is_partial(other):
                continue
            ocols = list(other["column_names"])
            if ocols[: len(cols)] != cols:
                continue
            if len(ocols) > len(cols) or (
                len(ocols) == len(cols) and (other["unique"] or other["name"] < ix["name"])
            ):
                found.add((table, ix["name"]))
                break
    return found


def redundant_indexes_model_tables(inspector):
    """Walks the course models' tables instead of the inspector's: a table the check adds is never looked at.

    Violates 'every redundant index among those inspector.get_indexes(table) lists'.
    """
    from course.domain.models import Base

    found = set()
    existing = set(inspector.get_table_names())
    for table in Base.metadata.tables:
        if table not in existing:
            continue
        indexes = inspector.get_indexes(table)
        for ix in indexes:
            if ix["unique"] or _is_partial(ix):
                continue
            cols = list(ix["column_names"])
            for other in indexes:
                if other is ix or _is_partial(other):
                    continue
                ocols = list(other["column_names"])
                if ocols[: len(cols)] == cols and (
                    len(ocols) > len(cols) or other["unique"] or other["name"] < ix["name"]
                ):
                    found.add((table, ix["name"]))
                    break
    return found


def redundant_indexes_multi(inspector):
    """Right: one catalog call (get_multi_indexes), a sort key per index, the rule as written."""
    found = set()
    for (_schema, table), indexes in inspector.get_multi_indexes().items():
        full = [ix for ix in indexes if not any(k.endswith("_where") for k in ix.get("dialect_options", {}))]
        for ix in indexes:
            if ix["unique"] or ix not in full:
                continue
            cols = tuple(ix["column_names"])
            rank = (True, ix["name"])  # (not unique, name) of ix: a lower rank wins a tie

            def beats(other, cols=cols, rank=rank):
                ocols = tuple(other["column_names"])
                if ocols[: len(cols)] != cols:
                    return False
                return len(ocols) > len(cols) or (not other["unique"], other["name"]) < rank

            if any(beats(other) for other in full if other is not ix):
                found.add((table, ix["name"]))
    return found


def redundant_indexes_strings(inspector):
    """Right: column lists joined into comma-terminated strings; a prefix test on strings, then the tie rules."""
    found = set()
    for table in sorted(inspector.get_table_names()):
        indexes = sorted(inspector.get_indexes(table), key=lambda ix: ix["name"])
        keys = {ix["name"]: "".join(f"{c}\x00" for c in ix["column_names"]) for ix in indexes}
        full = [ix for ix in indexes if not _is_partial(ix)]
        for ix in full:
            if ix["unique"]:
                continue
            mine = keys[ix["name"]]
            for other in full:
                theirs = keys[other["name"]]
                if other["name"] == ix["name"] or not theirs.startswith(mine):
                    continue
                if len(theirs) > len(mine) or other["unique"] or other["name"] < ix["name"]:
                    found.add((table, ix["name"]))
    return found


EXPECT_ONLY_ON["2.5-fail-redundant_indexes_pg_partial_only"] = ("sqlite",)

CASES += [
    Case(
        "2.5",
        (redundant_indexes_twins_only,),
        "fail",
        "red team C3 (blind): identical lists only, a strict prefix is missed: 'or has more columns'",
    ),
    Case(
        "2.5",
        (redundant_indexes_first_column_only,),
        "fail",
        "red team C3 (blind): first column only: 'starts with all of its columns in the same order'",
    ),
    Case(
        "2.5",
        (redundant_indexes_single_column_only,),
        "fail",
        "red team C3 (blind): only single-column indexes reported: a composite prefix is redundant too",
    ),
    # blind verdict: passed on both backends (wrongly), fixed in the check; likely cause: no plain index is a strict prefix of a unique one
    Case(
        "2.5",
        (redundant_indexes_longer_unique_ignored,),
        "fail",
        "red team C3 (blind): a longer unique index does not cover: 'another index ... has more columns'",
        "ix_products_name",
    ),
    Case(
        "2.5",
        (redundant_indexes_pg_partial_only,),
        "fail",
        "red team C3 (blind): partial = postgresql_where only, SQLite's partial indexes count: 'a key ending in _where'",
    ),
    Case(
        "2.5",
        (redundant_indexes_across_tables,),
        "fail",
        "red team C3 (blind): compares indexes of different tables: 'another index on the same table'",
    ),
    # blind verdict: passed on both backends (wrongly), fixed in the check; likely cause: the check adds no table outside the models
    Case(
        "2.5",
        (redundant_indexes_model_tables,),
        "fail",
        "red team C3 (blind): the models' tables, not the inspector's: 'among those inspector.get_indexes(table)'",
        "ix_audit_log_actor",
    ),
    Case("2.5", (redundant_indexes_multi,), "pass", "red team C3 (blind): get_multi_indexes and a rank tuple"),
    Case(
        "2.5", (redundant_indexes_strings,), "pass", "red team C3 (blind): NUL-terminated column strings, prefix"
    ),
]
