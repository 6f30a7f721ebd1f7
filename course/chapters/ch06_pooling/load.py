"""Serve an app with uvicorn on 127.0.0.1 and drive it with a bounded async load: counts, throughput, latencies."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn

from course.chapters.ch06_pooling.measure import percentile
from course.errors import CourseError

# Answers that count as served: 404 is the app answering "no such user", not a failure.
OK = ("200", "404")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(app: object, *, startup_timeout: float = 20.0) -> AsyncIterator[str]:
    """Run app under uvicorn on a free loopback port, in a thread with its own event loop; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        # On a busy machine a client may not get the CPU for seconds; uvicorn's default 5 s keep-alive would then
        # close a connection just as the client reuses it, which is a failure of the load generator, not the app.
        timeout_keep_alive=120,
    )
    server = uvicorn.Server(config)
    # A thread that is not the main one: uvicorn leaves the kernel's signal handlers alone there.
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise CourseError(f"the app did not start on 127.0.0.1:{port} (see the log above)")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)


@dataclass
class LoadResult:
    """What a load run saw: one entry per request sent (start offset in s, latency in ms, status or error)."""

    concurrency: int
    seconds: float
    starts: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if o not in OK)

    @property
    def ok(self) -> int:
        return self.requests - self.failed

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency (ms) below which p percent of the successful requests finished (nearest rank)."""
        return percentile([ms for ms, o in zip(self.latencies_ms, self.outcomes, strict=True) if o in OK], p)

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p99(self) -> float:
        return self.percentile(99)

    def failures(self) -> Counter[str]:
        return Counter(o for o in self.outcomes if o not in OK)

    def failed_around(self, down_from: float, up_at: float) -> dict[str, int]:
        """Failed requests that ended before an outage, overlapped it, or were sent once it was over."""
        phases = {"before": 0, "during": 0, "after": 0}
        for sent, ms, outcome in zip(self.starts, self.latencies_ms, self.outcomes, strict=True):
            if outcome in OK:
                continue
            if sent + ms / 1000 < down_from:
                phases["before"] += 1
            elif sent < up_at:
                phases["during"] += 1
            else:
                phases["after"] += 1
        return phases

    def row(self) -> dict[str, float | int]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "seconds": round(self.seconds, 2),
            "req_per_s": round(self.throughput, 1),
            "p50_ms": round(self.p50, 1),
            "p99_ms": round(self.p99, 1),
        }


async def run_load(
    base_url: str,
    path: str | Callable[[int], str],
    *,
    requests: int = 2000,
    concurrency: int = 50,
    time_limit: float = 60.0,
    pause: float = 0.0,
    origin: float | None = None,
) -> LoadResult:
    """Send `requests` GETs with `concurrency` in flight; stop early at time_limit. `pause` spaces each worker's calls.

    Start offsets count from `origin` (a time.perf_counter() value; now by default), so several loads and the
    events around them (a restart) can share one clock.
    """
    if requests < 1 or concurrency < 1:
        raise CourseError("a load needs at least one request and a concurrency of at least one")
    result = LoadResult(concurrency=concurrency, seconds=0.0)
    path_for = path if callable(path) else (lambda _n: path)
    counter = iter(range(requests))
    begin = time.perf_counter() if origin is None else origin
    deadline = time.perf_counter() + time_limit
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for n in counter:
            if time.perf_counter() > deadline:
                return
            sent = time.perf_counter()
            try:
                response = await client.get(path_for(n))
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            done = time.perf_counter()
            result.starts.append(sent - begin)
            result.latencies_ms.append((done - sent) * 1000)
            result.outcomes.append(outcome)
            if pause:
                await asyncio.sleep(pause)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - begin
    return result
