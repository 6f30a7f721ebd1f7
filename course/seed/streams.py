"""Reproducible random columns: numpy over raw PCG64 bits only, so no sampling algorithm of numpy decides a value."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np


class Stream:
    """Reproducible random columns from one PCG64 bit stream (only its raw output is used, see the docstring)."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.PCG64(seed)

    def uniform(self, n: int) -> np.ndarray:
        """n floats in [0, 1) from the top 53 bits of each raw draw."""
        return (self._bits.random_raw(n) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)

    def integers(self, low: int, high: int, n: int) -> np.ndarray:
        """n integers in [low, high)."""
        return low + (self.uniform(n) * (high - low)).astype(np.int64)

    def chance(self, p: float, n: int) -> np.ndarray:
        """n booleans, each True with probability p."""
        return self.uniform(n) < p

    def weighted(self, cum_weights: np.ndarray, n: int) -> np.ndarray:
        """n indexes (from 0) drawn with the given cumulative weights."""
        return np.searchsorted(cum_weights, self.uniform(n) * cum_weights[-1], side="right")

    def permutation(self, n: int) -> np.ndarray:
        return np.argsort(self.uniform(n), kind="stable")

    def raw(self, n: int) -> np.ndarray:
        return self._bits.random_raw(n)

    def state(self) -> Any:
        """Where the stream is, so a later draw can start from here again (see restored)."""
        return self._bits.state

    @classmethod
    def restored(cls, state: Any) -> Stream:
        """A stream that continues from a saved state: drawing from it twice gives the same values twice."""
        stream = cls(0)
        stream._bits.state = state
        return stream


def zipf_cum_weights(n: int, stream: Stream, exponent: float = 1.1) -> np.ndarray:
    """Cumulative weights where a few ids get most of the activity, shuffled so that skew is not by id."""
    ranks = stream.permutation(n) + 1
    return np.cumsum(1.0 / ranks.astype(np.float64) ** exponent)


def external_ids(stream: Stream, n: int) -> list[uuid.UUID]:
    """Version-4 UUIDs from 128 random bits each (the version and variant bits set as RFC 9562 says)."""
    high = (stream.raw(n) & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)
    low = (stream.raw(n) & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    return [uuid.UUID(int=(h << 64) | lo) for h, lo in zip(high.tolist(), low.tolist(), strict=True)]


def post_tags(s: Stream, posts: int, tags: int) -> tuple[list[int], list[int]]:
    """(post_id, tag_id) pairs: each post draws 0-4 tags with replacement; duplicates collapse, ids ascend."""
    n = posts
    wanted = s.integers(0, 5, n)
    drawn = s.integers(1, tags + 1, n * 4).reshape(n, 4)
    # Draws past a post's count become a sentinel above every tag id, then each row is sorted.
    drawn = np.where(np.arange(4) < wanted[:, None], drawn, tags + 1)
    drawn.sort(axis=1)
    keep = drawn <= tags
    keep[:, 1:] &= drawn[:, 1:] != drawn[:, :-1]
    ids = np.broadcast_to(np.arange(1, n + 1)[:, None], drawn.shape)
    return ids[keep].tolist(), drawn[keep].tolist()


def order_lines(s: Stream, orders: int, products: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order id, product id, quantity) per line: 1-10 lines per order, each product at most once per order."""
    n = orders
    # Line counts follow an exponential tail: most orders have one or two lines, a few have ten.
    lines = 1 + np.minimum((-np.log1p(-s.uniform(n)) / 0.7).astype(np.int64), 9)
    drawn = s.integers(1, products + 1, n * 10).reshape(n, 10)
    drawn = np.where(np.arange(10) < lines[:, None], drawn, 0)
    # A product drawn twice for one order counts once: keep the first time it appears in the row.
    order = np.argsort(drawn, axis=1, kind="stable")
    ranked = np.take_along_axis(drawn, order, axis=1)
    repeat = np.zeros_like(ranked, dtype=bool)
    repeat[:, 1:] = ranked[:, 1:] == ranked[:, :-1]
    duplicate = np.zeros_like(repeat)
    np.put_along_axis(duplicate, order, repeat, axis=1)
    keep = (drawn > 0) & ~duplicate
    order_ids = np.broadcast_to(np.arange(1, n + 1)[:, None], drawn.shape)[keep]
    quantity = s.integers(1, 6, n * 10).reshape(n, 10)[keep]
    return order_ids, drawn[keep], quantity
