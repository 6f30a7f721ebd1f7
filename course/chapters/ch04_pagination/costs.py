"""Judging what a deep or first keyset page costs against a cheap baseline, and saying what makes it expensive."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, tuple_

from course.chapters.ch04_pagination.pages import Key, statement_cost
from course.checks.base import CheckDB, expect, fail
from course.domain.models import Comment, Order
from course.tools.explain import explain

# A page far from the start may cost this many times a page read through the primary key, and no more.
COST_FACTOR = 5
_SCAN_STEP = re.compile(r"\b(?:SCAN|SEARCH)\s+(?:TABLE\s+)?(\w+)|\bScan(?: Backward)?(?: using \S+)? on (\w+)")


def _scans_of(plan: Any, table: str) -> int:
    """How many steps of the plan read table (directly or through an alias)."""
    names = [m.group(1) or m.group(2) for m in map(_SCAN_STEP.search, plan.lines) if m is not None]
    return sum(table in (name, plan.aliases.get(name)) for name in names)


async def judge_deep_page_cost(
    db: CheckDB, where: str, after: Key, clause: Any, params: Any, *, limit: int
) -> None:
    """A deep page must cost about what a page read by primary key costs; if not, say what makes it expensive."""
    by_key = select(Comment).order_by(Comment.id).limit(limit)
    baseline = await statement_cost(db.engine, by_key, None)
    ratio = await statement_cost(db.engine, clause, params) / baseline
    if ratio <= COST_FACTOR:
        return
    cost = f"{where}, a page costs {ratio:.0f}× a page read through the primary key"
    seek = select(Comment).where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    seek = seek.order_by(Comment.created_at, Comment.id).limit(limit)
    if await statement_cost(db.engine, seek, None) > COST_FACTOR * baseline:
        # Even a seek on (created_at, id) is expensive: the index is missing or in the wrong order.
        async with db.engine.connect() as conn:
            plan = await explain(conn, seek)
        expect(
            not plan.full_scan("comments"),
            f"{cost}: the plan reads all comments and sorts them. Create an index whose columns match the "
            "ORDER BY in add_comments_index, on the connection it is given",
        )
        fail(
            f"{cost}: the index from add_comments_index does not hand rows over in (created_at, id) order, so the "
            "database sorts them. Create an index whose columns match the ORDER BY",
        )
    async with db.engine.connect() as conn:
        plan = await explain(conn, clause, params=params)
    expect(
        not plan.full_scan("comments") or _scans_of(plan, "comments") > 1,
        f"{cost}: the plan reads all comments although your index could serve it. A function or a cast around "
        "a column in the WHERE or ORDER BY hides the column from the index: compare the columns themselves",
    )
    expect(
        _scans_of(plan, "comments") < 2,
        f"{cost}, and it reads comments twice: once to count or number the rows before the cursor. That is an "
        "OFFSET in disguise (COUNT, ROW_NUMBER() or OFFSET in a subquery all read every earlier row). Let the "
        "WHERE start at the cursor row instead",
    )
    fail(
        f"{cost}: the plan walks the index from its first entry and filters, so the cursor does not seek. The "
        "condition must compare the bare columns in a form that gives the planner one range to seek to (lesson "
        "section 4.3 compares the plans of three ways to write it)",
    )


async def judge_count_cost(db: CheckDB, user_id: int, clause: Any, params: Any, *, limit: int) -> None:
    """The first page must cost what reading limit + 1 rows costs: a total (count(*) over ()) reads every row."""
    newest = select(Order).where(Order.user_id == user_id).order_by(Order.created_at.desc(), Order.id.desc())
    ratio = await statement_cost(db.engine, clause, params) / await statement_cost(
        db.engine, newest.limit(limit + 1), None
    )
    expect(
        ratio <= COST_FACTOR,
        f"the first page costs {ratio:.0f}× what reading limit + 1 orders costs: the statement reads every order "
        "of the user, as a total does (count(*) over () is a COUNT too). Knowing that a next page exists "
        "needs far less than counting what is left",
    )
