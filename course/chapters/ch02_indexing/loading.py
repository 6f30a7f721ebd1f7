"""Chapter 2's bulk-load measurement: indexes kept up to date during a load, against indexes built after it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from course.chapters.ch02_indexing.catalogue import _WRITE_COLUMNS, _WRITE_INDEXES, _WRITE_POSTGRES, _WRITE_SQLITE

if TYPE_CHECKING:
    import pandas as pd

_TABLE = "write_demo"


async def _fresh_table(engine: AsyncEngine, *, with_indexes: bool) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {_TABLE}"))
        await conn.execute(text(f"CREATE TABLE {_TABLE} ({_WRITE_COLUMNS})"))
        if with_indexes:
            await _create_indexes(conn)


async def _create_indexes(conn: AsyncConnection) -> None:
    for position, columns in enumerate(_WRITE_INDEXES):
        await conn.execute(text(f"CREATE INDEX ix_{_TABLE}_{position} ON {_TABLE} ({columns})"))


async def _load(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as conn:
        fill = _WRITE_SQLITE if conn.dialect.name == "sqlite" else _WRITE_POSTGRES
        await conn.execute(text(fill), {"rows": rows})


async def load_then_index(engine: AsyncEngine, *, rows: int = 200_000, repeat: int = 2) -> pd.DataFrame:
    """Seconds to load `rows` rows with the three extra indexes in place, against loading bare and indexing after.

    Both end with the same table and the same indexes; the best of `repeat` runs of each is kept. SQLite works
    inside this process, so its runs are timed by the CPU this process spends (a busy machine makes a run wait,
    not work more: one CI run saw "load, then build" take 3x its usual wall time); PostgreSQL works in its server,
    so its runs are timed by the clock.
    """
    import pandas as pd

    clock, clock_name = (
        (time.process_time, "CPU time of this process")
        if engine.dialect.name == "sqlite"
        else (time.perf_counter, "wall clock")
    )
    best = {"indexes kept up to date during the load": float("inf"), "load, then build the indexes": float("inf")}
    for _ in range(repeat):
        await _fresh_table(engine, with_indexes=True)
        start = clock()
        await _load(engine, rows)
        best["indexes kept up to date during the load"] = min(
            best["indexes kept up to date during the load"], clock() - start
        )
        await _fresh_table(engine, with_indexes=False)
        start = clock()
        await _load(engine, rows)
        async with engine.begin() as conn:
            await _create_indexes(conn)
        best["load, then build the indexes"] = min(best["load, then build the indexes"], clock() - start)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {_TABLE}"))
    frame = pd.DataFrame([{"method": method, "seconds": seconds} for method, seconds in best.items()])
    frame["rows"] = rows
    frame["timed by"] = clock_name
    return frame
