"""The data chapter 3's checks run on: the seed reshaped so no answer rests on its accidents, read back in no order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, event, select, update

from course.checks.base import CheckDB
from course.domain.models import Comment, Post, User

# Users whose data the check reshapes, so the answer never rests on the seed's accidents.
MANY_POSTS, NO_POSTS = 2, 3
DELETED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
# The most posts 3.2 asks for in one call, with its busy author: under selectinload's 500 keys per statement.
POSTS_PER_CALL = 300


# SQLite returns a table (or an IN list) in id order even without ORDER BY; this pragma, made for testing exactly
# that, reverses the order of every SELECT that does not ask for one. PostgreSQL reads an IN list through the primary
# key, in id order too; without index scans it reads the table in storage order, which reshape() shuffles.
_UNORDERED = {
    "sqlite": ("PRAGMA reverse_unordered_selects = ON",),
    "postgresql": ("SET enable_indexscan = off", "SET enable_bitmapscan = off", "SET enable_indexonlyscan = off"),
}


def _unordered_reads(dialect: str) -> Callable[[Any, object], None]:
    def on_connect(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        for statement in _UNORDERED[dialect]:
            cursor.execute(statement)
        cursor.close()

    return on_connect


async def reshape(db: CheckDB) -> int:
    """User 2 gets more posts (some soft-deleted, some with many comments), user 3 none; a new user has only
    soft-deleted posts; rows come back in id order only when a query asks for it. Returns the new user's id."""
    event.listen(db.engine.sync_engine, "connect", _unordered_reads(db.dialect))
    await db.engine.dispose()
    async with db.Session() as session, session.begin():
        await session.execute(
            delete(Comment).where(Comment.post_id.in_(select(Post.id).where(Post.author_id == NO_POSTS)))
        )
        await session.execute(delete(Post).where(Post.author_id == NO_POSTS))
        for n in range(7):
            deleted = DELETED_AT if n % 3 == 0 else None
            post = Post(
                author_id=MANY_POSTS, title=f"Check post {n}", body="x", status="published", deleted_at=deleted
            )
            post.comments = [Comment(author_id=1 + (n * k) % 5, body=f"c{k}") for k in range(n % 4 * 2)]
            session.add(post)
        # Rewritten rows move to the end of a PostgreSQL table: a scan without ORDER BY no longer starts at id 1.
        await session.execute(update(User).where(User.id <= 12).values(name=User.name))
        ghost = User(email="Only.Deleted@Example.org", name="Ödön Only-Deleted", password_hash="x")
        session.add(ghost)
        await session.flush()
        for n in range(3):
            session.add(Post(author_id=ghost.id, title=f"gone {n}", body="x", deleted_at=DELETED_AT))
        return ghost.id


async def all_rows(db: CheckDB, stmt: Any) -> list[Any]:
    async with db.Session() as session:
        return list((await session.execute(stmt)).all())


async def posts_of(db: CheckDB) -> dict[int, set[int]]:
    posts: dict[int, set[int]] = {}
    for author_id, post_id in await all_rows(db, select(Post.author_id, Post.id)):
        posts.setdefault(author_id, set()).add(post_id)
    return posts
