"""Chapter 1 checks have teeth: the solution passes; the stub and plausible wrong answers fail with the right hint."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from course.chapters.ch01_crud.checks import check
from course.domain.models import Product, User
from course.settings import Settings
from tests import teeth

SOLVED = teeth.solved("solutions/01_crud.ipynb")


fails_with = partial(teeth.fails_with, check)


# --- 1.1 create_user ---------------------------------------------------------------------------------------


async def create_plain(session, *, email, name, password):
    user = User(email=email, name=name, password_hash=password)
    session.add(user)
    await session.flush()
    return user


async def create_and_commit(session, *, email, name, password):
    user = await SOLVED["create_user"](session, email=email, name=name, password=password)
    await session.commit()
    return user


async def create_unsalted(session, *, email, name, password):
    user = User(email=email, name=name, password_hash=hashlib.sha256(password.encode()).hexdigest())
    session.add(user)
    await session.flush()
    return user


async def create_without_flush(session, *, email, name, password):
    user = User(email=email, name=name, password_hash=SOLVED["hash_password"](password))
    session.add(user)
    return user


async def create_cheap_hash(session, *, email, name, password):
    # Verifies as argon2, but one pass over 8 KiB is far cheaper to guess than the course's settings.
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    user = User(email=email, name=name, password_hash=cheap.hash(password))
    session.add(user)
    await session.flush()
    return user


async def create_and_commit_connection(session, *, email, name, password):
    user = await SOLVED["create_user"](session, email=email, name=name, password=password)
    await (await session.connection()).commit()
    return user


async def create_then_roll_back(session, *, email, name, password):
    user = await SOLVED["create_user"](session, email=email, name=name, password=password)
    await session.rollback()
    return user


async def create_as_admin(session, *, email, name, password):
    # Red team: a sign-up that hands out roles.
    user = User(email=email, name=name, password_hash=SOLVED["hash_password"](password), role="admin")
    session.add(user)
    await session.flush()
    return user


async def create_with_display_name(session, *, email, name, password):
    # Red team: "filling in" the optional display name from the name.
    user = await SOLVED["create_user"](session, email=email, name=name, password=password)
    user.display_name = name
    await session.flush()
    return user


async def create_lowercased(session, *, email, name, password):
    # Red team: "normalising" the address the caller gave.
    return await SOLVED["create_user"](session, email=email.lower(), name=name, password=password)


async def create_and_refresh(session, *, email, name, password):
    user = await SOLVED["create_user"](session, email=email, name=name, password=password)
    await session.refresh(user)
    return user


async def create_with_insert_returning(session, *, email, name, password):
    values = {"email": email, "name": name, "password_hash": SOLVED["hash_password"](password)}
    return await session.scalar(insert(User).values(**values).returning(User))


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (create_plain, "plain text"),
        (create_as_admin, "keeps the model's default"),
        (create_with_display_name, "keeps the model's default"),
        (create_lowercased, "not exactly what was given"),
        (create_and_commit, "committed the transaction"),
        (create_unsalted, "not an argon2 hash"),
        (create_without_flush, "no id yet"),
        (create_cheap_hash, "other settings than the course's"),
        (create_and_commit_connection, "committed the transaction"),
        (create_then_roll_back, "ended the caller's transaction"),
    ],
)
async def test_create_user_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.1", fragment, wrong)


@pytest.mark.parametrize("answer", [create_and_refresh, create_with_insert_returning])
async def test_create_user_accepts(tiny: Settings, answer: Any) -> None:
    await check("1.1", answer, settings=tiny)


# --- 1.2 get_user_by_email ---------------------------------------------------------------------------------


async def get_including_deleted(session, email):
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def get_by_fstring(session, email):
    rows = await session.execute(
        select(User).from_statement(text(f"SELECT * FROM users WHERE email = '{email}' AND deleted_at IS NULL"))
    )
    return rows.scalar_one_or_none()


async def get_with_scalar_one(session, email):
    return (await session.execute(select(User).where(User.email == email, User.deleted_at.is_(None)))).scalar_one()


async def get_with_ilike(session, email):
    return await session.scalar(select(User).where(User.email.ilike(email), User.deleted_at.is_(None)))


async def get_containing(session, email):
    stmt = select(User).where(User.email.contains(email), User.deleted_at.is_(None))
    return (await session.execute(stmt)).scalars().first()


async def get_by_scanning(session, email):
    for user in (await session.execute(select(User))).scalars():
        if user.email == email and user.deleted_at is None:
            return user
    return None


async def get_row(session, email):
    stmt = select(User.id, User.email, User.name).where(User.email == email, User.deleted_at.is_(None))
    return (await session.execute(stmt)).one_or_none()


async def get_active_only(session, email):
    stmt = select(User).where(User.email == email, User.status == "active", User.deleted_at.is_(None))
    return await session.scalar(stmt)


async def get_lowercased(session, email):
    stmt = select(User).where(func.lower(User.email) == email.lower(), User.deleted_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_filter_by(session, email):
    return (await session.scalars(select(User).filter_by(email=email, deleted_at=None))).first()


async def get_and_commit(session, email):
    # A read that "cleans up" after itself: it ends the caller's transaction.
    user = await SOLVED["get_user_by_email"](session, email)
    await session.commit()
    return user


async def get_in_own_transaction(session, email):
    async with session.begin():
        return await SOLVED["get_user_by_email"](session, email)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (get_and_commit, "committed the transaction"),
        (get_in_own_transaction, "transaction of its own"),
        (get_including_deleted, "soft-deleted user was returned"),
        # Red team: case-insensitive lookups read "exactly" differently.
        (get_lowercased, "exactly as stored"),
        (get_by_fstring, "pasted into the SQL text"),
        (get_with_scalar_one, "NoResultFound"),
        (get_with_ilike, "wildcards"),
        (get_containing, "whole address"),
        (get_by_scanning, "never receives the email"),
        (get_row, "got Row"),
        (get_active_only, "suspended is a status"),
    ],
)
async def test_get_by_email_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.2", fragment, wrong)


@pytest.mark.parametrize("answer", [get_filter_by])
async def test_get_by_email_accepts(tiny: Settings, answer: Any) -> None:
    await check("1.2", answer, settings=tiny)


# --- 1.3 list_users ----------------------------------------------------------------------------------------


async def list_ignoring_role(session, *, status=None, role=None, limit=20, offset=0):
    return await SOLVED["list_users"](session, status=status, limit=limit, offset=offset)


async def list_with_deleted(session, *, status=None, role=None, limit=20, offset=0):
    stmt = select(User)
    if status is not None:
        stmt = stmt.where(User.status == status)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return list((await session.execute(stmt.order_by(User.id).limit(limit).offset(offset))).scalars())


async def list_in_python(session, *, status=None, role=None, limit=20, offset=0):
    users = [u for u in (await session.execute(select(User))).scalars() if u.deleted_at is None]
    users = [u for u in users if (status is None or u.status == status) and (role is None or u.role == role)]
    return users[offset:]


async def list_sliced_in_python(session, *, status=None, role=None, limit=20, offset=0):
    users = await list_in_python(session, status=status, role=role, offset=offset)
    return sorted(users, key=lambda u: u.id)[:limit]


async def list_rows(session, *, status=None, role=None, limit=20, offset=0):
    stmt = select(User.id, User.name, User.deleted_at).where(User.deleted_at.is_(None))
    if status is not None:
        stmt = stmt.where(User.status == status)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return list((await session.execute(stmt.order_by(User.id).limit(limit).offset(offset))).all())


async def list_dicts(session, *, status=None, role=None, limit=20, offset=0):
    users = await SOLVED["list_users"](session, status=status, role=role, limit=limit, offset=offset)
    return [{"id": u.id, "name": u.name} for u in users]


async def list_filter_by(session, *, status=None, role=None, limit=20, offset=0):
    given = {key: value for key, value in {"status": status, "role": role}.items() if value is not None}
    stmt = select(User).filter_by(deleted_at=None, **given).order_by(User.id).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all()


def _filtered(status, role):
    stmt = select(User).where(User.deleted_at.is_(None))
    if status is not None:
        stmt = stmt.where(User.status == status)
    if role is not None:
        stmt = stmt.where(User.role == role)
    return stmt


async def list_without_order(session, *, status=None, role=None, limit=20, offset=0):
    return list(await session.scalars(_filtered(status, role).limit(limit).offset(offset)))


async def list_ignoring_offset(session, *, status=None, role=None, limit=20, offset=0):
    return list(await session.scalars(_filtered(status, role).order_by(User.id).limit(limit)))


async def list_with_own_defaults(session, *, status=None, role=None, limit=10, offset=0):
    return await SOLVED["list_users"](session, status=status, role=role, limit=limit, offset=offset)


async def list_null_filters(session, *, status=None, role=None, limit=20, offset=0):
    # `None` compared as a value: WHERE status IS NULL finds nobody.
    stmt = select(User).where(User.deleted_at.is_(None), User.status == status, User.role == role)
    return list(await session.scalars(stmt.order_by(User.id).limit(limit).offset(offset)))


async def list_descending(session, *, status=None, role=None, limit=20, offset=0):
    # Red team: "newest first" habits.
    return list(
        await session.scalars(_filtered(status, role).order_by(User.id.desc()).limit(limit).offset(offset))
    )


async def list_offset_as_page_number(session, *, status=None, role=None, limit=20, offset=0):
    # Red team: offset read as a page number.
    return list(
        await session.scalars(_filtered(status, role).order_by(User.id).limit(limit).offset(offset * limit))
    )


async def list_and_commit(session, *, status=None, role=None, limit=20, offset=0):
    users = await SOLVED["list_users"](session, status=status, role=role, limit=limit, offset=offset)
    await session.commit()
    return users


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (list_without_order, "has no ORDER BY"),
        (list_ignoring_offset, "not this page"),
        (list_with_own_defaults, "not the expected users"),
        (list_null_filters, "not the expected users"),
        (list_and_commit, "committed the transaction"),
        (list_descending, "not this page"),
        (list_offset_as_page_number, "not this page"),
        (list_ignoring_role, "is every filter applied"),
        (list_with_deleted, "soft-deleted"),
        (list_in_python, "is limit applied"),
        (list_sliced_in_python, "has no LIMIT"),
        (list_rows, "got Row"),
        (list_dicts, "got dict"),
    ],
)
async def test_list_users_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.3", fragment, wrong)


async def test_list_users_accepts_filter_by(tiny: Settings) -> None:
    await check("1.3", list_filter_by, settings=tiny)


# --- 1.4 update_user ---------------------------------------------------------------------------------------


async def update_every_field(session, user_id, changes):
    user = await session.get(User, user_id)
    for field, value in changes.model_dump().items():
        setattr(user, field, value)
    await session.flush()
    return user


async def update_without_timestamp(session, user_id, changes):
    for field, value in changes.model_dump(exclude_unset=True).items():
        await session.execute(text(f"UPDATE users SET {field} = :v WHERE id = :id"), {"v": value, "id": user_id})
    session.expire_all()
    return await session.get(User, user_id)


async def update_and_commit(session, user_id, changes):
    user = await SOLVED["update_user"](session, user_id, changes)
    await session.commit()
    return user


async def update_known_fields(session, user_id, changes):
    user = await session.get(User, user_id)
    if user is None:
        return None
    for field in ("name", "role", "status"):
        if getattr(changes, field) is not None:
            setattr(user, field, getattr(changes, field))
    await session.flush()
    return user


async def update_naive_unflushed(session, user_id, changes):
    user = await session.get(User, user_id)
    if user is None:
        return None
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    user.updated_at = datetime.now()  # noqa: DTZ005 - the mistake under test
    return user


async def update_and_commit_connection(session, user_id, changes):
    user = await SOLVED["update_user"](session, user_id, changes)
    await (await session.connection()).commit()
    return user


async def update_unflushed(session, user_id, changes):
    # The caller's next query or commit flushes; the model's onupdate moves updated_at.
    user = await session.get(User, user_id)
    if user is None:
        return None
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    return user


async def update_with_core(session, user_id, changes):
    live = select(User).where(User.id == user_id, User.deleted_at.is_(None))
    sent = changes.model_dump(exclude_unset=True)
    if not sent:
        return await session.scalar(live)
    # A Core UPDATE is always sent, so the model's onupdate moves updated_at even for unchanged values.
    stmt = update(User).where(User.id == user_id, User.deleted_at.is_(None)).values(**sent)
    if (await session.execute(stmt)).rowcount == 0:
        return None
    session.expire_all()
    return await session.scalar(live)


async def update_exclude_none(session, user_id, changes):
    # Right for every field but display_name: a null sent to clear it is dropped like a field never sent.
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    sent = changes.model_dump(exclude_none=True)
    for field, value in sent.items():
        setattr(user, field, value)
    if sent:
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_skipping_none_values(session, user_id, changes):
    # The class: model_dump() of every field, None taken to mean "not sent".
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    sent = {field: value for field, value in changes.model_dump().items() if value is not None}
    for field, value in sent.items():
        setattr(user, field, value)
    if changes.model_fields_set:
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_exclude_defaults(session, user_id, changes):
    # Every default of UserUpdate is None, so a null sent to clear display_name looks like a default and is dropped.
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    sent = changes.model_dump(exclude_defaults=True)
    for field, value in sent.items():
        setattr(user, field, value)
    if changes.model_fields_set:
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_nulls_nullable_fields(session, user_id, changes):
    # model_dump() with None skipped only where the column is NOT NULL: an unsent nullable field is wiped.
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    for field, value in changes.model_dump().items():
        if value is not None or User.__table__.c[field].nullable:
            setattr(user, field, value)
    if changes.model_fields_set:
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_bumps_for_values_only(session, user_id, changes):
    # Applies a null, but decides about updated_at from the values that are not None.
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    if changes.model_dump(exclude_none=True):
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_from_fields_set(session, user_id, changes):
    # Correct another way: the set of field names pydantic recorded, read one attribute at a time.
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    for field in changes.model_fields_set:
        setattr(user, field, getattr(changes, field))
    if changes.model_fields_set:
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_local_labelled_utc(session, user_id, changes):
    user = await SOLVED["update_user"](session, user_id, changes)
    if user is not None and changes.model_fields_set:
        user.updated_at = datetime.now().replace(tzinfo=UTC)  # noqa: DTZ005 - the mistake under test
        await session.flush()
    return user


async def update_deleted_too(session, user_id, changes):
    user = await session.get(User, user_id)
    if user is None:
        return None
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    if changes.model_fields_set:
        user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


async def update_always_bumps(session, user_id, changes):
    user = await session.scalar(select(User).where(User.id == user_id, User.deleted_at.is_(None)))
    if user is None:
        return None
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr(user, field, value)
    user.updated_at = datetime.now(UTC)
    await session.flush()
    return user


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (update_unflushed, "set updated_at yourself"),
        (update_local_labelled_utc, "hours from the current time"),
        (update_deleted_too, "soft-deleted user was updated"),
        (update_always_bumps, "an update with no fields changed the row"),
        (update_every_field, "apply only the fields that were set"),
        (update_without_timestamp, "updated_at was not moved forward"),
        (update_and_commit, "committed the transaction"),
        (update_known_fields, "change of email was not saved"),
        (update_naive_unflushed, "naive datetime"),
        (update_and_commit_connection, "committed the transaction"),
        (update_exclude_none, "explicit null was ignored"),
        (update_skipping_none_values, "explicit null was ignored"),
        (update_exclude_defaults, "explicit null was ignored"),
        (update_nulls_nullable_fields, "a field the client left out keeps its stored value"),
        (update_bumps_for_values_only, "a field sent as null is a field sent"),
    ],
)
async def test_update_user_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.4", fragment, wrong)


@pytest.mark.parametrize("answer", [update_with_core, update_from_fields_set])
async def test_update_user_accepts(tiny: Settings, answer: Any) -> None:
    await check("1.4", answer, settings=tiny)


# --- 1.5 soft delete ---------------------------------------------------------------------------------------


async def hard_delete(session, user_id):
    await session.execute(delete(User).where(User.id == user_id))


async def suspend_instead(session, user_id):
    user = await session.get(User, user_id)
    user.status = "suspended" if user.status == "active" else "active"
    user.deleted_at = SOLVED["datetime"].now(SOLVED["UTC"])


async def naive_delete(session, user_id):
    user = await session.get(User, user_id)
    user.deleted_at = datetime.now()  # noqa: DTZ005 - the mistake under test
    await session.flush()


async def restore_nothing(session, user_id):
    return None


async def delete_everyone(session, user_id):
    await session.execute(update(User).values(deleted_at=datetime.now(UTC)))


async def restore_everyone(session, user_id):
    await session.execute(update(User).where(User.deleted_at.is_not(None)).values(deleted_at=None))


async def restore_as_active(session, user_id):
    user = await session.get(User, user_id)
    user.deleted_at, user.status = None, "active"
    await session.flush()


async def naive_delete_unflushed(session, user_id):
    user = await session.get(User, user_id)
    user.deleted_at = datetime.now()  # noqa: DTZ005 - the mistake under test


async def delete_later(session, user_id):
    user = await session.get(User, user_id)
    user.deleted_at = datetime.now(UTC) + timedelta(days=30)
    await session.flush()


async def delete_and_commit_connection(session, user_id):
    await SOLVED["soft_delete_user"](session, user_id)
    await (await session.connection()).commit()


async def delete_in_local_time(session, user_id):
    # Aware local time names the same instant as UTC: the column stores it as UTC.
    user = await session.get(User, user_id)
    if user is not None and user.deleted_at is None:
        user.deleted_at = datetime.now().astimezone()
        await session.flush()


async def delete_with_database_clock(session, user_id):
    live = (User.id == user_id) & User.deleted_at.is_(None)
    await session.execute(update(User).where(live).values(deleted_at=func.now()))


async def delete_local_labelled_utc(session, user_id):
    user = await session.get(User, user_id)
    if user is not None and user.deleted_at is None:
        user.deleted_at = datetime.now().replace(tzinfo=UTC)  # noqa: DTZ005 - the mistake under test
        await session.flush()


async def delete_again(session, user_id):
    user = await session.get(User, user_id)
    if user is not None:
        user.deleted_at = datetime.now(UTC)
        await session.flush()


async def restore_missing_raises(session, user_id):
    user = await session.get_one(User, user_id)
    user.deleted_at = None
    await session.flush()


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        ((hard_delete, "restore_user"), "row was deleted from the table"),
        ((suspend_instead, "restore_user"), "changed status"),
        ((naive_delete, "restore_user"), "naive datetime"),
        (("soft_delete_user", restore_nothing), "restore_user left deleted_at set"),
        ((delete_everyone, "restore_user"), "users as deleted: change only the row"),
        (("soft_delete_user", restore_everyone), "brought back other deleted users"),
        (("soft_delete_user", restore_as_active), "with status 'active'"),
        ((naive_delete_unflushed, "restore_user"), "naive datetime"),
        ((delete_later, "restore_user"), "the current time"),
        ((delete_and_commit_connection, "restore_user"), "committed the transaction"),
        ((delete_local_labelled_utc, "restore_user"), "hours from the current time"),
        ((delete_again, "restore_user"), "already deleted moved deleted_at"),
        (("soft_delete_user", restore_missing_raises), "NoResultFound"),
    ],
)
async def test_soft_delete_rejects(tiny: Settings, wrong: tuple[Any, Any], fragment: str) -> None:
    fns = [SOLVED[f] if isinstance(f, str) else f for f in wrong]
    await fails_with(tiny, "1.5", fragment, *fns)


@pytest.mark.parametrize("soft_delete", [delete_in_local_time, delete_with_database_clock])
async def test_soft_delete_accepts(tiny: Settings, soft_delete: Any) -> None:
    await check("1.5", soft_delete, SOLVED["restore_user"], settings=tiny)


# --- 1.6 search --------------------------------------------------------------------------------------------


async def search_fstring(session, term):
    sql = f"SELECT * FROM users WHERE deleted_at IS NULL AND lower(name) LIKE lower('%{term}%') ORDER BY id"
    return list((await session.execute(select(User).from_statement(text(sql)))).scalars())


async def search_unescaped(session, term):
    stmt = select(User).where(User.deleted_at.is_(None), User.name.ilike(f"%{term}%"))
    return list((await session.execute(stmt)).scalars())


async def search_case_sensitive(session, term):
    stmt = select(User).where(User.deleted_at.is_(None), User.name.contains(term, autoescape=True))
    return list((await session.execute(stmt)).scalars())


def _live_names_like(pattern: str, **escape: str) -> Any:
    return select(User).where(User.deleted_at.is_(None), User.name.ilike(pattern, **escape)).order_by(User.id)


async def search_escaping_all_but_backslash(session, term):
    escaped = term.replace("%", "\\%").replace("_", "\\_")
    return list(await session.scalars(_live_names_like(f"%{escaped}%", escape="\\")))


async def search_escaping_everything(session, term):
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return list(await session.scalars(_live_names_like(f"%{escaped}%", escape="\\")))


async def search_names_and_emails(session, term):
    matches = or_(User.name.icontains(term, autoescape=True), User.email.icontains(term, autoescape=True))
    return list(await session.scalars(select(User).where(User.deleted_at.is_(None), matches)))


async def search_including_deleted(session, term):
    return list(await session.scalars(select(User).where(User.name.icontains(term, autoescape=True))))


async def search_in_python(session, term):
    users = await session.scalars(select(User).where(User.deleted_at.is_(None)))
    return [user for user in users if term.lower() in user.name.lower()]


async def search_rows(session, term):
    stmt = select(User.id, User.name).where(User.deleted_at.is_(None), User.name.icontains(term, autoescape=True))
    return (await session.execute(stmt)).all()


async def search_lowered(session, term):
    lowered = func.lower(User.name).contains(term.lower(), autoescape=True)
    return list(await session.scalars(select(User).where(User.deleted_at.is_(None), lowered)))


async def search_and_commit(session, term):
    users = await SOLVED["search_users"](session, term)
    await session.commit()
    return users


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (search_and_commit, "committed the transaction"),
        (search_fstring, "user input"),
        (search_unescaped, "LIKE wildcards"),
        # SQLite's LIKE ignores ASCII case; the check makes it as strict as PostgreSQL's.
        (search_case_sensitive, "must ignore case"),
        (search_escaping_all_but_backslash, "backslash"),
        (search_names_and_emails, "email contains it"),
        (search_including_deleted, "soft-deleted users"),
        (search_in_python, "never sent the term"),
        (search_rows, "got Row"),
    ],
)
async def test_search_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.6", fragment, wrong)


@pytest.mark.parametrize("answer", [search_escaping_everything, search_lowered])
async def test_search_accepts(tiny: Settings, answer: Any) -> None:
    await check("1.6", answer, settings=tiny)


# --- 1.7 upsert (stretch) -----------------------------------------------------------------------------------


async def _dialect_insert(session):
    name = (await session.connection()).dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


async def _upsert(session, rows, *, set_extra=None, bump=True, count=None):
    """An ON CONFLICT upsert; the keyword arguments make the plausible mistakes."""
    if not rows:
        return (0, 0)
    now = datetime.now(UTC)
    make_insert = await _dialect_insert(session)
    stmt = make_insert(Product).values([{**r, "created_at": now, "updated_at": now} for r in rows])
    set_ = {"name": stmt.excluded.name, "price_cents": stmt.excluded.price_cents}
    if bump:
        set_["updated_at"] = stmt.excluded.updated_at
    set_.update((set_extra or (lambda s: {}))(stmt))
    stmt = stmt.on_conflict_do_update(index_elements=[Product.sku], set_=set_)
    returned = (await session.execute(stmt.returning(Product.created_at, Product.updated_at))).all()
    if count is not None:
        return count(rows, returned)
    inserted = sum(1 for created, updated in returned if created == updated)
    return (inserted, len(returned) - inserted)


async def upsert_created_equals_updated(session, rows):
    # Correct another way: a new row has created_at == updated_at; an updated one keeps its older created_at.
    return await _upsert(session, rows)


async def upsert_pg_xmax_or_sqlite(session, rows):
    # Correct on PostgreSQL the idiomatic way: xmax = 0 marks a row this statement inserted.
    if not rows:
        return (0, 0)
    if (await session.connection()).dialect.name != "postgresql":
        return await _upsert(session, rows)
    stmt = postgresql.insert(Product).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Product.sku],
        set_={"name": stmt.excluded.name, "price_cents": stmt.excluded.price_cents, "updated_at": func.now()},
    )
    flags = (await session.execute(stmt.returning(text("xmax = 0")))).scalars().all()
    return (sum(flags), len(flags) - sum(flags))


async def upsert_select_first(session, rows):
    if not rows:
        return (0, 0)
    known = set(await session.scalars(select(Product.sku).where(Product.sku.in_([r["sku"] for r in rows]))))
    result = await _upsert(session, rows)
    return (len(rows) - len(known & {r["sku"] for r in rows}), len(known)) if result else result


async def upsert_do_nothing(session, rows):
    if not rows:
        return (0, 0)
    make_insert = await _dialect_insert(session)
    now = datetime.now(UTC)
    stmt = make_insert(Product).values([{**r, "created_at": now, "updated_at": now} for r in rows])
    inserted = (await session.execute(stmt.on_conflict_do_nothing().returning(Product.id))).all()
    return (len(inserted), len(rows) - len(inserted))


async def upsert_overwrites_created_at(session, rows):
    return await _upsert(session, rows, set_extra=lambda stmt: {"created_at": stmt.excluded.created_at})


async def upsert_without_updated_at(session, rows):
    return await _upsert(session, rows, bump=False, count=lambda rows, returned: (len(rows) - 3, 3))


async def upsert_counts_rows_sent(session, rows):
    return await _upsert(session, rows, count=lambda rows, returned: (len(rows), 0))


async def upsert_and_commit(session, rows):
    result = await _upsert(session, rows)
    await session.commit()
    return result


async def upsert_local_labelled_utc(session, rows):
    if not rows:
        return (0, 0)
    local = datetime.now().replace(tzinfo=UTC)  # noqa: DTZ005 - the mistake under test
    make_insert = await _dialect_insert(session)
    stmt = make_insert(Product).values([{**r, "created_at": local, "updated_at": local} for r in rows])
    stmt = stmt.on_conflict_do_update(
        index_elements=[Product.sku],
        set_={"name": stmt.excluded.name, "price_cents": stmt.excluded.price_cents, "updated_at": local},
    )
    created = (await session.execute(stmt.returning(Product.created_at))).scalars().all()
    inserted = sum(1 for value in created if value == local)
    return (inserted, len(created) - inserted)


async def upsert_upper_cased(session, rows):
    return await _upsert(session, [{**r, "sku": r["sku"].upper()} for r in rows])


async def upsert_empty_sends_anyway(session, rows):
    if not rows:
        # An INSERT of nothing: a round trip for no row.
        await session.execute(select(func.count()).select_from(Product))
        return (0, 0)
    return await _upsert(session, rows)


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (upsert_select_first, "statements for 10 rows"),
        (upsert_do_nothing, "an existing product kept its old name or price"),
        (upsert_overwrites_created_at, "changed its created_at"),
        (upsert_without_updated_at, "updated_at did not move"),
        (upsert_counts_rows_sent, "returned (inserted, updated) = (10, 0)"),
        (upsert_and_commit, "committed the transaction"),
        (upsert_local_labelled_utc, "hours from the current time"),
        (upsert_upper_cased, "are not in products afterwards"),
        (upsert_empty_sends_anyway, "an empty list sent 1 statement"),
    ],
)
async def test_upsert_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.7", fragment, wrong)


@pytest.mark.parametrize("answer", [upsert_created_equals_updated, upsert_pg_xmax_or_sqlite])
async def test_upsert_accepts(tiny: Settings, answer: Any) -> None:
    await check("1.7", answer, settings=tiny)


async def test_learner_exception_is_reported_with_its_line(tiny: Settings) -> None:
    async def broken(session, email):
        return 1 / 0

    await fails_with(tiny, "1.2", "ZeroDivisionError", broken)


async def test_infinite_loop_is_stopped(tiny: Settings) -> None:
    from course.chapters.ch01_crud.checks import registry

    async def spin(session, email):
        while True:
            pass

    exercise = registry.exercises["1.2"]
    original, exercise.timeout = exercise.timeout, 1.0
    try:
        await fails_with(tiny, "1.2", "did not finish within", spin)
    finally:
        exercise.timeout = original


async def test_drop_table_inside_a_check_leaves_the_seed_intact(tiny: Settings) -> None:
    from course import seed

    async def vandal(session, email):
        await session.execute(text("DROP TABLE comments"))
        await session.commit()
        return None

    await asyncio.to_thread(seed.ensure_seed, tiny, progress=False, announce=False)
    before = await seed.content_checksum(seed.seed_url(tiny))
    await fails_with(tiny, "1.2", "committed the transaction", vandal)
    assert await seed.content_checksum(seed.seed_url(tiny)) == before
    await check("1.2", SOLVED["get_user_by_email"], settings=tiny)
