"""Judging keyset pages: one bounded statement per page, no OFFSET, every row once and in order, and what a page costs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.context import FromStatement
from sqlalchemy.sql.selectable import TextualSelect

from course.checks.base import expect, fail
from course.tools.explain import explain_json

Key = tuple[datetime, int]
# Where a row count starts: OFFSET n, LIMIT n, FETCH FIRST n (PostgreSQL's spelling of LIMIT).
OFFSET_RE = re.compile(r"\bOFFSET\b\s*", re.IGNORECASE)
LIMIT_RE = re.compile(r"\b(?:LIMIT|FETCH\s+(?:FIRST|NEXT))\b\s*", re.IGNORECASE)
# A count the driver gets: a literal, or a ? (SQLite) / $n (asyncpg) parameter. Anything else is an expression.
_COUNT = re.compile(r"\s*(-?\d+|\?|\$\d+|ALL\b)", re.IGNORECASE)
UNLIMITED = float("inf")


def _count_at(statement: str, params: Any, start: int) -> int | None:
    """The number written at statement[start:] (a literal or a bound parameter); None for an expression."""
    match = _COUNT.match(statement, start)
    if match is None:
        return None
    token = match.group(1)
    if token.upper() == "ALL":
        return None
    try:
        if token == "?":
            return int(params[statement[:start].count("?")])
        if token.startswith("$"):
            return int(params[int(token[1:]) - 1])
        return int(token)
    except (IndexError, KeyError, TypeError, ValueError):
        return None


def _comma_after(statement: str, start: int) -> int | None:
    """Where SQLite's `LIMIT skip, count` has its comma (at the LIMIT's own bracket depth), or None."""
    depth = 0
    for position in range(start, len(statement)):
        char = statement[position]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return None  # the end of the subquery this LIMIT belongs to
            depth -= 1
        elif char == "," and depth == 0:
            return position
    return None


def skips_rows(statement: str, params: Any) -> bool:
    """Does statement skip rows: an OFFSET above 0, an OFFSET computed by a subquery, or SQLite's `LIMIT skip, n`?"""
    # SQLAlchemy's SQLite dialect always writes `LIMIT ? OFFSET ?` (with 0): only an OFFSET above 0 skips rows.
    for match in OFFSET_RE.finditer(statement):
        if _count_at(statement, params, match.end()) != 0:
            return True
    for match in LIMIT_RE.finditer(statement):
        if _comma_after(statement, match.end()) is not None and _count_at(statement, params, match.end()) != 0:
            return True
    return False


def rows_asked(statement: str, params: Any) -> float | None:
    """How many rows the outermost LIMIT (the last one written) asks for: UNLIMITED for ALL or -1, None if unknown."""
    matches = list(LIMIT_RE.finditer(statement))
    if not matches:
        return None
    start = matches[-1].end()
    comma = _comma_after(statement, start)
    start = start if comma is None else comma + 1
    if re.match(r"\s*ALL\b", statement[start:], re.IGNORECASE):
        return UNLIMITED
    count = _count_at(statement, params, start)
    # SQLite reads a negative LIMIT as "no limit".
    return UNLIMITED if count is not None and count < 0 else count


# --- shared: one statement per page, and a walk that explains the first wrong page ------------------------------


def one_page_statement(q: Any, name: str, *, rows: int | None = None) -> None:
    """A keyset page is one SELECT with a LIMIT of at most `rows` and no OFFSET; say which rule was broken."""
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
    statement, params = q.statements[0], q.params[0]
    expect(
        LIMIT_RE.search(statement),
        f"{name}'s SELECT has no LIMIT: the database sends every remaining row and Python throws most of them away",
    )
    asked = rows_asked(statement, params)
    expect(
        rows is None or asked is None or asked <= rows,
        f"{name} asks the database for {'every remaining row' if asked == UNLIMITED else f'up to {asked} rows'} "
        f"for a page that needs at most {rows}: the rest travel to Python only to be thrown away. "
        "Let the LIMIT cut the page in the database",
    )


# A window function (ROW_NUMBER() OVER ..., RANK() OVER ...) numbers rows: every row before the cursor is read.
_WINDOW_RE = re.compile(r"\bOVER\s*\(", re.IGNORECASE)


def no_window(q: Any, name: str) -> None:
    """A keyset page does not number rows: a window function over the listing is an OFFSET in disguise."""
    expect(
        not any(_WINDOW_RE.search(s) for s in q.statements),
        f"{name} numbers the rows with a window function (... OVER (...)): to number them the database reads "
        "every row before the cursor, so deep pages get slower as with OFFSET (an OFFSET in disguise). Filter on "
        "the cursor row itself",
    )


def leaves_transaction(session: Any, name: str) -> None:
    """A read function leaves the transaction to its caller: it must neither commit nor close it."""
    expect(
        session.in_transaction(),
        f"{name} ended the session's transaction (a commit, a rollback, a close, or a `session.begin()` block, "
        "which commits when it ends): a function that only reads leaves the transaction to its caller, who may "
        "still have work to do in it",
    )


def rows_of(result: object, kind: type, name: str) -> list[Any]:
    expect(
        isinstance(result, list),
        f"{name} should return a list of {kind.__name__} objects, got {type(result).__name__} "
        "(the ORM objects a select of the entity returns, in a list)",
    )
    wrong = next((r for r in cast(list[Any], result) if not isinstance(r, kind)), None)
    expect(
        wrong is None,
        f"{name} returned a {type(wrong).__name__} where a {kind.__name__} was expected: select the entity and use .scalars()",
    )
    return cast(list[Any], result)


def judge_page(got: Sequence[Any], want: Sequence[Any], seen: set[int], after: Key | None, order: str) -> None:
    """Compare one page with the expected slice; the message names the mistake that produces this difference."""
    got_ids = [r.id for r in got]
    want_ids = [r.id for r in want]
    if got_ids == want_ids:
        return
    expect(
        not got_ids or got_ids != want_ids[: len(got_ids)],
        f"the page stops after {len(got_ids)} rows, though {len(want_ids)} were asked for and that many follow "
        "the cursor: is the `limit` argument used (and not its default)?",
    )
    repeated = next((r for r in got if r.id in seen), None)
    if repeated is not None and after is not None and repeated.id == after[1]:
        fail(
            f"row {repeated.id}, the cursor row itself, came back on the next page: the client already has it. "
            "The next page starts strictly after the cursor row"
        )
    if repeated is not None and after is not None and repeated.created_at == after[0]:
        fail(
            f"row {repeated.id} came back on a later page too, and it shares created_at with the cursor row: the "
            "condition lets the cursor's tie group through again (as `<=` on created_at alone does). Add id as a "
            "tie-breaker and compare (created_at, id) together"
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


# --- what a page costs: the same statement, run again and measured -------------------------------------------------


@contextmanager
def capture_statements(engine: AsyncEngine) -> Iterator[list[tuple[Any, Any]]]:
    """The statement objects (with their parameters) the engine executes, so a check can measure or explain them."""
    seen: list[tuple[Any, Any]] = []

    def record(_conn: object, clause: Any, multiparams: Any, params: Any, _options: object) -> None:
        # select(Model).from_statement(text(...)) runs only through a Session: keep the SQL it wraps.
        if isinstance(clause, FromStatement):
            clause = clause.element
            if isinstance(
                clause, TextualSelect
            ):  # text(...).columns(...): its result columns matter only to the ORM
                clause = clause.element
        seen.append((clause, params or (multiparams[0] if multiparams else {})))

    event.listen(engine.sync_engine, "before_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_execute", record)


async def statement_cost(engine: AsyncEngine, clause: Any, params: Any) -> int:
    """The work the database does for one statement; only comparable with another statement measured the same way.

    PostgreSQL: the table rows its plan reads (EXPLAIN ANALYZE runs it; nothing is committed). SQLite reports no
    row counts, so: the virtual-machine instructions it executes, counted with a progress handler.
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            plan = await explain_json(conn, clause, params=params, analyze=True)
            await conn.rollback()
            return _rows_read(plan[0]["Plan"])
        driver: Any = (await conn.get_raw_connection()).driver_connection
        steps = [0]

        def tick() -> int:
            steps[0] += 1
            return 0  # 0: carry on

        # One call every 16 instructions: precise enough, and cheap.
        await driver.set_progress_handler(tick, 16)
        try:
            await conn.execute(clause, params or {})
        finally:
            await driver.set_progress_handler(None, 0)
        await conn.rollback()
        return steps[0] * 16


def _rows_read(node: dict[str, Any]) -> int:
    """Rows every table scan in a JSON plan produced or threw away, over all its loops."""
    total = 0
    if "Relation Name" in node:
        kept = node.get("Actual Rows", 0)
        dropped = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        total += round((kept + dropped) * node.get("Actual Loops", 1))
    return total + sum(_rows_read(child) for child in node.get("Plans", []))
