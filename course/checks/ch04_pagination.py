"""Checks for chapter 4 (pagination): they walk the learner's pages and judge rows, statements, cursors and plans."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import inspect
import itertools
import re
import string
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select, text, tuple_

from course.checks.base import CheckDB, Registry, call_learner, expect, fail
from course.checks.pages import (
    Key,
    capture_statements,
    judge_page,
    key_of,
    one_page_statement,
    rows_of,
    skips_rows,
    statement_cost,
)
from course.explain import explain
from course.models import Comment, Order, Post

registry = Registry("04")
check = registry.check

FEED_LIMIT = 50


async def _add_tied_posts(db: CheckDB) -> None:
    """The tiny seed has few ties: add a tie group longer than two pages right at the first page boundary, and more."""
    async with db.engine.begin() as conn:
        # An index keeps a walk through every page quick at any scale (4.1 is about rows, not speed). Its id is
        # DESC on purpose: an index in exactly the feed's order would hand ties over in id order even to an
        # ORDER BY created_at that forgot the tie-breaker.
        await conn.execute(text("CREATE INDEX ix_check_posts_feed ON posts (created_at, id DESC)"))
    async with db.Session() as session, session.begin():
        live = (
            select(Post.created_at)
            .where(Post.deleted_at.is_(None))
            .order_by(Post.created_at.desc(), Post.id.desc())
        )
        first_boundary = (await session.execute(live.offset(FEED_LIMIT - 5).limit(1))).scalar_one()
        deeper = (await session.execute(live.offset(7 * FEED_LIMIT - 2).limit(1))).scalar_one()
        # Soft-deleted posts in both groups, added last so they have the highest ids: the first page would show them.
        groups = [(first_boundary, 2 * FEED_LIMIT + 5, None), (deeper, 7, None), (deeper, 3, deeper)]
        groups.append((first_boundary, 2, first_boundary))
        for stamp, count, deleted in groups:
            for n in range(count):
                session.add(
                    Post(
                        author_id=1,
                        title=f"tie {n}",
                        body="tied post",
                        status="published",
                        created_at=stamp,
                        deleted_at=deleted,
                    )
                )


async def _expected(db: CheckDB, stmt: Any, *, reverse: bool) -> list[Any]:
    async with db.Session() as session:
        rows = list((await session.execute(stmt)).all())
    return sorted(rows, key=key_of, reverse=reverse)


@registry.exercise("4.1", points=3, timeout=60)
async def _check_posts_page(posts_page: Callable[..., Any], db: CheckDB) -> None:
    await _add_tied_posts(db)
    want_all = await _expected(db, select(Post.id, Post.created_at).where(Post.deleted_at.is_(None)), reverse=True)
    deleted = {i for (i,) in (await _fetch(db, select(Post.id).where(Post.deleted_at.is_not(None))))}
    drafts = {i for (i,) in (await _fetch(db, select(Post.id).where(Post.status == "draft")))}
    seen: set[int] = set()
    after: Key | None = None
    position = 0
    pages: list[tuple[Key | None, int, list[int]]] = []
    for number in range(len(want_all) // FEED_LIMIT + 3):
        # Small pages where the added ties are, then big ones: any limit must work, and big pages keep it quick.
        limit = FEED_LIMIT if number < 10 else 10 * FEED_LIMIT
        page = await _feed_page(posts_page, db, after, limit)
        hidden = next((p.id for p in page if p.id in deleted), None)
        expect(
            hidden is None, f"post {hidden} is soft-deleted (deleted_at is set): the feed shows live posts only"
        )
        want = want_all[position : position + limit]
        got = [p.id for p in page]
        if (
            got != [r.id for r in want]
            and got == [r.id for r in want_all[position:] if r.id not in drafts][: len(got)]
        ):
            draft = next(r.id for r in want if r.id in drafts)
            fail(
                f"post {draft} is missing: it is a draft, but this feed is every post whose deleted_at is NULL, "
                "drafts included. Filter on what the task names, nothing more"
            )
        judge_page(page, want, seen, after, "desc")
        pages.append((after, limit, got))
        if not page:
            break
        seen.update(p.id for p in page)
        position += len(page)
        after = key_of(page[-1])
    else:
        fail("the walk never reached an empty page: is `after` used to move forward?")
    # A client may ask for the same page twice (a retry, a second tab): the answer may depend only on the cursor.
    again_after, again_limit, ids = pages[1]
    again = await _feed_page(posts_page, db, again_after, again_limit)
    expect(
        [p.id for p in again] == ids,
        "asking again for the second page with the same `after` gave different posts: a page must depend only on "
        "the cursor the client sends, not on state kept between calls",
    )


async def _feed_page(posts_page: Callable[..., Any], db: CheckDB, after: Key | None, limit: int) -> list[Any]:
    """One page from the learner's posts_page, sent as one bounded SELECT and made of Post objects."""
    async with db.Session() as session:
        with db.count_queries() as q:
            page = await call_learner(posts_page, session, after=after, limit=limit)
    one_page_statement(q, "posts_page", rows=limit)
    page = rows_of(page, Post, "posts_page")
    expect(len(page) <= limit, f"posts_page returned {len(page)} posts for limit={limit}")
    return page


async def _fetch(db: CheckDB, stmt: Any) -> list[Any]:
    async with db.Session() as session:
        return list((await session.execute(stmt)).all())


# --- 4.2 signed cursors -----------------------------------------------------------------------------------------------

_URL_SAFE = re.compile(r"^[A-Za-z0-9_.~=-]+$")
_SAMPLES: list[Key] = [
    (datetime(2024, 5, 1, 12, 0, tzinfo=UTC), 987654321),
    (datetime(2025, 1, 31, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))), 7),
]
_GARBAGE = ["", "garbage", "!!!!", "a.b", "eyJhIjogMX0", "W10", "null", "...."]


async def _decode_or_reject(decode: Callable[..., Any], token: str) -> tuple[bool, Any]:
    """(True, value) when decode accepted token; (False, None) when it raised ValueError; fail on other errors."""
    try:
        value = decode(token)
        return True, (await value) if inspect.isawaitable(value) else value
    except ValueError:
        return False, None
    except NotImplementedError:
        fail("not solved yet: replace the `raise NotImplementedError` line in decode_cursor with your code")
    except Exception as exc:  # noqa: BLE001 - any other exception type is the learner's bug to report
        fail(
            f"decode_cursor({token[:30]!r}) raised {type(exc).__name__}: raise ValueError (or a subclass such as "
            "InvalidCursor) for every bad cursor, so the API can answer 400 instead of 500"
        )


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, tuple | list) else value


def _b64decode(part: str) -> bytes | None:
    padded = part + "=" * (-len(part) % 4)
    for decoder in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return decoder(padded)
        except (binascii.Error, ValueError):
            continue
    return None


def _b64encode(raw: bytes, like: str) -> str:
    """raw in URL-safe base64, padded only when `like` (the part it replaces) was."""
    encoded = base64.urlsafe_b64encode(raw).decode()
    return encoded if like.endswith("=") else encoded.rstrip("=")


def _edit(part: str, old: str, new: str) -> str | None:
    """part with old replaced by new, in plain text or inside its base64; None when old is in neither."""
    if old in part:
        return part.replace(old, new)
    raw = _b64decode(part)
    if raw is None or old.encode() not in raw:
        return None
    return _b64encode(raw.replace(old.encode(), new.encode()), part)


def _forgeries(token: str, created_at: datetime, cursor_id: int) -> Iterator[tuple[str, str]]:
    """Edited cursors an attacker can make without the key: a value changed inside a base64 part, the signature dropped."""
    parts = token.split(".")
    edits = [
        (str(cursor_id), str(cursor_id + 1), "the id"),
        (str(created_at.year), str(created_at.year - 1), "created_at"),
    ]
    for index, part in enumerate(parts):
        for old, new, what in edits:
            raw = _b64decode(part)
            if raw is None or old.encode() not in raw:
                continue
            encoded = _b64encode(raw.replace(old.encode(), new.encode()), part)
            yield (
                ".".join([*parts[:index], encoded, *parts[index + 1 :]]),
                f"{what} inside was edited and re-encoded with plain base64",
            )
            if len(parts) > 1:
                yield encoded, f"{what} was edited and the signature dropped"
                yield part, "the signature was dropped"


def _similar(char: str) -> str:
    """Another character of the same kind (digit, lower, upper case), so an edited cursor still parses."""
    for alphabet in (string.digits, string.ascii_lowercase, string.ascii_uppercase):
        if char in alphabet:
            return alphabet[(alphabet.index(char) + 1) % len(alphabet)]
    return "A"


def _digest_texts(message: bytes, key: bytes | None) -> Iterator[tuple[str, Callable[[bytes, bytes | None], str]]]:
    """Each way a learner may have hashed message (plain hash or HMAC; hex or base64), with a function redoing it."""
    for name in ("sha256", "sha1", "md5", "sha512"):

        def digest(data: bytes, secret: bytes | None, name: str = name) -> bytes:
            return (
                hmac.new(secret, data, name).digest() if secret is not None else hashlib.new(name, data).digest()
            )

        raw = digest(message, key)
        for encode in (bytes.hex, lambda r: _b64encode(r, "="), lambda r: _b64encode(r, "")):
            yield encode(raw), lambda data, secret, digest=digest, encode=encode: encode(digest(data, secret))


def _views(others: list[int], separator: str) -> list[Callable[[list[str]], bytes | None]]:
    """What a signature may be computed over or keyed with: the other parts joined, or one, as written or decoded."""
    views: list[Callable[[list[str]], bytes | None]] = [lambda ps: separator.join(ps[k] for k in others).encode()]
    for k in others:
        views += [lambda ps, k=k: ps[k].encode(), lambda ps, k=k: _b64decode(ps[k])]
    return views


def _resigned(token: str, cursor_id: int) -> Iterator[str]:
    """Cursors with the id edited and the signature recomputed from the cursor alone, when its signature allows it.

    That works when the signature is a plain hash of the rest, or an HMAC whose key travels inside the cursor.
    """
    whole = _b64decode(token)
    layers = [(token, lambda text: text)]
    if whole is not None and whole.isascii():
        layers.append((whole.decode(), lambda text: _b64encode(text.encode(), token)))
    for (layer, wrap), separator in itertools.product(layers, ".:|~"):
        parts = layer.split(separator)
        if not 2 <= len(parts) <= 5:
            continue
        for index, signature in enumerate(parts):
            views = _views([k for k in range(len(parts)) if k != index], separator)
            for message_of, key_of_parts in itertools.product(views, [lambda ps: None, *views]):
                message = message_of(parts)
                for found, redo in _digest_texts(message or b"", key_of_parts(parts)):
                    if message is None or len(signature) < 8 or found[: len(signature)] != signature:
                        continue
                    edited = [
                        p if k == index else _edit(p, str(cursor_id), str(cursor_id + 1)) or p
                        for k, p in enumerate(parts)
                    ]
                    edited[index] = redo(message_of(edited) or b"", key_of_parts(edited))[: len(signature)]
                    yield wrap(separator.join(edited))


@registry.exercise("4.2", points=3)
async def _check_cursors(encode: Callable[..., Any], decode: Callable[..., Any], db: CheckDB) -> None:
    for created_at, cursor_id in _SAMPLES:
        token = await call_learner(encode, created_at, cursor_id)
        expect(isinstance(token, str) and token, f"encode_cursor should return a non-empty str, got {token!r}")
        expect(
            _URL_SAFE.match(token),
            f"the cursor {token[:40]!r} is not URL-safe: use base64.urlsafe_b64encode or itsdangerous' URLSafeSerializer",
        )
        decoded = await call_learner(decode, token)
        expect(
            isinstance(decoded, tuple | list) and len(decoded) == 2,
            f"decode_cursor should return (created_at, id), got {decoded!r}",
        )
        got_at, got_id = decoded
        expect(isinstance(got_id, int), f"the id came back as {type(got_id).__name__} {got_id!r}, not int")
        expect(isinstance(got_at, datetime), f"created_at came back as {type(got_at).__name__}, not datetime")
        expect(
            got_at.tzinfo is not None,
            "created_at came back naive: the timezone was lost on the way (isoformat() keeps the offset)",
        )
        expect(
            (got_at, got_id) == (created_at, cursor_id),
            f"round trip changed the values: ({created_at.isoformat()}, {cursor_id}) came back as "
            f"({got_at.isoformat()}, {got_id})",
        )
        for forged, how in _forgeries(token, created_at, cursor_id):
            accepted, _ = await _decode_or_reject(decode, forged)
            expect(not accepted, f"a forged cursor was accepted ({how}): sign the cursor and always verify it")
        for forged in _resigned(token, cursor_id):
            accepted, value = await _decode_or_reject(decode, forged)
            expect(
                not accepted or _pair(value) == (created_at, cursor_id),
                "a forged cursor was accepted: its signature could be recomputed from the cursor itself (a plain "
                "hash, or a key that travels inside it), so anyone can edit it and sign it again. Sign with a "
                "secret key that never leaves the server",
            )
        for position, char in enumerate(token):
            for other in dict.fromkeys(("A" if char != "A" else "B", _similar(char))):
                accepted, value = await _decode_or_reject(decode, token[:position] + other + token[position + 1 :])
                value = _pair(value)
                expect(
                    not accepted or value == (created_at, cursor_id),
                    f"a cursor with character {position} changed was accepted and gave {value!r}: "
                    "anyone could edit it. Sign all of it and reject cursors whose signature does not match",
                )
    for garbage in _GARBAGE:
        accepted, value = await _decode_or_reject(decode, garbage)
        expect(not accepted, f"decode_cursor({garbage!r}) returned {value!r}: garbage must raise ValueError")


# --- 4.3 a page whose cost does not grow with depth --------------------------------------------------------------

EXPORT_LIMIT = 50
# A page far from the start may cost this many times a page read through the primary key, and no more.
COST_FACTOR = 5
_SCAN_STEP = re.compile(r"\b(?:SCAN|SEARCH)\s+(?:TABLE\s+)?(\w+)|\bScan(?: Backward)?(?: using \S+)? on (\w+)")


def _scans_of(plan: Any, table: str) -> int:
    """How many steps of the plan read table (directly or through an alias)."""
    names = [m.group(1) or m.group(2) for m in map(_SCAN_STEP.search, plan.lines) if m is not None]
    return sum(table in (name, plan.aliases.get(name)) for name in names)


async def _judge_cost(db: CheckDB, where: str, after: Key, clause: Any, params: Any) -> None:
    """A deep page must cost about what a page read by primary key costs; if not, say what makes it expensive."""
    by_key = select(Comment).order_by(Comment.id).limit(EXPORT_LIMIT)
    baseline = await statement_cost(db.engine, by_key, None)
    ratio = await statement_cost(db.engine, clause, params) / baseline
    if ratio <= COST_FACTOR:
        return
    cost = f"{where}, a page costs {ratio:.0f}× a page read through the primary key"
    seek = select(Comment).where(tuple_(Comment.created_at, Comment.id) > tuple_(*after))
    seek = seek.order_by(Comment.created_at, Comment.id).limit(EXPORT_LIMIT)
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
        f"{cost}: the plan walks the index from its first entry and filters, so the cursor does not seek. Write "
        "the condition on the bare columns as a row comparison, or created_at >= c AND (created_at > c OR id > i)",
    )


@registry.exercise("4.3", points=3)
async def _check_export_page(
    add_index: Callable[..., Any], comments_page: Callable[..., Any], db: CheckDB
) -> None:
    indexes_before = set(Comment.__table__.indexes)
    async with db.engine.connect() as conn:
        await call_learner(add_index, conn)
        await conn.commit()
    # An Index(...) built on the model's columns attaches itself to the shared metadata: detach it again.
    Comment.__table__.indexes.intersection_update(indexes_before)
    total = (await _fetch(db, select(func.count()).select_from(Comment)))[0][0]
    reference = select(Comment.id, Comment.created_at).order_by(Comment.created_at, Comment.id)
    measured = []
    for position in (0, total // 2, total - 30, total):
        # The check's own OFFSET finds the cursor row and the page after it (one query per position, not per page).
        rows = await _fetch(db, reference.offset(max(position - 1, 0)).limit(EXPORT_LIMIT + 1))
        after, want = (None, rows[:EXPORT_LIMIT]) if position == 0 else (key_of(rows[0]), rows[1:])
        async with db.Session() as session:
            with db.count_queries() as q, capture_statements(db.engine) as statements:
                page = await call_learner(comments_page, session, after=after, limit=EXPORT_LIMIT)
        one_page_statement(q, "comments_page", rows=EXPORT_LIMIT)
        page = rows_of(page, Comment, "comments_page")
        judge_page(page, want, set(), after, "asc")
        if position in (total // 2, total - 30):
            expect(
                statements,
                "comments_page must run a select(...) or text(...) statement so its cost can be measured",
            )
            where = "halfway through the comments" if position == total // 2 else "near the end"
            measured.append((where, after, *statements[-1]))
    # Halfway and near the end: a page that reads every earlier row shows up at least at one of them.
    for where, after, clause, params in measured:
        await _judge_cost(db, where, after, clause, params)


# --- 4.4 has a next page? limit + 1 --------------------------------------------------------------------------------

ORDERS_LIMIT = 10
# Pages of older orders the check gives its user, so a statement that reads them all costs visibly more.
ORDER_FILLER_PAGES = 30


async def _user_with_ties(db: CheckDB) -> int:
    """A user with many pages of orders, a multiple of the page size, with a tie across a page boundary."""
    async with db.engine.begin() as conn:
        # With this index a page reads about limit + 1 orders, so a statement that reads them all shows. Its id
        # is DESC on purpose: ties must not come out in the right order by accident (see 4.1).
        await conn.execute(text("CREATE INDEX ix_check_orders_user ON orders (user_id, created_at, id DESC)"))
    per_user = func.count()
    busy = select(Order.user_id, per_user).group_by(Order.user_id).having(per_user <= 3 * ORDERS_LIMIT)
    async with db.Session() as session, session.begin():
        user_id, count = (await session.execute(busy.order_by(per_user.desc(), Order.user_id).limit(1))).one()
        newest = select(Order.created_at).where(Order.user_id == user_id).order_by(Order.created_at.desc())
        stamps = list((await session.execute(newest)).scalars())
        boundary = stamps[min(8, len(stamps) - 1)]
        extra = 2 * ORDERS_LIMIT - count % ORDERS_LIMIT
        for n in range(extra):
            session.add(Order(user_id=user_id, status="paid", total_cents=100 * n, created_at=boundary))
        # Older orders, whole pages of them: counting them all would cost many times a page.
        for n in range(ORDER_FILLER_PAGES * ORDERS_LIMIT):
            older = stamps[-1] - timedelta(hours=n + 1)
            session.add(Order(user_id=user_id, status="paid", total_cents=n, created_at=older))
        # Another user's orders at the same instant must not leak into this user's pages.
        session.add(Order(user_id=1 if user_id != 1 else 2, status="paid", total_cents=1, created_at=boundary))
    async with db.engine.begin() as conn:
        # Fresh statistics, so the planner knows this user is no longer a quiet one and uses the index.
        await conn.execute(text("ANALYZE orders"))
    return user_id


@registry.exercise("4.4", points=2)
async def _check_orders_page(user_orders_page: Callable[..., Any], db: CheckDB) -> None:
    user_id = await _user_with_ties(db)
    want_all = await _expected(
        db, select(Order.id, Order.created_at).where(Order.user_id == user_id), reverse=True
    )
    expect(len(want_all) % ORDERS_LIMIT == 0, "check set-up error: the order count is not a multiple of the limit")
    seen: set[int] = set()
    after: Key | None = None
    position = 0
    first_page: tuple[Any, Any] | None = None
    for _ in range(len(want_all) // ORDERS_LIMIT + 2):
        async with db.Session() as session:
            with db.count_queries() as q, capture_statements(db.engine) as statements:
                result = await call_learner(user_orders_page, session, user_id, after=after, limit=ORDERS_LIMIT)
        expect(
            isinstance(result, tuple) and len(result) == 2,
            f"user_orders_page should return (orders, next_after), got {type(result).__name__}",
        )
        page, next_after = result
        expect(
            q.count <= 1 or any(skips_rows(s, p) for s, p in zip(q.statements, q.params, strict=True)),
            f"user_orders_page sent {q.count} statements for one page: to learn whether a next page exists, fetch "
            "limit + 1 rows in the same SELECT instead of asking again (a COUNT or a probe query)",
        )
        one_page_statement(q, "user_orders_page", rows=ORDERS_LIMIT + 1)
        first_page = first_page or (statements[-1] if statements else None)
        page = rows_of(page, Order, "user_orders_page")
        expect(
            len(page) <= ORDERS_LIMIT,
            f"user_orders_page returned {len(page)} orders for limit={ORDERS_LIMIT}: the extra row only tells "
            "you that a next page exists; leave it out of the page",
        )
        stranger = next((o.id for o in page if o.user_id != user_id), None)
        expect(stranger is None, f"order {stranger} belongs to another user: filter on user_id")
        judge_page(page, want_all[position : position + ORDERS_LIMIT], seen, after, "desc")
        seen.update(o.id for o in page)
        position += len(page)
        more = position < len(want_all)
        if not more:
            expect(
                next_after is None,
                "the last page still returned a next cursor, so the client would fetch an empty page: "
                "`len(rows) == limit` cannot tell a full last page from one with more after it. Fetch limit + 1",
            )
            break
        expect(next_after is not None, "next_after is None but more orders follow: the client would stop early")
        expect(
            tuple(next_after) == key_of(page[-1]),
            "next_after should be the (created_at, id) of the last order on the page",
        )
        after = tuple(next_after)
    else:
        fail("the walk never reached a page without a next cursor")
    if first_page is not None:
        await _judge_count_cost(db, user_id, *first_page)


async def _judge_count_cost(db: CheckDB, user_id: int, clause: Any, params: Any) -> None:
    """The first page must cost what reading limit + 1 rows costs: a total (count(*) over ()) reads every row."""
    newest = select(Order).where(Order.user_id == user_id).order_by(Order.created_at.desc(), Order.id.desc())
    ratio = await statement_cost(db.engine, clause, params) / await statement_cost(
        db.engine, newest.limit(ORDERS_LIMIT + 1), None
    )
    expect(
        ratio <= COST_FACTOR,
        f"the first page costs {ratio:.0f}× what reading limit + 1 orders costs: the statement reads every order "
        "of the user, as a total does (count(*) over () is a COUNT too). One row more than the page is all "
        "it takes to know that a next page exists",
    )
