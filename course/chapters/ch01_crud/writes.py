"""Checks of chapter 1's writes: the partial update (1.4) and soft delete with restore (1.5)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from course.chapters.ch01_crud.common import call_in_callers_transaction, deleted_count, live_suspended, pick_users
from course.checks.base import CheckDB, LearnerCodeError, expect, fail
from course.checks.sessions import flush_learner_changes
from course.domain.models import User
from course.domain.schemas import UserUpdate

# A time no update of this check's can produce: a value still equal to it afterwards was not moved.
_LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
_COLUMNS = text("SELECT name, display_name, email, role, status, updated_at, deleted_at FROM users WHERE id = :id")


async def _row(session: AsyncSession, user_id: int) -> Any:
    session.expire_all()
    return (await session.execute(_COLUMNS, {"id": user_id})).one()


async def _stored_time(session: AsyncSession, user_id: int, column: str) -> datetime | None:
    """A timestamp column as the database holds it, through the model's UTC type."""
    session.expire_all()
    user = await session.get_one(User, user_id)
    value: datetime | None = getattr(user, column)
    return value


def expect_now(value: datetime | None, start: datetime, what: str) -> None:
    """value is the current time: after start, not in the future (a local time labelled UTC is hours off)."""
    expect(value is not None, f"{what} is empty")
    assert value is not None
    now = datetime.now(UTC)
    if not start <= value <= now + timedelta(seconds=2):
        hours = (value - now).total_seconds() / 3600
        fail(
            f"{what} is {hours:+.1f} hours from the current time. The check runs your code with the local clock "
            "9.5 hours ahead of UTC: a local time labelled UTC, or a made-up time, shows up like this. Take the "
            "current time in UTC (timezone-aware)"
        )


async def _apply(update_user: Callable[..., Any], session: AsyncSession, user_id: int, changes: UserUpdate) -> Any:
    """Call update_user and flush what it changed; NULLs in fields nobody sent get their own hint."""
    try:
        user = await call_in_callers_transaction(session, update_user, user_id, changes)
        await session.flush()
    except (LearnerCodeError, StatementError) as exc:
        if "null" in str(getattr(exc, "original", exc)).lower():
            fail(
                "fields the client did not send were set to NULL: apply only the fields that were set in `changes`, "
                "not every field of the model"
            )
        if isinstance(exc, StatementError):
            fail(f"your changes could not be saved: {str(exc.orig).splitlines()[0]}")
        raise
    return user


async def _age(session: AsyncSession, user_id: int) -> None:
    """Put updated_at far in the past, so the next call visibly moves it, or visibly does not."""
    await session.execute(update(User).where(User.id == user_id).values(updated_at=_LONG_AGO))
    session.expire_all()


async def check_update_user(update_user: Callable[..., Any], db: CheckDB) -> None:
    alive, gone = await pick_users(db)
    async with db.Session() as session, session.begin():
        await _age(session, alive.id)
        start = datetime.now(UTC) - timedelta(seconds=1)
        user = await _apply(update_user, session, alive.id, UserUpdate(name="Renamed Person"))
        expect(isinstance(user, User), f"update_user should return the User, got {type(user).__name__}")
        row = await _row(session, alive.id)
        expect(row.name == "Renamed Person", "the name was not changed in the database")
        expect(
            (row.email, row.role, row.status) == (alive.email, alive.role, alive.status),
            "fields the client did not send were changed: apply only the fields that were set in `changes`",
        )
        expect(
            await _stored_time(session, alive.id, "updated_at") != _LONG_AGO,
            "updated_at was not moved forward by the update",
        )
        expect_now(await _stored_time(session, alive.id, "updated_at"), start, "updated_at")
        two = await _apply(update_user, session, alive.id, UserUpdate(role="moderator", status="suspended"))
        expect(
            (two.role, two.status, two.name) == ("moderator", "suspended", "Renamed Person"),
            "a second partial update lost a field",
        )
        # Every field of UserUpdate can be sent, email included: the function must not know a fixed list.
        await _apply(update_user, session, alive.id, UserUpdate(email="Renamed.Person@example.com"))
        row = await _row(session, alive.id)
        expect(
            (row.email, row.name, row.status) == ("Renamed.Person@example.com", "Renamed Person", "suspended"),
            "a change of email was not saved as sent (or it undid earlier changes): apply whichever fields the "
            "client sent, as they are",
        )
        # The text: an explicit null clears a nullable field. The seed leaves display_name NULL everywhere, so set
        # one first: only a stored value shows whether a null that was sent is applied or dropped.
        await session.execute(update(User).where(User.id == alive.id).values(display_name="Ren"))
        await _apply(update_user, session, alive.id, UserUpdate(role="admin"))
        row = await _row(session, alive.id)
        expect(
            (row.role, row.display_name) == ("admin", "Ren"),
            f"an update that sent only role changed display_name to {row.display_name!r} (or did not save the role): "
            "a field the client left out keeps its stored value, nullable or not",
        )
        await _age(session, alive.id)
        await _apply(update_user, session, alive.id, UserUpdate.model_validate({"display_name": None}))
        row = await _row(session, alive.id)
        expect(
            row.display_name is None,
            f"the client sent display_name as null, which clears it, but it still holds {row.display_name!r}: the "
            "explicit null was ignored, as if the field had not been sent. A field left out and a field sent as "
            "null are different requests",
        )
        expect(
            (row.name, row.email) == ("Renamed Person", "Renamed.Person@example.com"),
            "clearing display_name changed other fields: apply only the fields that were set in `changes`",
        )
        # Null again, now that the column holds NULL: nothing changes but updated_at, which must move.
        await _age(session, alive.id)
        await _apply(update_user, session, alive.id, UserUpdate.model_validate({"display_name": None}))
        expect(
            await _stored_time(session, alive.id, "updated_at") != _LONG_AGO,
            "display_name sent as null (it was NULL already) left updated_at alone: a field sent as null is a "
            "field sent, and a sent field moves updated_at. The ORM sends no UPDATE when no value changed, so set "
            "updated_at yourself",
        )
        # The text: a sent field moves updated_at even when its value is the one already stored.
        await _age(session, alive.id)
        await _apply(update_user, session, alive.id, UserUpdate(name="Renamed Person"))
        expect(
            await _stored_time(session, alive.id, "updated_at") != _LONG_AGO,
            "a PATCH that sent a field (with the value it already had) left updated_at alone: the exercise says a "
            "sent field moves it. The ORM sends no UPDATE when no value changed, so set updated_at yourself",
        )
        # ...and an empty one changes nothing at all.
        await _age(session, alive.id)
        before = await _row(session, alive.id)
        same = await _apply(update_user, session, alive.id, UserUpdate())
        expect(getattr(same, "id", None) == alive.id, "an empty update should still return the user")
        expect(
            await _row(session, alive.id) == before,
            "an update with no fields changed the row (updated_at included): with nothing sent, change nothing",
        )
        missing = await call_in_callers_transaction(session, update_user, 10**9, UserUpdate(name="Ghost"))
        expect(missing is None, "updating a user that does not exist should return None")
        was = await _row(session, gone.id)
        result = await _apply(update_user, session, gone.id, UserUpdate(name="Back From The Dead"))
        expect(
            result is None and await _row(session, gone.id) == was,
            "a soft-deleted user was updated (or returned): for the application that user is gone, so "
            "update_user returns None and changes nothing",
        )
        nothing = await _apply(update_user, session, gone.id, UserUpdate())
        expect(
            nothing is None and await _row(session, gone.id) == was,
            "an empty update of a soft-deleted user returned that user: with or without fields sent, a soft-deleted "
            "user is gone, so update_user returns None",
        )


# Every column a soft delete or a restore must leave alone (updated_at may move, deleted_at is the point).
_KEPT = text(
    "SELECT email, name, display_name, role, status, password_hash, external_id, created_at FROM users WHERE id = :id"
)
# What a user's soft delete must not touch in other tables: their posts stay as they are (live or deleted).
_DELETED_POSTS = text("SELECT count(*) FROM posts WHERE deleted_at IS NOT NULL")


async def _kept(session: AsyncSession, user_id: int) -> dict[str, Any]:
    session.expire_all()
    return dict((await session.execute(_KEPT, {"id": user_id})).one()._mapping)


def _expect_kept(before: dict[str, Any], after: dict[str, Any], what: str) -> None:
    changed = [column for column in before if before[column] != after[column]]
    expect(
        not changed,
        f"{what} changed {', '.join(changed)}: it may set or clear deleted_at (and updated_at may move), "
        "nothing else, so the row can come back exactly as it was",
    )


async def check_soft_delete(
    soft_delete_user: Callable[..., Any], restore_user: Callable[..., Any], db: CheckDB
) -> None:
    alive, gone = await pick_users(db)
    suspended = await live_suspended(db)
    before = datetime.now(UTC) - timedelta(seconds=1)
    async with db.Session() as session, session.begin():
        deleted_before = await deleted_count(session)
        # A display name to keep (the seed leaves most of them NULL) and posts of their own to leave alone.
        await session.execute(
            text("UPDATE users SET display_name = 'Kept Display Name' WHERE id = :id"), {"id": alive.id}
        )
        await session.execute(
            text("UPDATE posts SET author_id = :id, deleted_at = NULL WHERE id IN (SELECT min(id) FROM posts)"),
            {"id": alive.id},
        )
        deleted_posts = (await session.execute(_DELETED_POSTS)).scalar_one()
        kept = await _kept(session, alive.id)
        try:
            await call_in_callers_transaction(session, soft_delete_user, alive.id)
        except LearnerCodeError as exc:
            statement = str(getattr(exc.original, "statement", "")).lstrip().upper()
            if isinstance(exc.original, IntegrityError) and statement.startswith("DELETE"):
                fail(
                    "the row was deleted from the table (the database refused: orders and accounts point to "
                    "it): a soft delete keeps the row and only marks it"
                )
            raise
        await flush_learner_changes(session)
        row = (await session.execute(text("SELECT status FROM users WHERE id = :id"), {"id": alive.id})).first()
        expect(
            row is not None, "the row was deleted from the table: a soft delete keeps the row and only marks it"
        )
        session.expire_all()
        user = await session.get_one(User, alive.id)
        expect(user.deleted_at is not None, "deleted_at is still empty after the soft delete")
        expect_now(user.deleted_at, before, "deleted_at")
        expect(user.status == alive.status, "the soft delete changed status: deleted_at alone marks a deletion")
        _expect_kept(kept, await _kept(session, alive.id), "the soft delete")
        marked = await deleted_count(session) - deleted_before
        expect(
            marked == 1, f"deleting one user marked {marked} users as deleted: change only the row with that id"
        )
        expect(
            (await session.execute(_DELETED_POSTS)).scalar_one() == deleted_posts,
            "the soft delete of a user soft-deleted posts too: it marks the user's row only (whether their posts "
            "still show is the application's query to decide, and a restore could not tell which posts to bring back)",
        )
        await call_in_callers_transaction(session, restore_user, alive.id)
        await flush_learner_changes(session)
        session.expire_all()
        user = await session.get_one(User, alive.id)
        expect(user.deleted_at is None, "restore_user left deleted_at set: a restored user has no deletion time")
        _expect_kept(kept, await _kept(session, alive.id), "deleting and restoring the user")
        expect(
            await deleted_count(session) == deleted_before,
            "restoring one user brought back other deleted users too: change only the row with that id",
        )
        await call_in_callers_transaction(session, restore_user, alive.id)
        await flush_learner_changes(session)
        session.expire_all()
        expect(
            (await session.get_one(User, alive.id)).deleted_at is None,
            "restore_user on a user who is not deleted marked them deleted: restoring only ever clears deleted_at",
        )
        # Deleting and restoring a suspended user must give back a suspended user, not an active one.
        await call_in_callers_transaction(session, soft_delete_user, suspended.id)
        await flush_learner_changes(session)
        session.expire_all()
        expect(
            (await session.get_one(User, suspended.id)).deleted_at is not None,
            "a suspended user was not soft-deleted: suspended users are live (not deleted), so soft_delete_user "
            "marks them like any other live user",
        )
        await call_in_callers_transaction(session, restore_user, suspended.id)
        await flush_learner_changes(session)
        session.expire_all()
        back = await session.get_one(User, suspended.id)
        expect(
            back.status == "suspended",
            f"a suspended user came back from delete and restore with status {back.status!r}: "
            "restoring undoes the deletion only, and leaves every other column as it was",
        )
        # The text: an already deleted user keeps the time of its deletion; a missing id is no error.
        first_deleted = await _stored_time(session, gone.id, "deleted_at")
        await call_in_callers_transaction(session, soft_delete_user, gone.id)
        await flush_learner_changes(session)
        expect(
            await _stored_time(session, gone.id, "deleted_at") == first_deleted,
            "deleting a user who was already deleted moved deleted_at: it should keep the time of the first "
            "deletion, which audits and undo rely on",
        )
        for fn in (soft_delete_user, restore_user):
            await call_in_callers_transaction(session, fn, 10**9)
