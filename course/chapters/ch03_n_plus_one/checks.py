"""Checks for chapter 3 (the N+1 problem): statements sent, rows and objects loaded, and what came back."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, select

from course.chapters.ch03_n_plus_one.budget import judge_statement_helper
from course.chapters.ch03_n_plus_one.data import (
    MANY_POSTS,
    NO_POSTS,
    POSTS_PER_CALL,
    all_rows,
    posts_of,
    reshape,
)
from course.chapters.ch03_n_plus_one.judges import (
    as_list_of,
    judge_n_plus_one,
    judge_objects,
    judge_rows,
    loaded,
    observe,
)
from course.chapters.registry import chapter
from course.checks.base import CheckDB, Registry, expect, fail
from course.domain.models import Comment, Post, User

registry = Registry(chapter(3))
check = registry.check

# --- 3.1 users with their posts ------------------------------------------------------------------------------------

LIMITS = (3, 40, 150)
_FROM_USERS = re.compile(r"\bFROM users\b", re.IGNORECASE)
_ORDER_BY = re.compile(r"\bORDER BY\b", re.IGNORECASE)


@registry.exercise("3.1")
async def _check_users_with_posts(users_with_posts: Callable[..., Any], db: CheckDB) -> None:
    await reshape(db)
    # A user whose id is below the seed's first (an import, a fixture): the first users by id are not ids 1..limit.
    async with db.Session() as session, session.begin():
        session.add(User(id=0, email="First.Imported@Example.org", name="Imported First", password_hash="x"))
    user_ids = [i for (i,) in await all_rows(db, select(User.id).order_by(User.id))]
    deleted = {i for (i,) in await all_rows(db, select(User.id).where(User.deleted_at.is_not(None)))}
    posts = await posts_of(db)
    for limit in LIMITS:
        want = user_ids[:limit]
        want_posts = sum(len(posts.get(i, ())) for i in want)
        observed = await observe(db, users_with_posts, limit)
        users = as_list_of(observed.result, User, "users_with_posts")
        got = [u.id for u in users]
        postless = [i for i in want if i not in got and not posts.get(i)]
        expect(
            not postless or len(postless) < len(set(want) - set(got)),
            f"for limit={limit} users without posts are missing ({_short(postless)}): users without posts count "
            "too, in id order (an inner join, or a condition on posts, keeps only users who have posts)",
        )
        expect(
            len(got) >= len(want),
            f"users_with_posts returned {len(got)} user(s) for limit={limit}: when the LIMIT applies to a join with "
            "posts it counts joined rows (one per post), not users. Let the eager loader apply it to the users",
        )
        users_sql = next((sql for sql in observed.queries.statements if _FROM_USERS.search(sql)), "")
        expect(
            got == want or _ORDER_BY.search(users_sql),
            f"for limit={limit} expected the first {limit} users by id ({_short(want)}), got {_short(got)}: the "
            "SELECT of the users has no ORDER BY, so which users a LIMIT keeps is up to the database (it changes "
            "once a row is rewritten or an index is used). Order them by id",
        )
        left_out = [i for i in want if i not in got]
        why = (
            f"user {left_out[0]} is soft-deleted, and the first users by id include every user"
            if left_out and left_out[0] in deleted
            else "users without posts count too, in id order"
        )
        expect(
            got == want,
            f"for limit={limit} expected the first {limit} users by id ({_short(want)}), got {_short(got)}: {why}",
        )
        # Right by accident (a plan that happens to read in id order) is still no ORDER BY.
        expect(
            _ORDER_BY.search(users_sql),
            f"for limit={limit} the right users came back, but the SELECT of the users has no ORDER BY: without "
            "one, which users a LIMIT keeps is up to the database (it changes once a row is rewritten or an "
            "index is used). Order them by id",
        )
        slicing = "Let the query pick the users (ORDER BY id, LIMIT) and load only their posts"
        judge_objects(observed, User, len(want), f"{limit} users", slicing)
        judge_objects(observed, Post, want_posts, f"the first {limit} users' {want_posts:,} posts", slicing)
        judge_rows(observed, len(want) + want_posts, f"{limit} users and their {want_posts:,} posts", slicing)
        fix = "Load the posts with the users: an eager-loading option on the users' query"
        judge_n_plus_one(observed, 2, limit, "users", fix)
        for user in users:
            expect(
                loaded(user, "posts"),
                f"user {user.id}'s posts are not loaded: reading user.posts after your function would raise "
                "MissingGreenlet (or send one more SELECT per user). Load them in the same query",
            )
            have = {p.id for p in user.posts}
            mine = posts.get(user.id, set())
            expect(
                have == mine,
                f"user {user.id} came back with {len(have)} of their {len(mine)} posts: a collection must hold "
                "every post (a LIMIT on joined rows, or a filter on the join, cuts collections short)",
            )


def _short(ids: list[int]) -> str:
    if not ids:
        return "none"
    return ", ".join(map(str, ids[:6])) + (", ..." if len(ids) > 6 else "")


# --- 3.2 three levels in three statements --------------------------------------------------------------------------


@registry.exercise("3.2")
async def _check_users_posts_comments(users_posts_comments: Callable[..., Any], db: CheckDB) -> None:
    await reshape(db)
    user_ids = [i for (i,) in await all_rows(db, select(User.id).order_by(User.id))]
    posts = await posts_of(db)
    comments: dict[int, set[int]] = {}
    for post_id, comment_id in await all_rows(db, select(Comment.post_id, Comment.id)):
        comments.setdefault(post_id, set()).add(comment_id)
    rng = random.Random(3)
    # A busy author, but not the seed's busiest: each call stays under 500 posts, where every eager-loading
    # level is one statement (selectinload splits longer IN lists into batches of 500 keys).
    busy = max((i for i in posts if len(posts[i]) <= 120), key=lambda i: len(posts[i]))
    quiet = [i for i in user_ids[3:] if 0 < len(posts.get(i, ())) <= 20 and i != busy]
    rng.shuffle(quiet)
    for size in (6, 40):
        picked: list[int] = []
        total = 0
        for i in quiet:
            if len(picked) == size:
                break
            if total + len(posts[i]) <= POSTS_PER_CALL:
                picked.append(i)
                total += len(posts[i])
        quiet = [i for i in quiet if i not in picked]
        # Not a range, not sorted, and with the users whose shape the check set up.
        ids = list({MANY_POSTS, NO_POSTS, busy, *picked})
        rng.shuffle(ids)
        want_posts = [p for i in ids for p in posts.get(i, ())]
        want_comments = sum(len(comments.get(p, ())) for p in want_posts)
        observed = await observe(db, users_posts_comments, list(ids))
        users = as_list_of(observed.result, User, "users_posts_comments")
        got = [u.id for u in users]
        expect(
            set(got) == set(ids),
            f"asked for {len(ids)} users, got {len(got)} (missing: {_short(sorted(set(ids) - set(got)))}; not "
            f"asked for: {_short(sorted(set(got) - set(ids)))}): return exactly the users whose ids are in "
            "user_ids, which are not a range",
        )
        users_sql = next((sql for sql in observed.queries.statements if _FROM_USERS.search(sql)), "")
        no_order = (
            ""
            if _ORDER_BY.search(users_sql)
            else (
                ": the SELECT of the users has no ORDER BY, so they come back in whatever order the database finds "
                "them. Order them by id"
            )
        )
        expect(
            got == sorted(ids), f"expected users {_short(sorted(ids))} in id order, got {_short(got)}{no_order}"
        )
        filtering = "Filter the users in the query (WHERE id IN ...) and load only what belongs to them"
        what = f"{len(ids)} users"
        judge_objects(observed, User, len(ids), what, filtering)
        judge_objects(observed, Post, len(want_posts), f"their {len(want_posts):,} posts", filtering)
        judge_objects(observed, Comment, want_comments, f"their posts' {want_comments:,} comments", filtering)
        everything = len(ids) + len(want_posts) + want_comments
        judge_rows(observed, everything, f"{what} with posts and comments", filtering)
        chain = "Chain the loader options along the path, so each level costs one statement for all its rows"
        judge_n_plus_one(observed, 3, len(ids), f"users and {len(want_posts)} posts", chain)
        for user in users:
            expect(
                loaded(user, "posts"),
                f"user {user.id}'s posts are not loaded: load them in the query, with the users",
            )
            mine = posts.get(user.id, set())
            expect(
                {p.id for p in user.posts} == mine,
                f"user {user.id} came back with {len(user.posts)} of their {len(mine)} posts: load every post "
                "(soft-deleted ones too: user.posts holds them all)",
            )
            for post in user.posts:
                expect(
                    loaded(post, "comments"),
                    f"the comments of post {post.id} are not loaded: reading post.comments later would raise "
                    "MissingGreenlet. Load the second level too (the options chain)",
                )
                expect(
                    {c.id for c in post.comments} == comments.get(post.id, set()),
                    f"post {post.id} came back with {len(post.comments)} comments, it has "
                    f"{len(comments.get(post.id, ()))}",
                )


# --- 3.3 counts without loading ------------------------------------------------------------------------------------


@registry.exercise("3.3")
async def _check_post_counts(post_counts: Callable[..., Any], db: CheckDB) -> None:
    only_deleted = await reshape(db)
    user_ids = [i for (i,) in await all_rows(db, select(User.id))]
    want = dict.fromkeys(user_ids, 0)
    for author_id, n in await all_rows(
        db, select(Post.author_id, func.count()).where(Post.deleted_at.is_(None)).group_by(Post.author_id)
    ):
        want[author_id] = n
    observed = await observe(db, post_counts)
    count_in_db = "Let the database count: an outer join with GROUP BY returns one row per user"
    built = observed.loads.objects.get("Post", 0)
    expect(
        built == 0,
        f"your function built {built:,} Post objects to count them (len(user.posts) loads every post first). "
        + count_in_db,
    )
    # One row per user; twice that leaves room for a second statement that lists the users.
    fetched = observed.loads.total_rows
    expect(
        fetched <= 2 * len(want),
        f"your function fetched {fetched:,} rows to count for {len(want):,} users. {count_in_db}",
    )
    judge_n_plus_one(observed, 2, len(want), "users", "One statement can count for every user at once")
    counts = observed.result
    expect(
        isinstance(counts, Mapping),
        f"post_counts should return a dict {{user_id: count}}, got {type(counts).__name__}",
    )
    counts = dict(counts)
    if NO_POSTS not in counts:
        fail(
            f"user {NO_POSTS} has no posts and is missing from your dict: an inner JOIN drops users without "
            "posts. Use an outer join (outerjoin) from users"
        )
    if only_deleted not in counts:
        fail(
            f"user {only_deleted}, whose posts are all soft-deleted, is missing: a WHERE on posts' columns after "
            "an outer join throws away the users it matched to NULL. Put that condition in the join's ON clause"
        )
    missing = sorted(set(want) - set(counts))
    expect(not missing, f"users {_short(missing)} are missing: every user needs a count, 0 included")
    extra = sorted(set(counts) - set(want))
    expect(not extra, f"your dict has keys {_short(extra)} that are not user ids")
    odd = next((v for v in counts.values() if type(v) is not int), None)
    expect(odd is None, f"counts should be ints, got {type(odd).__name__} {odd!r}")
    expect(
        counts[NO_POSTS] == 0,
        f"user {NO_POSTS} has no posts but got {counts[NO_POSTS]}: count(*) counts the row of NULLs an outer join "
        "makes for a user without posts. Count a column of posts instead",
    )
    expect(
        counts[only_deleted] == 0 and counts[MANY_POSTS] == want[MANY_POSTS],
        f"user {MANY_POSTS} has {want[MANY_POSTS]} live posts, your dict says {counts[MANY_POSTS]}: soft-deleted "
        "posts (deleted_at set) do not count",
    )
    wrong = next((i for i in want if counts[i] != want[i]), None)
    expect(wrong is None, f"user {wrong} has {want.get(wrong)} live posts, your dict says {counts.get(wrong)}")


# --- 3.4 a statement budget for tests ------------------------------------------------------------------------------


@registry.exercise("3.4")
async def _check_at_most(at_most: Callable[..., Any], db: CheckDB) -> None:
    await judge_statement_helper(at_most, db)
