"""Check 4.4: a user's orders page by page, and whether a next page exists, learnt without counting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text

from course.chapters.ch04_pagination.costs import judge_count_cost
from course.chapters.ch04_pagination.pages import (
    Key,
    capture_statements,
    judge_page,
    key_of,
    one_page_statement,
    rows_of,
    skips_rows,
)
from course.checks.base import CheckDB, call_learner, expect, fail
from course.domain.models import Order


async def _expected(db: CheckDB, stmt: Any, *, reverse: bool) -> list[Any]:
    async with db.Session() as session:
        rows = list((await session.execute(stmt)).all())
    return sorted(rows, key=key_of, reverse=reverse)


# --- 4.4 has a next page? limit + 1 --------------------------------------------------------------------------------

# Not the function's default (10): an answer that ignores `limit` must fail.
ORDERS_LIMIT = 7
# Pages of older orders the check gives its user, so a statement that reads them all costs visibly more.
ORDER_FILLER_PAGES = 30


async def _user_with_ties(db: CheckDB) -> int:
    """A user with many pages of orders, a multiple of the page size, with a tie across a page boundary."""
    async with db.engine.begin() as conn:
        # With this index a page reads about limit + 1 orders, so a statement that reads them all shows. Its id
        # is DESC on purpose: ties must not come out in the right order by accident (see 4.1).
        await conn.execute(text("CREATE INDEX ix_check_orders_user ON orders (user_id, created_at, id DESC)"))
    per_user = func.count()
    busy = select(Order.user_id, per_user).group_by(Order.user_id).having(per_user <= 3 * ORDERS_LIMIT)
    async with db.Session() as session, session.begin():
        user_id, count = (await session.execute(busy.order_by(per_user.desc(), Order.user_id).limit(1))).one()
        newest = select(Order.created_at).where(Order.user_id == user_id).order_by(Order.created_at.desc())
        stamps = list((await session.execute(newest)).scalars())
        boundary = stamps[min(8, len(stamps) - 1)]
        extra = 2 * ORDERS_LIMIT - count % ORDERS_LIMIT
        for n in range(extra):
            session.add(Order(user_id=user_id, status="paid", total_cents=100 * n, created_at=boundary))
        # Older orders, whole pages of them: counting them all would cost many times a page.
        for n in range(ORDER_FILLER_PAGES * ORDERS_LIMIT):
            older = stamps[-1] - timedelta(hours=n + 1)
            session.add(Order(user_id=user_id, status="paid", total_cents=n, created_at=older))
        # Another user's orders at the same instant must not leak into this user's pages.
        session.add(Order(user_id=1 if user_id != 1 else 2, status="paid", total_cents=1, created_at=boundary))
    async with db.engine.begin() as conn:
        # Fresh statistics, so the planner knows this user is no longer a quiet one and uses the index.
        await conn.execute(text("ANALYZE orders"))
    return user_id


async def check_orders_page(user_orders_page: Callable[..., Any], db: CheckDB) -> None:
    user_id = await _user_with_ties(db)
    want_all = await _expected(
        db, select(Order.id, Order.created_at).where(Order.user_id == user_id), reverse=True
    )
    expect(len(want_all) % ORDERS_LIMIT == 0, "check set-up error: the order count is not a multiple of the limit")
    seen: set[int] = set()
    after: Key | None = None
    position = 0
    first_page: tuple[Any, Any] | None = None
    for _ in range(len(want_all) // ORDERS_LIMIT + 2):
        async with db.Session() as session:
            with db.count_queries() as q, capture_statements(db.engine) as statements:
                result = await call_learner(user_orders_page, session, user_id, after=after, limit=ORDERS_LIMIT)
            in_transaction = session.in_transaction()
        expect(
            isinstance(result, tuple) and len(result) == 2,
            f"user_orders_page should return (orders, next_after), got {type(result).__name__}",
        )
        page, next_after = result
        expect(
            q.count <= 1 or any(skips_rows(s, p) for s, p in zip(q.statements, q.params, strict=True)),
            f"user_orders_page sent {q.count} statements for one page: the page's own SELECT can tell whether a "
            "next page exists, if it asks for a little more than a page; asking again (a COUNT or a probe query) "
            "costs a round trip per page",
        )
        one_page_statement(q, "user_orders_page", rows=ORDERS_LIMIT + 1)
        expect(
            in_transaction,
            "user_orders_page ended the session's transaction (a commit, a rollback, a close, or a `session.begin()` "
            "block, which commits when it ends): a function that only reads leaves the transaction to its caller",
        )
        first_page = first_page or (statements[-1] if statements else None)
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
                "a full page cannot tell the last page from one with more after it. Ask the database for a little more "
                "than a page",
            )
            break
        expect(next_after is not None, "next_after is None but more orders follow: the client would stop early")
        expect(
            tuple(next_after) == key_of(page[-1]),
            "next_after should be the (created_at, id) of the last order on the page",
        )
        after = tuple(next_after)
    else:
        fail("the walk never reached a page without a next cursor")
    if first_page is not None:
        await judge_count_cost(db, user_id, *first_page, limit=ORDERS_LIMIT)
