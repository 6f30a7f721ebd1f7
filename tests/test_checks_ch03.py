"""Chapter 3 checks have teeth: the solution passes; the stub and plausible wrong answers fail with the right hint."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import pytest
from sqlalchemy import and_, event, func, select
from sqlalchemy.orm import contains_eager, immediateload, joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from course.chapters.ch03_n_plus_one.checks import check
from course.domain.models import Post, User
from course.settings import Settings
from course.tools.instrument import count_queries
from tests import teeth

SOURCE = "solutions/03_n_plus_one.ipynb"
SOLVED = teeth.solved(SOURCE)

fails_with = partial(teeth.fails_with, check)


# --- 3.1 users_with_posts ------------------------------------------------------------------------------------------


async def posts_awaitable_attrs_loop(session, limit):
    users = (await session.scalars(select(User).order_by(User.id).limit(limit))).all()
    for user in users:
        await user.awaitable_attrs.posts
    return list(users)


async def posts_query_per_user(session, limit):
    users = (await session.scalars(select(User).order_by(User.id).limit(limit))).all()
    for user in users:
        posts = (await session.scalars(select(Post).where(Post.author_id == user.id))).all()
        set_committed_value(user, "posts", list(posts))
    return list(users)


async def posts_immediateload(session, limit):
    stmt = select(User).order_by(User.id).limit(limit).options(immediateload(User.posts))
    return list((await session.scalars(stmt)).all())


async def posts_limit_on_joined_rows(session, limit):
    # The join written by hand: LIMIT counts (user, post) rows, not users.
    stmt = (
        select(User)
        .outerjoin(User.posts)
        .options(contains_eager(User.posts))
        .order_by(User.id, Post.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).unique().all())


async def posts_only_authors(session, limit):
    # Users without posts left out: the first `limit` *authors*, not users.
    stmt = select(User).where(User.posts.any()).order_by(User.id).limit(limit).options(selectinload(User.posts))
    return list((await session.scalars(stmt)).all())


async def posts_load_everything(session, limit):
    stmt = select(User).order_by(User.id).options(selectinload(User.posts))
    return list((await session.scalars(stmt)).all())[:limit]


async def posts_not_loaded(session, limit):
    return list((await session.scalars(select(User).order_by(User.id).limit(limit))).all())


async def posts_by_name(session, limit):
    stmt = select(User).order_by(User.name).limit(limit).options(selectinload(User.posts))
    return list((await session.scalars(stmt)).all())


async def posts_live_only(session, limit):
    # A filtered collection: the soft-deleted posts are missing from user.posts.
    live = selectinload(User.posts.and_(Post.deleted_at.is_(None)))
    return list((await session.scalars(select(User).order_by(User.id).limit(limit).options(live))).all())


async def posts_joinedload_limit(session, limit):
    # Correct: joinedload applies the LIMIT to the users in a subquery; one statement.
    stmt = select(User).order_by(User.id).limit(limit).options(joinedload(User.posts))
    return list((await session.scalars(stmt)).unique().all())


async def posts_separate_query(session, limit):
    # Correct: a second query for the posts, put into the collections by hand.
    users = (await session.scalars(select(User).order_by(User.id).limit(limit))).all()
    posts = (await session.scalars(select(Post).where(Post.author_id.in_([u.id for u in users])))).all()
    by_author: dict[int, list[Post]] = {u.id: [] for u in users}
    for post in posts:
        by_author[post.author_id].append(post)
    for user in users:
        set_committed_value(user, "posts", by_author[user.id])
    return list(users)


async def test_3_1_other_correct_answers_pass(tiny: Settings) -> None:
    for right in (posts_joinedload_limit, posts_separate_query):
        await check("3.1", right, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (posts_awaitable_attrs_loop, "that is the N+1 pattern"),
        (posts_query_per_user, "that is the N+1 pattern"),
        (posts_immediateload, "that is the N+1 pattern"),
        (posts_limit_on_joined_rows, "counts joined rows"),
        (posts_only_authors, "users without posts count too"),
        (posts_load_everything, "loads far more rows than the answer uses"),
        (posts_not_loaded, "posts are not loaded"),
        (posts_by_name, "first 3 users by id"),
        (posts_live_only, "a collection must hold every post"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_3_1_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "3.1", fragment, wrong)


# --- 3.2 users_posts_comments --------------------------------------------------------------------------------------


async def comments_loop(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).order_by(User.id).options(selectinload(User.posts))
    users = (await session.scalars(stmt)).all()
    for user in users:
        for post in user.posts:
            await post.awaitable_attrs.comments
    return list(users)


async def comments_not_loaded(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).order_by(User.id).options(selectinload(User.posts))
    return list((await session.scalars(stmt)).all())


async def comments_everyone(session, user_ids):
    stmt = select(User).order_by(User.id).options(selectinload(User.posts).selectinload(Post.comments))
    wanted = set(user_ids)
    return [u for u in (await session.scalars(stmt)).all() if u.id in wanted]


async def comments_in_given_order(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).options(selectinload(User.posts).selectinload(Post.comments))
    users = {u.id: u for u in (await session.scalars(stmt)).all()}
    return [users[i] for i in user_ids]


async def comments_id_range(session, user_ids):
    # Treats the ids as a range: every user between the smallest and the largest comes back.
    stmt = (
        select(User)
        .where(User.id.between(min(user_ids), max(user_ids)))
        .order_by(User.id)
        .options(selectinload(User.posts).selectinload(Post.comments))
    )
    return list((await session.scalars(stmt)).all())


async def comments_live_posts_only(session, user_ids):
    live = selectinload(User.posts.and_(Post.deleted_at.is_(None))).selectinload(Post.comments)
    stmt = select(User).where(User.id.in_(user_ids)).order_by(User.id).options(live)
    return list((await session.scalars(stmt)).all())


async def comments_joined_chain(session, user_ids):
    # Correct: one statement, two LEFT OUTER JOINs; rows multiply but stay within what the answer holds.
    stmt = (
        select(User)
        .where(User.id.in_(user_ids))
        .order_by(User.id)
        .options(joinedload(User.posts).joinedload(Post.comments))
    )
    return list((await session.scalars(stmt)).unique().all())


async def test_3_2_joined_chain_passes(tiny: Settings) -> None:
    await check("3.2", comments_joined_chain, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (comments_loop, "that is the N+1 pattern"),
        (comments_not_loaded, "are not loaded"),
        (comments_everyone, "loads far more rows than the answer uses"),
        (comments_in_given_order, "in id order"),
        (comments_id_range, "return exactly the users whose ids are in user_ids"),
        (comments_live_posts_only, "of their"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_3_2_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "3.2", fragment, wrong)


# --- 3.3 post_counts -----------------------------------------------------------------------------------------------

LIVE_JOIN = and_(Post.author_id == User.id, Post.deleted_at.is_(None))


async def counts_len(session):
    users = (await session.scalars(select(User).options(selectinload(User.posts)))).all()
    return {u.id: sum(p.deleted_at is None for p in u.posts) for u in users}


async def counts_inner_join(session):
    stmt = select(User.id, func.count(Post.id)).join(Post, LIVE_JOIN).group_by(User.id)
    return dict((await session.execute(stmt)).all())


async def counts_star(session):
    stmt = select(User.id, func.count()).select_from(User).outerjoin(Post, LIVE_JOIN).group_by(User.id)
    return dict((await session.execute(stmt)).all())


async def counts_where_after_outer_join(session):
    stmt = (
        select(User.id, func.count(Post.id))
        .select_from(User)
        .outerjoin(Post, Post.author_id == User.id)
        .where(Post.deleted_at.is_(None))
        .group_by(User.id)
    )
    return dict((await session.execute(stmt)).all())


async def counts_deleted_too(session):
    stmt = select(User.id, func.count(Post.id)).select_from(User).outerjoin(User.posts).group_by(User.id)
    return dict((await session.execute(stmt)).all())


async def counts_in_python(session):
    users = (await session.scalars(select(User.id))).all()
    live = (await session.scalars(select(Post.author_id).where(Post.deleted_at.is_(None)))).all()
    per_author = Counter(live)
    return {i: per_author[i] for i in users}


async def counts_core_rows(session):
    # Around the session's ORM events: Core rows through the session's connection, counted in Python.
    conn = await session.connection()
    users = (await conn.execute(select(User.id))).scalars().all()
    per_author = Counter((await conn.execute(select(Post.author_id).where(Post.deleted_at.is_(None)))).scalars())
    return {i: per_author[i] for i in users}


async def counts_query_per_user(session):
    counts = {}
    for user_id in (await session.scalars(select(User.id))).all():
        live = select(func.count(Post.id)).where(Post.author_id == user_id, Post.deleted_at.is_(None))
        counts[user_id] = await session.scalar(live)
    return counts


async def counts_as_rows(session):
    stmt = select(User.id, func.count(Post.id)).select_from(User).outerjoin(Post, LIVE_JOIN).group_by(User.id)
    return (await session.execute(stmt)).all()


async def counts_scalar_subquery(session):
    # Correct too: a correlated subquery per user row, still one statement and one row per user.
    live = select(func.count(Post.id)).where(LIVE_JOIN).scalar_subquery()
    return dict((await session.execute(select(User.id, live))).all())


async def counts_two_statements(session):
    # Correct too: the users, then the counts of those with posts, merged in Python.
    counts = dict.fromkeys((await session.scalars(select(User.id))).all(), 0)
    per_author = select(Post.author_id, func.count()).where(Post.deleted_at.is_(None)).group_by(Post.author_id)
    counts.update(dict((await session.execute(per_author)).all()))
    return counts


async def test_3_3_other_correct_answers_pass(tiny: Settings) -> None:
    for right in (counts_scalar_subquery, counts_two_statements):
        await check("3.3", right, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (counts_len, "Post objects to count them"),
        (counts_inner_join, "an inner JOIN drops users without posts"),
        (counts_star, "count(*) counts the row of NULLs"),
        (counts_where_after_outer_join, "in the join's ON clause"),
        (counts_deleted_too, "soft-deleted posts (deleted_at set) do not count"),
        (counts_in_python, "rows to count for"),
        (counts_core_rows, "rows to count for"),
        (counts_query_per_user, "that is the N+1 pattern"),
        (counts_as_rows, "should return a dict"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_3_3_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "3.3", fragment, wrong)


# --- 3.4 at_most ---------------------------------------------------------------------------------------------------


@contextmanager
def at_most_off_by_one(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    assert q.count < k, f"{q.count} statements"


@contextmanager
def at_most_exact(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    assert q.count == k, f"{q.count} statements, expected {k}"


@contextmanager
def at_most_counts_everything(engine, k) -> Iterator[None]:
    sent = []

    def record(*args) -> None:
        sent.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(sent) <= k, f"{len(sent)} statements"


@contextmanager
def at_most_silent_message(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    # An explicit raise: pytest's assert rewriting would put the numbers into the message.
    if q.count > k:
        raise AssertionError("too many statements")


@contextmanager
def at_most_swallows(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        try:
            yield
        except Exception:  # noqa: BLE001, S110 - the bug under test
            pass
    assert q.count <= k, f"{q.count} statements"


@contextmanager
def at_most_leaks_on_error(engine, k) -> Iterator[None]:
    sent = []

    def record(_conn, _cursor, statement, *args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "SAVEPOINT", "RELEASE", "COMMIT", "ROLLBACK")):
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield  # no try/finally: an error in the block leaves the listener behind
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(sent) <= k, f"{len(sent)} statements"


@contextmanager
def at_most_never_fails(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    print(f"{q.count} statements (budget {k})")


@asynccontextmanager
async def at_most_async(engine, k):
    with count_queries(engine) as q:
        yield
    assert q.count <= k, f"{q.count} statements"


@contextmanager
def at_most_on_async_engine(engine, k) -> Iterator[None]:
    sent = []
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a))
    yield
    assert len(sent) <= k


class AtMostClass:
    """Correct too: a class with __enter__/__exit__ and its own listener on the sync engine."""

    def __init__(self, engine, k) -> None:
        self.engine, self.k, self.sent = engine.sync_engine, k, []

    def _record(self, _conn, _cursor, statement, *args) -> None:
        if statement.split(None, 1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}:
            self.sent.append(statement)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        event.remove(self.engine, "before_cursor_execute", self._record)
        if exc_type is None and len(self.sent) > self.k:
            raise AssertionError(f"{len(self.sent)} statements sent, at most {self.k} allowed")
        return False


async def test_3_4_class_based_helper_passes(tiny: Settings) -> None:
    await check("3.4", AtMostClass, settings=tiny)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (at_most_off_by_one, "at most k means k statements are allowed"),
        (at_most_exact, "the budget is a maximum"),
        (at_most_counts_everything, "transaction control, not queries"),
        (at_most_silent_message, "does not say how many"),
        (at_most_swallows, "it was swallowed"),
        (at_most_leaks_on_error, "still on the engine"),
        (at_most_never_fails, "passed: the helper must raise AssertionError"),
        (at_most_async, "not a context manager for `with`"),
        (at_most_on_async_engine, "your code raised NotImplementedError"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[:30],
)
async def test_3_4_wrong_answers_fail(tiny: Settings, wrong, fragment: str) -> None:
    await fails_with(tiny, "3.4", fragment, wrong)


def test_solutions_are_the_functions_the_registry_names() -> None:
    for name in ("users_with_posts", "users_posts_comments", "post_counts", "at_most"):
        assert callable(SOLVED[name])
