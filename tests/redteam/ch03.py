"""Chapter 3 (N+1): answers written from the exercise text alone, before the checks were read."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import case, event, func, select
from sqlalchemy.orm import contains_eager, immediateload, joinedload, raiseload, selectinload, subqueryload
from sqlalchemy.orm.attributes import set_committed_value

from course.domain.models import Comment, Post, User
from course.tools.instrument import count_queries
from tests.redteam import Case

# ---------------------------------------------------------------- 3.1 users_with_posts


async def users_with_posts_ref(session, limit):
    stmt = select(User).options(selectinload(User.posts)).order_by(User.id).limit(limit)
    return list(await session.scalars(stmt))


async def users_with_posts_subquery(session, limit):
    stmt = select(User).options(subqueryload(User.posts)).order_by(User.id).limit(limit)
    return list(await session.scalars(stmt))


async def users_with_posts_joined(session, limit):
    # joinedload wraps the LIMITed users in a subquery, so the limit counts users, not rows.
    stmt = select(User).options(joinedload(User.posts)).order_by(User.id).limit(limit)
    return list((await session.scalars(stmt)).unique())


async def users_with_posts_by_hand(session, limit):
    users = list(await session.scalars(select(User).order_by(User.id).limit(limit)))
    ids = [u.id for u in users]
    posts = await session.scalars(select(Post).where(Post.author_id.in_(ids)).order_by(Post.id))
    by_author: dict[int, list[Post]] = {i: [] for i in ids}
    for post in posts:
        by_author[post.author_id].append(post)
    for user in users:
        set_committed_value(user, "posts", by_author[user.id])
    return users


async def users_with_posts_lazy_loop(session, limit):
    users = list(await session.scalars(select(User).order_by(User.id).limit(limit)))
    for user in users:
        await user.awaitable_attrs.posts
    return users


async def users_with_posts_no_order(session, limit):
    return list(await session.scalars(select(User).options(selectinload(User.posts)).limit(limit)))


async def users_with_posts_no_limit(session, limit):
    return list(await session.scalars(select(User).options(selectinload(User.posts)).order_by(User.id)))


async def users_with_posts_inner_join(session, limit):
    stmt = (
        select(User)
        .join(User.posts)
        .options(contains_eager(User.posts))
        .where(User.id.in_(select(User.id).order_by(User.id).limit(limit).scalar_subquery()))
        .order_by(User.id)
    )
    return list((await session.scalars(stmt)).unique())


async def users_with_posts_join_limit(session, limit):
    # The LIMIT cuts joined rows, not users.
    stmt = (
        select(User)
        .outerjoin(User.posts)
        .options(contains_eager(User.posts))
        .order_by(User.id, Post.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).unique())


async def users_with_posts_and_comments(session, limit):
    stmt = (
        select(User).options(selectinload(User.posts).selectinload(Post.comments)).order_by(User.id).limit(limit)
    )
    return list(await session.scalars(stmt))


async def users_with_posts_slice(session, limit):
    users = list(await session.scalars(select(User).options(selectinload(User.posts)).order_by(User.id)))
    return users[:limit]


async def users_with_posts_desc(session, limit):
    stmt = select(User).options(selectinload(User.posts)).order_by(User.id.desc()).limit(limit)
    return list(await session.scalars(stmt))


async def users_with_posts_live_only(session, limit):
    # Loads only live posts: the text says all their posts.
    stmt = (
        select(User)
        .options(selectinload(User.posts.and_(Post.deleted_at.is_(None))))
        .order_by(User.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def users_with_posts_skips_postless(session, limit):
    stmt = select(User).where(User.posts.any()).options(selectinload(User.posts)).order_by(User.id).limit(limit)
    return list(await session.scalars(stmt))


# ---------------------------------------------------------------- 3.2 users_posts_comments


async def users_posts_comments_ref(session, user_ids):
    stmt = (
        select(User)
        .where(User.id.in_(user_ids))
        .options(selectinload(User.posts).selectinload(Post.comments))
        .order_by(User.id)
    )
    return list(await session.scalars(stmt))


async def users_posts_comments_joined(session, user_ids):
    # One statement: every comment row carries its post and user.
    stmt = (
        select(User)
        .where(User.id.in_(user_ids))
        .options(joinedload(User.posts).joinedload(Post.comments))
        .order_by(User.id)
    )
    return list((await session.scalars(stmt)).unique())


# Blind, this was selectinload(posts).joinedload(comments), which SQLAlchemy refuses without unique() on the
# inner load: the answer's mistake; rewritten after the blind run.
async def users_posts_comments_mixed(session, user_ids):
    stmt = (
        select(User)
        .where(User.id.in_(user_ids))
        .options(joinedload(User.posts).selectinload(Post.comments))
        .order_by(User.id)
    )
    return list((await session.scalars(stmt)).unique())


async def users_posts_comments_second_level_loop(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).options(selectinload(User.posts)).order_by(User.id)
    users = list(await session.scalars(stmt))
    for user in users:
        for post in user.posts:
            await post.awaitable_attrs.comments
    return users


async def users_posts_comments_range(session, user_ids):
    stmt = (
        select(User)
        .where(User.id.between(min(user_ids), max(user_ids)))
        .options(selectinload(User.posts).selectinload(Post.comments))
        .order_by(User.id)
    )
    return list(await session.scalars(stmt))


async def users_posts_comments_input_order(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).options(selectinload(User.posts).selectinload(Post.comments))
    users = {u.id: u for u in await session.scalars(stmt)}
    return [users[i] for i in user_ids if i in users]


async def users_posts_comments_unordered(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).options(selectinload(User.posts).selectinload(Post.comments))
    return list(await session.scalars(stmt))


async def users_posts_comments_with_authors(session, user_ids):
    stmt = (
        select(User)
        .where(User.id.in_(user_ids))
        .options(selectinload(User.posts).selectinload(Post.comments).selectinload(Comment.author))
        .order_by(User.id)
    )
    return list(await session.scalars(stmt))


async def users_posts_comments_per_user(session, user_ids):
    users = []
    for user_id in sorted(user_ids):
        stmt = select(User).where(User.id == user_id).options(selectinload(User.posts).selectinload(Post.comments))
        user = await session.scalar(stmt)
        if user is not None:
            users.append(user)
    return users


async def users_posts_comments_all_comments(session, user_ids):
    # Posts eagerly; then every comment of the table, handed out in Python.
    stmt = select(User).where(User.id.in_(user_ids)).options(selectinload(User.posts)).order_by(User.id)
    users = list(await session.scalars(stmt))
    by_post: dict[int, list[Comment]] = {}
    for comment in await session.scalars(select(Comment).order_by(Comment.id)):
        by_post.setdefault(comment.post_id, []).append(comment)
    for user in users:
        for post in user.posts:
            set_committed_value(post, "comments", by_post.get(post.id, []))
    return users


async def users_posts_comments_first_level_only(session, user_ids):
    stmt = select(User).where(User.id.in_(user_ids)).options(selectinload(User.posts)).order_by(User.id)
    return list(await session.scalars(stmt))


# ---------------------------------------------------------------- 3.3 post_counts


# Blind, the 3.3 answers read results with Result.tuples(), deprecated in SQLAlchemy 2.1 (an error under pytest):
# every 3.3 case then failed for that reason alone; rewritten with .all() after the blind run.
async def post_counts_ref(session):
    stmt = (
        select(User.id, func.count(Post.id))
        .select_from(User)
        .outerjoin(Post, (Post.author_id == User.id) & Post.deleted_at.is_(None))
        .group_by(User.id)
    )
    return dict((await session.execute(stmt)).all())


async def post_counts_correlated(session):
    live = (
        select(func.count(Post.id))
        .where(Post.author_id == User.id, Post.deleted_at.is_(None))
        .correlate(User)
        .scalar_subquery()
    )
    return dict((await session.execute(select(User.id, live))).all())


async def post_counts_sum_case(session):
    live = case((Post.deleted_at.is_(None), 1), else_=0)
    stmt = (
        select(User.id, func.coalesce(func.sum(case((Post.id.is_(None), 0), else_=live)), 0))
        .outerjoin(Post, Post.author_id == User.id)
        .group_by(User.id)
    )
    return {uid: int(n) for uid, n in (await session.execute(stmt)).all()}


async def post_counts_inner_join(session):
    stmt = (
        select(User.id, func.count(Post.id))
        .join(Post, Post.author_id == User.id)
        .where(Post.deleted_at.is_(None))
        .group_by(User.id)
    )
    return dict((await session.execute(stmt)).all())


async def post_counts_count_star(session):
    stmt = (
        select(User.id, func.count())
        .select_from(User)
        .outerjoin(Post, (Post.author_id == User.id) & Post.deleted_at.is_(None))
        .group_by(User.id)
    )
    return dict((await session.execute(stmt)).all())


async def post_counts_where_live(session):
    stmt = (
        select(User.id, func.count(Post.id))
        .select_from(User)
        .outerjoin(Post, Post.author_id == User.id)
        .where(Post.deleted_at.is_(None))
        .group_by(User.id)
    )
    return dict((await session.execute(stmt)).all())


async def post_counts_all_posts(session):
    stmt = select(User.id, func.count(Post.id)).outerjoin(Post, Post.author_id == User.id).group_by(User.id)
    return dict((await session.execute(stmt)).all())


async def post_counts_objects(session):
    users = await session.scalars(select(User).options(selectinload(User.posts)))
    return {u.id: sum(1 for p in u.posts if p.deleted_at is None) for u in users}


async def post_counts_per_user(session):
    counts = {}
    for user_id in await session.scalars(select(User.id)):
        counts[user_id] = await session.scalar(
            select(func.count(Post.id)).where(Post.author_id == user_id, Post.deleted_at.is_(None))
        )
    return counts


async def post_counts_live_users_only(session):
    stmt = (
        select(User.id, func.count(Post.id))
        .select_from(User)
        .outerjoin(Post, (Post.author_id == User.id) & Post.deleted_at.is_(None))
        .where(User.deleted_at.is_(None))
        .group_by(User.id)
    )
    return dict((await session.execute(stmt)).all())


async def post_counts_python_counter(session):
    user_ids = list(await session.scalars(select(User.id)))
    authors = Counter(await session.scalars(select(Post.author_id).where(Post.deleted_at.is_(None))))
    return {uid: authors.get(uid, 0) for uid in user_ids}


async def post_counts_missing_zeros(session):
    stmt = select(Post.author_id, func.count(Post.id)).where(Post.deleted_at.is_(None)).group_by(Post.author_id)
    return dict((await session.execute(stmt)).all())


# ---------------------------------------------------------------- 3.4 at_most

_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE)


@contextmanager
def at_most_ref(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    if q.count > k:
        raise AssertionError(f"{q.count} statements were sent, at most {k} allowed")


@contextmanager
def at_most_own_listener(engine, k) -> Iterator[None]:
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not _CONTROL.match(statement):
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(sent) <= k, f"expected at most {k} statements, got {len(sent)}"


class at_most_class:  # noqa: N801 - used like the function it stands for
    """A class-based context manager: `with at_most_class(engine, k):`."""

    def __init__(self, engine, k):
        self.engine, self.k = engine, k

    def __enter__(self):
        self._counter = count_queries(self.engine)
        self.q = self._counter.__enter__()
        return None

    def __exit__(self, exc_type, exc, tb):
        self._counter.__exit__(exc_type, exc, tb)
        if exc_type is None and self.q.count > self.k:
            raise AssertionError(f"budget {self.k}, sent {self.q.count} statements")
        return False


@contextmanager
def at_most_off_by_one(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    if q.count >= k:
        raise AssertionError(f"{q.count} statements were sent, at most {k} allowed")


@contextmanager
def at_most_counts_everything(engine, k) -> Iterator[None]:
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert len(sent) <= k, f"{len(sent)} statements"


@contextmanager
def at_most_no_number(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    if q.count > k:
        raise AssertionError("too many statements: N+1 suspected")


@contextmanager
def at_most_swallows(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        try:
            yield
        except Exception:  # noqa: BLE001 - the wrong answer under test
            pass
    if q.count > k:
        raise AssertionError(f"{q.count} statements were sent, at most {k} allowed")


@contextmanager
def at_most_wraps_errors(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        try:
            yield
        except Exception as exc:
            raise AssertionError(f"block failed after {q.count} statements: {exc}") from exc
    if q.count > k:
        raise AssertionError(f"{q.count} statements were sent, at most {k} allowed")


@contextmanager
def at_most_leaks_on_error(engine, k) -> Iterator[None]:
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not _CONTROL.match(statement):
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    if len(sent) > k:
        raise AssertionError(f"{len(sent)} statements were sent, at most {k} allowed")


@contextmanager
def at_most_never_removes(engine, k) -> Iterator[None]:
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not _CONTROL.match(statement):
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    start = len(sent)
    yield
    if len(sent) - start > k:
        raise AssertionError(f"{len(sent) - start} statements were sent, at most {k} allowed")


@contextmanager
def at_most_checks_in_finally(engine, k) -> Iterator[None]:
    # The budget is judged even when the block raised, so a block's own error can be replaced.
    with count_queries(engine) as q:
        try:
            yield
        finally:
            if q.count > k:
                raise AssertionError(f"{q.count} statements were sent, at most {k} allowed")


@contextmanager
def at_most_never_fails(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    print(f"{q.count} statements (budget {k})")


@contextmanager
def at_most_runtime_error(engine, k) -> Iterator[None]:
    with count_queries(engine) as q:
        yield
    if q.count > k:
        raise RuntimeError(f"{q.count} statements were sent, at most {k} allowed")


CASES = [
    # 3.1
    Case("3.1", (users_with_posts_ref,), "pass", "selectinload, order_by id, limit"),
    Case("3.1", (users_with_posts_subquery,), "pass", "subqueryload: two statements too"),
    Case(
        "3.1",
        (users_with_posts_joined,),
        "pass",
        "joinedload: the ORM puts the LIMIT in a subquery, one statement",
    ),
    Case(
        "3.1",
        (users_with_posts_by_hand,),
        "pass",
        "two SELECTs and set_committed_value, posts of these users only",
    ),
    Case("3.1", (users_with_posts_lazy_loop,), "fail", "awaitable_attrs per user: N+1, 'at most 2 statements'"),
    # blind verdict: passed on SQLite (a scan runs in id order there); fixed in 0469173
    Case(
        "3.1",
        (users_with_posts_no_order,),
        "fail",
        "no ORDER BY: 'the first limit users in id order'",
        fragment="the SELECT of the users has no ORDER BY",
    ),
    Case("3.1", (users_with_posts_no_limit,), "fail", "ignores limit: 'the first limit users'"),
    # blind verdict: failed, with a message about a LIMIT on joined rows (not this answer's mistake); fixed in 0469173
    Case(
        "3.1",
        (users_with_posts_inner_join,),
        "fail",
        "inner join: 'users without posts included'",
        fragment="users without posts are missing",
    ),
    Case("3.1", (users_with_posts_join_limit,), "fail", "LIMIT on joined rows: posts cut off, 'all their posts'"),
    Case(
        "3.1", (users_with_posts_and_comments,), "fail", "also loads comments: 'load only what the answer needs'"
    ),
    Case(
        "3.1",
        (users_with_posts_slice,),
        "fail",
        "loads every user and post, slices in Python: 'load only what the answer needs'",
    ),
    Case("3.1", (users_with_posts_desc,), "fail", "id descending: 'the first limit users in id order'"),
    Case("3.1", (users_with_posts_live_only,), "fail", "live posts only: 'all their posts'"),
    Case(
        "3.1", (users_with_posts_skips_postless,), "fail", "users with posts only: 'users without posts included'"
    ),
    # 3.2
    Case("3.2", (users_posts_comments_ref,), "pass", "selectinload chain, IN list, order by id"),
    Case("3.2", (users_posts_comments_joined,), "pass", "joinedload chain: one statement, nothing extra"),
    Case("3.2", (users_posts_comments_mixed,), "pass", "joinedload posts, selectinload comments: two statements"),
    Case("3.2", (users_posts_comments_second_level_loop,), "fail", "comments per post: N+1 one level down"),
    Case("3.2", (users_posts_comments_range,), "fail", "BETWEEN min and max: 'in any order, not a range'"),
    Case("3.2", (users_posts_comments_input_order,), "fail", "returned in input order: 'returned in id order'"),
    # blind verdict: passed on both (SQLite and PostgreSQL both read an IN list in id order); fixed in the phase-2
    # commit (SQLite reverses unordered SELECTs in the check, PostgreSQL's first users are rewritten)
    Case(
        "3.2",
        (users_posts_comments_unordered,),
        "fail",
        "no ORDER BY: 'returned in id order'",
        fragment="has no ORDER BY, so they come back in whatever order",
    ),
    Case(
        "3.2",
        (users_posts_comments_with_authors,),
        "fail",
        "also loads comment authors: 4 statements, users that are not asked for",
    ),
    Case("3.2", (users_posts_comments_per_user,), "fail", "one query chain per user: 'however many users'"),
    Case(
        "3.2",
        (users_posts_comments_all_comments,),
        "fail",
        "every comment of the table: 'load nothing that does not belong to these users'",
    ),
    Case(
        "3.2",
        (users_posts_comments_first_level_only,),
        "fail",
        "comments not loaded: 'each post with all its comments loaded'",
    ),
    # 3.3
    Case("3.3", (post_counts_ref,), "pass", "outer join with the live condition in ON, count(Post.id)"),
    Case("3.3", (post_counts_correlated,), "pass", "correlated scalar subquery per user row"),
    Case("3.3", (post_counts_sum_case,), "pass", "outer join, SUM(CASE) with COALESCE"),
    Case("3.3", (post_counts_inner_join,), "fail", "inner join: 'a key for every user'"),
    Case(
        "3.3",
        (post_counts_count_star,),
        "fail",
        "count(*): 1 for users without posts, 'the count for them must be 0'",
    ),
    Case(
        "3.3", (post_counts_where_live,), "fail", "live filter in WHERE: drops users whose posts are all deleted"
    ),
    Case("3.3", (post_counts_all_posts,), "fail", "counts deleted posts: 'how many live posts'"),
    Case("3.3", (post_counts_objects,), "fail", "loads Post objects: 'no Post objects'"),
    Case("3.3", (post_counts_per_user,), "fail", "COUNT per user: N+1"),
    Case("3.3", (post_counts_live_users_only,), "fail", "skips soft-deleted users: 'for every user'"),
    Case(
        "3.3",
        (post_counts_python_counter,),
        "fail",
        "fetches post rows and counts in Python: 'no fetching post rows'",
    ),
    Case(
        "3.3",
        (post_counts_missing_zeros,),
        "fail",
        "only authors with live posts: '0 for users with no live posts'",
    ),
    # 3.4
    Case("3.4", (at_most_ref,), "pass", "count_queries, decide after the block"),
    Case("3.4", (at_most_own_listener,), "pass", "own before_cursor_execute listener removed in finally"),
    Case("3.4", (at_most_class,), "pass", "a class with __enter__/__exit__"),
    Case("3.4", (at_most_off_by_one,), "fail", ">= k: 'exactly k is fine'"),
    Case(
        "3.4",
        (at_most_counts_everything,),
        "fail",
        "counts BEGIN/COMMIT/SAVEPOINT: 'transaction control is not counted'",
    ),
    Case(
        "3.4", (at_most_no_number,), "fail", "message without the count: 'a message that says how many were sent'"
    ),
    Case("3.4", (at_most_swallows,), "fail", "swallows the block's exception: 'comes out of the with unchanged'"),
    Case("3.4", (at_most_wraps_errors,), "fail", "wraps the block's exception in AssertionError: 'unchanged'"),
    Case("3.4", (at_most_leaks_on_error,), "fail", "listener left on the engine after an error: 'error or not'"),
    Case("3.4", (at_most_never_removes,), "fail", "listener never removed: 'nothing is left listening'"),
    # blind verdict: passed (no block both raised and broke the budget); fixed in 0469173
    Case(
        "3.4",
        (at_most_checks_in_finally,),
        "fail",
        "budget judged after an error too: the block's exception replaced",
        fragment="even when the block also went over the budget",
    ),
    Case("3.4", (at_most_never_fails,), "fail", "prints instead of raising: 'raises AssertionError'"),
    Case("3.4", (at_most_runtime_error,), "fail", "RuntimeError: 'raises AssertionError'"),
]


# ---------------------------------------------------------------- written in phase 2, after reading the checks

_SELECT = re.compile(r"^\s*SELECT\b", re.IGNORECASE)


@contextmanager
def at_most_selects_only(engine, k) -> Iterator[None]:
    # Counts SELECTs only: a loop of UPDATEs (an N+1 of writes) goes through unseen.
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if _SELECT.match(statement):
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    if len(sent) > k:
        raise AssertionError(f"{len(sent)} statements were sent, at most {k} allowed")


# verdict before the fix: passed (every block sent SELECTs only); fixed in 87e761e
CASES.append(
    Case(
        "3.4",
        (at_most_selects_only,),
        "fail",
        "phase 2 (not blind): counts SELECTs only: 'more than k statements'",
        fragment="writes are statements too",
    )
)


# ---------------------------------------------------------------- red team C3 (blind): more 3.1 users_with_posts


async def users_with_posts_id_range(session, limit):
    """Assumes ids run 1, 2, 3 ... with no gap: WHERE id <= limit is not 'the first limit users in id order'."""
    stmt = select(User).where(User.id <= limit).options(selectinload(User.posts)).order_by(User.id)
    return list(await session.scalars(stmt))


async def users_with_posts_by_created_at(session, limit):
    """'The first users' read as the oldest: ORDER BY created_at, not 'in id order'."""
    stmt = select(User).options(selectinload(User.posts)).order_by(User.created_at).limit(limit)
    return list(await session.scalars(stmt))


async def users_with_posts_by_hand_postless_unloaded(session, limit):
    """Two SELECTs by hand, but only users who have posts get a collection: a postless user's `posts` is unloaded.

    Violates 'each with all their posts loaded, so the caller can read user.posts without another query'.
    """
    users = list(await session.scalars(select(User).order_by(User.id).limit(limit)))
    posts = await session.scalars(select(Post).where(Post.author_id.in_([u.id for u in users])))
    by_author: dict[int, list[Post]] = {}
    for post in posts:
        by_author.setdefault(post.author_id, []).append(post)
    for user in users:
        if user.id in by_author:
            set_committed_value(user, "posts", by_author[user.id])
    return users


async def users_with_posts_immediateload(session, limit):
    """immediateload loads the posts at once, but with one SELECT per user: 'at most 2 statements'."""
    stmt = select(User).options(immediateload(User.posts)).order_by(User.id).limit(limit)
    return list(await session.scalars(stmt))


async def users_with_posts_all_posts_by_hand(session, limit):
    """Fetches every post in the table and keeps those of these users in Python: 'load only what the answer needs'."""
    users = list(await session.scalars(select(User).order_by(User.id).limit(limit)))
    wanted = {u.id: [] for u in users}
    for post in await session.scalars(select(Post).order_by(Post.id)):
        if post.author_id in wanted:
            wanted[post.author_id].append(post)
    for user in users:
        set_committed_value(user, "posts", wanted[user.id])
    return users


async def users_with_posts_joined_inner(session, limit):
    """joinedload(innerjoin=True): a user without posts drops out of the page, 'users without posts included'."""
    stmt = select(User).options(joinedload(User.posts, innerjoin=True)).order_by(User.id).limit(limit)
    return list((await session.scalars(stmt)).unique())


async def users_with_posts_live_users(session, limit):
    """Skips soft-deleted users, though the text asks for 'the first limit users in id order', deleted or not."""
    stmt = (
        select(User)
        .where(User.deleted_at.is_(None))
        .options(selectinload(User.posts))
        .order_by(User.id)
        .limit(limit)
    )
    return list(await session.scalars(stmt))


async def users_with_posts_raiseload(session, limit):
    """Right: selectinload for posts and raiseload('*') for everything else, so nothing lazy slips through."""
    stmt = select(User).options(selectinload(User.posts), raiseload("*")).order_by(User.id).limit(limit)
    return list(await session.scalars(stmt))


async def users_with_posts_outer_contains_eager(session, limit):
    """Right: one statement, the page of ids in a subquery, LEFT JOIN posts, contains_eager fills the collection."""
    page = select(User.id).order_by(User.id).limit(limit).subquery()
    stmt = (
        select(User)
        .join(page, page.c.id == User.id)
        .outerjoin(User.posts)
        .options(contains_eager(User.posts))
        .order_by(User.id, Post.id)
    )
    return list((await session.scalars(stmt)).unique())


CASES += [
    # blind verdict: passed on both backends (wrongly), fixed in the check; likely cause: the copy's first ids have no gap
    Case(
        "3.1",
        (users_with_posts_id_range,),
        "fail",
        "red team C3 (blind): WHERE id <= limit assumes ids without gaps: 'the first limit users in id order'",
        "expected the first 3 users by id (0, 1, 2)",
    ),
    Case(
        "3.1",
        (users_with_posts_by_created_at,),
        "fail",
        "red team C3 (blind): ORDER BY created_at: 'in id order'",
    ),
    Case(
        "3.1",
        (users_with_posts_by_hand_postless_unloaded,),
        "fail",
        "red team C3 (blind): postless users' posts never set: 'each with all their posts loaded'",
    ),
    Case(
        "3.1",
        (users_with_posts_immediateload,),
        "fail",
        "red team C3 (blind): immediateload is a SELECT per user: 'at most 2 statements'",
    ),
    Case(
        "3.1",
        (users_with_posts_all_posts_by_hand,),
        "fail",
        "red team C3 (blind): SELECTs every post, filters in Python: 'load only what the answer needs'",
    ),
    Case(
        "3.1",
        (users_with_posts_joined_inner,),
        "fail",
        "red team C3 (blind): joinedload(innerjoin=True) drops postless users: 'users without posts included'",
    ),
    Case(
        "3.1",
        (users_with_posts_live_users,),
        "fail",
        "red team C3 (blind): live users only: 'the first limit users in id order' has no such filter",
    ),
    Case(
        "3.1",
        (users_with_posts_raiseload,),
        "pass",
        "red team C3 (blind): selectinload posts plus raiseload('*') for the rest",
    ),
    Case(
        "3.1",
        (users_with_posts_outer_contains_eager,),
        "pass",
        "red team C3 (blind): page of ids as a subquery, LEFT JOIN posts, contains_eager: one statement",
    ),
]
