"""Index tools for chapter 2: what indexes a table has (read from the catalog), planner statistics, demo tables."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    import pandas as pd

LOOKUP_TABLE = "lookup_demo"
WRITE_TABLE = "write_demo"


@dataclass(frozen=True)
class IndexInfo:
    """One index as the database's catalog describes it (the same shape on SQLite and PostgreSQL)."""

    name: str
    table: str
    # Key columns in order; an expression appears as its SQL text, e.g. "lower(email)".
    columns: tuple[str, ...]
    unique: bool
    primary: bool = False
    # The WHERE of a partial index, as the database prints it.
    where: str | None = None
    # PostgreSQL's INCLUDE columns: stored in the index, not part of its order.
    include: tuple[str, ...] = ()
    # One flag per key column: True where the index sorts that column DESC.
    descending: tuple[bool, ...] = ()

    @property
    def partial(self) -> bool:
        return self.where is not None


@asynccontextmanager
async def _connect(target: AsyncEngine | AsyncConnection) -> AsyncIterator[AsyncConnection]:
    if isinstance(target, AsyncConnection):
        yield target
    else:
        async with target.connect() as conn:
            yield conn


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1] if len(name) > 1 and name[0] in '"`[' and name[-1] in '"`]' else name


# An index key in SQLite's CREATE INDEX text may end with COLLATE x and ASC/DESC: not part of what it indexes.
_KEY_SUFFIX = re.compile(r"(\s+COLLATE\s+\S+)?(\s+(ASC|DESC))?\s*$", re.IGNORECASE)


def parse_create_index(sql: str) -> tuple[tuple[str, ...], str | None]:
    """The key columns (or expressions) and the WHERE predicate of a SQLite CREATE INDEX statement."""
    on = re.search(r"\bON\s+[^(]+\(", sql, re.IGNORECASE | re.DOTALL)
    if on is None:
        raise ValueError(f"not a CREATE INDEX statement: {sql[:80]!r}")
    keys, current, depth, quote, end = [], "", 1, "", len(sql)
    for position in range(on.end(), len(sql)):
        char = sql[position]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                end = position
                break
        elif char == "," and depth == 1:
            keys.append(current)
            current = ""
            continue
        current += char
    keys.append(current)
    columns = tuple(_unquote(_KEY_SUFFIX.sub("", key.strip())) for key in keys)
    rest = sql[end + 1 :].strip()
    where = re.match(r"WHERE\s+(.*)$", rest, re.IGNORECASE | re.DOTALL)
    return columns, (where.group(1).strip() if where else None)


async def _sqlite_indexes(conn: AsyncConnection, table: str) -> list[IndexInfo]:
    listed = await conn.execute(text('SELECT name, "unique", origin FROM pragma_index_list(:t)'), {"t": table})
    found = []
    for name, unique, origin in listed.all():
        sql = await conn.scalar(
            text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"), {"n": name}
        )
        if sql:
            columns, where = parse_create_index(sql)
        else:
            # Indexes SQLite made for a UNIQUE or PRIMARY KEY constraint keep no SQL text: ask for their columns.
            rows = await conn.execute(text("SELECT name FROM pragma_index_info(:n) ORDER BY seqno"), {"n": name})
            columns, where = tuple(rows.scalars()), None
        flags = await conn.execute(
            text('SELECT "desc" FROM pragma_index_xinfo(:n) WHERE key = 1 ORDER BY seqno'), {"n": name}
        )
        descending = tuple(bool(flag) for flag in flags.scalars())
        found.append(IndexInfo(name, table, columns, bool(unique), origin == "pk", where, (), descending))
    return sorted(found, key=lambda ix: ix.name)


_PG_INDEXES = text(
    """
    SELECT c.relname, ix.indisunique, ix.indisprimary, pg_get_expr(ix.indpred, ix.indrelid),
           ix.indnkeyatts,
           ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true) FROM generate_series(1, ix.indnatts) AS k),
           -- indoption bit 0 is DESC (int2vector, numbered from 0).
           ARRAY(SELECT (ix.indoption[k] & 1) = 1 FROM generate_series(0, ix.indnkeyatts - 1) AS k)
    FROM pg_index AS ix JOIN pg_class AS c ON c.oid = ix.indexrelid
    WHERE ix.indrelid = to_regclass(:t)
    ORDER BY c.relname
    """
)


async def _pg_indexes(conn: AsyncConnection, table: str) -> list[IndexInfo]:
    found = []
    rows = (await conn.execute(_PG_INDEXES, {"t": table})).all()
    for name, unique, primary, where, keys, columns, descending in rows:
        names = tuple(_unquote(c) for c in columns)
        found.append(IndexInfo(name, table, names[:keys], unique, primary, where, names[keys:], tuple(descending)))
    return found


async def list_indexes(target: AsyncEngine | AsyncConnection, table: str) -> list[IndexInfo]:
    """Every index on table, the primary key's and unique constraints' included, read from the catalog.

    SQLAlchemy's inspector skips what checks need here (expression indexes on SQLite, the
    primary key's index), so this reads sqlite_master / pg_index directly.
    """
    async with _connect(target) as conn:
        if conn.dialect.name == "sqlite":
            return await _sqlite_indexes(conn, table)
        return await _pg_indexes(conn, table)


async def show_indexes(target: AsyncEngine | AsyncConnection, table: str) -> pd.DataFrame:
    """list_indexes as a table for a notebook, DESC key columns marked."""
    import pandas as pd

    rows = [
        asdict(ix)
        | {
            # The sort direction matters (section 2.3): a DESC key column is shown as such.
            "columns": ", ".join(
                f"{column} DESC" if desc else column
                for column, desc in zip(ix.columns, ix.descending or (False,) * len(ix.columns), strict=False)
            ),
            "include": ", ".join(ix.include),
            "where": ix.where or "",
        }
        for ix in await list_indexes(target, table)
    ]
    return pd.DataFrame(rows, columns=["name", "columns", "unique", "primary", "where", "include"])


async def refresh_statistics(engine: AsyncEngine, *tables: str) -> None:
    """Update the planner's statistics (and PostgreSQL's visibility map, which index-only scans need).

    A planner decides from statistics, so after a bulk load or a new index the plan can be stale
    until they are refreshed. VACUUM cannot run inside a transaction: PostgreSQL gets autocommit.
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            for target in tables or ("",):
                await conn.execute(text(f"ANALYZE {target}"))
            await conn.commit()
            return
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.execute(text(f"VACUUM ANALYZE {', '.join(tables)}"))


async def run_ddl(engine: AsyncEngine, *statements: str) -> None:
    """Run DDL statements in one transaction, then refresh the statistics of the tables they touch."""
    touched = []
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
            match = re.search(r"\bON\s+(\w+)", statement, re.IGNORECASE)
            if match:
                touched.append(match.group(1))
    if touched:
        await refresh_statistics(engine, *dict.fromkeys(touched))


async def index_size(engine: AsyncEngine, name: str) -> int | None:
    """Bytes an index takes on disk; None where SQLite was built without its dbstat table."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return await conn.scalar(text("SELECT pg_relation_size(to_regclass(:n))"), {"n": name})
        try:
            return await conn.scalar(text("SELECT sum(pgsize) FROM dbstat WHERE name = :n"), {"n": name})
        except OperationalError:
            return None


async def fill_lookup_table(engine: AsyncEngine, rows: int) -> None:
    """Grow lookup_demo (id, code, amount) to `rows` rows; code is 'code-<id>', unique but not indexed.

    Rows are generated inside the database (a recursive CTE on SQLite, generate_series on
    PostgreSQL): a million rows take about a second instead of a round trip each.
    """
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {LOOKUP_TABLE} (id INTEGER PRIMARY KEY, code VARCHAR(20) NOT NULL, amount INTEGER NOT NULL)"
            )
        )
        start = (await conn.scalar(text(f"SELECT coalesce(max(id), 0) FROM {LOOKUP_TABLE}"))) + 1
        if start > rows:
            return
        if conn.dialect.name == "sqlite":
            generate = (
                "WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
                f"INSERT INTO {LOOKUP_TABLE} SELECT i, 'code-' || i, i % 1000 FROM n"
            )
        else:
            generate = (
                f"INSERT INTO {LOOKUP_TABLE} SELECT i, 'code-' || i, i % 1000 "
                "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i"
            )
        await conn.execute(text(generate), {"first": start, "last": rows})
    await refresh_statistics(engine, LOOKUP_TABLE)


# The write-cost demo's extra indexes, added in this order: email, then amount, then (category, created).
_WRITE_INDEXES = ("email", "amount", "category, created")
_WRITE_COLUMNS = "id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL, amount INTEGER NOT NULL, category VARCHAR(20) NOT NULL, created INTEGER NOT NULL"
# Rows are made inside the database, so the timing holds the database's work (index upkeep included), not Python's.
_WRITE_SQLITE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
    f"INSERT INTO {WRITE_TABLE} SELECT i, lower(hex(randomblob(6))) || '@example.com', abs(random() % 100000), "
    "'cat-' || abs(random() % 5), abs(random() % 1000000000) FROM n"
)
_WRITE_POSTGRES = (
    f"INSERT INTO {WRITE_TABLE} SELECT i, left(md5(random()::text), 12) || '@example.com', "
    "(random() * 100000)::int, 'cat-' || (random() * 4)::int, (random() * 1000000000)::int "
    "FROM generate_series(1, CAST(:rows AS integer)) AS i"
)


async def insert_cost(
    engine: AsyncEngine, *, rows: int = 50_000, index_counts: tuple[int, ...] = (0, 1, 3), repeat: int = 2
) -> pd.DataFrame:
    """Seconds to insert `rows` rows in one statement into write_demo with 0, 1, 3... extra indexes.

    Each run starts from an empty table with its primary key plus the first k indexes of
    email, amount and (category, created); the best of `repeat` runs is reported.
    """
    import pandas as pd

    if max(index_counts) > len(_WRITE_INDEXES):
        raise ValueError(f"at most {len(_WRITE_INDEXES)} extra indexes: {', '.join(_WRITE_INDEXES)}")
    results = []
    for count in index_counts:
        best = float("inf")
        for _ in range(repeat):
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP TABLE IF EXISTS {WRITE_TABLE}"))
                await conn.execute(text(f"CREATE TABLE {WRITE_TABLE} ({_WRITE_COLUMNS})"))
                for position, columns in enumerate(_WRITE_INDEXES[:count]):
                    await conn.execute(
                        text(f"CREATE INDEX ix_{WRITE_TABLE}_{position} ON {WRITE_TABLE} ({columns})")
                    )
            start = time.perf_counter()
            async with engine.begin() as conn:
                fill = _WRITE_SQLITE if conn.dialect.name == "sqlite" else _WRITE_POSTGRES
                await conn.execute(text(fill), {"rows": rows})
            best = min(best, time.perf_counter() - start)
        results.append(
            {
                "extra indexes": count,
                "indexed": ", ".join(f"({c})" for c in _WRITE_INDEXES[:count]) or "-",
                "seconds": best,
            }
        )
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {WRITE_TABLE}"))
    frame = pd.DataFrame(results)
    frame["rows per second"] = (rows / frame["seconds"]).round()
    frame["relative"] = frame["seconds"] / frame["seconds"].iloc[0]
    return frame
