"""Chapter 4 (Pagination): answers written from the exercise text alone, before the checks were read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, Serializer, Signer, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    tuple_,
)

from course.domain.models import Comment, Order, Post
from tests.redteam import Case

CURSOR_KEY = secrets.token_hex(32)


class InvalidCursor(ValueError):
    """A cursor this server did not make."""


# ---------------------------------------------------------------- 4.1 posts_page

_TIMELINE = (Post.created_at.desc(), Post.id.desc())


async def posts_page_ref(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


async def posts_page_or(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Post.created_at < at, and_(Post.created_at == at, Post.id < last_id)))
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


async def posts_page_bounded_or(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        at, last_id = after
        stmt = stmt.where(Post.created_at <= at, or_(Post.created_at < at, Post.id < last_id))
    return (await session.execute(stmt.order_by(*_TIMELINE).limit(limit))).scalars().all()


async def posts_page_strict(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(Post.created_at < after[0])
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


async def posts_page_not_strict(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(Post.created_at <= after[0], Post.id != after[1])
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


async def posts_page_offset(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None)).order_by(*_TIMELINE)
    offset = 0
    if after is not None:
        offset = await session.scalar(
            select(func.count())
            .select_from(Post)
            .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) >= tuple_(*after))
        )
    return list(await session.scalars(stmt.offset(offset).limit(limit)))


async def posts_page_row_number(session, *, after=None, limit=20):
    numbered = (
        select(Post.id, func.row_number().over(order_by=_TIMELINE).label("n"))
        .where(Post.deleted_at.is_(None))
        .subquery()
    )
    stmt = select(Post).join(numbered, numbered.c.id == Post.id).order_by(numbered.c.n)
    if after is not None:
        start = select(numbered.c.n).where(numbered.c.id == after[1]).scalar_subquery()
        stmt = stmt.where(numbered.c.n > start)
    return list(await session.scalars(stmt.limit(limit)))


async def posts_page_with_deleted(session, *, after=None, limit=20):
    stmt = select(Post)
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


async def posts_page_published(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None), Post.status == "published")
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


async def posts_page_mixed_direction(session, *, after=None, limit=20):
    # ORDER BY created_at DESC, id ASC while the cursor compares (created_at, id) < (…): the tie order disagrees.
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return list(await session.scalars(stmt.order_by(Post.created_at.desc(), Post.id.asc()).limit(limit)))


async def posts_page_fixed_limit(session, *, after=None, limit=20):
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(20)))


async def posts_page_python(session, *, after=None, limit=20):
    posts = list(await session.scalars(select(Post).where(Post.deleted_at.is_(None)).order_by(*_TIMELINE)))
    if after is not None:
        posts = [p for p in posts if (p.created_at, p.id) < after]
    return posts[:limit]


async def posts_page_id_only(session, *, after=None, limit=20):
    # Cursor on id alone: ids are not in created_at order once rows are added out of order.
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(Post.id < after[1])
    return list(await session.scalars(stmt.order_by(Post.id.desc()).limit(limit)))


# ---------------------------------------------------------------- 4.2 encode_cursor / decode_cursor

_signer = URLSafeSerializer(CURSOR_KEY, salt="posts-cursor")


def encode_cursor_ref(created_at, post_id):
    return _signer.dumps([created_at.isoformat(), post_id])


def decode_cursor_ref(cursor):
    try:
        at, post_id = _signer.loads(cursor)
        value = datetime.fromisoformat(at)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc
    if value.tzinfo is None or not isinstance(post_id, int):
        raise InvalidCursor("bad cursor")
    return value, post_id


_KEY = CURSOR_KEY.encode()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def encode_cursor_hmac(created_at, post_id):
    # Epoch microseconds and id, HMAC-SHA256 over the payload, both base64url.
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    payload = json.dumps([micros, post_id], separators=(",", ":")).encode()
    signature = hmac.new(_KEY, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def decode_cursor_hmac(cursor):
    try:
        payload_part, signature_part = cursor.split(".")
        payload = _unb64(payload_part)
        signature = _unb64(signature_part)
    except (ValueError, AttributeError) as exc:
        raise InvalidCursor("bad cursor") from exc
    if not hmac.compare_digest(signature, hmac.new(_KEY, payload, hashlib.sha256).digest()):
        raise InvalidCursor("bad cursor")
    micros, post_id = json.loads(payload)
    seconds, rest = divmod(micros, 1_000_000)
    value = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest)
    return value, int(post_id)


def encode_cursor_base64(created_at, post_id):
    return _b64(json.dumps([created_at.isoformat(), post_id]).encode())


def decode_cursor_base64(cursor):
    try:
        at, post_id = json.loads(_unb64(cursor))
        return datetime.fromisoformat(at), int(post_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def decode_cursor_lets_badsignature_out(cursor):
    at, post_id = _signer.loads(cursor)
    return datetime.fromisoformat(at), post_id


def encode_cursor_naive(created_at, post_id):
    return _signer.dumps([created_at.replace(tzinfo=None).isoformat(), post_id])


def decode_cursor_naive(cursor):
    try:
        at, post_id = _signer.loads(cursor)
        return datetime.fromisoformat(at), int(post_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def encode_cursor_timestamp(created_at, post_id):
    return _signer.dumps([created_at.timestamp(), post_id])


def decode_cursor_local_as_utc(cursor):
    # fromtimestamp without tz gives local wall time; labelling it UTC moves the instant.
    try:
        ts, post_id = _signer.loads(cursor)
        return datetime.fromtimestamp(ts).replace(tzinfo=UTC), int(post_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


_plain = Serializer(CURSOR_KEY, salt="posts-cursor")


def encode_cursor_not_urlsafe(created_at, post_id):
    return _plain.dumps([created_at.isoformat(), post_id])


def decode_cursor_not_urlsafe(cursor):
    try:
        at, post_id = _plain.loads(cursor)
        return datetime.fromisoformat(at), int(post_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def encode_cursor_id_text(created_at, post_id):
    return _signer.dumps([created_at.isoformat(), str(post_id)])


def decode_cursor_id_text(cursor):
    try:
        at, post_id = _signer.loads(cursor)
        return datetime.fromisoformat(at), post_id
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def decode_cursor_returns_none(cursor):
    try:
        at, post_id = _signer.loads(cursor)
        return datetime.fromisoformat(at), int(post_id)
    except Exception:  # noqa: BLE001 - the wrong answer under test
        return None


def decode_cursor_unsigned_read(cursor):
    # Reads the payload whether or not the signature holds.
    try:
        _ok, payload = _signer.loads_unsafe(cursor)
        at, post_id = payload
        return datetime.fromisoformat(at), int(post_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def decode_cursor_hmac_indexerror(cursor):
    # rsplit()[1] raises IndexError (not a ValueError) when the signature is cut off with its dot.
    payload_part = cursor.rsplit(".", 1)[0]
    signature_part = cursor.rsplit(".", 1)[1]
    try:
        payload = _unb64(payload_part)
        signature = _unb64(signature_part)
    except ValueError as exc:
        raise InvalidCursor("bad cursor") from exc
    if not hmac.compare_digest(signature, hmac.new(_KEY, payload, hashlib.sha256).digest()):
        raise InvalidCursor("bad cursor")
    micros, post_id = json.loads(payload)
    seconds, rest = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest), int(post_id)


# ---------------------------------------------------------------- 4.3 add_comments_index / comments_page


async def add_comments_index_ref(conn):
    await conn.execute(text("CREATE INDEX ix_comments_created_id ON comments (created_at, id)"))


async def add_comments_index_desc(conn):
    # Both columns descending: read backwards it is the export's order.
    await conn.execute(text("CREATE INDEX ix_comments_created_id_desc ON comments (created_at DESC, id DESC)"))


async def add_comments_index_sqlalchemy(conn):
    comments = Table("comments", MetaData(), Column("created_at", DateTime(timezone=True)), Column("id", Integer))
    index = Index("ix_rt_comments_export", comments.c.created_at, comments.c.id)
    await conn.run_sync(lambda sync_conn: index.create(sync_conn))


async def add_comments_index_created_only(conn):
    await conn.execute(text("CREATE INDEX ix_comments_created ON comments (created_at)"))


async def add_comments_index_id_first(conn):
    await conn.execute(text("CREATE INDEX ix_comments_id_created ON comments (id, created_at)"))


async def add_comments_index_mixed(conn):
    await conn.execute(text("CREATE INDEX ix_comments_created_iddesc ON comments (created_at ASC, id DESC)"))


async def add_comments_index_none(conn):
    return None


async def comments_page_ref(session, *, after=None, limit=50):
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


async def comments_page_offset(session, *, after=None, limit=50):
    offset = 0
    if after is not None:
        offset = await session.scalar(
            select(func.count())
            .select_from(Comment)
            .where(tuple_(Comment.created_at, Comment.id) <= tuple_(*after))
        )
    stmt = select(Comment).order_by(Comment.created_at, Comment.id).offset(offset).limit(limit)
    return list(await session.scalars(stmt))


async def comments_page_python(session, *, after=None, limit=50):
    rows = list(await session.scalars(select(Comment).order_by(Comment.created_at, Comment.id)))
    if after is not None:
        rows = [c for c in rows if (c.created_at, c.id) > after]
    return rows[:limit]


async def comments_page_plain_or(session, *, after=None, limit=50):
    stmt = select(Comment)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Comment.created_at > at, and_(Comment.created_at == at, Comment.id > last_id)))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


async def comments_page_bounded_or(session, *, after=None, limit=50):
    # Seeks on created_at, then walks the whole tie group to pass the id.
    stmt = select(Comment)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(Comment.created_at >= at, or_(Comment.created_at > at, Comment.id > last_id))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


async def comments_page_id_desc(session, *, after=None, limit=50):
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id.desc()).limit(limit)))


async def comments_page_fixed_limit(session, *, after=None, limit=50):
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(50)))


async def comments_page_strict_time(session, *, after=None, limit=50):
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(Comment.created_at > after[0])
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


# ---------------------------------------------------------------- 4.4 user_orders_page

_NEWEST = (Order.created_at.desc(), Order.id.desc())


async def user_orders_page_ref(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    rows = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit + 1)))
    page = rows[:limit]
    more = len(rows) > limit
    return page, ((page[-1].created_at, page[-1].id) if more else None)


async def user_orders_page_or(session, user_id, *, after=None, limit=10):
    stmt = select(Order).filter_by(user_id=user_id)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Order.created_at < at, and_(Order.created_at == at, Order.id < last_id)))
    rows = (await session.execute(stmt.order_by(*_NEWEST).limit(limit + 1))).scalars().all()
    if len(rows) <= limit:
        return list(rows), None
    last = rows[limit - 1]
    return list(rows[:limit]), (last.created_at, last.id)


async def user_orders_page_full_means_more(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    page = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit)))
    return page, ((page[-1].created_at, page[-1].id) if len(page) == limit else None)


async def user_orders_page_counts(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    remaining = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    page = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit)))
    return page, ((page[-1].created_at, page[-1].id) if remaining > limit else None)


async def user_orders_page_peeks(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    page = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit)))
    if not page:
        return page, None
    last = (page[-1].created_at, page[-1].id)
    more = await session.scalar(
        select(Order.id)
        .where(Order.user_id == user_id, tuple_(Order.created_at, Order.id) < tuple_(*last))
        .limit(1)
    )
    return page, (last if more is not None else None)


async def user_orders_page_cursor_of_extra(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    rows = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit + 1)))
    if len(rows) > limit:
        extra = rows[limit]
        return rows[:limit], (extra.created_at, extra.id)
    return rows, None


async def user_orders_page_returns_extra(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    rows = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit + 1)))
    if len(rows) > limit:
        return rows, (rows[limit - 1].created_at, rows[limit - 1].id)
    return rows, None


async def user_orders_page_all_users(session, user_id, *, after=None, limit=10):
    stmt = select(Order)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    rows = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit + 1)))
    page = rows[:limit]
    return page, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


async def user_orders_page_oldest_first(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) > tuple_(*after))
    rows = list(await session.scalars(stmt.order_by(Order.created_at, Order.id).limit(limit + 1)))
    page = rows[:limit]
    return page, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


async def user_orders_page_time_cursor(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(Order.created_at < after[0])
    rows = list(await session.scalars(stmt.order_by(*_NEWEST).limit(limit + 1)))
    page = rows[:limit]
    return page, ((page[-1].created_at, page[-1].id) if len(rows) > limit else None)


async def user_orders_page_fixed_limit(session, user_id, *, after=None, limit=10):
    stmt = select(Order).where(Order.user_id == user_id)
    if after is not None:
        stmt = stmt.where(tuple_(Order.created_at, Order.id) < tuple_(*after))
    rows = list(await session.scalars(stmt.order_by(*_NEWEST).limit(11)))
    page = rows[:10]
    return page, ((page[-1].created_at, page[-1].id) if len(rows) > 10 else None)


# ---------------------------------------------------------------- 4.5 posts_page_before


async def posts_page_before_ref(session, *, before, limit=20):
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
        .order_by(Post.created_at.asc(), Post.id.asc())
        .limit(limit)
    )
    return list(reversed(list(await session.scalars(stmt))))


async def posts_page_before_subquery(session, *, before, limit=20):
    # The nearest `limit` in ascending order inside, timeline order outside: the database does the reversal.
    nearest = (
        select(Post.id)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
        .order_by(Post.created_at, Post.id)
        .limit(limit)
        .subquery()
    )
    stmt = select(Post).join(nearest, nearest.c.id == Post.id).order_by(Post.created_at.desc(), Post.id.desc())
    return list(await session.scalars(stmt))


async def posts_page_before_or(session, *, before, limit=20):
    at, first_id = before
    stmt = (
        select(Post)
        .where(
            Post.deleted_at.is_(None), or_(Post.created_at > at, and_(Post.created_at == at, Post.id > first_id))
        )
        .order_by(Post.created_at, Post.id)
        .limit(limit)
    )
    posts = list(await session.scalars(stmt))
    posts.sort(key=lambda p: (p.created_at, p.id), reverse=True)
    return posts


async def posts_page_before_not_reversed(session, *, before, limit=20):
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
        .order_by(Post.created_at.asc(), Post.id.asc())
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def posts_page_before_top_of_list(session, *, before, limit=20):
    # Newest-first with LIMIT: the top of the timeline, not the posts nearest the cursor.
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
        .order_by(Post.created_at.desc(), Post.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def posts_page_before_time_only(session, *, before, limit=20):
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None), Post.created_at > before[0])
        .order_by(Post.created_at.asc(), Post.id.asc())
        .limit(limit)
    )
    return list(reversed(list(await session.scalars(stmt))))


async def posts_page_before_inclusive(session, *, before, limit=20):
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) >= tuple_(*before))
        .order_by(Post.created_at.asc(), Post.id.asc())
        .limit(limit)
    )
    return list(reversed(list(await session.scalars(stmt))))


async def posts_page_before_offset(session, *, before, limit=20):
    newer = await session.scalar(
        select(func.count())
        .select_from(Post)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
    )
    start = max(newer - limit, 0)
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None))
        .order_by(Post.created_at.desc(), Post.id.desc())
        .offset(start)
        .limit(newer - start)
    )
    return list(await session.scalars(stmt))


async def posts_page_before_with_deleted(session, *, before, limit=20):
    stmt = (
        select(Post)
        .where(tuple_(Post.created_at, Post.id) > tuple_(*before))
        .order_by(Post.created_at.asc(), Post.id.asc())
        .limit(limit)
    )
    return list(reversed(list(await session.scalars(stmt))))


async def posts_page_before_fixed_limit(session, *, before, limit=20):
    stmt = (
        select(Post)
        .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
        .order_by(Post.created_at.asc(), Post.id.asc())
        .limit(20)
    )
    return list(reversed(list(await session.scalars(stmt))))


async def posts_page_before_python(session, *, before, limit=20):
    posts = list(
        await session.scalars(
            select(Post)
            .where(Post.deleted_at.is_(None), tuple_(Post.created_at, Post.id) > tuple_(*before))
            .order_by(Post.created_at.desc(), Post.id.desc())
        )
    )
    return posts[-limit:] if limit else []


CASES = [
    # 4.1
    Case("4.1", (posts_page_ref,), "pass", "row value (created_at, id) < cursor, both DESC, LIMIT"),
    Case("4.1", (posts_page_or,), "pass", "the plain OR form of the same comparison"),
    Case("4.1", (posts_page_bounded_or,), "pass", "the bounded OR form"),
    Case("4.1", (posts_page_strict,), "fail", "created_at < cursor: skips the rest of a tie"),
    Case("4.1", (posts_page_not_strict,), "fail", "created_at <= cursor: repeats the tie"),
    Case("4.1", (posts_page_offset,), "fail", "counts rows before the cursor and uses OFFSET: 'no OFFSET'"),
    Case("4.1", (posts_page_row_number,), "fail", "row_number(): 'nothing that numbers the rows'"),
    Case("4.1", (posts_page_with_deleted,), "fail", "includes deleted posts: 'every live post'"),
    Case("4.1", (posts_page_published,), "fail", "published only: 'drafts included'"),
    Case("4.1", (posts_page_mixed_direction,), "fail", "id ASC inside ties: '(created_at DESC, id DESC) order'"),
    Case("4.1", (posts_page_fixed_limit,), "fail", "limit fixed at 20: 'at most limit of them'"),
    Case("4.1", (posts_page_python,), "fail", "reads the whole timeline per page and filters in Python"),
    Case("4.1", (posts_page_id_only,), "fail", "id order: not the timeline's order on data added out of order"),
    # 4.2
    Case(
        "4.2",
        (encode_cursor_ref, decode_cursor_ref),
        "pass",
        "URLSafeSerializer with ISO 8601, errors as InvalidCursor",
    ),
    Case(
        "4.2", (encode_cursor_hmac, decode_cursor_hmac), "pass", "hand-made HMAC-SHA256, epoch microseconds, UTC"
    ),
    Case("4.2", (encode_cursor_base64, decode_cursor_base64), "fail", "unsigned base64: 'sign the cursor'"),
    Case(
        "4.2",
        (encode_cursor_ref, decode_cursor_lets_badsignature_out),
        "fail",
        "BadSignature escapes: 'raises InvalidCursor'",
    ),
    Case("4.2", (encode_cursor_naive, decode_cursor_naive), "fail", "drops the offset: 'still timezone-aware'"),
    Case(
        "4.2",
        (encode_cursor_timestamp, decode_cursor_local_as_utc),
        "fail",
        "local time labelled UTC: 'the same instant ... whatever the local time zone'",
    ),
    Case(
        "4.2",
        (encode_cursor_not_urlsafe, decode_cursor_not_urlsafe),
        "fail",
        "plain Serializer: 'a URL-safe string'",
    ),
    Case("4.2", (encode_cursor_id_text, decode_cursor_id_text), "fail", "id comes back as str: 'id an int'"),
    # blind verdict: failed, but told "a forged cursor was accepted" though None came back; message fixed in 0469173
    Case(
        "4.2",
        (encode_cursor_ref, decode_cursor_returns_none),
        "fail",
        "returns None for a bad cursor: 'raises InvalidCursor'",
        fragment="returned None for a forged cursor",
    ),
    Case(
        "4.2", (encode_cursor_ref, decode_cursor_unsigned_read), "fail", "loads_unsafe: edited payloads accepted"
    ),
    Case(
        "4.2",
        (encode_cursor_hmac, decode_cursor_hmac_indexerror),
        "fail",
        "IndexError for a cut-off signature: 'raises InvalidCursor (a ValueError)'",
    ),
    # 4.3
    Case(
        "4.3", (add_comments_index_ref, comments_page_ref), "pass", "index (created_at, id), row-value comparison"
    ),
    Case(
        "4.3",
        (add_comments_index_desc, comments_page_ref),
        "pass",
        "index (created_at DESC, id DESC) read backwards",
    ),
    Case(
        "4.3",
        (add_comments_index_sqlalchemy, comments_page_ref),
        "pass",
        "the same index through SQLAlchemy's Index",
    ),
    Case(
        "4.3",
        (add_comments_index_created_only, comments_page_ref),
        "fail",
        "index on created_at only: sorts/walks the tie group",
    ),
    Case("4.3", (add_comments_index_id_first, comments_page_ref), "fail", "(id, created_at): wrong column order"),
    Case(
        "4.3",
        (add_comments_index_mixed, comments_page_ref),
        "fail",
        "(created_at ASC, id DESC): not the export's order",
    ),
    Case("4.3", (add_comments_index_none, comments_page_ref), "fail", "no index: full scan"),
    Case("4.3", (add_comments_index_ref, comments_page_offset), "fail", "OFFSET after a COUNT: 'no OFFSET'"),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_python),
        "fail",
        "fetches everything and slices: 'no slicing in Python'",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_plain_or),
        "fail",
        "plain OR: the planner does not seek to the cursor (hint 2)",
    ),
    # blind expectation was wrong: the check passed it, and rightly (lesson 4.3 shows the bounded OR seeking;
    # it starts at the cursor's created_at, not at the first entry, and sorts nothing)
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_bounded_or),
        "pass",
        "bounded OR: one range to seek (created_at >= c), then the tie group from the cursor on; no sort",
    ),
    Case("4.3", (add_comments_index_ref, comments_page_id_desc), "fail", "id DESC inside ties: wrong order"),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_fixed_limit),
        "fail",
        "limit fixed at 50: 'at most limit of them'",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_strict_time),
        "fail",
        "created_at > cursor: skips the rest of the tie group",
    ),
    # 4.4
    Case("4.4", (user_orders_page_ref,), "pass", "fetch limit + 1, next = last of the page when the extra exists"),
    Case("4.4", (user_orders_page_or,), "pass", "plain OR cursor, limit + 1, index slicing"),
    Case(
        "4.4",
        (user_orders_page_full_means_more,),
        "fail",
        "full page means more: 'the last page is full, no next after it'",
    ),
    Case("4.4", (user_orders_page_counts,), "fail", "COUNT(*): 'no COUNT(*)'"),
    Case("4.4", (user_orders_page_peeks,), "fail", "second query to peek: 'no second query to peek'"),
    Case("4.4", (user_orders_page_cursor_of_extra,), "fail", "cursor of the extra row: the next page skips it"),
    Case("4.4", (user_orders_page_returns_extra,), "fail", "returns limit + 1 orders"),
    Case("4.4", (user_orders_page_all_users,), "fail", "ignores user_id: every user's orders"),
    Case("4.4", (user_orders_page_oldest_first,), "fail", "oldest first: 'newest first'"),
    Case("4.4", (user_orders_page_time_cursor,), "fail", "created_at-only cursor: ties skipped"),
    Case("4.4", (user_orders_page_fixed_limit,), "fail", "limit fixed at 10: 'Use limit as given'"),
    # 4.5
    Case("4.5", (posts_page_before_ref,), "pass", "> cursor ascending LIMIT, reversed in Python"),
    Case("4.5", (posts_page_before_subquery,), "pass", "ascending LIMIT in a subquery, timeline order outside"),
    Case("4.5", (posts_page_before_or,), "pass", "plain OR, ascending LIMIT, sorted newest first"),
    Case("4.5", (posts_page_before_not_reversed,), "fail", "oldest first: 'in timeline order (newest first)'"),
    Case(
        "4.5",
        (posts_page_before_top_of_list,),
        "fail",
        "DESC + LIMIT: the newest posts, not 'the limit posts nearest the cursor'",
    ),
    Case("4.5", (posts_page_before_time_only,), "fail", "created_at-only cursor: ties skipped"),
    Case("4.5", (posts_page_before_inclusive,), "fail", ">= cursor: the cursor's own post comes back"),
    Case("4.5", (posts_page_before_offset,), "fail", "COUNT + OFFSET: 'no OFFSET'"),
    Case("4.5", (posts_page_before_with_deleted,), "fail", "deleted posts included: 'the live posts'"),
    Case(
        "4.5", (posts_page_before_fixed_limit,), "fail", "limit fixed at 20: 'with a limit other than the default'"
    ),
    Case(
        "4.5", (posts_page_before_python,), "fail", "no LIMIT, slices in Python: 'One SELECT per page with LIMIT'"
    ),
]


# ---------------------------------------------------------------- written in phase 2, after reading the checks


def decode_cursor_local_zone(cursor):
    # The same instant, aware, but expressed in the machine's zone: the text asks for the instant, not for UTC.
    value, post_id = decode_cursor_ref(cursor)
    return value.astimezone(), post_id


CASES.append(
    Case(
        "4.2",
        (encode_cursor_ref, decode_cursor_local_zone),
        "pass",
        "phase 2 (not blind): the same instant in the local zone, still aware: 'the same instant ... timezone-aware'",
    )
)


def encode_cursor_std_base64(created_at, post_id):
    # Standard base64 (+, / and = padding) around a signed payload: not URL-safe.
    payload = json.dumps([created_at.isoformat(), post_id, "~~~>>>???"]).encode()
    signature = hmac.new(_KEY, payload, hashlib.sha256).digest()
    return base64.b64encode(payload).decode() + "." + base64.b64encode(signature).decode()


def decode_cursor_std_base64(cursor):
    try:
        payload_part, signature_part = cursor.split(".")
        payload, signature = base64.b64decode(payload_part), base64.b64decode(signature_part)
    except ValueError as exc:
        raise InvalidCursor("bad cursor") from exc
    if not hmac.compare_digest(signature, hmac.new(_KEY, payload, hashlib.sha256).digest()):
        raise InvalidCursor("bad cursor")
    at, post_id, _ = json.loads(payload)
    return datetime.fromisoformat(at), int(post_id)


async def posts_page_and_both(session, *, after=None, limit=20):
    # created_at <= c AND id < i: right only while ids grow with created_at.
    stmt = select(Post).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(Post.created_at <= after[0], Post.id < after[1])
    return list(await session.scalars(stmt.order_by(*_TIMELINE).limit(limit)))


CASES += [
    Case(
        "4.2",
        (encode_cursor_std_base64, decode_cursor_std_base64),
        "fail",
        "phase 2 (not blind): standard base64 with + / =: 'a URL-safe string'",
    ),
    Case(
        "4.1",
        (posts_page_and_both,),
        "fail",
        "phase 2 (not blind): created_at <= c AND id < i: skips newer-id rows with older timestamps",
    ),
]


# ---------------------------------------------------------------- red team C1 (blind): more 4.2 and 4.3


def decode_cursor_forces_utc(cursor):
    """Relabels the decoded time as UTC (replace, not astimezone): a created_at at +05:30 comes back 5h30 off:
    'the same instant'."""
    try:
        at, post_id = _signer.loads(cursor)
        return datetime.fromisoformat(at).replace(tzinfo=UTC), int(post_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def encode_cursor_whole_seconds(created_at, post_id):
    """Whole epoch seconds: the microseconds are lost: 'the same instant'."""
    return _signer.dumps([int(created_at.timestamp()), post_id])


def decode_cursor_whole_seconds(cursor):
    try:
        seconds, post_id = _signer.loads(cursor)
        return datetime.fromtimestamp(seconds, UTC), int(post_id)
    except (BadSignature, ValueError, TypeError, OverflowError, OSError) as exc:
        raise InvalidCursor("bad cursor") from exc


def encode_cursor_signs_id_only(created_at, post_id):
    """HMAC over the id alone: the timestamp rides along unsigned, so an edited created_at is accepted."""
    payload = _b64(json.dumps([created_at.isoformat(), post_id]).encode())
    signature = _b64(hmac.new(_KEY, str(post_id).encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode_cursor_signs_id_only(cursor):
    try:
        payload_part, signature_part = cursor.split(".")
        at, post_id = json.loads(_unb64(payload_part))
        signature = _unb64(signature_part)
        value = datetime.fromisoformat(at)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidCursor("bad cursor") from exc
    if not isinstance(post_id, int) or value.tzinfo is None:
        raise InvalidCursor("bad cursor")
    if not hmac.compare_digest(signature, hmac.new(_KEY, str(post_id).encode(), hashlib.sha256).digest()):
        raise InvalidCursor("bad cursor")
    return value, post_id


def _from_micros_payload(payload: bytes) -> tuple[datetime, int]:
    micros, post_id = json.loads(payload)
    seconds, rest = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest), int(post_id)


def decode_cursor_signature_optional(cursor):
    """Checks the signature only when there is one ('old cursors had none'): a cursor with its signature cut off
    is accepted: 'raises InvalidCursor for ... a cursor with its signature cut off'."""
    try:
        payload_part, _, signature_part = cursor.partition(".")
        payload = _unb64(payload_part)
        if signature_part:
            signature = _unb64(signature_part)
            if not hmac.compare_digest(signature, hmac.new(_KEY, payload, hashlib.sha256).digest()):
                raise InvalidCursor("bad cursor")
        return _from_micros_payload(payload)
    except InvalidCursor:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidCursor("bad cursor") from exc


def encode_cursor_hex_signature(created_at, post_id):
    payload = _b64(json.dumps([created_at.isoformat(), post_id]).encode())
    return f"{payload}.{hmac.new(_KEY, payload.encode(), hashlib.sha256).hexdigest()}"


def decode_cursor_hex_case_blind(cursor):
    """Lower-cases the hex signature before comparing ('be lenient'): a signature with a letter's case changed is
    accepted: 'a changed character'."""
    try:
        payload, signature = cursor.split(".")
        expected = hmac.new(_KEY, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.lower().encode(), expected.encode()):
            raise InvalidCursor("bad cursor")
        at, post_id = json.loads(_unb64(payload))
        value = datetime.fromisoformat(at)
    except InvalidCursor:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidCursor("bad cursor") from exc
    if value.tzinfo is None or not isinstance(post_id, int):
        raise InvalidCursor("bad cursor")
    return value, post_id


def decode_cursor_plain_value_errors(cursor):
    """InvalidCursor only for a wrong signature: garbage escapes as a plain ValueError (split unpacking,
    binascii.Error), a ValueError but not InvalidCursor: 'raises InvalidCursor (a ValueError)'."""
    payload_part, signature_part = cursor.split(".")
    payload, signature = _unb64(payload_part), _unb64(signature_part)
    if not hmac.compare_digest(signature, hmac.new(_KEY, payload, hashlib.sha256).digest()):
        raise InvalidCursor("bad cursor")
    return _from_micros_payload(payload)


_timed = URLSafeTimedSerializer(CURSOR_KEY, salt="posts-cursor-timed")


def encode_cursor_timed(created_at, post_id):
    """Right: URLSafeTimedSerializer (a timestamp in the signature, no max_age), a dict payload."""
    return _timed.dumps({"at": created_at.isoformat(), "id": post_id})


def decode_cursor_timed(cursor):
    try:
        data = _timed.loads(cursor)
        value, post_id = datetime.fromisoformat(data["at"]), data["id"]
    except (BadSignature, ValueError, TypeError, KeyError) as exc:
        raise InvalidCursor("bad cursor") from exc
    if value.tzinfo is None or type(post_id) is not int:
        raise InvalidCursor("bad cursor")
    return value, post_id


_raw_signer = Signer(CURSOR_KEY, salt="posts-cursor-raw", digest_method=hashlib.sha256)


def encode_cursor_signer(created_at, post_id):
    """Right: itsdangerous.Signer over base64url('<iso 8601>|<id>'), keeping the offset."""
    return _raw_signer.sign(_b64(f"{created_at.isoformat()}|{post_id}".encode())).decode()


def decode_cursor_signer(cursor):
    try:
        raw = _raw_signer.unsign(cursor).decode()
        at, _, post_id = _unb64(raw).decode().rpartition("|")
        value = datetime.fromisoformat(at)
        number = int(post_id)
    except (BadSignature, ValueError, TypeError) as exc:
        raise InvalidCursor("bad cursor") from exc
    if value.tzinfo is None:
        raise InvalidCursor("bad cursor")
    return value, number


async def add_comments_index_commits(conn):
    """Commits the index itself: '(the caller commits)'."""
    await conn.execute(text("CREATE INDEX ix_rt_c1_comments_export ON comments (created_at, id)"))
    await conn.commit()


async def add_comments_index_unique(conn):
    """Right: a UNIQUE index on (created_at, id) (id is unique, so the pair is)."""
    await conn.execute(text("CREATE UNIQUE INDEX ux_rt_c1_comments_created_id ON comments (created_at, id)"))


async def comments_page_no_tiebreak(session, *, after=None, limit=50):
    """ORDER BY created_at only: inside a tie the order is whatever the plan gives: 'in (created_at, id) order'."""
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    return list(await session.scalars(stmt.order_by(Comment.created_at).limit(limit)))


async def comments_page_id_cursor(session, *, after=None, limit=50):
    """Cursor on id alone, order (created_at, id): rows added later with older timestamps are skipped or
    repeated: 'the comments after after'."""
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(Comment.id > after[1])
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


async def comments_page_inclusive_then_slice(session, *, after=None, limit=50):
    """>= cursor with LIMIT limit + 1, then drops the cursor's own row in Python: 'no slicing in Python'."""
    stmt = select(Comment).order_by(Comment.created_at, Comment.id)
    if after is None:
        return list(await session.scalars(stmt.limit(limit)))
    stmt = stmt.where(tuple_(Comment.created_at, Comment.id) >= tuple_(*after)).limit(limit + 1)
    rows = list(await session.scalars(stmt))
    if rows and (rows[0].created_at, rows[0].id) == tuple(after):
        rows = rows[1:]
    return rows[:limit]


async def comments_page_live_posts(session, *, after=None, limit=50):
    """Leaves out comments of soft-deleted posts: 'walks all comments'."""
    stmt = select(Comment).join(Post, Post.id == Comment.post_id).where(Post.deleted_at.is_(None))
    if after is not None:
        stmt = stmt.where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


async def comments_page_newest_first(session, *, after=None, limit=50):
    """Newest first (the timeline habit): 'oldest first, in (created_at, id) order'."""
    stmt = select(Comment)
    if after is not None:
        stmt = stmt.where(tuple_(Comment.created_at, Comment.id) < tuple_(*after))
    return list(await session.scalars(stmt.order_by(Comment.created_at.desc(), Comment.id.desc()).limit(limit)))


async def comments_page_loose_or(session, *, after=None, limit=50):
    """created_at > c OR id > i: any older comment with a larger id comes back: 'the comments after after'."""
    stmt = select(Comment)
    if after is not None:
        at, last_id = after
        stmt = stmt.where(or_(Comment.created_at > at, Comment.id > last_id))
    return list(await session.scalars(stmt.order_by(Comment.created_at, Comment.id).limit(limit)))


_COMMENT_COLUMNS = "SELECT id, post_id, author_id, body, created_at FROM comments"
_COMMENTS_FIRST = text(f"{_COMMENT_COLUMNS} ORDER BY created_at, id LIMIT :n")
_COMMENTS_AFTER = text(
    f"{_COMMENT_COLUMNS} WHERE (created_at, id) > (:at, :id) ORDER BY created_at, id LIMIT :n"
).bindparams(bindparam("at", type_=Comment.__table__.c.created_at.type))


async def comments_page_text(session, *, after=None, limit=50):
    """Right: hand-written SQL with a row-value comparison, typed bound parameters, mapped onto Comment."""
    if after is None:
        stmt = select(Comment).from_statement(_COMMENTS_FIRST.bindparams(n=limit))
    else:
        stmt = select(Comment).from_statement(_COMMENTS_AFTER.bindparams(at=after[0], id=after[1], n=limit))
    return list(await session.scalars(stmt))


CASES += [
    # 4.2
    Case(
        "4.2",
        (encode_cursor_ref, decode_cursor_forces_utc),
        "fail",
        "red team C1 (blind): replace(tzinfo=UTC) moves a non-UTC instant: 'the same instant'",
    ),
    Case(
        "4.2",
        (encode_cursor_whole_seconds, decode_cursor_whole_seconds),
        "fail",
        "red team C1 (blind): whole seconds, microseconds lost: 'the same instant'",
    ),
    Case(
        "4.2",
        (encode_cursor_signs_id_only, decode_cursor_signs_id_only),
        "fail",
        "red team C1 (blind): HMAC over the id only: an edited timestamp is accepted",
    ),
    Case(
        "4.2",
        (encode_cursor_hmac, decode_cursor_signature_optional),
        "fail",
        "red team C1 (blind): no signature, no check: 'a cursor with its signature cut off'",
    ),
    # blind verdict: passed on both backends. Expected `fail` from the text's "a changed character"; the check lets
    # a change pass when the very same values come back (itsdangerous's base64 signature has such characters too:
    # the last one's spare bits), which gives an attacker nothing. The text now says so, and the case is a `pass`.
    Case(
        "4.2",
        (encode_cursor_hex_signature, decode_cursor_hex_case_blind),
        "pass",
        "red team C1 (blind): hex signature compared case-blind: the same values come back, nothing is forged",
    ),
    # blind verdict: passed on both backends (wrongly): a plain ValueError for garbage was taken as InvalidCursor
    # (fixed: the check asks for InvalidCursor by name)
    Case(
        "4.2",
        (encode_cursor_hmac, decode_cursor_plain_value_errors),
        "fail",
        "red team C1 (blind): garbage raises a plain ValueError: 'raises InvalidCursor (a ValueError)'",
        "not InvalidCursor",
    ),
    Case(
        "4.2",
        (encode_cursor_timed, decode_cursor_timed),
        "pass",
        "red team C1 (blind): URLSafeTimedSerializer, dict payload, no max_age",
    ),
    Case(
        "4.2",
        (encode_cursor_signer, decode_cursor_signer),
        "pass",
        "red team C1 (blind): itsdangerous.Signer over base64url('iso|id')",
    ),
    # 4.3
    # blind verdict: passed on both backends (wrongly): a commit inside add_comments_index went unnoticed (fixed)
    Case(
        "4.3",
        (add_comments_index_commits, comments_page_ref),
        "fail",
        "red team C1 (blind): add_comments_index commits: '(the caller commits)'",
        "add_comments_index committed",
    ),
    # blind verdict: passed on both backends (wrongly): the index scan happens to give id order inside ties (fixed:
    # the check reads the ORDER BY the page sent)
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_no_tiebreak),
        "fail",
        "red team C1 (blind): ORDER BY created_at only: 'in (created_at, id) order'",
        "comments_page sent ORDER BY",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_id_cursor),
        "fail",
        "red team C1 (blind): id-only cursor: 'the comments after after'",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_inclusive_then_slice),
        "fail",
        "red team C1 (blind): >= cursor, LIMIT limit + 1, drops a row in Python: 'no slicing in Python'",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_live_posts),
        "fail",
        "red team C1 (blind): leaves out comments of soft-deleted posts: 'walks all comments'",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_newest_first),
        "fail",
        "red team C1 (blind): newest first: 'oldest first'",
    ),
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_loose_or),
        "fail",
        "red team C1 (blind): created_at > c OR id > i: older comments come back",
    ),
    Case(
        "4.3",
        (add_comments_index_unique, comments_page_ref),
        "pass",
        "red team C1 (blind): UNIQUE index on (created_at, id)",
    ),
    # blind verdict: the check crashed on both backends (NotImplementedError in statement_cost: it re-executed the
    # captured select(Comment).from_statement(text(...)) on a Core connection); the pages themselves are right.
    # Fixed: the check measures the SQL inside from_statement.
    Case(
        "4.3",
        (add_comments_index_ref, comments_page_text),
        "pass",
        "red team C1 (blind): text() with a row value and typed binds, from_statement onto Comment",
    ),
]
