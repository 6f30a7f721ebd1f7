"""Judge for exercise 7.2 (a soft-delete filter that cannot be forgotten): the check soft-deletes rows of its own,
then runs queries that never mention deleted_at through the learner's sessions (and through everyone else's).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from course.checks.base import CheckDB, call_learner, expect
from course.domain.models import Post, User


async def _soft_delete_fixture(db: CheckDB) -> tuple[int, int, list[int], list[int]]:
    """Soft-delete two posts of the busiest live author U, and a whole other author D (not their posts).

    Returns (U, D, U's live post ids, all of U's post ids).
    """
    busiest = (
        select(Post.author_id)
        .join(Post.author)
        .where(User.deleted_at.is_(None), Post.deleted_at.is_(None))
        .group_by(Post.author_id)
        .order_by(func.count().desc(), Post.author_id)
        .limit(2)
    )
    now = datetime.now(UTC)
    async with db.Session() as session:
        author, other = list((await session.execute(busiest)).scalars())
        mine = select(Post.id).where(Post.author_id == author).order_by(Post.created_at.desc(), Post.id)
        everything = list((await session.execute(mine)).scalars())
        newest, oldest = everything[0], everything[-1]
        # One deleted a moment ago, one long ago: a filter on a date range would miss one of them.
        await session.execute(update(Post).where(Post.id == newest).values(deleted_at=now - timedelta(seconds=1)))
        await session.execute(update(Post).where(Post.id == oldest).values(deleted_at=now - timedelta(days=900)))
        await session.execute(update(User).where(User.id == other).values(deleted_at=now))
        await session.commit()
        live = list((await session.execute(mine.where(Post.deleted_at.is_(None)))).scalars())
    return author, other, sorted(live), sorted(everything)


def listeners() -> set[Any]:
    """The do_orm_execute listeners on SQLAlchemy's own Session class (which every session inherits)."""
    # SQLAlchemy has no public listing of class-level listeners; this is where event.listen() keeps them.
    # The stubs type `dispatch` as a bare _Dispatch: its per-event attributes are generated at runtime.
    per_class = getattr(cast(Any, Session.dispatch).do_orm_execute, "_clslevel", {})
    return set(per_class.get(Session, ()))


async def judge_7_2(factory: Any, db: CheckDB) -> None:
    author, other, live, everything = await _soft_delete_fixture(db)
    deleted = sorted(set(everything) - set(live))

    async def ids(stmt: Any) -> list[int]:
        async with factory() as session:
            return sorted((await session.execute(stmt)).scalars())

    def leak(what: str, got: list[int]) -> str:
        shown = sorted(set(got) & set(deleted))
        return (
            f"{what} returned soft-deleted post(s) {shown}: every ORM SELECT these sessions run must leave "
            "deleted rows out, without the query asking"
        )

    got = await call_learner(ids, select(Post.id).where(Post.author_id == author))
    expect(got == live, leak("a plain select(Post.id) filtered on the author", got))
    got = await call_learner(ids, select(User.id).where(User.id.in_([author, other])))
    expect(
        got == [author],
        f"select(User) returned the soft-deleted user {other}, deleted as this check began: the filter must cover "
        "every model with deleted_at (everything built on SoftDeleteMixin), not just posts, and every row whose "
        "deleted_at is set, whenever it was set (deleted_at IS NULL, not a comparison with a time)",
    )
    alias = aliased(Post)
    got = await call_learner(ids, select(alias.id).where(alias.author_id == author))
    expect(got == live, leak("a query on aliased(Post)", got) + " (aliases too: include_aliases=True)")
    joined = select(Post.id).join(Post.author).where(Post.author_id == other)
    got = await call_learner(ids, joined)
    expect(
        not got,
        f"a join from posts to the soft-deleted user {other} still returned rows: joins must hide them too",
    )

    async def loaded_posts(how: str) -> list[int]:
        async with factory() as session:
            if how == "selectinload":
                user = await session.scalar(
                    select(User).where(User.id == author).options(selectinload(User.posts))
                )
                posts = user.posts
            else:
                user = await session.get(User, author)
                # A real lazy load: through awaitable_attrs where the models offer it, else in the session's greenlet.
                if hasattr(user, "awaitable_attrs"):
                    posts = await user.awaitable_attrs.posts
                else:
                    posts = await session.run_sync(lambda _sync: list(user.posts))
            return sorted(p.id for p in posts)

    for how in ("selectinload", "lazy load"):
        got = await call_learner(loaded_posts, how)
        expect(
            got == live,
            leak(f"user.posts ({how})", got) + ". Relationship loads must be filtered too: nobody writes a WHERE "
            "for them",
        )

    async def get_deleted_user() -> Any:
        async with factory() as session:
            return await session.get(User, other)

    expect(
        await call_learner(get_deleted_user) is None,
        f"session.get(User, {other}) found the soft-deleted user: get() must not see them either",
    )
    admin = select(Post.id).where(Post.author_id == author).execution_options(include_deleted=True)
    got = await call_learner(ids, admin)
    expect(
        got == everything,
        f"with .execution_options(include_deleted=True) the admin view got {len(got)} of the author's "
        f"{len(everything)} posts: that option is the way out of the filter, and must show deleted rows too",
    )

    async def admin_then_plain() -> list[int]:
        async with factory() as session:
            await session.execute(admin)
            return sorted((await session.execute(select(Post.id).where(Post.author_id == author))).scalars())

    got = await call_learner(admin_then_plain)
    expect(
        got == live,
        leak("a plain query run after an include_deleted=True one, in the same session,", got)
        + ": the way out applies to the one statement that asks for it, not to the rest of the session",
    )
    switched_off = select(Post.id).where(Post.author_id == author).execution_options(include_deleted=False)
    got = await call_learner(ids, switched_off)
    expect(
        got == live,
        leak("a query with .execution_options(include_deleted=False)", got)
        + ": only include_deleted=True is the way out; False (an admin switch turned off) keeps the filter",
    )
    async with db.Session() as plain:
        seen = sorted((await plain.execute(select(Post.id).where(Post.author_id == author))).scalars())
    expect(
        seen == everything,
        "a session from another sessionmaker now hides deleted rows too: your event reaches sessions that "
        "did not ask for it. Register it on a Session subclass of your own and give that to async_sessionmaker",
    )
