"""Judging keyset pages: one statement per page, no OFFSET, every row once and in order, with readable failures."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from course.checks.base import expect, fail

Key = tuple[datetime, int]
# SQLAlchemy's SQLite dialect always writes `LIMIT ? OFFSET ?` (with 0): only an OFFSET above 0 skips rows.
OFFSET_RE = re.compile(r"\bOFFSET\s+(\?|\$\d+|\d+)", re.IGNORECASE)
LIMIT_RE = re.compile(r"\bLIMIT\b", re.IGNORECASE)


def skips_rows(statement: str, params: Any) -> bool:
    """Does statement skip rows with an OFFSET greater than 0 (a literal, or a ? / $n parameter)?"""
    match = OFFSET_RE.search(statement)
    if match is None:
        return False
    token = match.group(1)
    try:
        if token.isdigit():
            value = int(token)
        elif token.startswith("$"):
            value = params[int(token[1:]) - 1]
        else:
            value = params[statement[: match.start(1)].count("?")]
    except (IndexError, KeyError, TypeError, ValueError):
        return True
    return value != 0


# --- shared: one statement per page, and a walk that explains the first wrong page ------------------------------


def one_page_statement(q: Any, name: str) -> None:
    """A keyset page is one SELECT with a LIMIT and no OFFSET; say which rule was broken."""
    expect(
        not any(skips_rows(s, p) for s, p in zip(q.statements, q.params, strict=True)),
        f"{name} sends OFFSET: the database still reads every skipped row, so deep pages get slower. "
        "Filter on the cursor row (a WHERE on (created_at, id)) instead of skipping rows",
    )
    expect(q.count > 0, f"{name} sent no SQL: each page must come from the database")
    expect(
        q.count == 1,
        f"{name} sent {q.count} statements for one page: a single SELECT with WHERE, ORDER BY and LIMIT is enough",
    )
    expect(
        LIMIT_RE.search(q.statements[0]),
        f"{name}'s SELECT has no LIMIT: the database sends every remaining row and Python throws most of them away",
    )


def rows_of(result: object, kind: type, name: str) -> list[Any]:
    expect(
        isinstance(result, list),
        f"{name} should return a list of {kind.__name__} objects, got {type(result).__name__} "
        "(`list((await session.execute(stmt)).scalars())` gives one)",
    )
    wrong = next((r for r in result if not isinstance(r, kind)), None)
    expect(
        wrong is None,
        f"{name} returned a {type(wrong).__name__} where a {kind.__name__} was expected: select the entity and use .scalars()",
    )
    return result


def judge_page(got: Sequence[Any], want: Sequence[Any], seen: set[int], after: Key | None, order: str) -> None:
    """Compare one page with the expected slice; the message names the mistake that produces this difference."""
    got_ids = [r.id for r in got]
    want_ids = [r.id for r in want]
    if got_ids == want_ids:
        return
    repeated = next((r for r in got if r.id in seen), None)
    if repeated is not None and after is not None and repeated.created_at == after[0]:
        fail(
            f"row {repeated.id} came back on a later page too: `<=` on the sort column alone repeats the rows that "
            "tie with the cursor. Add id as a tie-breaker and compare (created_at, id) together"
        )
    expect(
        repeated is None,
        f"row {getattr(repeated, 'id', None)} came back on a later page too: the cursor condition lets through rows "
        f"that come before the cursor in {order_text(order)} order (a condition on id alone does not follow "
        "a created_at order)",
    )
    keys = [(r.created_at, r.id) for r in got]
    in_order = keys == sorted(keys, reverse=order == "desc")
    expect(
        in_order, f"the rows of a page are not in {order_text(order)} order: sort by both columns, both {order}"
    )
    missing = [r for r in want if r.id not in set(got_ids)]
    if missing and after is not None and missing[0].created_at == after[0]:
        fail(
            f"{len(missing)} row(s) that share created_at with the cursor row were skipped (first: id {missing[0].id}): "
            "`created_at < cursor` drops the rest of a tie. Compare (created_at, id) together"
        )
    if missing:
        fail(
            f"row {missing[0].id} was skipped: a page must hold exactly the rows that follow the cursor in "
            f"{order_text(order)} order (a condition on id alone does not follow a created_at order)"
        )
    fail(
        f"the page after {after!r} holds rows that do not belong there (expected ids {want_ids[:5]}, got {got_ids[:5]})"
    )


def order_text(order: str) -> str:
    return f"(created_at {order.upper()}, id {order.upper()})"


def key_of(row: Any) -> Key:
    return (row.created_at, row.id)


# --- 4.1 keyset pages over the feed ---------------------------------------------------------------------------------
