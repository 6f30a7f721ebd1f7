"""PostgreSQL's seed build: loaded beside the old seed by two connections at once, then swapped in atomically.

The tables are built in BUILD_SCHEMA, each by one of LOADERS connections in a transaction of its own (see
pg_load.py), so one connection's server finishes a table while another receives the next: one transaction could
only do one of the two at a time. The foreign keys are then validated by both connections too (_foreign_keys),
and one last transaction drops the old tables and moves the new ones into public. Until it commits, the old seed
is untouched; a failed build leaves nothing (a killed one leaves BUILD_SCHEMA, which the seed's digest notices
and the next build drops). At `large`: 13.5 s with one transaction, ~11 s now (benchmarks/seed.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from course import db
from course.db.postgres import admin as pg_admin
from course.domain.models import Base
from course.errors import CourseError
from course.seed import ddl, pg_load, verify
from course.seed.generate import TableRows, build_tables
from course.seed.pg_load import Timings

BUILD_SCHEMA = "course_seed_build"
LOADERS = 2
# Held (per database) by the connection that builds: a second build of the same database waits for the first.
_LOCK_KEY = 0x5EED_B11D
COMMIT_UNKNOWN = (
    "PostgreSQL ended the seeding session while it committed the new seed, and cannot be asked now whether the "
    "commit landed: run `course seed` again"
)
# How long the swap waits for sessions that use the old seed's tables, and a failed build's cleanup for the lock.
LOCK_PATIENCE_S = 30

Bar = Callable[[int], AbstractContextManager[Any]]


async def build(
    url: str, scale: str, meta: dict[str, str], *, bar: Bar, timings: Timings | None = None
) -> tuple[dict[str, int], str]:
    """Replace the seed's tables at url with freshly drawn ones for scale, course_meta holding meta.

    Returns the row counts and the seed's digest (course/seed/verify.py), computed by the server as it loaded.
    bar(total) opens a progress bar, updated with the rows sent.
    """
    # The shapes the tables share are drawn (in a worker thread) while the server clears the way.
    drawing = asyncio.ensure_future(asyncio.to_thread(build_tables, scale, "postgres"))
    try:
        return await _build(url, drawing, meta, bar=bar, timings=timings or Timings())
    finally:
        if not drawing.done():
            await asyncio.wait([drawing])  # a thread cannot be cancelled: never leave it behind
        if not drawing.cancelled():
            drawing.exception()  # seen here, whichever error is raised


async def _build(
    url: str, drawing: asyncio.Future[list[TableRows]], meta: dict[str, str], *, bar: Bar, timings: Timings
) -> tuple[dict[str, int], str]:
    from course.db.postgres import roles

    started = time.perf_counter()
    # A template left refusing connections (ALTER DATABASE ... ALLOW_CONNECTIONS false) is opened again first.
    await roles.reopen(url)
    await pg_admin.create_database_if_missing(url)
    plan = ddl.plan(Base.metadata, asyncpg_dialect.dialect())
    conns: list[asyncpg.Connection] = []
    pids: list[int] = []  # taken at once: a terminated connection forgets its server's pid
    swapped = None  # the new users table's oid, once the swap waits for its COMMIT
    try:
        for _ in range(LOADERS):
            conns.append(await pg_admin.connect(url))
            pids.append(conns[-1].get_server_pid())
        main = conns[0]
        await main.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})")
        await main.execute(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE; CREATE SCHEMA {BUILD_SCHEMA}")
        for conn in conns:
            await conn.execute(f"SET search_path = {BUILD_SCHEMA}; BEGIN")
        tables = await drawing
        with bar(sum(t.count for t in tables)) as progress:
            timings.before = time.perf_counter() - started
            digests = await pg_load.load_tables(conns, tables, plan, progress.update, timings)
            started = time.perf_counter()
        for conn in conns:
            await conn.execute("COMMIT")
        await _foreign_keys(conns, plan, {t.table: t.count for t in tables})
        await main.execute("BEGIN")
        digest = await _swap_in(main, plan, tables, meta, digests)
        swapped = await main.fetchval("SELECT 'public.users'::regclass::oid")
        timings.after = time.perf_counter() - started
        started = time.perf_counter()
        await _commit(main)
    except BaseException as exc:
        for conn in conns:
            conn.terminate()  # the server rolls its transaction back
        await _drop_build_schema(url, pids)
        if not isinstance(exc, pg_load.SESSION_ENDED):
            raise
        # The server ended a session. During the last COMMIT, the commit may have landed first: the server says.
        landed = swapped is not None and await _in_place(url, swapped)
        if landed is None:
            raise CourseError(COMMIT_UNKNOWN) from None
        if not landed:
            raise CourseError(pg_load.SESSION_LOST) from None
    for conn in conns:
        if not conn.is_closed():
            await conn.close()
    await _ended(url, pids)
    timings.commit = time.perf_counter() - started
    return {t.table: t.count for t in tables}, digest


async def _commit(main: asyncpg.Connection) -> None:
    """The swap's COMMIT (apart, so that a test can end the session around it)."""
    await main.execute("COMMIT")


async def _in_place(url: str, users_oid: int) -> bool | None:
    """Whether the build's tables are public's now (its COMMIT landed); None when the server cannot say."""
    try:
        conn = await pg_admin.connect(url)
    except Exception:
        return None
    try:
        return bool(await conn.fetchval("SELECT to_regclass('public.users')::oid = $1", users_oid))
    except Exception:
        return None
    finally:
        await conn.close()


async def _foreign_keys(conns: list[asyncpg.Connection], plan: ddl.Plan, rows: dict[str, int]) -> None:
    """Every foreign key added unchecked, then validated over the loaded rows by the connections at once.

    VALIDATE locks only its own table against other VALIDATEs (ADD with a check would lock the referenced table
    too, so two keys to users could not be checked at once): each connection takes whole tables, the biggest
    first, always to the connection with the fewest rows to check so far (1.8 s on one connection at `large`).
    """
    async with conns[0].transaction():
        for statement in plan.foreign_keys:
            await conns[0].execute(f"{statement} NOT VALID")
    shares: list[list[str]] = [[] for _ in conns]
    load = [0] * len(conns)
    for table in sorted({t for t, _ in plan.foreign_key_names}, key=lambda t: (-rows.get(t, 0), t)):
        least = load.index(min(load))
        load[least] += rows.get(table, 0)
        shares[least] += [
            f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}" for t, n in plan.foreign_key_names if t == table
        ]

    async def validate(conn: asyncpg.Connection, statements: list[str]) -> None:
        for statement in statements:
            await conn.execute(statement)

    await asyncio.gather(*(validate(conn, share) for conn, share in zip(conns, shares, strict=True)))


async def _swap_in(
    main: asyncpg.Connection,
    plan: ddl.Plan,
    tables: list[TableRows],
    meta: dict[str, str],
    digests: dict[str, str],
) -> str:
    """In main's open transaction: finish BUILD_SCHEMA's tables and move them into public in place of the old.

    Sequences, the completion marker, the swap, the last digests: one transaction, so a seed is either the old one
    or the whole new one."""
    loaded = {t.table for t in tables}
    for name, statement in plan.create.items():
        if name not in loaded:  # course_meta
            await main.execute(statement)
            for late in plan.per_table.get(name, []):
                await main.execute(late)
    for t in tables:
        if "id" in t.columns:
            # COPY with explicit ids leaves the sequences at 1: move them past the seeded rows.
            await main.execute(
                f"SELECT setval(pg_get_serial_sequence('{t.table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {t.table}), false)"
            )
    await main.executemany("INSERT INTO course_meta (key, value) VALUES ($1, $2)", list(meta.items()))
    # The old tables go; the new ones move in with their indexes, constraints and sequences. public itself (its
    # owner, privileges, anything else in it) stays as it is.
    names = [table.name for table in Base.metadata.sorted_tables]
    await main.execute(f"SET LOCAL lock_timeout = '{LOCK_PATIENCE_S}s'; SAVEPOINT old_tables")
    try:
        await main.execute(f"DROP TABLE IF EXISTS {', '.join(f'public.{n}' for n in names)} CASCADE")
    except asyncpg.LockNotAvailableError:
        await main.execute("ROLLBACK TO SAVEPOINT old_tables")
        raise CourseError(await _holders_message(main)) from None
    await main.execute("SET LOCAL lock_timeout = 0")
    for name in names:
        await main.execute(f"ALTER TABLE {BUILD_SCHEMA}.{name} SET SCHEMA public")
    await main.execute(f"DROP SCHEMA {BUILD_SCHEMA}; SET LOCAL search_path = public")
    for table in Base.metadata.sorted_tables:
        if table.name not in digests:
            await main.execute(f"ANALYZE {table.name}")
            digests[table.name] = await main.fetchval(verify.table_digest_sql(table))
    return verify.combine(await verify.schema_lines(main), digests)


async def _ended(url: str, pids: list[int], *, seconds: float = 5.0) -> None:
    """Wait until the build's sessions have left the server: a session hands in its row counters as it exits,
    after close() returns, and the seed's fingerprint (verify.record, next) must count them."""
    conn = await pg_admin.connect(db.parse_url(url).set(database="postgres"))
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
        ):
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def _holders_message(main: asyncpg.Connection) -> str:
    """One line: the sessions that kept the old seed's tables busy (a notebook's open transaction, a query)."""
    rows = await main.fetch(
        "SELECT DISTINCT a.pid, coalesce(nullif(a.application_name, ''), 'no name') AS name, a.state "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.granted AND l.pid <> pg_backend_pid() AND l.relation IN "
        "(SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) ORDER BY a.pid"
    )
    who = (
        ", ".join(f"pid {r['pid']} ({r['name']}, {r['state']})" for r in rows) or "a session that has ended since"
    )
    return (
        f"the old seed's tables stayed in use for {LOCK_PATIENCE_S} s by {who}; the old seed is kept: close those "
        "sessions (or restart their kernels) and run `course seed` again"
    )


async def _drop_build_schema(url: str, pids: list[int]) -> None:
    """Best effort after a failed build (a killed one is cleaned up by the next build)."""
    try:
        conn = await pg_admin.connect(url)
    except Exception:
        return
    try:
        # A backend notices its client has gone only when it next reads from it: one waiting for a lock would hold
        # the build lock (and its transaction) until then. Ended here, at once.
        await conn.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        # Under the build lock: another build may have started since, and its schema is not this one's to drop.
        await conn.execute(f"SET lock_timeout = '{LOCK_PATIENCE_S}s'")
        await conn.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})")
        await conn.execute(f"DROP SCHEMA IF EXISTS {BUILD_SCHEMA} CASCADE")
    except Exception:
        pass
    finally:
        await conn.close()
