"""The seed verified, not trusted: its digest recorded at seeding, compared before grading and before each copy.

Two measures, kept in the cache folder (never beside the seed, where whoever can damage the seed could also
rewrite them):
- the digest: exact, over every byte of the SQLite file, or (PostgreSQL) over every row of every table in key
  order plus the schema's definitions (columns, constraints, indexes, triggers, routines, policies), hashed by the
  server. At `small` it costs ~0.15 s (SQLite) and ~0.35 s (PostgreSQL, where the seed's loader computes it while
  it draws the rows, see table_digest_sql); the backend-independent
  `content_checksum` of status.py takes ~20 s, too slow for this.
- the fingerprint: what changes whenever the seed is written to, read in a few milliseconds: the file's size,
  inode and times (ctime cannot be set back); the template's connection settings, owner, privileges, size and the
  server's row-change counters.
Before each copy the fingerprint is compared; when it differs, the digest decides (a vacuum moves the counters,
not the rows). A grading run compares the digest itself. A seed whose digest differs is rebuilt, with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import asyncpg
from sqlalchemy import Table

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.db.postgres import roles
from course.domain.models import Base
from course.settings import Settings, get_settings

# Bumped whenever digest() or fingerprint() measure differently, so old records are not taken for damage.
METHOD = 4
# The schema's definitions, one line each, sorted: a dropped index or an added trigger changes the digest.
_SCHEMA_SQL = """
SELECT coalesce(string_agg(line, E'\\n' ORDER BY line), '') FROM (
  SELECT 'column ' || a.attrelid::regclass::text || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
         || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
  FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || c.relowner::regrole::text
  FROM pg_class AS c WHERE c.relnamespace = 'public'::regnamespace
  UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT 'routine ' || oid::regprocedure::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace
  UNION ALL SELECT 'rule ' || rulename || ' ' || tablename FROM pg_rules WHERE schemaname = 'public'
  UNION ALL SELECT 'policy ' || policyname || ' ' || tablename FROM pg_policies
  UNION ALL SELECT 'extension ' || extname FROM pg_extension
  UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%temp\\_%'
) AS lines
"""

_FINGERPRINT_SQL = """
SELECT d.datallowconn, d.datistemplate, d.datconnlimit, d.datdba::regrole::text AS owner, d.datacl::text AS acl,
       pg_database_size(d.oid) AS size, s.tup_inserted, s.tup_updated, s.tup_deleted, s.stats_reset::text AS reset,
       (SELECT count(*) FROM pg_event_trigger) AS event_triggers
FROM pg_database AS d LEFT JOIN pg_stat_database AS s ON s.datid = d.oid
WHERE d.datname = $1
"""


def _record_path(settings: Settings, url: str) -> Path:
    key = hashlib.sha256(db.describe(url).encode()).hexdigest()[:16]
    return settings.cache_dir / "seeds" / f"{key}.json"


def _read_record(settings: Settings, url: str) -> dict[str, str]:
    try:
        data = json.loads(_record_path(settings, url).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("url") != db.describe(url) or data.get("method") != METHOD:
        return {}  # another seed's, or measured another way: measured afresh
    return data


def _write_record(settings: Settings, url: str, **values: str) -> None:
    path = _record_path(settings, url)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**_read_record(settings, url), **values, "url": db.describe(url), "method": METHOD}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _is_sqlite(url: str) -> bool:
    return db.parse_url(url).get_backend_name() == "sqlite"


def fingerprint(url: str) -> str:
    """A few milliseconds' worth of evidence that nobody wrote to the seed (see the module docstring)."""
    if _is_sqlite(url):
        path = db.sqlite_path(url)
        st = path.stat()
        # Once a seed is in WAL mode (any course engine opened it), every reader touches its -wal file: only that
        # file's size tells a write, which a checkpoint later moves into the seed file itself.
        try:
            wal = str(path.with_name(path.name + "-wal").stat().st_size)
        except FileNotFoundError:
            wal = "-"
        return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}|{wal}"
    return aio.run(_postgres_fingerprint(url))


async def _postgres_fingerprint(url: str) -> str:
    parsed = db.parse_url(url)
    conn = await pg_admin.connect(parsed.set(database="postgres"))
    try:
        row = await conn.fetchrow(_FINGERPRINT_SQL, parsed.database)
    finally:
        await conn.close()
    return json.dumps(dict(row) if row else None, sort_keys=True, default=str)


def _content_header(header: bytes) -> bytes:
    """The SQLite file header without what merely opening the seed may change (not its content).

    Bytes 18-19 say rollback or WAL journal (a course engine switches the seed to WAL when it opens it), 24-27 and
    92-99 count changes and name the library version that made the last one.
    """
    masked = bytearray(header)
    for start, end in ((18, 20), (24, 28), (92, 100)):
        masked[start:end] = bytes(end - start)
    return bytes(masked)


def digest(url: str) -> str:
    """The exact digest of the seed's content and schema (see the module docstring)."""
    if _is_sqlite(url):
        sha = hashlib.sha256()
        path = db.sqlite_path(url)
        # Writes not yet checkpointed live in the -wal file: they are part of what a reader sees.
        for part in (path, path.with_name(path.name + "-wal")):
            if part.exists():
                with open(part, "rb") as seed_file:
                    if part == path:
                        sha.update(_content_header(seed_file.read(100)))
                    while chunk := seed_file.read(1 << 20):
                        sha.update(chunk)
        return sha.hexdigest()
    return aio.run(_postgres_digest(url))


def table_digest_sql(table: Table) -> str:
    """The query whose one value is the digest of one table's rows (its content, in key order).

    Each row is hashed in its binary form (record_send: every column, length-prefixed, independent of the session's
    time zone and date style, and cheaper to produce than text); the row hashes, in key order (the primary key's
    index gives that order without a sort), are hashed again with SHA-256. MD5 per row because it costs the server
    about half of SHA-256 here (its hex text aggregated as text, ~13% less than decoded to bytes); changing a seeded
    row without changing its hash would take an MD5 second preimage. The seed's loader runs this on each table
    while it draws the next one, digest() on the finished seed.
    """
    keys = ", ".join(roles.quote(c.name) for c in table.primary_key.columns)
    return (
        "SELECT encode(sha256(convert_to(coalesce(string_agg(md5(record_send(t)), '' "
        f"ORDER BY {keys}), ''), 'UTF8')), 'hex') FROM {roles.quote(table.name)} AS t"
    )


async def schema_lines(conn: asyncpg.Connection) -> str:
    """The schema's definitions, one sorted line each: what the digest covers besides the rows."""
    return str(await conn.fetchval(_SCHEMA_SQL))


def combine(schema: str, tables: dict[str, str]) -> str:
    """The seed's digest from its schema lines and each table's digest (every table of the models, in their order)."""
    sha = hashlib.sha256(schema.encode())
    for table in Base.metadata.sorted_tables:
        sha.update(f"#{table.name}:{tables.get(table.name, 'missing')}\n".encode())
    return sha.hexdigest()


async def _postgres_digest(url: str) -> str:
    conn = await pg_admin.connect(url)
    values: dict[str, str] = {}
    try:
        # One snapshot for all tables: a digest taken while nobody writes is the same every time.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            schema = await schema_lines(conn)
            for table in Base.metadata.sorted_tables:
                try:
                    # A savepoint: a dropped table spoils only its own line.
                    async with conn.transaction():
                        values[table.name] = await conn.fetchval(table_digest_sql(table))
                except asyncpg.PostgresError as exc:
                    values[table.name] = f"unreadable ({type(exc).__name__})"
    finally:
        await conn.close()
    return combine(schema, values)


def record(settings: Settings, url: str, *, known_digest: str | None = None) -> None:
    """Note the digest and fingerprint of a seed just built (and, on PostgreSQL, shut everyone else out of it).

    known_digest: the digest the loader computed inside the transaction that built the seed (the same queries, see
    table_digest_sql), which saves reading every row again.
    """
    if not _is_sqlite(url):
        aio.run(roles.lock_template(url))
    _write_record(
        settings, url, digest=known_digest or digest(url), fingerprint=fingerprint(url), built=_built(settings)
    )


def _built(settings: Settings) -> str:
    """What a seed for these settings is built for (scale, schema and seed versions): a code change means rebuild."""
    from course.seed.load import expected_meta

    return json.dumps(expected_meta(settings.scale), sort_keys=True)


def _unchanged(settings: Settings, url: str) -> bool:
    """True when the seed is the one recorded at seeding, for this code, untouched since: one query, no more.

    The fingerprint covers what reopen() and ensure_seed() would look at (connection settings, owner, size, row
    counters; the SQLite file's size and times), so this fast path skips them; anything else takes the slow path,
    which says what is wrong or repairs it.
    """
    recorded = _read_record(settings, url)
    if not recorded.get("digest") or recorded.get("built") != _built(settings):
        return False
    try:
        return fingerprint(url) == recorded.get("fingerprint")
    except Exception:  # a missing file, a server that is down: the slow path explains it in one line
        return False


def _damage(settings: Settings, url: str, *, full: bool) -> str | None:
    """Why the seed at url is not the one recorded, or None when it is (recording it first when nothing was)."""
    recorded = _read_record(settings, url)
    if not recorded.get("digest"):
        # Seeded by an older course version: trust it once, from now on it is verified.
        record(settings, url)
        return None
    now = fingerprint(url)
    # Reached after ensure_seed: the seed is one built for this code, which lets the next copy take the fast path.
    if not full and now == recorded.get("fingerprint"):
        if recorded.get("built") != _built(settings):
            _write_record(settings, url, built=_built(settings))
        return None
    if digest(url) != recorded["digest"]:
        return "its content or schema changed since it was built"
    _write_record(settings, url, fingerprint=now, built=_built(settings))
    return None


def verified_seed(settings: Settings | None = None, *, full: bool = False, announce: bool = True) -> str:
    """ensure_seed, then the seed checked against its record (digest when full, else fingerprint); rebuilt if damaged."""
    from course.seed.load import seed, seed_url
    from course.seed.status import building, ensure_seed

    settings = settings or get_settings()
    target = seed_url(settings)
    if not full and _unchanged(settings, target):
        return target
    if not _is_sqlite(target):
        fixed = aio.run(roles.reopen(target))
        if fixed and announce:
            print(f"The seed database {db.describe(target)} was tampered with ({', '.join(fixed)}): restored.")
    url = ensure_seed(settings, progress=False, announce=announce)
    if (why := _damage(settings, url, full=full)) is None:
        return url
    with building(settings, url):
        if (why := _damage(settings, url, full=True)) is None:
            return url  # another process rebuilt it while this one waited
        print(f"The {settings.scale} seed at {db.describe(url)} is damaged ({why}): rebuilding it.", flush=True)
        if not _is_sqlite(url):
            aio.run(roles.end_other_sessions(url))
        seed(settings, url=url, progress=False)
    return url
