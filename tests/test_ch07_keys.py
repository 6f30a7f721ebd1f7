"""The lesson 7 key measurements read real sizes from both databases (course/chapters/ch07_schema_design/keys.py)."""

from __future__ import annotations

from sqlalchemy import text

from course import db
from course.chapters.ch07_schema_design.keys import measure_inserts


async def test_measure_inserts_reports_rows_time_and_sizes(empty_url: str, backend: str) -> None:
    engine = db.make_engine(url=empty_url)
    try:
        runs = {
            kind: await measure_inserts(engine, kind, rows=3_000, batch=1_000) for kind in ("integer", "uuid4")
        }
        async with engine.connect() as conn:
            counts = [await conn.scalar(text(f"SELECT count(*) FROM keys_{kind}")) for kind in runs]
    finally:
        await engine.dispose()
    assert counts == [3_000, 3_000]
    assert all(run.seconds > 0 and run.table_bytes > 0 for run in runs.values())
    assert runs["uuid4"].index_bytes > 0
    # SQLite's INTEGER PRIMARY KEY is the rowid itself: no separate index to measure.
    assert (runs["integer"].index_bytes == 0) == (backend == "sqlite")
