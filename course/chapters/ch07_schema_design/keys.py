"""Primary keys for chapter 7: a UUID version 7 generator and the measurement of insert cost and index size by key kind."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Column, Integer, MetaData, Table, Uuid, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

KEY_KINDS = ("integer", "uuid4", "uuid7")


_last_uuid7 = 0


def uuid7(*, ms: int | None = None, rng: random.Random | None = None) -> uuid.UUID:
    """A version 7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then 12 bits of sub-millisecond time, then random bits.

    Python 3.11 has no uuid7; the layout is short enough to write down. Values made by this process come out
    strictly increasing (RFC 9562 section 6.2, methods 3 and 2: finer clock bits, and a bump when the clock
    has not moved). `ms` and `rng` make reproducible values for examples and measurements.
    """
    global _last_uuid7
    if ms is None:
        now = time.time_ns()
        stamp, fraction = now // 1_000_000, (now % 1_000_000) * 4096 // 1_000_000
    else:
        stamp, fraction = ms, None
    if not 0 <= stamp < 1 << 48:
        raise ValueError(f"a UUID v7 timestamp must fit in 48 bits of milliseconds, got {stamp}")
    rand_a = (rng.getrandbits(12) if rng else int.from_bytes(os.urandom(2)) >> 4) if fraction is None else fraction
    rand_b = rng.getrandbits(62) if rng else int.from_bytes(os.urandom(8)) >> 2
    # Fields: unix_ts_ms (48) | version 0111 (4) | rand_a (12) | variant 10 (2) | rand_b (62).
    value = stamp << 80 | 0x7 << 76 | rand_a << 64 | 0x2 << 62 | rand_b
    if rng is None and ms is None:
        if value <= _last_uuid7 and (_last_uuid7 & (1 << 62) - 1) != (1 << 62) - 1:
            value = _last_uuid7 + 1
        _last_uuid7 = value
    return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """The millisecond timestamp a version 7 UUID carries."""
    if value.version != 7:
        raise ValueError(f"{value} is a version {value.version} UUID, not version 7")
    return value.int >> 80


def key_table(kind: str, metadata: MetaData) -> Table:
    """A table whose primary key is of the given kind, plus a small payload like a real row's."""
    if kind not in KEY_KINDS:
        raise ValueError(f"unknown key kind {kind!r}: choose one of {', '.join(KEY_KINDS)}")
    key = Column("id", Integer, primary_key=True) if kind == "integer" else Column("id", Uuid, primary_key=True)
    return Table(f"keys_{kind}", metadata, key, Column("n", Integer, nullable=False))


def _key_values(kind: str, rows: int, seed: int) -> Iterator[object]:
    rng = random.Random(seed)
    if kind == "integer":
        yield from range(1, rows + 1)
    elif kind == "uuid4":
        for _ in range(rows):
            yield uuid.UUID(int=rng.getrandbits(128), version=4)
    else:
        # One new millisecond every 10 rows: the order in which an application would create them.
        start = 1_700_000_000_000
        for i in range(rows):
            yield uuid7(ms=start + i // 10, rng=rng)


@dataclass(frozen=True)
class KeyRun:
    kind: str
    rows: int
    seconds: float
    index_bytes: int
    table_bytes: int


async def relation_bytes(conn: AsyncConnection, name: str) -> int:
    """Bytes on disk of one table or index: pg_relation_size on PostgreSQL, the dbstat table on SQLite."""
    if conn.dialect.name == "postgresql":
        return int(await conn.scalar(text("SELECT pg_relation_size(CAST(:n AS regclass))"), {"n": name}) or 0)
    return int(await conn.scalar(text("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = :n"), {"n": name}))


async def primary_key_index(conn: AsyncConnection, table: str) -> str | None:
    """The name of the index behind a table's primary key (None for SQLite's INTEGER PRIMARY KEY: the rowid)."""
    if conn.dialect.name == "postgresql":
        return f"{table}_pkey"
    return await conn.scalar(
        text(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND name LIKE 'sqlite_autoindex%'"
        ),
        {"t": table},
    )


async def measure_inserts(
    engine: AsyncEngine, kind: str, *, rows: int, batch: int = 2_000, seed: int = 7, warmup: bool = True
) -> KeyRun:
    """Create keys_<kind>, insert `rows` rows in committed batches of `batch`, and report time and sizes."""
    return (await compare_keys(engine, [kind], rows=rows, batch=batch, seed=seed, warmup=warmup))[0]


async def compare_keys(
    engine: AsyncEngine,
    kinds: list[str] | tuple[str, ...] = KEY_KINDS,
    *,
    rows: int,
    batch: int = 2_000,
    seed: int = 7,
    warmup: bool = True,
) -> list[KeyRun]:
    """Fill one keys_<kind> table per kind with the same rows, batch by batch in turn, and report each one's cost.

    The batches are interleaved (a batch for each kind, then the next batch for each), so a machine that slows
    down for a moment slows every kind alike; each batch is its own committed transaction, like an application's.
    """
    if warmup:
        # A short run first: statement caches, the connection pool and file growth are not part of the cost.
        await compare_keys(engine, kinds, rows=min(rows, 2 * batch), batch=batch, seed=seed + 1, warmup=False)
    metadata = MetaData()
    tables = {kind: key_table(kind, metadata) for kind in kinds}
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.drop_all(c, checkfirst=True))
        await conn.run_sync(metadata.create_all)
    # Keys are made before the clock starts: the measurement is about the database, not the generator.
    values = {kind: list(_key_values(kind, rows, seed)) for kind in kinds}
    seconds = dict.fromkeys(kinds, 0.0)
    # SQLite works inside this process: its batches are timed by the CPU this process spends, which a busy machine
    # does not inflate (by the clock, v4 against v7 once measured 0.98x in a loaded CI run, 1.3x on a quiet one).
    # PostgreSQL works in its server, so there the clock it is.
    clock = time.process_time if engine.dialect.name == "sqlite" else time.perf_counter
    for start in range(0, rows, batch):
        for kind in kinds:
            chunk = [{"id": key, "n": start + i} for i, key in enumerate(values[kind][start : start + batch])]
            began = clock()
            async with engine.begin() as conn:
                await conn.execute(insert(tables[kind]), chunk)
            seconds[kind] += clock() - began
    runs = []
    async with engine.connect() as conn:
        for kind, table in tables.items():
            index = await primary_key_index(conn, table.name)
            index_bytes = await relation_bytes(conn, index) if index else 0
            runs.append(KeyRun(kind, rows, seconds[kind], index_bytes, await relation_bytes(conn, table.name)))
    return runs


def describe(run: KeyRun) -> dict[str, object]:
    """One row of the lesson's table for a run."""
    return {
        "key": run.kind,
        "rows": run.rows,
        "insert_s": round(run.seconds, 2),
        "µs_per_row": round(run.seconds / run.rows * 1e6, 1),
        "pk_index_MB": round(run.index_bytes / 2**20, 2),
        "table_MB": round(run.table_bytes / 2**20, 2),
    }
