"""The course's PostgreSQL under stress: kill a database's connections, restart the local server, see its limits."""

from __future__ import annotations

import asyncio
import time

from course import db
from course.db.postgres import admin, provider, roles
from course.settings import Settings


def restart_reason(settings: Settings) -> str | None:
    """Why the server cannot be restarted from here (None when it can): only the course's own local server is."""
    if settings.backend != "postgres":
        return "this needs PostgreSQL (the course is on SQLite: set COURSE_BACKEND=postgres)"
    if settings.database_url:
        return "COURSE_DATABASE_URL points at a server the course does not own, so it is not restarted"
    # A container gets a new host port when it restarts (Docker publishes a random one), which no pool survives.
    if settings.postgres_provider == "container" or provider.find_binaries() is None:
        return "the course's PostgreSQL is not a local server here, so it is not restarted"
    return None


async def restart_server(settings: Settings, *, down_for: float = 0.0) -> float:
    """Stop the course's local PostgreSQL (fast shutdown), wait down_for seconds, start it; return seconds down."""
    reason = restart_reason(settings)
    if reason is not None:
        raise RuntimeError(reason)
    began = time.perf_counter()
    # pg_ctl is a blocking subprocess: keep it off the event loop so traffic keeps flowing (and failing).
    await asyncio.to_thread(provider.stop, settings)
    if down_for:
        await asyncio.sleep(down_for)
    await asyncio.to_thread(provider.start, settings)
    return time.perf_counter() - began


async def terminate_connections(url: str) -> int:
    """pg_terminate_backend every other connection to url's database (what a failover or an admin does)."""
    return await roles.end_other_sessions(url)


async def connections_to(url: str) -> int:
    """How many server processes are connected to url's database right now."""
    parsed = db.parse_url(url)
    conn = await admin.connect(parsed.set(database="postgres"))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                parsed.database,
            )
        )
    finally:
        await conn.close()


async def other_clients(url: str) -> int:
    """Client connections to any database on the server other than url's (a restart would cut them off)."""
    parsed = db.parse_url(url)
    conn = await admin.connect(parsed.set(database="postgres"))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND datname IS DISTINCT FROM $1 AND pid <> pg_backend_pid()",
                parsed.database,
            )
        )
    finally:
        await conn.close()


async def server_limits(url: str) -> dict[str, int]:
    """max_connections, superuser_reserved_connections and the connections in use, server-wide."""
    conn = await admin.connect(db.parse_url(url).set(database="postgres"))
    try:
        return {
            "max_connections": int(await conn.fetchval("SHOW max_connections")),
            "superuser_reserved_connections": int(await conn.fetchval("SHOW superuser_reserved_connections")),
            "in_use": int(
                await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
            ),
        }
    finally:
        await conn.close()
