"""The check of exercise 1.7 (stretch): insert-or-update products by sku in one statement, counting each kind."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from course.chapters.ch01_crud.common import call_in_callers_transaction
from course.chapters.ch01_crud.writes import expect_now
from course.checks.base import CheckDB, expect, fail
from course.domain.models import Product

_LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


def _columns(p: Product) -> tuple[Any, ...]:
    return (p.sku, p.name, p.price_cents, p.created_at, p.updated_at)


async def _snapshot(session: Any) -> dict[int, tuple[Any, ...]]:
    session.expire_all()
    return {p.id: _columns(p) for p in (await session.scalars(select(Product))).all()}


def _as_pair(result: Any) -> tuple[int, int]:
    try:
        inserted, updated = result
    except (TypeError, ValueError):
        fail(f"upsert_products should return a pair (inserted, updated), got {result!r}")
    expect(
        all(isinstance(n, int) and not isinstance(n, bool) for n in (inserted, updated)),
        f"upsert_products should return two whole numbers (inserted, updated), got {result!r}",
    )
    return inserted, updated


async def _call(session: Any, db: CheckDB, upsert_products: Callable[..., Any], rows: list[dict[str, Any]]) -> Any:
    with db.count_queries() as q:
        result = await call_in_callers_transaction(session, upsert_products, [dict(r) for r in rows])
    return result, q


def _expect_one_statement(q: Any, n: int) -> None:
    expect(
        q.count == 1,
        f"{q.count} statements for {n} rows: the exercise asks for one statement that inserts the new rows and "
        "updates the existing ones at once (the database decides, row by row, on the unique sku)",
    )
    expect(
        q.statements[0].lstrip().upper().startswith("INSERT"),
        "the one statement sent is not an INSERT: new products must be inserted by it",
    )


async def check_upsert(upsert_products: Callable[..., Any], db: CheckDB) -> None:
    async with db.Session() as session, session.begin():
        # Existing products from the middle of the table, aged so an update visibly moves updated_at.
        existing = list((await session.scalars(select(Product).order_by(Product.id).offset(40).limit(5))).all())
        await session.execute(
            update(Product).where(Product.id.in_([p.id for p in existing])).values(updated_at=_LONG_AGO)
        )
        before = await _snapshot(session)
        a, b, c, d, e = existing
        rows: list[dict[str, Any]] = [
            {"sku": a.sku, "name": "Renamed " + a.name, "price_cents": 0},  # a price of 0 is a price
            {"sku": b.sku, "name": b.name, "price_cents": b.price_cents + 1},
            {"sku": c.sku, "name": "Renamed " + c.name, "price_cents": c.price_cents},
            # Same letters, other case: another sku (the unique constraint compares exactly).
            {"sku": d.sku.lower(), "name": "Lower-case twin", "price_cents": 123},
            # Sent as it is: still an existing sku, so updated (updated_at moves) and counted as updated.
            {"sku": e.sku, "name": e.name, "price_cents": e.price_cents},
        ] + [{"sku": f"UPS-{i:03d}", "name": f"Upserted item {i}", "price_cents": 500 + i} for i in range(5)]
        random.Random(7).shuffle(rows)
        start = datetime.now(UTC) - timedelta(seconds=1)
        result, q = await _call(session, db, upsert_products, rows)
        inserted, updated = _as_pair(result)
        _expect_one_statement(q, len(rows))
        after = await _snapshot(session)
        by_sku = {cols[0]: (pid, cols) for pid, cols in after.items()}
        missing = [r["sku"] for r in rows if r["sku"] not in by_sku]
        expect(not missing, f"these skus are not in products afterwards: {missing[:3]}")
        for row in rows:
            pid, (_, name, price, created, updated_at) = by_sku[row["sku"]]
            if (name, price) != (row["name"], row["price_cents"]):
                kind = "an existing product kept its old" if pid in before else "a new product got another"
                fail(
                    f"sku {row['sku']!r}: {kind} name or price ({name!r}, {price}) instead of "
                    f"({row['name']!r}, {row['price_cents']}): existing skus take the values sent"
                )
            if pid in before:
                expect(
                    created == before[pid][3],
                    f"sku {row['sku']!r}: updating an existing product changed its created_at: only name, "
                    "price_cents and updated_at change",
                )
                expect(
                    updated_at != _LONG_AGO or (name, price) != before[pid][1:3],
                    f"sku {row['sku']!r} was sent with the values it already had, and its updated_at did not move: "
                    "every existing sku that is sent takes the values sent and a new updated_at, changed or not "
                    "(and counts as updated)",
                )
                expect(updated_at != _LONG_AGO, f"sku {row['sku']!r} was updated but its updated_at did not move")
                expect_now(updated_at, start, f"updated_at of sku {row['sku']!r}")
            else:
                expect_now(created, start, f"created_at of the new sku {row['sku']!r}")
        untouched = {
            pid: cols for pid, cols in after.items() if pid in before and cols[0] not in {r["sku"] for r in rows}
        }
        expect(
            untouched == {pid: before[pid] for pid in untouched},
            "products whose sku was not sent were changed: touch only the rows given",
        )
        expect(len(after) == len(before) + 6, f"{len(after) - len(before)} products were added, 6 skus were new")
        expect(
            (inserted, updated) == (6, 4),
            f"returned (inserted, updated) = ({inserted}, {updated}); the database inserted 6 rows and updated 4. "
            "Count what the statement did, row by row, from what it returns",
        )
        # Again with the same skus: nothing is new now.
        again = [{**r, "price_cents": r["price_cents"] + 10} for r in rows]
        result, q = await _call(session, db, upsert_products, again)
        expect(
            _as_pair(result) == (0, len(again)),
            f"the same {len(again)} skus sent a second time returned {result!r}: every one exists now, so "
            f"(0, {len(again)})",
        )
        # A bigger batch still goes in one statement.
        many = [{"sku": f"BULK-{i:04d}", "name": f"Bulk {i}", "price_cents": i} for i in range(600)]
        result, q = await _call(session, db, upsert_products, many)
        _expect_one_statement(q, len(many))
        expect(_as_pair(result) == (600, 0), f"600 new skus returned {result!r}, not (600, 0)")
        result, q = await _call(session, db, upsert_products, [])
        expect(_as_pair(result) == (0, 0), f"an empty list returned {result!r}, not (0, 0)")
        expect(q.count == 0, f"an empty list sent {q} to the database: with nothing to write, send nothing")
