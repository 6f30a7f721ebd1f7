"""The chapter 6 machinery: the demo app, uvicorn + bounded load, the pool watchers and the server helpers."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest
from sqlalchemy import select

from course import db
from course.chapters.ch06_pooling.app import captured_log, create_app
from course.chapters.ch06_pooling.load import LoadResult, run_load, serve
from course.chapters.ch06_pooling.measure import distribution, latencies_ms, percentile
from course.chapters.ch06_pooling.server import (
    connections_to,
    other_clients,
    restart_reason,
    restart_server,
    server_limits,
    terminate_connections,
)
from course.chapters.ch06_pooling.watch import tracked_sessionmaker, watch_pool
from course.db.postgres import admin as pg_admin
from course.errors import CourseError
from course.seed.fresh import fresh_copy
from course.settings import Settings, get_settings


@pytest.fixture
async def copy_url(tiny: Settings):
    async with fresh_copy(tiny) as copy:
        yield copy.url


async def test_app_in_process_answers_and_returns_every_connection(copy_url: str) -> None:
    app = create_app(copy_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            found, missing, health = await asyncio.gather(
                client.get("/users/1"), client.get("/users/99999999"), client.get("/health")
            )
        assert found.status_code == 200 and found.json()["id"] == 1
        assert isinstance(found.json()["posts"], int)
        assert missing.status_code == 404
        assert health.json() == {"database": 1}
        assert app.state.engine.pool.checkedout() == 0


async def test_exhausted_pool_answers_503_and_logs_the_pool(copy_url: str) -> None:
    app = create_app(copy_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            with captured_log() as lines:
                answers = await asyncio.gather(*(client.get("/users/1/report?hold_ms=800") for _ in range(2)))
    assert sorted(r.status_code for r in answers) == [200, 503]
    busy = next(r for r in answers if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert len(lines) == 1 and "pool exhausted" in lines[0] and "Pool size: 1" in lines[0]


async def test_report_holds_its_connection(copy_url: str) -> None:
    app = create_app(copy_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            took = await latencies_ms(lambda: client.get("/users/2/report?hold_ms=150"), 2, warmup=0)
    assert min(took) >= 150


async def test_served_by_uvicorn_under_a_bounded_load(copy_url: str) -> None:
    app = create_app(copy_url, pool_size=3)
    async with serve(app) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        load = await run_load(
            base_url, lambda n: f"/users/{n % 30 + 1}", requests=60, concurrency=6, time_limit=60
        )
    assert (load.requests, load.failed) == (60, 0)
    assert 0 < load.p50 <= load.p99 and load.throughput > 0
    assert set(load.row()) == {"requests", "failed", "seconds", "req_per_s", "p50_ms", "p99_ms"}
    # Once the block is left, nothing listens on the port any more.
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(base_url + "/health")


async def test_load_stops_at_its_time_limit(copy_url: str) -> None:
    app = create_app(copy_url)
    async with serve(app) as base_url:
        load = await run_load(
            base_url, "/users/1/report?hold_ms=100", requests=10_000, concurrency=2, time_limit=0.5
        )
    assert 0 < load.requests < 100 and load.seconds < 5


async def test_run_load_refuses_an_empty_load() -> None:
    with pytest.raises(CourseError, match="at least one request"):
        await run_load("http://127.0.0.1:9", "/", requests=0)


def test_load_result_sorts_failures_around_an_outage() -> None:
    result = LoadResult(concurrency=1, seconds=4.0)
    # (sent at s, latency ms, outcome)
    for sent, ms, outcome in [
        (0.1, 10, "200"),
        (0.5, 400, "503"),  # ended at 0.9, before the outage at 1.0
        (0.9, 300, "503"),  # in flight when the server stopped
        (1.5, 10, "ConnectError"),
        (2.5, 10, "503"),  # sent after the server was back at 2.0
        (3.0, 10, "404"),  # an answer, not a failure
    ]:
        result.starts.append(sent)
        result.latencies_ms.append(ms)
        result.outcomes.append(outcome)
    assert result.failed_around(1.0, 2.0) == {"before": 1, "during": 2, "after": 1}
    assert result.failed == 4 and result.ok == 2
    assert result.failures() == {"503": 3, "ConnectError": 1}
    assert result.p50 == 10


def test_percentiles_use_the_nearest_rank() -> None:
    samples = list(range(1, 101))
    assert [percentile(samples, p) for p in (1, 50, 99, 100)] == [1, 50, 99, 100]
    table = distribution({"a": samples, "b": [5.0]}, points=(50, 99))
    assert table.to_dict("records") == [
        {"case": "a", "percentile": 50, "ms": 50},
        {"case": "a", "percentile": 99, "ms": 99},
        {"case": "b", "percentile": 50, "ms": 5.0},
        {"case": "b", "percentile": 99, "ms": 5.0},
    ]


async def test_pool_watch_and_session_ledger(copy_url: str) -> None:
    engine = db.make_engine(url=copy_url, pool_size=2)
    Session, ledger = tracked_sessionmaker(engine)
    try:
        with watch_pool(engine) as events:
            async with Session() as first, Session() as second:
                await first.execute(select(1))
                await second.execute(select(1))
            left_open = Session()
            await left_open.execute(select(1))
        assert (events.connects, events.most_out, events.out) == (2, 2, 1)
        assert len(ledger.made) == 3 and ledger.unclosed == 1
        await ledger.close_all()
        assert ledger.unclosed == 0 and engine.pool.checkedout() == 0
    finally:
        await engine.dispose()


def test_restart_is_only_offered_for_the_course_s_own_server() -> None:
    assert "needs PostgreSQL" in restart_reason(get_settings(backend="sqlite"))
    theirs = get_settings(database_url="postgresql+asyncpg://app@db.example/app")
    assert "does not own" in restart_reason(theirs)


async def test_restart_refuses_a_server_it_does_not_own() -> None:
    with pytest.raises(RuntimeError, match="needs PostgreSQL"):
        await restart_server(get_settings(backend="sqlite"))


async def test_terminate_and_restart_for_real(private_pg: Settings) -> None:
    # A server of this worker's own: restarting the shared one would cut off the other tests' connections.
    settings = private_pg
    pg_url = db.parse_url(pg_admin.admin_url(settings)).set(database=f"course_test_{secrets.token_hex(4)}")
    await pg_admin.create_database_if_missing(pg_url)
    pg_url = pg_url.render_as_string(hide_password=False)
    engine = db.make_engine(url=pg_url, pool_size=3, pool_pre_ping=True)
    try:
        conns = [await engine.connect() for _ in range(3)]
        assert await connections_to(pg_url) == 3
        for conn in conns:
            await conn.close()
        assert await terminate_connections(pg_url) == 3
        assert await connections_to(pg_url) == 0
        # A connection to another database on the same server is what makes a check refuse to restart it.
        admin_engine = db.make_engine(url=db.parse_url(pg_url).set(database="postgres"))
        try:
            async with admin_engine.connect() as other:
                await other.execute(select(1))
                assert await other_clients(pg_url) >= 1
        finally:
            await admin_engine.dispose()
        assert await other_clients(pg_url) == 0
        # Pre-ping replaces the killed connections; then the server goes down and comes back on the same port.
        async with engine.connect() as conn:
            assert await conn.scalar(select(1)) == 1
        assert restart_reason(settings) is None
        assert await restart_server(settings) > 0
        async with engine.connect() as conn:
            assert await conn.scalar(select(1)) == 1
        limits = await server_limits(pg_url)
        assert limits["max_connections"] > limits["superuser_reserved_connections"] >= 0
    finally:
        await engine.dispose()
        await pg_admin.drop_database(pg_url)
