"""Checks for chapter 4 (pagination): they walk the learner's pages and judge rows, statements, cursors and plans."""

from __future__ import annotations

import base64
import binascii
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import event, func, select, text

from course.checks.base import CheckDB, Registry, call_learner, expect, fail
from course.checks.pages import Key, judge_page, key_of, one_page_statement, rows_of, skips_rows
from course.explain import explain
from course.models import Comment, Order, Post

registry = Registry("04")
check = registry.check

FEED_LIMIT = 50


async def _add_tied_posts(db: CheckDB) -> None:
    """The tiny seed has few ties: add a tie group longer than two pages right at the first page boundary, and more."""
    async with db.engine.begin() as conn:
        # The feed's index, so a walk through every page stays quick at any scale (4.1 is about rows, not speed).
        await conn.execute(text("CREATE INDEX ix_check_posts_feed ON posts (created_at, id)"))
    async with db.Session() as session, session.begin():
        live = (
            select(Post.created_at)
            .where(Post.deleted_at.is_(None))
            .order_by(Post.created_at.desc(), Post.id.desc())
        )
        first_boundary = (await session.execute(live.offset(FEED_LIMIT - 5).limit(1))).scalar_one()
        deeper = (await session.execute(live.offset(7 * FEED_LIMIT - 2).limit(1))).scalar_one()
        groups = [(first_boundary, 2 * FEED_LIMIT + 5, None), (deeper, 7, None), (deeper, 3, deeper)]
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


@registry.exercise("4.1", points=3, timeout=60)
async def _check_posts_page(posts_page: Callable[..., Any], db: CheckDB) -> None:
    await _add_tied_posts(db)
    want_all = await _expected(db, select(Post.id, Post.created_at).where(Post.deleted_at.is_(None)), reverse=True)
    deleted = {i for (i,) in (await _fetch(db, select(Post.id).where(Post.deleted_at.is_not(None))))}
    seen: set[int] = set()
    after: Key | None = None
    position = 0
    for number in range(len(want_all) // FEED_LIMIT + 3):
        # Small pages where the added ties are, then big ones: any limit must work, and big pages keep it quick.
        limit = FEED_LIMIT if number < 10 else 10 * FEED_LIMIT
        async with db.Session() as session:
            with db.count_queries() as q:
                page = await call_learner(posts_page, session, after=after, limit=limit)
        one_page_statement(q, "posts_page")
        page = rows_of(page, Post, "posts_page")
        expect(len(page) <= limit, f"posts_page returned {len(page)} posts for limit={limit}")
        hidden = next((p.id for p in page if p.id in deleted), None)
        expect(
            hidden is None, f"post {hidden} is soft-deleted (deleted_at is set): the feed shows live posts only"
        )
        judge_page(page, want_all[position : position + limit], seen, after, "desc")
        if not page:
            return
        seen.update(p.id for p in page)
        position += len(page)
        after = key_of(page[-1])
    fail("the walk never reached an empty page: is `after` used to move forward?")


async def _fetch(db: CheckDB, stmt: Any) -> list[Any]:
    async with db.Session() as session:
        return list((await session.execute(stmt)).all())


# --- 4.2 signed cursors -----------------------------------------------------------------------------------------------

_URL_SAFE = re.compile(r"^[A-Za-z0-9_.~=-]+$")
_SAMPLES: list[Key] = [
    (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), 987654321),
    (datetime(2025, 1, 31, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))), 7),
]
_GARBAGE = ["", "garbage", "!!!!", "a.b", "eyJhIjogMX0", "W10", "null", "...."]


async def _decode_or_reject(decode: Callable[..., Any], token: str) -> tuple[bool, Any]:
    """(True, value) when decode accepted token; (False, None) when it raised ValueError; fail on other errors."""
    try:
        value = decode(token)
        return True, (await value) if inspect.isawaitable(value) else value
    except ValueError:
        return False, None
    except NotImplementedError:
        fail("not solved yet: replace the `raise NotImplementedError` line in decode_cursor with your code")
    except Exception as exc:  # noqa: BLE001 - any other exception type is the learner's bug to report
        fail(
            f"decode_cursor({token[:30]!r}) raised {type(exc).__name__}: raise ValueError (or a subclass such as "
            "InvalidCursor) for every bad cursor, so the API can answer 400 instead of 500"
        )


def _b64decode(part: str) -> bytes | None:
    padded = part + "=" * (-len(part) % 4)
    for decoder in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return decoder(padded)
        except (binascii.Error, ValueError):
            continue
    return None


def _forgeries(token: str, cursor_id: int) -> Iterator[tuple[str, str]]:
    """Edited cursors an attacker can make without the key: the id changed in a base64 part, the signature dropped."""
    parts = token.split(".")
    for index, part in enumerate(parts):
        raw = _b64decode(part)
        if raw is None or str(cursor_id).encode() not in raw:
            continue
        edited = raw.replace(str(cursor_id).encode(), str(cursor_id + 1).encode())
        encoded = base64.urlsafe_b64encode(edited).decode()
        encoded = encoded if part.endswith("=") else encoded.rstrip("=")
        forged = [*parts[:index], encoded, *parts[index + 1 :]]
        yield ".".join(forged), "the id inside was edited and re-encoded with plain base64"
        if len(parts) > 1:
            yield encoded, "the id was edited and the signature dropped"
            yield part, "the signature was dropped"


@registry.exercise("4.2", points=3)
async def _check_cursors(encode: Callable[..., Any], decode: Callable[..., Any], db: CheckDB) -> None:
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
        expect(
            (got_at, got_id) == (created_at, cursor_id),
            f"round trip changed the values: ({created_at.isoformat()}, {cursor_id}) came back as "
            f"({got_at.isoformat()}, {got_id})",
        )
        for forged, how in _forgeries(token, cursor_id):
            accepted, _ = await _decode_or_reject(decode, forged)
            expect(not accepted, f"a forged cursor was accepted ({how}): sign the cursor and always verify it")
        for position in range(len(token)):
            flipped = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
            accepted, value = await _decode_or_reject(decode, flipped)
            value = tuple(value) if isinstance(value, tuple | list) else value
            expect(
                not accepted or value == (created_at, cursor_id),
                f"a cursor with character {position} changed was accepted and gave {value!r}: "
                "anyone could edit it. Sign it and reject cursors whose signature does not match",
            )
    for garbage in _GARBAGE:
        accepted, value = await _decode_or_reject(decode, garbage)
        expect(not accepted, f"decode_cursor({garbage!r}) returned {value!r}: garbage must raise ValueError")


# --- 4.3 a page whose cost does not grow with depth --------------------------------------------------------------

EXPORT_LIMIT = 50


@contextmanager
def _capture_selects(db: CheckDB) -> Iterator[list[Any]]:
    """The statement objects the engine executes, so the check can ask the database for their plan."""
    seen: list[Any] = []

    def record(_conn: object, clause: Any, multiparams: Any, params: Any, _options: object) -> None:
        seen.append((clause, params or (multiparams[0] if multiparams else {})))

    event.listen(db.engine.sync_engine, "before_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_execute", record)


def _judge_plan(plan: Any) -> None:
    """The plan of a page far from the start must seek through an index, not scan, walk or sort everything."""
    shown = plan.text
    if plan.dialect == "sqlite":
        expect(
            not plan.full_scan("comments"),
            "far from the start, the plan reads all comments and sorts them (SCAN comments): "
            "create an index whose columns match the ORDER BY in add_comments_index",
        )
        expect(
            not re.search(r"SCAN comments USING (COVERING )?INDEX", shown),
            "the plan walks the index from its first entry and filters (SCAN ... USING INDEX): the cursor does not "
            "seek. Write the condition as a row comparison, or created_at >= c AND (created_at > c OR id > i)",
        )
        expect(
            "USE TEMP B-TREE FOR ORDER BY" not in shown,
            "the plan sorts the rows after reading them: the index columns must match ORDER BY",
        )
    else:
        expect(
            not plan.full_scan("comments"),
            "far from the start, the plan reads all comments (Seq Scan on comments): "
            "create an index whose columns match the ORDER BY in add_comments_index",
        )
        expect(
            "Index Cond" in shown,
            "the plan walks the index from its first entry and filters every row (no Index Cond): the cursor does "
            "not seek. Write the condition as a row comparison, or created_at >= c AND (created_at > c OR id > i)",
        )
    expect(plan.uses_index(), "the plan uses no index: create one on the sort columns in add_comments_index")


@registry.exercise("4.3", points=3)
async def _check_export_page(
    add_index: Callable[..., Any], comments_page: Callable[..., Any], db: CheckDB
) -> None:
    indexes_before = set(Comment.__table__.indexes)
    async with db.engine.connect() as conn:
        await call_learner(add_index, conn)
        await conn.commit()
    # An Index(...) built on the model's columns attaches itself to the shared metadata: detach it again.
    Comment.__table__.indexes.intersection_update(indexes_before)
    total = (await _fetch(db, select(func.count()).select_from(Comment)))[0][0]
    reference = select(Comment.id, Comment.created_at).order_by(Comment.created_at, Comment.id)
    planned = []
    for position in (0, total // 2, total - 30, total):
        # The check's own OFFSET finds the cursor row and the page after it (one query per position, not per page).
        rows = await _fetch(db, reference.offset(max(position - 1, 0)).limit(EXPORT_LIMIT + 1))
        after, want = (None, rows[:EXPORT_LIMIT]) if position == 0 else (key_of(rows[0]), rows[1:])
        async with db.Session() as session:
            with db.count_queries() as q, _capture_selects(db) as statements:
                page = await call_learner(comments_page, session, after=after, limit=EXPORT_LIMIT)
        one_page_statement(q, "comments_page")
        page = rows_of(page, Comment, "comments_page")
        judge_page(page, want, set(), after, "asc")
        if position in (total // 2, total - 30):
            expect(
                statements, "comments_page must run a select(...) or text(...) statement so its plan can be read"
            )
            planned.append(statements[-1])
    # Halfway and near the end: a plan that walks the index from its start shows up at least at one of them.
    for clause, params in planned:
        async with db.engine.connect() as conn:
            _judge_plan(await explain(conn, clause, params=params))


# --- 4.4 has a next page? limit + 1 --------------------------------------------------------------------------------

ORDERS_LIMIT = 10


async def _user_with_ties(db: CheckDB) -> int:
    """A user with a few pages of orders, topped up to a multiple of the page size, with a tie across a boundary."""
    per_user = func.count()
    busy = select(Order.user_id, per_user).group_by(Order.user_id).having(per_user <= 3 * ORDERS_LIMIT)
    async with db.Session() as session, session.begin():
        user_id, count = (await session.execute(busy.order_by(per_user.desc(), Order.user_id).limit(1))).one()
        stamps = (
            await session.execute(
                select(Order.created_at).where(Order.user_id == user_id).order_by(Order.created_at.desc()).limit(9)
            )
        ).scalars()
        boundary = list(stamps)[-1]
        extra = 2 * ORDERS_LIMIT - count % ORDERS_LIMIT
        for n in range(extra):
            session.add(Order(user_id=user_id, status="paid", total_cents=100 * n, created_at=boundary))
        # Another user's orders at the same instant must not leak into this user's pages.
        session.add(Order(user_id=1 if user_id != 1 else 2, status="paid", total_cents=1, created_at=boundary))
    return user_id


@registry.exercise("4.4", points=2)
async def _check_orders_page(user_orders_page: Callable[..., Any], db: CheckDB) -> None:
    user_id = await _user_with_ties(db)
    want_all = await _expected(
        db, select(Order.id, Order.created_at).where(Order.user_id == user_id), reverse=True
    )
    expect(len(want_all) % ORDERS_LIMIT == 0, "check set-up error: the order count is not a multiple of the limit")
    seen: set[int] = set()
    after: Key | None = None
    position = 0
    for _ in range(len(want_all) // ORDERS_LIMIT + 2):
        async with db.Session() as session:
            with db.count_queries() as q:
                result = await call_learner(user_orders_page, session, user_id, after=after, limit=ORDERS_LIMIT)
        expect(
            isinstance(result, tuple) and len(result) == 2,
            f"user_orders_page should return (orders, next_after), got {type(result).__name__}",
        )
        page, next_after = result
        expect(
            q.count <= 1 or any(skips_rows(s, p) for s, p in zip(q.statements, q.params, strict=True)),
            f"user_orders_page sent {q.count} statements for one page: to learn whether a next page exists, fetch "
            "limit + 1 rows in the same SELECT instead of asking again (a COUNT or a probe query)",
        )
        one_page_statement(q, "user_orders_page")
        page = rows_of(page, Order, "user_orders_page")
        expect(
            len(page) <= ORDERS_LIMIT,
            f"user_orders_page returned {len(page)} orders for limit={ORDERS_LIMIT}: the extra row only tells "
            "you that a next page exists; leave it out of the page",
        )
        stranger = next((o.id for o in page if o.user_id != user_id), None)
        expect(stranger is None, f"order {stranger} belongs to another user: filter on user_id")
        judge_page(page, want_all[position : position + ORDERS_LIMIT], seen, after, "desc")
        seen.update(o.id for o in page)
        position += len(page)
        more = position < len(want_all)
        if not more:
            expect(
                next_after is None,
                "the last page still returned a next cursor, so the client would fetch an empty page: "
                "`len(rows) == limit` cannot tell a full last page from one with more after it. Fetch limit + 1",
            )
            return
        expect(next_after is not None, "next_after is None but more orders follow: the client would stop early")
        expect(
            tuple(next_after) == key_of(page[-1]),
            "next_after should be the (created_at, id) of the last order on the page",
        )
        after = tuple(next_after)
    fail("the walk never reached a page without a next cursor")
