"""Chapter 1 checks have teeth: the solution passes; the stub and plausible wrong answers fail with the right hint."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import delete, select, text

from course.checks.base import ExerciseFailed
from course.checks.ch01_crud import check
from course.models import User
from course.settings import Settings, get_settings
from tests.nbsource import notebook_namespace

SOLVED = notebook_namespace("solutions/01_crud.ipynb")
STUBS = notebook_namespace("exercises/01_crud.ipynb")


async def fails_with(settings: Settings, exercise: str, fragment: str, *fns: Any) -> None:
    with pytest.raises(ExerciseFailed) as info:
        await check(exercise, *fns, settings=settings)
    assert fragment in str(info.value), str(info.value)
    assert str(info.value).startswith(f"❌ Exercise {exercise}:")


EXERCISES = {
    "1.1": ["create_user"],
    "1.2": ["get_user_by_email"],
    "1.3": ["list_users"],
    "1.4": ["update_user"],
    "1.5": ["soft_delete_user", "restore_user"],
    "1.6": ["search_users"],
}


@pytest.mark.parametrize("exercise", EXERCISES)
async def test_solution_passes(tiny: Settings, exercise: str, capsys: pytest.CaptureFixture[str]) -> None:
    await check(exercise, *(SOLVED[name] for name in EXERCISES[exercise]), settings=tiny)
    assert f"✅ Exercise {exercise} passed" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", EXERCISES)
async def test_stub_fails(tiny: Settings, exercise: str) -> None:
    await fails_with(tiny, exercise, "not solved yet", *(STUBS[name] for name in EXERCISES[exercise]))


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (create_plain, "plain text"),
        (create_and_commit, "committed the transaction"),
        (create_unsalted, "not an argon2 hash"),
        (create_without_flush, "no id yet"),
    ],
)
async def test_create_user_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.1", fragment, wrong)


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (get_including_deleted, "soft-deleted user was returned"),
        (get_by_fstring, "pasted into the SQL text"),
        (get_with_scalar_one, "NoResultFound"),
    ],
)
async def test_get_by_email_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.2", fragment, wrong)


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (list_ignoring_role, "is every filter applied"),
        (list_with_deleted, "soft-deleted"),
        (list_in_python, "is limit applied"),
    ],
)
async def test_list_users_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.3", fragment, wrong)


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (update_every_field, "model_dump(exclude_unset=True)"),
        (update_without_timestamp, "updated_at was not moved forward"),
        (update_and_commit, "committed the transaction"),
    ],
)
async def test_update_user_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.4", fragment, wrong)


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        ((hard_delete, "restore_user"), "row was deleted from the table"),
        ((suspend_instead, "restore_user"), "changed status"),
        ((naive_delete, "restore_user"), "naive datetime"),
        (("soft_delete_user", restore_nothing), "restore_user left deleted_at set"),
    ],
)
async def test_soft_delete_rejects(tiny: Settings, wrong: tuple[Any, Any], fragment: str) -> None:
    fns = [SOLVED[f] if isinstance(f, str) else f for f in wrong]
    await fails_with(tiny, "1.5", fragment, *fns)


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


@pytest.mark.parametrize(
    ("wrong", "fragment"),
    [
        (search_fstring, "user input"),
        (search_unescaped, "LIKE wildcards"),
    ],
)
async def test_search_rejects(tiny: Settings, wrong: Any, fragment: str) -> None:
    await fails_with(tiny, "1.6", fragment, wrong)


async def test_case_sensitive_search_is_rejected_where_like_is_case_sensitive(pg_admin_url: str) -> None:
    # SQLite's LIKE ignores ASCII case, so this mistake only shows on PostgreSQL.
    settings = get_settings(scale="tiny", backend="postgres")
    await fails_with(settings, "1.6", "case-insensitive", search_case_sensitive)


async def test_learner_exception_is_reported_with_its_line(tiny: Settings) -> None:
    async def broken(session, email):
        return 1 / 0

    await fails_with(tiny, "1.2", "ZeroDivisionError", broken)


async def test_infinite_loop_is_stopped(tiny: Settings) -> None:
    from course.checks.ch01_crud import registry

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
    await fails_with(tiny, "1.2", "no user returned", vandal)
    assert await seed.content_checksum(seed.seed_url(tiny)) == before
    await check("1.2", SOLVED["get_user_by_email"], settings=tiny)
