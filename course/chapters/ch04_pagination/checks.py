"""Checks for chapter 4 (pagination): they walk the learner's pages and judge rows, statements, cursors and plans."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import Table, event, func, select, text

from course.chapters.ch04_pagination.costs import judge_deep_page_cost
from course.chapters.ch04_pagination.cursors import machine_zone, reject_forgeries, reject_garbage
from course.chapters.ch04_pagination.next_page import check_orders_page
from course.chapters.ch04_pagination.pages import (
    Key,
    capture_statements,
    judge_page,
    key_of,
    leaves_transaction,
    no_window,
    one_page_statement,
    rows_of,
)
from course.chapters.ch04_pagination.previous import check_previous_page, live_timeline
from course.chapters.ch04_pagination.ties import add_tied_comments, index_names, judge_index_columns
from course.chapters.registry import chapter
from course.checks.base import CheckDB, Registry, call_learner, expect, fail
from course.domain.models import Comment, Post

registry = Registry(chapter(4))
check = registry.check

FEED_LIMIT = 50


async def _add_tied_posts(db: CheckDB) -> None:
    """The tiny seed has few ties: add a tie group longer than two pages right at the first page boundary, and more."""
    async with db.engine.begin() as conn:
        # An index keeps a walk through every page quick at any scale (4.1 is about rows, not speed). Its id is
        # DESC on purpose: an index in exactly the feed's order would hand ties over in id order even to an
        # ORDER BY created_at that forgot the tie-breaker.
        await conn.execute(text("CREATE INDEX ix_check_posts_feed ON posts (created_at, id DESC)"))
    async with db.Session() as session, session.begin():
        live = (
            select(Post.created_at)
            .where(Post.deleted_at.is_(None))
            .order_by(Post.created_at.desc(), Post.id.desc())
        )
        first_boundary = (await session.execute(live.offset(FEED_LIMIT - 5).limit(1))).scalar_one()
        deeper = (await session.execute(live.offset(7 * FEED_LIMIT - 2).limit(1))).scalar_one()
        # Soft-deleted posts in both groups, added last so they have the highest ids: the first page would show them.
        groups = [(first_boundary, 2 * FEED_LIMIT + 5, None), (deeper, 7, None), (deeper, 3, deeper)]
        groups.append((first_boundary, 2, first_boundary))
        # Recent posts written in other zones than UTC (the seed's are all UTC and in the past): the newest page
        # must order instants, not the text of local times.
        now = datetime.now(UTC)
        groups += [
            (now.astimezone(timezone(timedelta(hours=-7))), 1, None),
            ((now - timedelta(minutes=90)).astimezone(timezone(timedelta(hours=5, minutes=45))), 1, None),
        ]
        for stamp, count, deleted in groups:
            for n in range(count):
                session.add(
                    Post(
                        author_id=1,
                        title=f"tie {n}",
                        body="tied post",
                        status="published",
                        created_at=stamp,
                        deleted_at=deleted,
                    )
                )


async def _expected(db: CheckDB, stmt: Any, *, reverse: bool) -> list[Any]:
    async with db.Session() as session:
        rows = list((await session.execute(stmt)).all())
    return sorted(rows, key=key_of, reverse=reverse)


@registry.exercise("4.1", timeout=60)
async def _check_posts_page(posts_page: Callable[..., Any], db: CheckDB) -> None:
    await _add_tied_posts(db)
    want_all = await _expected(db, select(Post.id, Post.created_at).where(Post.deleted_at.is_(None)), reverse=True)
    deleted = {i for (i,) in (await _fetch(db, select(Post.id).where(Post.deleted_at.is_not(None))))}
    drafts = {i for (i,) in (await _fetch(db, select(Post.id).where(Post.status == "draft")))}
    seen: set[int] = set()
    after: Key | None = None
    position = 0
    pages: list[tuple[Key | None, int, list[int]]] = []
    for number in range(len(want_all) // FEED_LIMIT + 3):
        # Small pages where the added ties are, then big ones: any limit must work, and big pages keep it quick.
        limit = FEED_LIMIT if number < 10 else 10 * FEED_LIMIT
        page = await _feed_page(posts_page, db, after, limit)
        hidden = next((p.id for p in page if p.id in deleted), None)
        expect(
            hidden is None,
            f"post {hidden} is soft-deleted (deleted_at is set): the timeline shows live posts only",
        )
        want = want_all[position : position + limit]
        got = [p.id for p in page]
        if (
            got != [r.id for r in want]
            and got == [r.id for r in want_all[position:] if r.id not in drafts][: len(got)]
        ):
            draft = next(r.id for r in want if r.id in drafts)
            fail(
                f"post {draft} is missing: it is a draft, but the timeline is every post whose deleted_at is NULL, "
                "drafts included. Filter on what the task names, nothing more"
            )
        judge_page(page, want, seen, after, "desc")
        pages.append((after, limit, got))
        if not page:
            break
        seen.update(p.id for p in page)
        position += len(page)
        after = key_of(page[-1])
    else:
        fail("the walk never reached an empty page: is `after` used to move forward?")
    # A client may ask for the same page twice (a retry, a second tab): the answer may depend only on the cursor.
    again_after, again_limit, ids = pages[1]
    again = await _feed_page(posts_page, db, again_after, again_limit)
    expect(
        [p.id for p in again] == ids,
        "asking again for the second page with the same `after` gave different posts: a page must depend only on "
        "the cursor the client sends, not on state kept between calls",
    )


async def _feed_page(posts_page: Callable[..., Any], db: CheckDB, after: Key | None, limit: int) -> list[Any]:
    """One page from the learner's posts_page, sent as one bounded SELECT and made of Post objects."""
    async with db.Session() as session:
        with db.count_queries() as q:
            page = await call_learner(posts_page, session, after=after, limit=limit)
        one_page_statement(q, "posts_page", rows=limit)
        no_window(q, "posts_page")
        leaves_transaction(session, "posts_page")
    page = rows_of(page, Post, "posts_page")
    expect(len(page) <= limit, f"posts_page returned {len(page)} posts for limit={limit}")
    return page


async def _fetch(db: CheckDB, stmt: Any) -> list[Any]:
    async with db.Session() as session:
        return list((await session.execute(stmt)).all())


# --- 4.2 signed cursors -----------------------------------------------------------------------------------------------

_URL_SAFE = re.compile(r"^[A-Za-z0-9_.~=-]+$")
_SAMPLES: list[Key] = [
    (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), 987654321),
    (datetime(2025, 1, 31, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))), 7),
]


@registry.exercise("4.2")
async def _check_cursors(encode: Callable[..., Any], decode: Callable[..., Any], db: CheckDB) -> None:
    # Away from UTC: a local time labelled UTC (fromtimestamp without tz, then replace) comes back hours off.
    with machine_zone():
        for created_at, cursor_id in _SAMPLES:
            token = await call_learner(encode, created_at, cursor_id)
            expect(isinstance(token, str) and token, f"encode_cursor should return a non-empty str, got {token!r}")
            expect(
                _URL_SAFE.match(token),
                f"the cursor {token[:40]!r} is not URL-safe: use base64.urlsafe_b64encode or itsdangerous' URLSafeSerializer",
            )
            decoded = await call_learner(decode, token)
            expect(
                isinstance(decoded, tuple | list) and len(decoded) == 2,
                f"decode_cursor should return (created_at, id), got {decoded!r}",
            )
            got_at, got_id = decoded
            expect(isinstance(got_id, int), f"the id came back as {type(got_id).__name__} {got_id!r}, not int")
            expect(isinstance(got_at, datetime), f"created_at came back as {type(got_at).__name__}, not datetime")
            expect(
                got_at.tzinfo is not None,
                "created_at came back naive: the timezone was lost on the way (isoformat() keeps the offset)",
            )
            shift = got_at - created_at
            expect(
                not shift or shift % timedelta(minutes=15),
                f"created_at came back {abs(shift)} away from the instant it was made from: a time in the machine's "
                "local zone was labelled as another zone (fromtimestamp() without tz, or replace(tzinfo=...) on a "
                "local time). Carry the UTC offset inside the cursor",
            )
            expect(
                (got_at, got_id) == (created_at, cursor_id),
                f"round trip changed the values: ({created_at.isoformat()}, {cursor_id}) came back as "
                f"({got_at.isoformat()}, {got_id})",
            )
            await reject_forgeries(decode, token, created_at, cursor_id)
        await reject_garbage(decode)


# --- 4.3 a page whose cost does not grow with depth --------------------------------------------------------------

# Not the function's default (50): an answer that ignores `limit` must fail.
EXPORT_LIMIT = 37


@registry.exercise("4.3")
async def _check_export_page(
    add_index: Callable[..., Any], comments_page: Callable[..., Any], db: CheckDB
) -> None:
    table = cast(Table, Comment.__table__)  # a mapped class's __table__ is typed as any FromClause
    indexes_before = set(table.indexes)
    tie_start, tie_size = await add_tied_comments(db, limit=EXPORT_LIMIT)
    names_before = await index_names(db)
    async with db.engine.connect() as conn:
        commits: list[object] = []

        def committed(connection: object) -> None:
            commits.append(connection)

        event.listen(conn.sync_connection, "commit", committed)
        try:
            await call_learner(add_index, conn)
        finally:
            event.remove(conn.sync_connection, "commit", committed)
        expect(
            not commits,
            "add_comments_index committed: leave that to the caller, who commits the index together with whatever "
            "else its transaction does (or rolls it all back)",
        )
        await conn.commit()
    # An Index(...) built on the model's columns attaches itself to the shared metadata: detach it again.
    table.indexes.intersection_update(indexes_before)
    await judge_index_columns(db, names_before)
    total = (await _fetch(db, select(func.count()).select_from(Comment)))[0][0]
    reference = select(Comment.id, Comment.created_at).order_by(Comment.created_at, Comment.id)
    # Cursors inside the tie group (a cursor on created_at alone skips or repeats the rest of it) and near the end.
    inside_tie = tie_start + 10
    leaving_tie = tie_start + tie_size - EXPORT_LIMIT // 2
    measured = []
    for position in (0, inside_tie, leaving_tie, total - 30, total):
        # The check's own OFFSET finds the cursor row and the page after it (one query per position, not per page).
        rows = await _fetch(db, reference.offset(max(position - 1, 0)).limit(EXPORT_LIMIT + 1))
        after, want = (None, rows[:EXPORT_LIMIT]) if position == 0 else (key_of(rows[0]), rows[1:])
        async with db.Session() as session:
            with db.count_queries() as q, capture_statements(db.engine) as statements:
                page = await call_learner(comments_page, session, after=after, limit=EXPORT_LIMIT)
            one_page_statement(q, "comments_page", rows=EXPORT_LIMIT)
            leaves_transaction(session, "comments_page")
        page = rows_of(page, Comment, "comments_page")
        judge_page(page, want, set(), after, "asc")
        if position in (inside_tie, total - 30):
            expect(
                statements,
                "comments_page must run a select(...) or text(...) statement so its cost can be measured",
            )
            where = (
                "inside a group of comments that share created_at" if position == inside_tie else "near the end"
            )
            # Only the first page (position 0) has no cursor row, and it is not measured.
            measured.append((where, cast(Key, after), *statements[-1]))
            judge_tiebreak(statements[-1][0], db)
    # In the middle and near the end: a page that reads every earlier row shows up at least at one of them.
    for where, after, clause, params in measured:
        await judge_deep_page_cost(db, where, after, clause, params, limit=EXPORT_LIMIT)


# The last ORDER BY of a statement (an outer query's comes after its subqueries'), up to LIMIT/OFFSET/FETCH.
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+(.*?)(?=\bLIMIT\b|\bOFFSET\b|\bFETCH\b|\)\s*$|;|$)", re.I | re.S)
_ID = re.compile(r'(?<![\w"])(?:\w+\.)?"?id"?(?![\w"])', re.I)


def judge_tiebreak(clause: Any, db: CheckDB) -> None:
    """The page's ORDER BY must name id after created_at: with (created_at, id) as the index, rows that share
    created_at come back in id order anyway, so only the statement shows an order that leaves ties to the plan."""
    sql = str(clause.compile(dialect=db.engine.dialect))
    orders = _ORDER_BY.findall(sql)
    expect(
        bool(orders) and "created_at" in orders[-1].lower() and _ID.search(orders[-1]) is not None,
        f"comments_page sent ORDER BY {orders[-1].strip() if orders else '(none)'}: rows that share created_at "
        "then come back in whatever order the plan gives (here, by chance, the right one). Order by created_at "
        "and id, the columns of the cursor",
    )


# --- 4.4 has a next page?: in next_page.py ---------------------------------------------------------------------

registry.exercise("4.4")(check_orders_page)


# --- 4.5 (stretch) the previous page: in previous.py ------------------------------------------------------------


@registry.exercise("4.5", timeout=60)
async def _check_previous_page(posts_page_before: Callable[..., Any], db: CheckDB) -> None:
    await _add_tied_posts(db)
    deleted = {i for (i,) in (await _fetch(db, select(Post.id).where(Post.deleted_at.is_not(None))))}
    await check_previous_page(posts_page_before, db, await live_timeline(db), deleted)
