"""Chapter 4 checks have teeth: the solution passes; the stub and plausible wrong answers fail with the right hint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import nbformat
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import and_, func, or_, select, text, tuple_

from course.build import make_exercise, read_notebook
from course.checks.base import ExerciseFailed
from course.checks.ch04_pagination import check
from course.models import Comment, Order, Post
from course.settings import Settings
from tests.nbsource import ROOT, notebook_namespace

SOURCE = "solutions/04_pagination.ipynb"
SOLVED = notebook_namespace(SOURCE)


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The learner's version, made the way `course build` makes exercises/04_pagination.ipynb."""
    stub = tmp_path_factory.mktemp("stubs") / "04_pagination.ipynb"
    nbformat.write(make_exercise(read_notebook(ROOT / SOURCE), name=SOURCE), stub)
    return notebook_namespace(stub)


async def fails_with(settings: Settings, exercise: str, fragment: str, *fns: Any) -> None:
    with pytest.raises(ExerciseFailed) as info:
        await check(exercise, *fns, settings=settings)
    assert str(info.value).startswith(f"❌ Exercise {exercise}:")
    assert fragment in str(info.value), str(info.value)


EXERCISES = {
    "4.1": ["posts_page"],
    "4.2": ["encode_cursor", "decode_cursor"],
    "4.3": ["add_comments_index", "comments_page"],
    "4.4": ["user_orders_page"],
}


@pytest.mark.parametrize("exercise", EXERCISES)
async def test_solution_passes(tiny: Settings, exercise: str, capsys: pytest.CaptureFixture[str]) -> None:
    await check(exercise, *(SOLVED[name] for name in EXERCISES[exercise]), settings=tiny)
    assert f"✅ Exercise {exercise} passed" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", EXERCISES)
async def test_stub_fails(tiny: Settings, exercise: str, stubs: dict[str, Any]) -> None:
    await fails_with(tiny, exercise, "not solved yet", *(stubs[name] for name in EXERCISES[exercise]))


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (page_offset_in_disguise, "sends OFFSET"),
        (page_id_only, "a condition on id alone"),
        (page_created_at_lt, "share created_at with the cursor row were skipped"),
        (page_created_at_le, "came back on a later page too"),
        (page_fetch_all, "has no LIMIT"),
        (page_with_deleted, "soft-deleted"),
        (page_mixed_directions, "not in (created_at DESC, id DESC) order"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_4_1_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "4.1", fragment, wrong)


# --- 4.2 encode_cursor / decode_cursor ---------------------------------------------------------------------------


def encode_unsigned(created_at, post_id):
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), post_id]).encode()).decode()


def decode_unsigned(cursor):
    stamp, post_id = json.loads(base64.urlsafe_b64decode(cursor))
    return datetime.fromisoformat(stamp), post_id


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
        raise ValueError("bad signature")
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


@pytest.mark.parametrize(
    ("encode", "decode", "fragment"),
    [
        (encode_unsigned, decode_unsigned, "re-encoded with plain base64"),
        (encode_optional_signature, decode_optional_signature, "the signature dropped"),
        (encode_naive, decode_without_catching, "came back naive"),
        (SOLVED["encode_cursor"], decode_without_catching, "raised BadSignature"),
    ],
    ids=["unsigned", "optional-signature", "naive", "bad-signature-leaks"],
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


@pytest.mark.parametrize(
    ("add_index", "page", "fragment"),
    [
        (SOLVED["add_comments_index"], export_offset, "sends OFFSET"),
        (SOLVED["add_comments_index"], export_fetch_all, "has no LIMIT"),
        (no_index, SOLVED["comments_page"], "the plan reads all comments"),
        (index_wrong_order, SOLVED["comments_page"], "create an index whose columns match the ORDER BY"),
        (SOLVED["add_comments_index"], export_naive_or, "walks the index from its first entry"),
    ],
    ids=["offset", "fetch-all", "no-index", "index-wrong-order", "or-without-bound"],
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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (orders_full_page_means_more, "the last page still returned a next cursor"),
        (orders_count_for_next, "fetch limit + 1 rows in the same SELECT"),
        (orders_keeps_extra_row, "leave it out of the page"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_4_4_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "4.4", fragment, wrong)
