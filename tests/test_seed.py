"""Seeding is deterministic, identical on both backends, rebuilt when stale, and never destroys a good seed."""

import sqlite3
import threading
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from course import db, seed
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.errors import CourseError
from course.seed import fresh, pg_build, pg_load
from course.seed import generate as seed_data
from course.seed import load as seed_load
from course.settings import Settings, get_settings

TINY_ROWS = {t.table: t.count for t in seed_data.build_tables("tiny", "sqlite")}


def _sqlite_target(tmp_path: Path, name: str = "seed.sqlite3") -> str:
    return db.sqlite_url(tmp_path / name).render_as_string()


def test_generation_is_deterministic_and_backend_neutral() -> None:
    a = [list(t.rows()) for t in seed_data.build_tables("tiny", "sqlite")]
    b = [list(t.rows()) for t in seed_data.build_tables("tiny", "sqlite")]
    assert a == b
    pg = seed_data.build_tables("tiny", "postgres")
    assert [t.count for t in pg] == [len(rows) for rows in a]


def test_data_has_skew_and_tied_timestamps() -> None:
    tables = {t.table: list(t.rows()) for t in seed_data.build_tables("small", "sqlite")}
    authors = Counter(row[1] for row in tables["posts"])
    top = sum(n for _, n in authors.most_common(50))
    assert top > 0.3 * len(tables["posts"]), "the 1% most active users should write a large share of posts"
    assert sum(1 for n in authors.values() if n <= 2) > 1000, "and many users should write almost nothing"
    created = Counter(row[6] for row in tables["posts"])
    assert sum(n for n in created.values() if n > 1) > 1000, "posts need tied created_at values"


async def test_same_rows_on_two_runs_and_both_backends(tmp_path: Path, pg_url: str) -> None:
    first, second = _sqlite_target(tmp_path, "a.sqlite3"), _sqlite_target(tmp_path, "b.sqlite3")
    settings = get_settings(scale="tiny")
    for url in (first, second, pg_url):
        await aio_to_thread(seed.seed, settings, url=url)
    sums = [await seed.content_checksum(url) for url in (first, second, pg_url)]
    assert sums[0] == sums[1] == sums[2]
    assert len(sums[0]) == 64


async def aio_to_thread(fn, *args, **kwargs):
    import asyncio

    return await asyncio.to_thread(fn, *args, **kwargs)


def test_seed_reports_rows_and_marks_itself_complete(tmp_path: Path) -> None:
    url = _sqlite_target(tmp_path)
    report = seed.seed(get_settings(scale="tiny"), url=url)
    assert report.rows == TINY_ROWS
    assert report.seconds > 0
    status = seed.status(get_settings(scale="tiny"), url=url)
    assert status.ok, status.reason


def test_stale_seed_is_rebuilt_not_reused(tmp_path: Path) -> None:
    url = _sqlite_target(tmp_path)
    seed.seed(get_settings(scale="tiny"), url=url)
    with sqlite3.connect(db.sqlite_path(url)) as con:
        con.execute("UPDATE course_meta SET value = '0' WHERE key = 'schema_version'")
    settings = get_settings(scale="tiny", database_url=url)
    assert "schema_version" in seed.status(settings).reason
    seed.ensure_seed(settings, progress=False, announce=False)
    assert seed.status(settings).ok
    # A seed of another scale is not taken for this one.
    assert not seed.status(get_settings(scale="small", database_url=url)).ok


def test_failed_seed_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = _sqlite_target(tmp_path)
    seed.seed(get_settings(scale="tiny"), url=url)
    before = db.sqlite_path(url).read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(seed_load, "load_sqlite", broken)
    with pytest.raises(RuntimeError):
        seed.seed(get_settings(scale="tiny"), url=url)
    assert db.sqlite_path(url).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["seed.sqlite3"], "no half-built file is left behind"


TINY = get_settings(scale="tiny")


@pytest.fixture
async def before(pg_url: str) -> str:
    """pg_url seeded at tiny; its content checksum, which a failed or refused build must leave as it was."""
    await aio_to_thread(seed.seed, TINY, url=pg_url)
    return await seed.content_checksum(pg_url)


async def test_failed_postgres_seed_keeps_old_rows(
    pg_url: str, before: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = seed_data.build_tables

    def failing(scale: str, backend: str):
        tables = real(scale, backend)
        tables[3] = seed_data.TableRows("comments", tables[3].columns, 1, lambda: [["boom"]])
        return tables

    monkeypatch.setattr(pg_build, "build_tables", failing)
    with pytest.raises(Exception):  # noqa: B017 - asyncpg's own error type is not the point
        await aio_to_thread(seed.seed, TINY, url=pg_url)
    assert await seed.content_checksum(pg_url) == before
    assert (await aio_to_thread(seed.status, TINY, url=pg_url)).ok
    assert await _schemas(pg_url) == ["public"], "the half-built tables are dropped with their schema"


async def test_a_session_ended_mid_copy_is_one_line_and_keeps_the_old_seed(
    pg_url: str, before: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the build's sessions while a COPY is sending rows (asyncpg used to wait forever there)."""
    name = db.parse_url(pg_url).database
    admin = db.parse_url(pg_url).set(database="postgres").render_as_string(hide_password=False)

    async def end_sessions() -> None:
        conn = await pg_admin.connect(admin)
        try:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        finally:
            await conn.close()

    real = pg_load._counted

    def counted(rows, on_rows, size=20_000):  # noqa: ANN001, ANN202 - pg_load._counted's own signature
        ended = False
        for row in real(rows, on_rows, size):
            if not ended:  # mid-COPY: the first row is being sent
                ended = True
                ending = threading.Thread(target=lambda: aio.run(end_sessions()))
                ending.start()
                ending.join()
            yield row

    monkeypatch.setattr(pg_load, "_counted", counted)
    with pytest.raises(CourseError, match="PostgreSQL ended the seeding session.*the old seed is kept"):
        await aio_to_thread(seed.seed, TINY, url=pg_url)
    assert await seed.content_checksum(pg_url) == before
    assert await _schemas(pg_url) == ["public"]


async def test_a_session_holding_the_old_tables_is_named_and_the_old_seed_kept(
    pg_url: str, before: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook's transaction left open on the seed: the swap waits LOCK_PATIENCE_S for it, then says who it is."""
    monkeypatch.setattr(pg_build, "LOCK_PATIENCE_S", 1)
    holder = await pg_admin.connect(pg_url)
    try:
        await holder.execute("SET application_name = 'a learner kernel'; BEGIN; SELECT count(*) FROM users")
        only_the_holder = (
            r"in use for 1 s by pid \d+ \(a learner kernel, idle in transaction\); the old seed is kept"
        )
        with pytest.raises(CourseError, match=only_the_holder):
            await aio_to_thread(seed.seed, TINY, url=pg_url)
        await holder.execute("ROLLBACK")
    finally:
        await holder.close()
    assert await seed.content_checksum(pg_url) == before
    assert await _schemas(pg_url) == ["public"]
    await aio_to_thread(seed.seed, TINY, url=pg_url)  # once the session has gone, the seed is built
    assert await seed.content_checksum(pg_url) == before


@pytest.mark.parametrize("landed", [True, False], ids=["after-the-commit", "before-the-commit"])
async def test_a_session_ended_at_the_commit_tells_which_seed_is_there(
    pg_url: str, before: str, landed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last COMMIT's answer is lost with the session: the build asks the server whether its tables are in."""
    old_users = await _users_oid(pg_url)

    async def commit_then_lose(main: asyncpg.Connection) -> None:
        if landed:
            await main.execute("COMMIT")
        main.terminate()
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(pg_build, "_commit", commit_then_lose)
    if landed:
        report = await aio_to_thread(seed.seed, TINY, url=pg_url)
        assert report.rows == TINY_ROWS
        assert await _users_oid(pg_url) != old_users, "the new seed is in place"
    else:
        with pytest.raises(CourseError, match="ended the seeding session.*the old seed is kept"):
            await aio_to_thread(seed.seed, TINY, url=pg_url)
        assert await _users_oid(pg_url) == old_users
    assert await seed.content_checksum(pg_url) == before
    assert (await aio_to_thread(seed.status, TINY, url=pg_url)).ok
    assert await _schemas(pg_url) == ["public"]


async def _users_oid(url: str) -> int:
    conn = await pg_admin.connect(url)
    try:
        return await conn.fetchval("SELECT 'public.users'::regclass::oid")
    finally:
        await conn.close()


async def test_a_killed_postgres_build_is_cleared_by_the_next(pg_url: str, before: str) -> None:
    """A build killed before its swap leaves its schema (and the old seed as it was); the next build drops it."""
    conn = await pg_admin.connect(pg_url)
    try:
        await conn.execute(
            f"CREATE SCHEMA {pg_build.BUILD_SCHEMA}; CREATE TABLE {pg_build.BUILD_SCHEMA}.users (x int)"
        )
    finally:
        await conn.close()
    assert await seed.content_checksum(pg_url) == before
    await aio_to_thread(seed.seed, TINY, url=pg_url)
    assert await _schemas(pg_url) == ["public"]
    assert await seed.content_checksum(pg_url) == before


async def _schemas(url: str) -> list[str]:
    conn = await pg_admin.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        )
    finally:
        await conn.close()
    return sorted(r["nspname"] for r in rows)


def test_corrupt_seed_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "seed.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CourseError, match="damaged") as info:
        seed.status(get_settings(scale="tiny"), url=db.sqlite_url(path).render_as_string())
    assert "\n" not in str(info.value)


async def test_new_rows_get_fresh_ids_after_seeding(tiny: Settings) -> None:

    async with fresh.fresh_copy(tiny) as copy:
        engine = db.make_engine(url=copy.url)
        async with engine.begin() as conn:
            new_id = (
                await conn.execute(text("INSERT INTO tags (name) VALUES ('brand-new-tag') RETURNING id"))
            ).scalar_one()
        await engine.dispose()
    assert new_id == TINY_ROWS["tags"] + 1


def test_ensure_seed_builds_a_missing_seed(data_dir: Path) -> None:
    settings = get_settings(scale="tiny")
    url = aio.run(_ensure(settings))
    assert db.sqlite_path(url).parent == data_dir
    assert seed.status(settings).ok


async def _ensure(settings: Settings) -> str:
    return seed.ensure_seed(settings, progress=False, announce=False)


def test_a_users_own_database_is_never_replaced_silently(tmp_path: Path) -> None:
    path = tmp_path / "mine.sqlite3"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE notes (body TEXT)")
        con.execute("INSERT INTO notes VALUES ('precious')")
    settings = get_settings(scale="tiny", database_url=db.sqlite_url(path).render_as_string())
    current = seed.status(settings)
    assert current.foreign and not current.ok
    with pytest.raises(CourseError, match="course seed --url"):
        seed.ensure_seed(settings, progress=False, announce=False)
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT body FROM notes").fetchall() == [("precious",)]


def test_an_empty_file_is_simply_seeded(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    path.touch()
    settings = get_settings(scale="tiny", database_url=db.sqlite_url(path).render_as_string())
    assert not seed.status(settings).foreign
    seed.ensure_seed(settings, progress=False, announce=False)
    assert seed.status(settings).ok


async def test_checksum_of_a_missing_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "nothing.sqlite3"
    with pytest.raises(CourseError):
        await seed.content_checksum(db.sqlite_url(path))
    assert not path.exists()


async def test_postgres_database_with_other_tables_is_foreign(pg_url: str) -> None:

    conn = await pg_admin.connect(pg_url)
    await conn.execute("CREATE TABLE notes (body text)")
    await conn.close()
    settings = get_settings(scale="tiny", database_url=pg_url)
    current = await aio_to_thread(seed.status, settings)
    assert current.foreign and "other tables" in current.reason


def _schema(sync_conn) -> dict:
    """Everything the inspector reports about the domain tables, in a comparable form."""
    from sqlalchemy import inspect

    inspector = inspect(sync_conn)
    found = {}
    for table in sorted(inspector.get_table_names()):
        found[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table),
            "fks": sorted(
                (
                    str(fk.get("name")),
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    str(fk.get("options")),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                (str(u["name"]), tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "checks": sorted((str(c["name"]), c["sqltext"]) for c in inspector.get_check_constraints(table)),
        }
    return found


async def test_seeded_schema_equals_create_all(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Loading into bare tables and adding constraints and indexes afterwards builds exactly the models' schema."""
    from course.domain.models import Base

    seeded, reference = await _two_databases(backend, tmp_path, request)
    await aio_to_thread(seed.seed, get_settings(scale="tiny"), url=seeded)
    engine = db.make_engine(url=reference)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with engine.connect() as conn:
            want = await conn.run_sync(_schema)
    finally:
        await engine.dispose()
    engine = db.make_engine(url=seeded)
    try:
        async with engine.connect() as conn:
            got = await conn.run_sync(_schema)
    finally:
        await engine.dispose()
    assert got == want
    assert sum(len(t["indexes"]) for t in got.values()) >= 10
    if backend == "postgres":
        assert sum(len(t["fks"]) for t in got.values()) >= 10 and sum(len(t["unique"]) for t in got.values()) >= 4


async def _two_databases(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    if backend == "sqlite":
        return _sqlite_target(tmp_path, "seeded.sqlite3"), _sqlite_target(tmp_path, "reference.sqlite3")

    admin = request.getfixturevalue("pg_admin_url")
    urls = []
    for name in ("seeded", "reference"):
        url = db.parse_url(admin).set(database=f"course_test_schema_{name}_{tmp_path.name[-8:].lower()}")
        await pg_admin.create_database_if_missing(url)
        rendered = url.render_as_string(hide_password=False)
        request.addfinalizer(lambda rendered=rendered: aio.run(pg_admin.drop_database(rendered)))
        urls.append(rendered)
    return urls[0], urls[1]
