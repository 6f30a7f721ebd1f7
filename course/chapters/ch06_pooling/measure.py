"""Per-request latencies and their distribution: what the lesson plots instead of a single mean."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pandas as pd

POINTS = (5, 10, 25, 50, 75, 90, 95, 99)


async def latencies_ms(request: Callable[[], Awaitable[Any]], n: int, *, warmup: int = 2) -> list[float]:
    """Milliseconds taken by each of n awaited calls, one after another, after warmup calls that are not kept."""
    for _ in range(warmup):
        await request()
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        await request()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the value below which p percent of the samples lie."""
    ordered = sorted(samples)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def distribution(samples: Mapping[str, Sequence[float]], points: Sequence[float] = POINTS) -> pd.DataFrame:
    """Long table (case, percentile, ms) for line_plot(hue="case")."""
    return pd.DataFrame(
        [
            {"case": case, "percentile": p, "ms": percentile(values, p)}
            for case, values in samples.items()
            for p in points
        ]
    )
