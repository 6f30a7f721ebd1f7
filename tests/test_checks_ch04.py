"""Chapter 4 checks have teeth: the solution passes; the stub and plausible wrong answers fail with the right hint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import and_, func, or_, select, text, tuple_

from course.chapters.ch04_pagination.checks import check
from course.domain.models import Comment, Order, Post
from course.settings import Settings
from tests import teeth

SOURCE = "solutions/04_pagination.ipynb"
SOLVED = teeth.solved(SOURCE)


fails_with = partial(teeth.fails_with, check)


# --- 4.1 posts_page ------------------------------------------------------------------------------------------------

FEED = (Post.created_at.desc(), Post.id.desc())
LIVE = Post.deleted_at.is_(None)


async def _scalars(session, stmt) -> list:
    return list((await session.execute(stmt)).scalars())


async def page_offset_in_disguise(session, *, after=None, limit=20):
    skip = 0
    if after is not None:
        seen = tuple_(Post.created_at, Post.id) >= tuple_(*after)
        skip = await session.scalar(select(func.count()).select_from(Post).where(LIVE, seen))
    return await _scalars(session, select(Post).where(LIVE).order_by(*FEED).offset(skip).limit(limit))


async def page_id_only(session, *, after=None, limit=20):
    stmt = select(Post).where(LIVE)
    if after is not None:
        stmt = stmt.where(Post.id < after[1])
    return await _scalars(session, stmt.order_by(*FEED).limit(limit))


async def page_created_at_lt(session, *, after=None, limit=20):
    stmt = select(Post).where(LIVE)
    if after is not None:
        stmt = stmt.where(Post.created_at < after[0])
    return await _scalars(session, stmt.order_by(*FEED).limit(limit))


async def page_created_at_le(session, *, after=None, limit=20):
    stmt = select(Post).where(LIVE)
    if after is not None:
        stmt = stmt.where(Post.created_at <= after[0])
    return await _scalars(session, stmt.order_by(*FEED).limit(limit))


async def page_fetch_all(session, *, after=None, limit=20):
    rows = await _scalars(session, select(Post).where(LIVE).order_by(*FEED))
    start = 0 if after is None else next(n for n, p in enumerate(rows) if (p.created_at, p.id) == after) + 1
    return rows[start : start + limit]


async def page_with_deleted(session, *, after=None, limit=20):
    stmt = select(Post)
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return await _scalars(session, stmt.order_by(*FEED).limit(limit))


async def page_mixed_directions(session, *, after=None, limit=20):
    stmt = select(Post).where(LIVE)
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return await _scalars(session, stmt.order_by(Post.created_at.desc(), Post.id).limit(limit))


async def page_offset_subquery(session, *, after=None, limit=20):
    # One statement, no OFFSET literal: the OFFSET is a subquery that counts the rows already seen.
    stmt = select(Post).where(LIVE).order_by(*FEED).limit(limit)
    if after is not None:
        seen = (
            select(func.count()).select_from(Post).where(LIVE, tuple_(Post.created_at, Post.id) >= tuple_(*after))
        )
        stmt = stmt.offset(seen.scalar_subquery())
    return await _scalars(session, stmt)


async def page_limit_in_python(session, *, after=None, limit=20):
    stmt = select(Post).where(LIVE)
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return (await _scalars(session, stmt.order_by(*FEED).limit(10_000)))[:limit]


async def page_no_tie_breaker_order(session, *, after=None, limit=20):
    # Right condition, but ORDER BY created_at alone: ties come back in whatever order the plan gives.
    stmt = select(Post).where(LIVE)
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return await _scalars(session, stmt.order_by(Post.created_at.desc()).limit(limit))


async def page_first_unfiltered(session, *, after=None, limit=20):
    if after is None:
        return await _scalars(session, select(Post).order_by(*FEED).limit(limit))
    return await SOLVED["posts_page"](session, after=after, limit=limit)


async def page_published_only(session, *, after=None, limit=20):
    stmt = select(Post).where(LIVE, Post.status == "published")
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return await _scalars(session, stmt.order_by(*FEED).limit(limit))


_last_seen: dict[str, Any] = {}


async def page_remembers_the_cursor(session, *, after=None, limit=20):
    # Pages through server-side state instead of the cursor the client sends.
    key = _last_seen.get("key") if after is not None else None
    stmt = select(Post).where(LIVE)
    if key is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*key))
    page = await _scalars(session, stmt.order_by(*FEED).limit(limit))
    _last_seen["key"] = (page[-1].created_at, page[-1].id) if page else None
    return page


async def page_or_bounded(session, *, after=None, limit=20):
    # Correct too: the OR-expanded condition with a bound on created_at, and `.scalars().all()`.
    stmt = select(Post).where(LIVE)
    if after is not None:
        created_at, post_id = after
        stmt = stmt.where(Post.created_at <= created_at, or_(Post.created_at < created_at, Post.id < post_id))
    return (await session.scalars(stmt.order_by(*FEED).limit(limit))).all()


async def page_text_sql(session, *, after=None, limit=20):
    # Correct too: hand-written SQL with the plain OR expansion.
    where = "" if after is None else "AND (created_at < :c OR (created_at = :c AND id < :i))"
    sql = f"SELECT * FROM posts WHERE deleted_at IS NULL {where} ORDER BY created_at DESC, id DESC LIMIT :n"
    params = {"n": limit} if after is None else {"n": limit, "c": after[0], "i": after[1]}
    stmt = select(Post).from_statement(text(sql).bindparams(**params).columns(*Post.__table__.c))
    return await _scalars(session, stmt)


async def page_row_number(session, *, after=None, limit=20):
    # One SELECT, no OFFSET: every live post is numbered, and the page starts after the cursor row's number.
    numbered = select(Post.id, func.row_number().over(order_by=FEED).label("n")).where(LIVE).subquery()
    stmt = select(Post).join(numbered, Post.id == numbered.c.id)
    if after is not None:
        stmt = stmt.where(numbered.c.n > select(numbered.c.n).where(numbered.c.id == after[1]).scalar_subquery())
    return await _scalars(session, stmt.order_by(numbered.c.n).limit(limit))


async def page_commits(session, *, after=None, limit=20):
    page = await SOLVED["posts_page"](session, after=after, limit=limit)
    await session.commit()
    return page


async def page_own_transaction(session, *, after=None, limit=20):
    async with session.begin():
        return await SOLVED["posts_page"](session, after=after, limit=limit)


async def page_default_limit(session, *, after=None, limit=20):
    return await SOLVED["posts_page"](session, after=after)


async def test_4_1_other_correct_answers_pass(tiny: Settings) -> None:
    for right in (page_or_bounded, page_text_sql):
        await check("4.1", right, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (page_offset_in_disguise, "sends OFFSET"),
        (page_offset_subquery, "sends OFFSET"),
        (page_limit_in_python, "asks the database for up to 10000 rows"),
        (page_no_tie_breaker_order, "not in (created_at DESC, id DESC) order"),
        (page_first_unfiltered, "soft-deleted"),
        (page_published_only, "it is a draft"),
        (page_remembers_the_cursor, "depend only on the cursor"),
        (page_id_only, "a condition on id alone"),
        (page_created_at_lt, "share created_at with the cursor row were skipped"),
        (page_created_at_le, "came back on a later page too"),
        (page_fetch_all, "has no LIMIT"),
        (page_with_deleted, "soft-deleted"),
        (page_mixed_directions, "not in (created_at DESC, id DESC) order"),
        (page_row_number, "OFFSET in disguise"),
        (page_commits, "ended the session's transaction"),
        (page_own_transaction, "ended the session's transaction"),
        (page_default_limit, "is the `limit` argument used"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_4_1_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "4.1", fragment, wrong)


# --- 4.2 encode_cursor / decode_cursor ---------------------------------------------------------------------------


def encode_unsigned(created_at, post_id):
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), post_id]).encode()).decode()


class InvalidCursor(ValueError):
    """The exercise cell's own class (the check knows it by name): a plain ValueError is not accepted."""


def decode_unsigned(cursor):
    try:
        stamp, post_id = json.loads(base64.urlsafe_b64decode(cursor))
        return datetime.fromisoformat(stamp), post_id
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc


KEY = b"k" * 32


def _mac(payload: str) -> str:
    return hmac.new(KEY, payload.encode(), hashlib.sha256).hexdigest()[:20]


def encode_optional_signature(created_at, post_id):
    payload = encode_unsigned(created_at, post_id)
    return f"{payload}.{_mac(payload)}"


def decode_optional_signature(cursor):
    # The bug: a cursor without a signature part is trusted as it is.
    payload, _, signature = cursor.partition(".")
    if signature and signature != _mac(payload):
        raise InvalidCursor("bad signature")
    return decode_unsigned(payload)


def encode_naive(created_at, post_id):
    return SOLVED["encode_cursor"](created_at.replace(tzinfo=None), post_id)


def decode_without_catching(cursor):
    # Lets itsdangerous' BadSignature escape, and trusts whatever datetime comes out.
    signer = URLSafeSerializer(
        SOLVED["CURSOR_KEY"], salt="posts-feed", signer_kwargs={"digest_method": hashlib.sha256}
    )
    stamp, post_id = signer.loads(cursor)
    return datetime.fromisoformat(stamp), post_id


def encode_epoch(created_at, post_id):
    signer = URLSafeSerializer(SOLVED["CURSOR_KEY"], salt="feed")
    return signer.dumps([created_at.timestamp(), post_id])


def decode_epoch_local_as_utc(cursor):
    # fromtimestamp() without tz gives the machine's local time; labelling it UTC is right only on a UTC machine.
    try:
        stamp, post_id = URLSafeSerializer(SOLVED["CURSOR_KEY"], salt="feed").loads(cursor)
        return datetime.fromtimestamp(stamp).replace(tzinfo=UTC), int(post_id)
    except Exception as exc:
        raise InvalidCursor("invalid cursor") from exc


def decode_epoch_utc(cursor):
    try:
        stamp, post_id = URLSafeSerializer(SOLVED["CURSOR_KEY"], salt="feed").loads(cursor)
        return datetime.fromtimestamp(stamp, tz=UTC), int(post_id)
    except Exception as exc:
        raise InvalidCursor("invalid cursor") from exc


async def test_4_2_epoch_in_utc_passes(tiny: Settings) -> None:
    await check("4.2", encode_epoch, decode_epoch_utc, settings=tiny)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _checked(payload: bytes, signature: str, expected: str):
    if not hmac.compare_digest(signature, expected):
        raise InvalidCursor("bad signature")
    stamp, post_id = json.loads(payload)
    return datetime.fromisoformat(stamp), post_id


def encode_mac_over_id(created_at, post_id):
    payload = _b64(json.dumps([created_at.isoformat(), post_id]).encode())
    return f"{payload}.{hmac.new(KEY, str(post_id).encode(), hashlib.sha256).hexdigest()}"


def decode_mac_over_id(cursor):
    try:
        payload, signature = cursor.split(".")
        _, post_id = json.loads(_unb64(payload))
        expected = hmac.new(KEY, str(post_id).encode(), hashlib.sha256).hexdigest()
        return _checked(_unb64(payload), signature, expected)
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def encode_plain_hash(created_at, post_id):
    payload = _b64(json.dumps([created_at.isoformat(), post_id]).encode())
    return f"{payload}.{hashlib.sha256(payload.encode()).hexdigest()}"


def decode_plain_hash(cursor):
    try:
        payload, signature = cursor.split(".")
        return _checked(_unb64(payload), signature, hashlib.sha256(payload.encode()).hexdigest())
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def encode_key_inside(created_at, post_id):
    key = b"per-cursor key"
    payload = json.dumps([created_at.isoformat(), post_id]).encode()
    return f"{_b64(payload)}.{_b64(key)}.{hmac.new(key, payload, hashlib.sha256).hexdigest()}"


def decode_key_inside(cursor):
    try:
        payload, key, signature = cursor.split(".")
        expected = hmac.new(_unb64(key), _unb64(payload), hashlib.sha256).hexdigest()
        return _checked(_unb64(payload), signature, expected)
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def encode_readable_fields(created_at, post_id):
    # The timestamp travels as plain digits; only the id is signed.
    digits = created_at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")
    return f"{digits}-{post_id}-{hmac.new(KEY, str(post_id).encode(), hashlib.sha256).hexdigest()[:16]}"


def decode_readable_fields(cursor):
    try:
        digits, post_id, signature = cursor.split("-")
        if signature != hmac.new(KEY, post_id.encode(), hashlib.sha256).hexdigest()[:16]:
            raise InvalidCursor("bad signature")
        return datetime.strptime(digits, "%Y%m%d%H%M%S%f").replace(tzinfo=UTC), int(post_id)
    except (TypeError, ValueError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def encode_own_hmac(created_at, post_id):
    # Correct too: a hand-made HMAC over everything, epoch microseconds, the whole token base64-encoded.
    micros = round(created_at.timestamp()) * 10**6 + created_at.microsecond
    body = f"{micros}:{post_id}"
    return _b64(f"{body}:{hmac.new(KEY, body.encode(), hashlib.sha256).hexdigest()}".encode())


def decode_own_hmac(cursor):
    try:
        micros, post_id, signature = _unb64(cursor).decode().split(":")
        expected = hmac.new(KEY, f"{micros}:{post_id}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise InvalidCursor("bad signature")
        seconds, fraction = divmod(int(micros), 10**6)
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=fraction), int(post_id)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("invalid cursor") from exc


async def test_4_2_hand_made_hmac_passes(tiny: Settings) -> None:
    await check("4.2", encode_own_hmac, decode_own_hmac, settings=tiny)


@pytest.mark.parametrize(
    ("encode", "decode", "fragment"),
    [
        (encode_unsigned, decode_unsigned, "re-encoded with plain base64"),
        (encode_mac_over_id, decode_mac_over_id, "created_at inside was edited"),
        (encode_plain_hash, decode_plain_hash, "recomputed from the cursor itself"),
        (encode_key_inside, decode_key_inside, "recomputed from the cursor itself"),
        (encode_readable_fields, decode_readable_fields, "changed was accepted and gave"),
        (encode_optional_signature, decode_optional_signature, "the signature dropped"),
        (encode_naive, decode_without_catching, "came back naive"),
        (SOLVED["encode_cursor"], decode_without_catching, "raised BadSignature"),
        (encode_epoch, decode_epoch_local_as_utc, "local zone was labelled as another zone"),
    ],
    ids=[
        "unsigned",
        "mac-over-id",
        "plain-hash",
        "key-inside",
        "readable-fields",
        "optional-signature",
        "naive",
        "bad-signature-leaks",
        "local-time-as-utc",
    ],  # fmt: skip
)
async def test_4_2_wrong_answers_fail(tiny: Settings, encode, decode, fragment: str) -> None:
    await fails_with(tiny, "4.2", fragment, encode, decode)


# --- 4.3 add_comments_index / comments_page ----------------------------------------------------------------------

EXPORT = (Comment.created_at, Comment.id)


async def no_index(conn) -> None:
    return None


async def export_offset(session, *, after=None, limit=50):
    skip = 0
    if after is not None:
        earlier = tuple_(*EXPORT) <= tuple_(*after)
        skip = await session.scalar(select(func.count()).select_from(Comment).where(earlier))
    return await _scalars(session, select(Comment).order_by(*EXPORT).offset(skip).limit(limit))


async def export_fetch_all(session, *, after=None, limit=50):
    stmt = select(Comment).order_by(*EXPORT)
    if after is not None:
        stmt = stmt.where(tuple_(*EXPORT) > tuple_(*after))
    return (await _scalars(session, stmt))[:limit]


async def export_naive_or(session, *, after=None, limit=50):
    stmt = select(Comment).order_by(*EXPORT).limit(limit)
    if after is not None:
        created_at, comment_id = after
        later = or_(
            Comment.created_at > created_at, and_(Comment.created_at == created_at, Comment.id > comment_id)
        )
        stmt = stmt.where(later)
    return await _scalars(session, stmt)


async def index_wrong_order(conn) -> None:
    await conn.execute(text("CREATE INDEX ix_comments_id_created_at ON comments (id, created_at)"))


async def export_row_number(session, *, after=None, limit=50):
    # One SELECT, no OFFSET: the rows are numbered and the page starts after the cursor row's number.
    numbered = select(Comment.id, func.row_number().over(order_by=EXPORT).label("n")).subquery()
    stmt = select(Comment).join(numbered, Comment.id == numbered.c.id)
    if after is not None:
        stmt = stmt.where(numbered.c.n > select(numbered.c.n).where(numbered.c.id == after[1]).scalar_subquery())
    return await _scalars(session, stmt.order_by(numbered.c.n).limit(limit))


async def export_offset_subquery(session, *, after=None, limit=50):
    stmt = select(Comment).order_by(*EXPORT).limit(limit)
    if after is not None:
        earlier = select(func.count()).select_from(Comment).where(tuple_(*EXPORT) <= tuple_(*after))
        stmt = stmt.offset(earlier.scalar_subquery())
    return await _scalars(session, stmt)


async def export_limit_in_python(session, *, after=None, limit=50):
    stmt = select(Comment).order_by(*EXPORT).limit(100_000)
    if after is not None:
        stmt = stmt.where(tuple_(*EXPORT) > tuple_(*after))
    return (await _scalars(session, stmt))[:limit]


async def index_created_at_only(conn) -> None:
    await conn.execute(text("CREATE INDEX ix_comments_created_at ON comments (created_at)"))


async def index_descending(conn) -> None:
    await conn.execute(text("CREATE INDEX ix_comments_newest ON comments (created_at DESC, id DESC)"))


async def export_created_at_cursor(session, *, after=None, limit=50):
    # The cursor compares created_at alone: inside a tie group the rest of the group is skipped.
    stmt = select(Comment).order_by(*EXPORT).limit(limit)
    if after is not None:
        stmt = stmt.where(Comment.created_at > after[0])
    return await _scalars(session, stmt)


async def export_default_limit(session, *, after=None, limit=50):
    return await SOLVED["comments_page"](session, after=after)


async def export_commits(session, *, after=None, limit=50):
    page = await SOLVED["comments_page"](session, after=after, limit=limit)
    await session.commit()
    return page


async def export_or_bounded(session, *, after=None, limit=50):
    stmt = select(Comment).order_by(*EXPORT).limit(limit)
    if after is not None:
        created_at, comment_id = after
        stmt = stmt.where(
            Comment.created_at >= created_at, or_(Comment.created_at > created_at, Comment.id > comment_id)
        )
    return await _scalars(session, stmt)


@pytest.mark.parametrize(
    ("add_index", "page"),
    [
        (SOLVED["add_comments_index"], export_or_bounded),
        (index_descending, export_or_bounded),
    ],
    ids=["or-bounded", "descending-index"],
)
async def test_4_3_other_correct_answers_pass(tiny: Settings, add_index, page) -> None:
    await check("4.3", add_index, page, settings=tiny)


@pytest.mark.parametrize(
    ("add_index", "page", "fragment"),
    [
        (SOLVED["add_comments_index"], export_offset, "sends OFFSET"),
        (SOLVED["add_comments_index"], export_fetch_all, "has no LIMIT"),
        (no_index, SOLVED["comments_page"], "the plan reads all comments"),
        (index_wrong_order, SOLVED["comments_page"], "index whose columns match the ORDER BY"),
        (SOLVED["add_comments_index"], export_naive_or, "walks the index from its first entry"),
        (SOLVED["add_comments_index"], export_row_number, "OFFSET in disguise"),
        (SOLVED["add_comments_index"], export_offset_subquery, "sends OFFSET"),
        (SOLVED["add_comments_index"], export_limit_in_python, "asks the database for up to 100000 rows"),
        (index_created_at_only, SOLVED["comments_page"], "does not end the order with id"),
        (
            SOLVED["add_comments_index"],
            export_created_at_cursor,
            "share created_at with the cursor row were skipped",
        ),
        (SOLVED["add_comments_index"], export_default_limit, "up to 50 rows"),
        (SOLVED["add_comments_index"], export_commits, "ended the session's transaction"),
    ],
    ids=[
        "offset",
        "fetch-all",
        "no-index",
        "index-wrong-order",
        "or-without-bound",
        "row-number",
        "offset-subquery",
        "limit-in-python",
        "created-at-index",
        "created-at-cursor",
        "default-limit",
        "commits",
    ],  # fmt: skip
)
async def test_4_3_wrong_answers_fail(tiny: Settings, add_index, page, fragment: str) -> None:
    await fails_with(tiny, "4.3", fragment, add_index, page)


# --- 4.4 user_orders_page ----------------------------------------------------------------------------------------

ORDERS = (Order.created_at.desc(), Order.id.desc())


def _orders(user_id, after):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    return stmt.order_by(*ORDERS)


async def orders_full_page_means_more(session, user_id, *, after=None, limit=10):
    page = await _scalars(session, _orders(user_id, after).limit(limit))
    return page, ((page[-1].created_at, page[-1].id) if len(page) == limit else None)


async def orders_count_for_next(session, user_id, *, after=None, limit=10):
    page = await _scalars(session, _orders(user_id, after).limit(limit))
    left = await session.scalar(select(func.count()).select_from(_orders(user_id, after).subquery()))
    return page, ((page[-1].created_at, page[-1].id) if left > limit else None)


async def orders_keeps_extra_row(session, user_id, *, after=None, limit=10):
    rows = await _scalars(session, _orders(user_id, after).limit(limit + 1))
    return rows, ((rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None)


async def orders_default_limit(session, user_id, *, after=None, limit=10):
    return await SOLVED["user_orders_page"](session, user_id, after=after)


async def orders_own_transaction(session, user_id, *, after=None, limit=10):
    async with session.begin():
        return await SOLVED["user_orders_page"](session, user_id, after=after, limit=limit)


async def orders_cursor_included(session, user_id, *, after=None, limit=10):
    # `<=` on the pair: the cursor row itself opens the next page again.
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) <= tuple_(*after))
    rows = await _scalars(session, stmt.order_by(*ORDERS).limit(limit + 1))
    page = rows[:limit]
    return page, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


async def orders_window_count(session, user_id, *, after=None, limit=10):
    # One SELECT, but count(*) over () makes the database read every remaining order to count them.
    rows = (await session.execute(_orders(user_id, after).add_columns(func.count().over()).limit(limit))).all()
    page = [order for order, _ in rows]
    more = bool(rows) and rows[0][1] > limit
    return page, ((page[-1].created_at, page[-1].id) if more else None)


async def orders_limit_in_python(session, user_id, *, after=None, limit=10):
    rows = await _scalars(session, _orders(user_id, after).limit(1000))
    page = rows[:limit]
    return page, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


async def orders_text_sql(session, user_id, *, after=None, limit=10):
    # Correct too: hand-written SQL with a row comparison and LIMIT :n + 1 bound in Python.
    where = "" if after is None else "AND (created_at, id) < (:c, :i)"
    sql = f"SELECT * FROM orders WHERE user_id = :u {where} ORDER BY created_at DESC, id DESC LIMIT :n"
    params = {"u": user_id, "n": limit + 1, **({} if after is None else {"c": after[0], "i": after[1]})}
    stmt = select(Order).from_statement(text(sql).bindparams(**params).columns(*Order.__table__.c))
    rows = await _scalars(session, stmt)
    return rows[:limit], ((rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None)


async def test_4_4_text_sql_passes(tiny: Settings) -> None:
    await check("4.4", orders_text_sql, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (orders_window_count, "count(*) over () is a COUNT too"),
        (orders_limit_in_python, "asks the database for up to 1000 rows"),
        (orders_full_page_means_more, "the last page still returned a next cursor"),
        (orders_count_for_next, "the page's own SELECT can tell whether a next page exists"),
        (orders_keeps_extra_row, "leave it out of the page"),
        (orders_default_limit, "up to 11 rows"),
        (orders_own_transaction, "ended the session's transaction"),
        (orders_cursor_included, "the cursor row itself, came back"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_4_4_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "4.4", fragment, wrong)


# --- 4.5 (stretch) posts_page_before -----------------------------------------------------------------------------

BEFORE = (Post.created_at, Post.id)


def _before(before, *, column=None, op="gt"):
    left = tuple_(*BEFORE) if column is None else column
    right = tuple_(*before) if column is None else before[0]
    return getattr(left, f"__{op}__")(right)


async def before_not_reversed(session, *, before, limit=20):
    stmt = select(Post).where(LIVE, _before(before)).order_by(*BEFORE).limit(limit)
    return await _scalars(session, stmt)


async def before_top_of_timeline(session, *, before, limit=20):
    # Sorted newest first, the LIMIT keeps the newest posts above the cursor: the top of the timeline.
    return await _scalars(session, select(Post).where(LIVE, _before(before)).order_by(*FEED).limit(limit))


async def before_created_at_gt(session, *, before, limit=20):
    stmt = select(Post).where(LIVE, _before(before, column=Post.created_at)).order_by(*BEFORE).limit(limit)
    return list(reversed(await _scalars(session, stmt)))


async def before_created_at_ge(session, *, before, limit=20):
    stmt = (
        select(Post).where(LIVE, _before(before, column=Post.created_at, op="ge")).order_by(*BEFORE).limit(limit)
    )
    return list(reversed(await _scalars(session, stmt)))


async def before_default_limit(session, *, before, limit=20):
    return await SOLVED["posts_page_before"](session, before=before)


async def before_with_deleted(session, *, before, limit=20):
    stmt = select(Post).where(_before(before)).order_by(*BEFORE).limit(limit)
    return list(reversed(await _scalars(session, stmt)))


async def before_row_number(session, *, before, limit=20):
    numbered = select(Post.id, func.row_number().over(order_by=FEED).label("n")).where(LIVE).subquery()
    cursor_n = select(numbered.c.n).where(numbered.c.id == before[1]).scalar_subquery()
    stmt = select(Post).join(numbered, Post.id == numbered.c.id)
    stmt = stmt.where(numbered.c.n < cursor_n, numbered.c.n >= cursor_n - limit)
    return await _scalars(session, stmt.order_by(numbered.c.n).limit(limit))


async def before_commits(session, *, before, limit=20):
    page = await SOLVED["posts_page_before"](session, before=before, limit=limit)
    await session.commit()
    return page


async def before_in_subquery(session, *, before, limit=20):
    # Correct too: the nearest posts picked in a subquery, sorted newest first by the outer query.
    nearest = select(Post.id).where(LIVE, _before(before)).order_by(*BEFORE).limit(limit)
    return await _scalars(session, select(Post).where(Post.id.in_(nearest.scalar_subquery())).order_by(*FEED))


async def test_4_5_subquery_passes(tiny: Settings) -> None:
    await check("4.5", before_in_subquery, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (before_not_reversed, "oldest first"),
        (before_top_of_timeline, "the top of the timeline"),
        (before_created_at_gt, "share created_at with the cursor post and come before it were left out"),
        (before_created_at_ge, "is the cursor post or comes after it"),
        (before_default_limit, "is the `limit` argument used"),
        (before_with_deleted, "soft-deleted"),
        (before_row_number, "OFFSET in disguise"),
        (before_commits, "ended the session's transaction"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_4_5_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "4.5", fragment, wrong)
