"""The seed is verified before it is copied or graded: a damaged seed is rebuilt, with one line saying so."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from course import db
from course.cli.main import main
from course.db.postgres import admin as pg_admin
from course.seed import load, verify
from course.seed.status import read_meta
from course.settings import Settings, get_settings


@pytest.fixture
def sqlite_tiny(tmp_path: Path) -> Settings:
    settings = get_settings(
        scale="tiny", backend="sqlite", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"
    )
    load.seed(settings)
    return settings


def test_an_edited_sqlite_seed_is_rebuilt_before_the_next_copy(
    sqlite_tiny: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = load.seed_url(sqlite_tiny)
    original = verify.digest(url)
    assert verify.verified_seed(sqlite_tiny) == url
    assert capsys.readouterr().out == ""
    path = db.sqlite_path(url)
    before = path.stat()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE users SET name = 'mallory' WHERE id = (SELECT min(id) FROM users)")
    # Size and modification time put back: the change time, which nobody can set, still gives it away.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    verify.verified_seed(sqlite_tiny)
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "damaged" in said[0] and "rebuilding" in said[0]
    assert verify.digest(url) == original
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT count(*) FROM users WHERE name = 'mallory'").fetchone() == (0,)


def test_an_unchanged_sqlite_seed_costs_a_stat_per_copy(
    sqlite_tiny: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = load.seed_url(sqlite_tiny)
    record = verify._read_record(sqlite_tiny, url)
    assert record["digest"] == verify.digest(url) and record["fingerprint"] == verify.fingerprint(url)
    # A course engine opening the seed switches it to WAL mode and touches its files: that is no damage.
    asyncio.run(read_meta(url))
    verify.verified_seed(sqlite_tiny)
    assert verify.digest(url) == record["digest"] and "rebuilding" not in capsys.readouterr().out


@pytest.fixture
def pg_seed(pg_url: str) -> Settings:
    # A template of this test's own: damaging the shared seed would break other workers' tests.
    settings = get_settings(scale="tiny", database_url=pg_url)
    load.seed(settings)
    return settings


async def _execute(url: str, *statements: str) -> None:
    conn = await pg_admin.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def test_a_postgres_template_edited_or_disabled_is_restored(
    pg_seed: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = load.seed_url(pg_seed)
    original = verify.digest(url)
    name = db.parse_url(url).database
    admin = db.parse_url(url).set(database="postgres").render_as_string(hide_password=False)
    # A learner with the superuser URL: one row edited, one index dropped, then connections refused.
    asyncio.run(_execute(url, "UPDATE posts SET title = 'pwned' WHERE id = 1", "DROP INDEX ix_posts_author_id"))
    asyncio.run(_execute(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    verify.verified_seed(pg_seed)
    said = capsys.readouterr().out
    assert "connections were disallowed" in said and "rebuilding" in said
    assert verify.digest(url) == original


def test_course_seed_force_reopens_a_template_that_refuses_connections(
    pg_seed: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = load.seed_url(pg_seed)
    name = db.parse_url(url).database
    admin = db.parse_url(url).set(database="postgres").render_as_string(hide_password=False)
    lock_out = f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false CONNECTION LIMIT 0'
    asyncio.run(_execute(admin, lock_out))
    assert main(["seed", "--url", url, "--scale", "tiny"]) == 0
    assert "connections were disallowed, connection limit was 0" in capsys.readouterr().out
    asyncio.run(_execute(admin, lock_out))
    assert main(["seed", "--url", url, "--scale", "tiny", "--force"]) == 0
    assert "rows in" in capsys.readouterr().out
    assert verify.digest(url) == verify._read_record(pg_seed, url)["digest"]


def test_an_unchanged_postgres_seed_takes_the_one_query_path_and_a_locked_one_does_not(
    pg_seed: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = load.seed_url(pg_seed)
    verify.verified_seed(pg_seed)
    assert verify._unchanged(pg_seed, url)
    # Nothing but the template's connection limit changed: the fingerprint sees it, so the slow path repairs it.
    name = db.parse_url(url).database
    admin = db.parse_url(url).set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_execute(admin, f'ALTER DATABASE "{name}" CONNECTION LIMIT 0'))
    assert not verify._unchanged(pg_seed, url)
    verify.verified_seed(pg_seed)
    assert "connection limit was 0" in capsys.readouterr().out
    assert verify._unchanged(pg_seed, url)


# One edit per table of the models, each changing one stored value (or removing a row where every column is key).
_EDITS = {
    "course_meta": "UPDATE course_meta SET value = value || '.' WHERE key = 'scale'",
    "users": "UPDATE users SET deleted_at = created_at WHERE id = (SELECT min(id) FROM users WHERE deleted_at IS NULL)",
    "profiles": "UPDATE profiles SET bio = bio || '.' WHERE id = 1",
    "posts": "UPDATE posts SET created_at = created_at + interval '1 microsecond' WHERE id = 1",
    "comments": "UPDATE comments SET body = body || ' ' WHERE id = 1",
    "tags": "UPDATE tags SET name = name || 'x' WHERE id = 1",
    "post_tags": "DELETE FROM post_tags WHERE (post_id, tag_id) = (SELECT post_id, tag_id FROM post_tags LIMIT 1)",
    "products": "UPDATE products SET price_cents = price_cents + 1 WHERE id = 1",
    "orders": "UPDATE orders SET total_cents = total_cents + 1 WHERE id = 1",
    "order_items": "UPDATE order_items SET quantity = quantity + 1 WHERE id = 1",
    "accounts": "UPDATE accounts SET version = version + 1 WHERE id = 1",
    "transfers": "UPDATE transfers SET amount_cents = amount_cents + 1 WHERE id = 1",
}


def test_the_postgres_digest_is_the_loaders_and_moves_with_any_edited_row(pg_seed: Settings) -> None:
    """The digest the loader computed while seeding is the one digest() reads afterwards; one changed value in
    any table changes it."""
    from course.domain.models import Base

    assert set(_EDITS) == {t.name for t in Base.metadata.sorted_tables}, "every table needs an edit here"
    url = load.seed_url(pg_seed)
    seen = {verify._read_record(pg_seed, url)["digest"]}
    assert verify.digest(url) in seen
    for table, edit in _EDITS.items():
        asyncio.run(_execute(url, edit))
        now = verify.digest(url)
        assert now not in seen, f"an edited row in {table} left the digest unchanged"
        seen.add(now)
