"""Chapter 8's machinery: a private Alembic folder per database, its async env.py, and the backfill helpers, on both
backends, against real databases."""

from __future__ import annotations

import asyncio

import pytest
from alembic import op
from sqlalchemy import inspect, text

from course import db
from course.chapters.ch08_migrations import backfill, schema
from course.chapters.ch08_migrations.workspace import Migrations, body_of
from course.domain.models import NAMING_CONVENTION
from course.errors import CourseError


async def _tables(url: str) -> set[str]:
    engine = db.make_engine(url=url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_reach_the_models_and_go_back(empty_url: str) -> None:
    migrations = Migrations(empty_url, schema.customers_v1())
    try:
        assert await migrations.current() == ()
        await migrations.revision("create customers", rev_id="0001")
        # Run from a coroutine, as a notebook cell does: env.py's own event loop lives in a worker thread.
        await migrations.upgrade("head")
        assert await migrations.current() == ("0001",)
        assert await migrations.diff() == []

        migrations.models = schema.customers_v2()
        second = await migrations.revision("rename", rev_id="0002")
        # What the lesson shows: autogenerate turns a rename into drop + add.
        generated = body_of(second)
        assert "drop_column(" in generated and "'fullname')" in generated
        assert "add_column(" in generated and "sa.Column('display_name'" in generated
        await migrations.upgrade("head")
        assert await migrations.diff() == []
        assert migrations.heads() == ("0002",)

        await migrations.downgrade("base")
        assert await migrations.current() == ()
        assert "customers" not in await _tables(empty_url)
    finally:
        migrations.close()
    assert not migrations.folder.exists()


async def test_compare_server_default_is_what_finds_a_changed_default(empty_url: str) -> None:
    migrations = Migrations(empty_url, schema.customers_v2())
    try:
        await migrations.revision("v2", rev_id="0001")
        await migrations.upgrade("head")
        assert await migrations.diff(schema.customers_v3(), compare_server_default=False) == []
        kinds = [d[0][0] for d in await migrations.diff(schema.customers_v3()) if isinstance(d, list)]
        assert kinds == ["modify_default"]
    finally:
        migrations.close()


async def test_revisions_from_callables_capture_and_removal(empty_url: str) -> None:
    migrations = Migrations(empty_url)

    def create() -> None:
        op.create_table("notes", *schema.customers_v1().tables["customers"].c[:2])

    def drop() -> None:
        op.drop_table("notes")

    try:
        migrations.add_revision("0001", down_revision=None, upgrade=create, downgrade=drop)
        with migrations.capture_sql() as sent:
            await migrations.upgrade("head")
        assert any(s.startswith("CREATE TABLE notes") for s in sent)
        assert "notes" in await _tables(empty_url)
        extra = migrations.add_revision("0002", down_revision="0001", upgrade=lambda: None, downgrade=lambda: None)
        assert migrations.heads() == ("0002",)
        migrations.remove_revision(extra)
        assert migrations.heads() == ("0001",)
        await migrations.downgrade("base")
        assert "notes" not in await _tables(empty_url)
    finally:
        migrations.close()


async def test_two_heads_are_refused_until_merged(empty_url: str) -> None:
    migrations = Migrations(empty_url)
    try:
        for rev, down in (("a", None), ("b", "a"), ("c", "a")):
            migrations.add_revision(rev, down_revision=down, upgrade=lambda: None, downgrade=lambda: None)
        assert set(migrations.heads()) == {"b", "c"}
        with pytest.raises(Exception, match="Multiple head revisions"):
            await migrations.upgrade("head")
        await migrations.merge("join", rev_id="d")
        assert migrations.heads() == ("d",)
        await migrations.upgrade("head")
        assert await migrations.current() == ("d",)
    finally:
        migrations.close()


async def test_offline_sql_does_not_touch_the_database(empty_url: str) -> None:
    migrations = Migrations(empty_url, schema.customers_v1())
    try:
        await migrations.revision("create customers", rev_id="0001")
        sql = await migrations.sql("base:0001")
        assert "CREATE TABLE customers" in sql and "CONSTRAINT uq_customers_email UNIQUE (email)" in sql
        assert "customers" not in await _tables(empty_url)
    finally:
        migrations.close()


async def test_autogenerate_without_models_is_a_clear_error(empty_url: str) -> None:
    migrations = Migrations(empty_url)
    try:
        with pytest.raises(CourseError, match="autogenerate needs the models"):
            await migrations.revision("nothing to compare")
    finally:
        migrations.close()


async def test_backfills_fill_every_row(empty_url: str) -> None:
    engine = db.make_engine(url=empty_url)
    try:
        await backfill.make_signups(engine, 1_000)
        assert await backfill.in_batches(engine, batch_size=128) == 1_000
        async with engine.connect() as conn:
            wrong = await conn.scalar(
                text("SELECT count(*) FROM signups WHERE email_lower IS NULL OR email_lower <> lower(email)")
            )
        assert wrong == 0
        await backfill.reset_backfill(engine)
        result = await backfill.with_writer(engine, backfill.one_update(engine), rows=1_000)
        assert result.rows == 1_000 and result.writes >= 1 and result.longest_wait_ms >= 0
    finally:
        await engine.dispose()


async def test_batches_let_a_writer_in_where_one_update_does_not(empty_url: str) -> None:
    """The lesson's claim, at a size where one UPDATE clearly outlasts one batch."""
    engine = db.make_engine(url=empty_url)
    rows = 200_000
    try:
        await backfill.make_signups(engine, rows)
        single = await backfill.with_writer(engine, backfill.one_update(engine), rows=rows)
        await backfill.reset_backfill(engine)
        pause = 0.02 if engine.dialect.name == "sqlite" else 0
        batched = await backfill.with_writer(
            engine, backfill.in_batches(engine, batch_size=2_000, pause=pause), rows=rows
        )
        assert single.rows == batched.rows == rows
        assert single.longest_wait_ms > batched.longest_wait_ms
    finally:
        await engine.dispose()
        await asyncio.sleep(0)


def test_naming_convention_is_the_courses() -> None:
    # Chapter 7 teaches one convention; the models already use it. One day these are the same object.
    assert schema.NAMING_CONVENTION == NAMING_CONVENTION
