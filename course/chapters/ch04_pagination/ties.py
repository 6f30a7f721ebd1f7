"""Ties for the export check (4.3): a long group of comments sharing one timestamp, and the index rule it exposes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, inspect, select

from course.checks.base import CheckDB, fail
from course.domain.models import Comment

# Comments added at one instant in the middle of the export: far more than a page, so a cursor lands inside the
# group, and a plan that must read the whole group to sort it costs many pages.
TIE_PAGES = 8


async def add_tied_comments(db: CheckDB, *, limit: int) -> tuple[int, int]:
    """Add TIE_PAGES * limit comments at the created_at found halfway; return (first tied position, group size)."""
    async with db.Session() as session, session.begin():
        total = await session.scalar(select(func.count()).select_from(Comment)) or 0
        middle = (
            await session.execute(
                select(Comment.created_at, Comment.post_id, Comment.author_id)
                .order_by(Comment.created_at, Comment.id)
                .offset(total // 2)
                .limit(1)
            )
        ).one()
        stamp: datetime = middle.created_at
        count = TIE_PAGES * limit
        rows = [
            {"post_id": middle.post_id, "author_id": middle.author_id, "body": f"tie {n}", "created_at": stamp}
            for n in range(count)
        ]
        # And one comment written just now, in a zone other than UTC: the export's last page must still hold it.
        now = datetime.now(UTC).astimezone(timezone(timedelta(hours=-3, minutes=-30)))
        rows.append(
            {"post_id": middle.post_id, "author_id": middle.author_id, "body": "recent", "created_at": now}
        )
        await session.execute(insert(Comment), rows)
        before = await session.scalar(select(func.count()).select_from(Comment).where(Comment.created_at < stamp))
        size = await session.scalar(select(func.count()).select_from(Comment).where(Comment.created_at == stamp))
    return before or 0, size or 0


async def judge_index_columns(db: CheckDB, before: set[str]) -> None:
    """An index the learner added on created_at without id cannot hand a tie group over in id order."""

    def read(sync_conn: Any) -> list[tuple[str, tuple[str, ...]]]:
        found = inspect(sync_conn).get_indexes("comments")
        return [
            (ix["name"], tuple(c or "" for c in ix["column_names"])) for ix in found if ix["name"] not in before
        ]

    async with db.engine.connect() as conn:
        added = await conn.run_sync(read)
    if not added or any(columns[:2] == ("created_at", "id") for _, columns in added):
        return
    short = next(((name, columns) for name, columns in added if columns[:1] == ("created_at",)), None)
    if short is not None:
        name, columns = short
        fail(
            f"your index {name} ({', '.join(columns)}) does not end the order with id: inside a group of comments "
            "that share created_at the database must read the whole group and sort it by id (SQLite hides this, "
            "because every SQLite index carries the rowid; PostgreSQL does not). Index every column of the ORDER BY"
        )


async def index_names(db: CheckDB) -> set[str]:
    def read(sync_conn: Any) -> set[str]:
        return {ix["name"] for ix in inspect(sync_conn).get_indexes("comments")}

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)
