"""The check of exercise 3.4: a learner's statement-budget helper, run around blocks that keep and break the budget."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select, update

from course.checks.base import CheckDB, LearnerCodeError, call_learner, expect, fail
from course.domain.models import Post, User

Block = Callable[[], Awaitable[None]]


class _BlockError(Exception):
    """Raised inside a block on purpose: the helper must let it out unchanged."""


def _listeners(db: CheckDB) -> int:
    """How many listeners the engine has, over every engine event (a helper may listen to any of them)."""
    dispatch = db.engine.sync_engine.dispatch
    names = getattr(dispatch, "_event_names", ("before_execute", "before_cursor_execute", "after_cursor_execute"))
    return sum(len(getattr(dispatch, name)) for name in names)


async def _run(at_most: Callable[..., Any], db: CheckDB, k: int, block: Block) -> BaseException | None:
    """Run block under at_most(engine, k); the AssertionError (or block error) that came out, or None."""
    helper = await call_learner(at_most, db.engine, k)
    expect(
        hasattr(helper, "__enter__") and hasattr(helper, "__exit__"),
        f"at_most(engine, {k}) returned {type(helper).__name__}, not a context manager for `with` "
        "(a generator function decorated with @contextlib.contextmanager is one)",
    )
    try:
        with helper:
            await block()
    except (AssertionError, _BlockError) as exc:
        return exc
    except NotImplementedError as exc:
        if not str(exc).startswith("Exercise"):
            raise LearnerCodeError(exc) from exc
        # A @contextmanager stub raises only when entered, not when called.
        fail(f"not solved yet ({exc}): replace the `raise NotImplementedError` line with your code")
    except Exception as exc:  # noqa: BLE001 - anything else came from the learner's __enter__/__exit__
        raise LearnerCodeError(exc) from exc
    return None


def _queries(db: CheckDB, n: int) -> Block:
    async def block() -> None:
        async with db.Session() as session:
            for i in range(n):
                await session.execute(select(User.id).where(User.id == i + 1))

    return block


def _in_savepoint(db: CheckDB) -> Block:
    """Two queries inside a transaction with a savepoint: BEGIN, SAVEPOINT, RELEASE, COMMIT are not queries."""

    async def block() -> None:
        async with db.Session() as session, session.begin():
            await session.execute(select(User.id).limit(1))
            async with session.begin_nested():
                await session.execute(select(Post.id).limit(1))

    return block


def _n_plus_one(db: CheckDB, users: int) -> Block:
    async def block() -> None:
        async with db.Session() as session:
            for user in (await session.scalars(select(User).order_by(User.id).limit(users))).all():
                await user.awaitable_attrs.posts

    return block


def _writes(db: CheckDB, n: int) -> Block:
    """n UPDATEs (of nothing: each writes a name back), rolled back: an N+1 of writes is an N+1 too."""

    async def block() -> None:
        async with db.Session() as session:
            for i in range(n):
                await session.execute(update(User).where(User.id == i + 1).values(name=User.name))
            await session.rollback()

    return block


def _raises(db: CheckDB) -> Block:
    async def block() -> None:
        async with db.Session() as session:
            await session.execute(select(User.id).limit(1))
        raise _BlockError("raised by the block")

    return block


async def judge_statement_helper(at_most: Callable[..., Any], db: CheckDB) -> None:
    before = _listeners(db)
    # Blocks within the budget pass, exactly k included, and transaction control is not counted. All are run
    # first: which of them a wrong helper rejects tells its mistake (SQLite's BEGIN reaches the driver as well).
    rejected: dict[str, tuple[int, str, str]] = {}
    for name, k, block, what in (
        ("exact", 2, _queries(db, 2), "sent exactly 2 statements"),
        ("under", 3, _queries(db, 1), "sent 1 statement"),
        ("nothing", 0, _queries(db, 0), "sent nothing"),
        ("savepoint", 2, _in_savepoint(db), "ran 2 queries inside a transaction with a savepoint"),
    ):
        outcome = await _run(at_most, db, k, block)
        if isinstance(outcome, AssertionError):
            rejected[name] = (k, what, _first_line(outcome))
    if rejected:
        hint = (
            "at most k means k statements are allowed"
            if "nothing" in rejected
            else "the budget is a maximum, not an exact count"
            if "under" in rejected
            else "BEGIN, SAVEPOINT, RELEASE and COMMIT are transaction control, not queries: leave them out"
        )
        k, what, said = next(iter(rejected.values()))
        fail(f"with k={k}, a block that {what} was rejected ({said}): {hint}")
    # Blocks over the budget fail with an AssertionError that says how many were sent.
    for k, block, sent in ((2, _queries(db, 3), 3), (1, _n_plus_one(db, 6), 7), (0, _queries(db, 1), 1)):
        outcome = await _run(at_most, db, k, block)
        expect(
            isinstance(outcome, AssertionError),
            f"with k={k}, a block that sent {sent} statements passed: the helper must raise AssertionError when "
            "the block sends more than k (count every statement sent through the engine while the block runs)",
        )
        expect(
            str(sent) in str(outcome),
            f"the AssertionError for a block that sent {sent} statements does not say how many: "
            f"{_first_line(outcome)!r}. Put the count (and ideally the statements) in the message",
        )
    outcome = await _run(at_most, db, 2, _writes(db, 3))
    expect(
        isinstance(outcome, AssertionError) and "3" in str(outcome),
        "with k=2, a block that sent 3 UPDATE statements passed (or its message did not say 3): writes are "
        "statements too. Count everything the block sends except transaction control",
    )
    # An error inside the block comes out as it is, within the budget and over it (the block sends 1 statement).
    for k in (5, 0):
        outcome = await _run(at_most, db, k, _raises(db))
        over = "" if k else ", even when the block also went over the budget (k=0)"
        expect(
            isinstance(outcome, _BlockError),
            f"an exception raised inside the block did not come out of the `with` unchanged{over} "
            f"({'it was swallowed' if outcome is None else type(outcome).__name__ + ' instead'}): a test helper "
            "must never hide the error of the code it watches; judge the budget only when the block ended normally",
        )
    expect(
        _listeners(db) == before,
        "after the blocks, your helper's event listeners are still on the engine: remove them when the block ends, "
        "error or not (event.remove in a finally)",
    )


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else type(exc).__name__
