"""Check 4.5 (stretch): the "previous" page of the timeline, judged page by page walking back to the top."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from course.chapters.ch04_pagination.pages import (
    Key,
    key_of,
    leaves_transaction,
    no_window,
    one_page_statement,
    rows_of,
)
from course.checks.base import CheckDB, call_learner, expect, fail
from course.domain.models import Post

# Not the function's default (20): an answer that ignores `limit` must fail.
BACK_LIMIT = 45
# How deep the walk back starts: past both tie groups the 4.1 set-up adds (at about 1 and 7 pages of 50).
START_PAGES = 9


async def _previous_page(fn: Callable[..., Any], db: CheckDB, before: Key, limit: int) -> list[Any]:
    async with db.Session() as session:
        with db.count_queries() as q:
            page = await call_learner(fn, session, before=before, limit=limit)
        one_page_statement(q, "posts_page_before", rows=limit)
        no_window(q, "posts_page_before")
        leaves_transaction(session, "posts_page_before")
    page = rows_of(page, Post, "posts_page_before")
    expect(len(page) <= limit, f"posts_page_before returned {len(page)} posts for limit={limit}")
    return page


def _judge(got: list[Any], want: list[Any], before: Key, timeline: list[Any], deleted: set[int]) -> None:
    got_ids, want_ids = [p.id for p in got], [r.id for r in want]
    if got_ids == want_ids:
        return
    hidden = next((i for i in got_ids if i in deleted), None)
    expect(
        hidden is None, f"post {hidden} is soft-deleted (deleted_at is set): the timeline shows live posts only"
    )
    if got_ids == want_ids[::-1]:
        fail(
            "the page holds the right posts, oldest first: return it in the timeline's order (created_at DESC, "
            "id DESC), newest first, like every other page"
        )
    later = next((p for p in got if key_of(p) <= before), None)
    if later is not None:
        fail(
            f"post {later.id} is the cursor post or comes after it in the timeline: the previous page holds only "
            "posts that come before the first post the client sees"
        )
    # What a condition on created_at alone returns: the page before the cursor's whole tie group.
    tie_start = next(n for n, r in enumerate(timeline) if r.created_at == before[0])
    if tie_start > 0 and got_ids == [r.id for r in timeline[max(0, tie_start - len(want_ids)) : tie_start]]:
        fail(
            "the posts that share created_at with the cursor post and come before it were left out: comparing "
            "created_at alone drops the rest of a tie. Compare (created_at, id) together"
        )
    top = [r.id for r in timeline[: len(got_ids)]]
    if got_ids and got_ids == top and want_ids != top:
        fail(
            "the page is the top of the timeline, not the posts just before the cursor: sorted newest first, a "
            "LIMIT keeps the newest posts above the cursor, far from it. The rows nearest the cursor must be the "
            "ones the LIMIT keeps"
        )
    if len(got_ids) < len(want_ids) and got_ids == want_ids[len(want_ids) - len(got_ids) :]:
        fail(
            f"the page has {len(got_ids)} posts, though {len(want_ids)} were asked for and that many come before "
            "the cursor: is the `limit` argument used?"
        )
    fail(
        f"the page before {before!r} is not the posts just before the cursor in timeline order "
        f"(expected ids {want_ids[:5]}..., got {got_ids[:5]}...)"
    )


async def check_previous_page(fn: Callable[..., Any], db: CheckDB, timeline: list[Any], deleted: set[int]) -> None:
    """Walk back from START_PAGES pages deep to the top, page by page; then a cursor with few posts before it."""
    position = min(START_PAGES * 50, len(timeline) - 1)
    while position > 0:
        before = key_of(timeline[position])
        want = timeline[max(0, position - BACK_LIMIT) : position]
        page = await _previous_page(fn, db, before, BACK_LIMIT)
        _judge(page, want, before, timeline, deleted)
        position -= len(page)
    page = await _previous_page(fn, db, key_of(timeline[0]), BACK_LIMIT)
    expect(
        not page,
        f"before the newest post of the timeline there is nothing, but posts_page_before returned {len(page)} posts",
    )
    # A cursor 3 posts from the top: a short page, not a full one padded with posts from after the cursor.
    page = await _previous_page(fn, db, key_of(timeline[3]), BACK_LIMIT)
    _judge(page, timeline[:3], key_of(timeline[3]), timeline, deleted)


async def live_timeline(db: CheckDB) -> list[Any]:
    async with db.Session() as session:
        rows = (await session.execute(select(Post.id, Post.created_at).where(Post.deleted_at.is_(None)))).all()
    return sorted(rows, key=key_of, reverse=True)
