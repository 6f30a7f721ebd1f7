"""A shared PostgreSQL is safe for a class: a run reaps only copies whose owner is provably gone or long idle."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from course import db
from course.db import copies
from course.db.postgres import admin as pg_admin
from course.db.postgres import owners
from course.db.postgres import provider as postgres
from course.settings import get_settings

HOURS = 3600


@pytest.fixture
def live_stranger() -> Iterator[int]:
    # A live process on this machine that is not the one a copy names: what a recycled pid looks like.
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
async def server(pg_url: str) -> AsyncIterator[tuple[str, str, float]]:
    """(template URL, a prefix no one else uses, the server's clock now); every copy made here is dropped after."""
    prefix = f"course_test_owners_{secrets.token_hex(3)}_"
    conn = await pg_admin.connect(pg_url)
    try:
        server_now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
    finally:
        await conn.close()
    yield pg_url, prefix, server_now
    admin = db.parse_url(pg_url).set(database="postgres")
    conn = await pg_admin.connect(admin)
    try:
        names = [
            r[0]
            for r in await conn.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
        ]
    finally:
        await conn.close()
    for name in names:
        await pg_admin.drop_database(admin.set(database=name))


async def _exists(template: str, name: str) -> bool:
    return await pg_admin.database_exists(db.parse_url(template).set(database="postgres"), name)


async def test_two_owners_on_one_server(server: tuple[str, str, float], live_stranger: int) -> None:
    template, prefix, now = server
    me = owners.this_process()
    other = "laptop-17.classroom/2b1c"
    cases = {
        # name: (owner, keep a connection open, should survive)
        "other_live_old": (owners.Owner(other, 4242, "1.00", now - 7 * HOURS), True, True),
        "other_idle_old": (owners.Owner(other, 4242, "1.00", now - 7 * HOURS), False, False),
        "other_idle_recent": (owners.Owner(other, 4242, "1.00", now - 1 * HOURS), False, True),
        # Same pid as ours but another machine: its process id says nothing here.
        "other_with_my_pid": (owners.Owner(other, me.pid, "1.00", now - 1 * HOURS), False, True),
        "mine_alive_old": (owners.Owner(me.machine, me.pid, me.start, now - 30 * HOURS), False, True),
        "here_dead_recent": (owners.Owner(me.machine, _dead_pid(), "1.00", now - 60), False, False),
        "here_recycled_pid": (owners.Owner(me.machine, live_stranger, "1.00", now - 60), False, False),
        "no_owner_old": (None, False, True),
    }
    urls = {}
    for name, (owner, _, _) in cases.items():
        urls[name] = await pg_admin.copy_database(template, prefix + name, owner=owner)
    # A learner on the other laptop is working in this copy right now.
    held = await pg_admin.connect(urls["other_live_old"])
    try:
        dropped = await pg_admin.drop_abandoned_copies(db.parse_url(template).set(database="postgres"), prefix)
        survivors = {name for name in cases if await _exists(template, prefix + name)}
        assert await held.fetchval("SELECT 1") == 1
    finally:
        await held.close()
    assert survivors == {name for name, (_, _, keep) in cases.items() if keep}
    assert sorted(dropped) == sorted(prefix + name for name, (_, _, keep) in cases.items() if not keep)


async def test_a_copy_records_its_owner_and_the_servers_clock(server: tuple[str, str, float]) -> None:
    template, prefix, now = server
    url = await pg_admin.copy_database(template, prefix + "stamped", owner=owners.this_process())
    conn = await pg_admin.connect(url)
    try:
        comment = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    owner = owners.parse(comment)
    assert owner is not None and owner.created is not None
    assert owner == owners.Owner(
        owners.this_machine(), owners.this_process().pid, owners.this_process().start, owner.created
    )
    assert abs(owner.created - now) < 60
    # Our own live copy is never reaped by our own run.
    assert await pg_admin.drop_abandoned_copies(db.parse_url(template).set(database="postgres"), prefix) == []


async def test_course_copies_carry_an_owner_and_a_name_old_versions_cannot_misread() -> None:
    name = copies.postgres_copy_name()
    assert name.startswith(copies.COPY_PREFIX)
    # Older versions did int(name[len(prefix):].split("_")[0]) and dropped the copy if that pid was dead locally.
    with pytest.raises(ValueError):
        int(name[len(copies.COPY_PREFIX) :].split("_")[0])


@pytest.mark.parametrize(
    "comment",
    [
        None,
        "",
        "a note from the DBA",
        "{}",
        json.dumps({"kind": "something-else", "pid": 1}),
        json.dumps({"kind": "course-copy", "pid": "x"}),
        "[1, 2]",
    ],
)
def test_a_comment_that_is_not_an_owner_is_never_reaped(comment: str | None) -> None:
    assert owners.parse(comment) is None
    assert owners.verdict(None, connections=0, server_now=1e12) is None


def test_the_owner_survives_its_comment() -> None:
    owner = owners.Owner("host/boot", 12, "3.50", 1700000000.0)
    assert owners.parse(owner.comment()) == owner


async def test_old_copies_without_an_owner_go_only_when_idle_and_old(server: tuple[str, str, float]) -> None:
    template, prefix, now = server
    info = postgres.status(get_settings(backend="postgres"))
    if info is None or info.data_dir is None:
        pytest.skip("needs the course's local server, whose files can be aged")
    admin = db.parse_url(template).set(database="postgres")
    # Names as copies were made before they recorded an owner: <prefix><pid>_<8 hex>.
    old, recent, old_in_use = (f"{prefix}{pid}_{secrets.token_hex(4)}" for pid in (4242, 4243, 4244))
    urls = {name: await pg_admin.copy_database(template, name) for name in (old, recent, old_in_use)}
    conn = await pg_admin.connect(admin)
    try:
        for name in (old, old_in_use):
            oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = $1", name)
            seven_hours_ago = now - 7 * HOURS
            os.utime(info.data_dir / "base" / str(oid) / "PG_VERSION", (seven_hours_ago, seven_hours_ago))
    finally:
        await conn.close()
    held = await pg_admin.connect(urls[old_in_use])
    try:
        assert await pg_admin.drop_abandoned_copies(admin, prefix) == [old]
    finally:
        await held.close()
    assert await _exists(template, recent) and await _exists(template, old_in_use)
