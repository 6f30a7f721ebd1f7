"""What verifying the seed costs, in one run: the digest and fingerprint per backend, and a copy with and without.

Run: .venv/bin/python benchmarks/seed_verify.py [--scale small] [--skip-postgres]
The brief's budget: verifying before each copy costs well under 0.3 s (the fingerprint; the digest only when the
fingerprint moved, and once per grading run). Prints medians of a few runs, in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from course.db import aio
from course.db.copies import copy_of
from course.seed import fresh, verify
from course.seed.status import content_checksum
from course.settings import get_settings


def median(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(backend: str, scale: str) -> dict[str, float]:
    settings = get_settings(backend=backend, scale=scale)
    url = verify.verified_seed(settings)

    async def plain() -> None:
        copy = await copy_of(url)
        await copy.drop()

    rows = {
        "content_checksum (status.py, both backends alike)": median(lambda: aio.run(content_checksum(url)), 1),
        "digest (exact, per backend)": median(lambda: verify.digest(url), 3),
        "fingerprint": median(lambda: verify.fingerprint(url)),
        "verified_seed before a copy (status + fingerprint)": median(lambda: verify.verified_seed(settings)),
        "copy + drop, no verification": median(lambda: aio.run(plain())),
    }
    if backend == "postgres":
        with fresh.copy_service(settings):

            async def brokered() -> None:
                copy = await fresh.create_copy(settings)
                await copy.drop()

            rows["copy + drop through the broker (own role, verified)"] = median(lambda: aio.run(brokered()))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="small")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    for backend in ("sqlite",) if args.skip_postgres else ("sqlite", "postgres"):
        for name, seconds in measure(backend, args.scale).items():
            print(f"{backend:<8} {args.scale:<5} {name:<55} {seconds:8.3f} s")


if __name__ == "__main__":
    main()
