"""The course's SQLite engine gives real transactions (BEGIN before any statement, snapshots, nesting savepoints,
WAL, BEGIN IMMEDIATE on request), and Account's version column is bumped by every ORM update."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.orm.exc import StaleDataError

from course import db
from course.domain.models import Account, Base, User


@pytest.fixture
async def engine(tmp_path: Path):
    engine = db.make_engine(url=db.sqlite_url(tmp_path / "t.sqlite3"))
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"))
        await conn.execute(text("INSERT INTO t VALUES (1, 10), (2, 20)"))
    yield engine
    await engine.dispose()


async def test_a_select_starts_a_transaction_and_reads_one_snapshot(engine) -> None:
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _cu, sql, *_: sent.append(sql))
    Session = db.make_sessionmaker(engine)
    async with Session() as reader:
        assert await reader.scalar(text("SELECT v FROM t WHERE id = 1")) == 10
        assert sent[:2] == ["BEGIN", "SELECT v FROM t WHERE id = 1"]
        # WAL: a writer commits while the reader's transaction is open, and the reader keeps its snapshot.
        async with Session() as writer, writer.begin():
            await writer.execute(text("UPDATE t SET v = 11 WHERE id = 1"))
        assert await reader.scalar(text("SELECT v FROM t WHERE id = 1")) == 10
    async with Session() as later:
        assert await later.scalar(text("SELECT v FROM t WHERE id = 1")) == 11
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() > 0


async def test_savepoints_nest_and_roll_back_alone(engine) -> None:
    Session = db.make_sessionmaker(engine)
    async with Session() as session, session.begin():
        await session.execute(text("INSERT INTO t VALUES (3, 30)"))
        with pytest.raises(ValueError):
            async with session.begin_nested():
                await session.execute(text("INSERT INTO t VALUES (4, 40)"))
                raise ValueError("bad row")
    async with Session() as session:
        assert list(await session.scalars(text("SELECT id FROM t ORDER BY id"))) == [1, 2, 3]


async def test_begin_immediate_on_request(engine) -> None:
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _cu, sql, *_: sent.append(sql))
    Session = db.make_sessionmaker(engine)
    async with Session() as session, session.begin():
        await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        await session.execute(text("SELECT 1"))
    assert sent[0] == "BEGIN IMMEDIATE"


async def test_autocommit_sends_no_begin(engine) -> None:
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _cu, sql, *_: sent.append(sql))
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text("UPDATE t SET v = 5 WHERE id = 2"))
    assert "BEGIN" not in sent
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT v FROM t WHERE id = 2"))).scalar() == 5


async def test_account_version_is_bumped_and_a_stale_write_fails(tmp_path: Path) -> None:
    engine = db.make_engine(url=db.sqlite_url(tmp_path / "bank.sqlite3"))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    Session = db.make_sessionmaker(engine)
    async with Session() as session, session.begin():
        session.add(User(id=1, email="a@example.com", name="A", password_hash="x"))
        await session.flush()
        session.add(Account(id=1, user_id=1, balance_cents=500))
    async with Session() as session, session.begin():
        account = await session.get(Account, 1)
        account.balance_cents -= 100
    assert account.version == 2
    async with Session() as stale:
        old = await stale.get(Account, 1)
        await stale.commit()  # end the read transaction; the object keeps version 2
        async with Session() as other, other.begin():
            await other.execute(update(Account).where(Account.id == 1).values(version=Account.version + 1))
        old.balance_cents = 0
        with pytest.raises(StaleDataError):
            await stale.commit()
    async with Session() as session:
        assert (await session.execute(select(Account.balance_cents, Account.version))).one() == (400, 3)
    await engine.dispose()
