"""Each seeded table's column values, drawn from the table's own stream so every table is reproducible on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from course.seed.streams import Stream, external_ids
from course.seed.text import Vocabulary, encode_times

RANDOM_SEED = 20240101
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
DAY = 86_400
HOUR = 3_600
# Every seeded user's password is "course-password": an argon2id hash made once, so seeding stays fast
# and deterministic (hashing per user would take minutes and give random salts).
SEEDED_PASSWORD = "course-password"
SEEDED_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$Y291cnNlLXNlZWQtc2FsdA$eBBofd4psNGzOEm5h1++t+MIOLy/e0aIfboJRr2ts58"
)

Columns = tuple[list[Any], ...]


@dataclass(frozen=True)
class Shared:
    """Sizes, the target encoding, and the shapes several tables share (drawn once, first, in a fixed order)."""

    backend: str
    vocab: Vocabulary
    users: int
    posts: int
    comments: int
    products: int
    transfers: int
    author_weights: np.ndarray
    post_weights: np.ndarray
    post_hours: np.ndarray
    post_authors: np.ndarray
    user_days: np.ndarray
    product_prices: np.ndarray

    def ts(self, seconds: np.ndarray) -> list[Any]:
        return encode_times(seconds, BASE_TIME, self.backend)

    def nullable(self, values: list[Any], keep: np.ndarray) -> list[Any]:
        """values where keep is True, None elsewhere."""
        return [v if k else None for v, k in zip(values, keep.tolist(), strict=True)]


def users(sh: Shared) -> Columns:
    s = Stream(RANDOM_SEED + 1)
    n = sh.users
    vocab = sh.vocab
    first = vocab.pick(vocab.first_names, s, n)
    last = vocab.pick(vocab.last_names, s, n)
    created = sh.user_days * DAY + s.integers(0, DAY, n)
    deleted = created + DAY * s.integers(1, 300, n)
    roll = s.uniform(n)
    role = np.where(roll < 0.005, "admin", np.where(roll < 0.025, "moderator", "member")).tolist()
    status = np.where(s.chance(0.02, n), "suspended", "active").tolist()
    external = external_ids(s, n)
    external_col: list[Any] = [u.hex for u in external] if sh.backend == "sqlite" else list(external)
    uids = list(range(1, n + 1))
    emails = [f"{f}.{la}.{i}@example.com".lower() for f, la, i in zip(first, last, uids, strict=True)]
    names = [f"{f} {la}" for f, la in zip(first, last, strict=True)]
    return (
        uids,
        external_col,
        emails,
        names,
        [SEEDED_PASSWORD_HASH] * n,
        status,
        role,
        sh.ts(created),
        sh.ts(created + s.integers(0, DAY * 30, n)),
        sh.nullable(sh.ts(deleted), s.chance(0.03, n)),
    )


def profile_owners(sh: Shared, s: Stream) -> np.ndarray:
    """Seven users in ten have a profile: the first draw of the profiles' stream."""
    return np.arange(1, sh.users + 1)[s.chance(0.7, sh.users)]


def profiles(sh: Shared) -> Columns:
    s = Stream(RANDOM_SEED + 2)
    owners = profile_owners(sh, s)
    n = len(owners)
    locations = [f"{name} City" for name in sh.vocab.pick(sh.vocab.last_names, s, n)]
    return (
        list(range(1, n + 1)),
        owners.tolist(),
        sh.vocab.sentences(s, n, 5, 20),
        sh.nullable(locations, s.chance(0.6, n)),
    )


def posts(sh: Shared) -> Columns:
    s = Stream(RANDOM_SEED + 3)
    n = sh.posts
    created = sh.post_hours * HOUR
    published = s.chance(0.8, n)
    return (
        list(range(1, n + 1)),
        sh.post_authors.tolist(),
        [title.capitalize() for title in sh.vocab.sentences(s, n, 3, 8)],
        sh.vocab.sentences(s, n, 20, 60),
        np.where(published, "published", "draft").tolist(),
        sh.nullable(sh.ts(created + HOUR * s.integers(0, 48, n)), published),
        sh.ts(created),
        sh.ts(created + HOUR * s.integers(0, 72, n)),
        sh.nullable(sh.ts(created + HOUR * s.integers(1, 500, n)), s.chance(0.02, n)),
    )


def comments(sh: Shared) -> Columns:
    """On popular posts, by active users, within 30 days of the post."""
    s = Stream(RANDOM_SEED + 4)
    n = sh.comments
    targets = s.weighted(sh.post_weights, n)
    return (
        list(range(1, n + 1)),
        (targets + 1).tolist(),
        (s.weighted(sh.author_weights, n) + 1).tolist(),
        sh.vocab.sentences(s, n, 3, 25),
        sh.ts(sh.post_hours[targets] * HOUR + s.integers(60, DAY * 30, n)),
    )


def tags(sh: Shared, count: int) -> Columns:
    s = Stream(RANDOM_SEED + 5)
    words = sh.vocab.words
    return list(range(1, count + 1)), [words[i] for i in s.permutation(len(words))[:count].tolist()]


def products(sh: Shared) -> Columns:
    s = Stream(RANDOM_SEED + 7)
    n = sh.products
    stamps = sh.ts(s.integers(0, 365 * DAY, n))
    adjectives, nouns = sh.vocab.pick(sh.vocab.words, s, n), sh.vocab.pick(sh.vocab.words, s, n)
    return (
        list(range(1, n + 1)),
        [f"SKU-{i:06d}" for i in range(1, n + 1)],
        [f"{a.capitalize()} {b}" for a, b in zip(adjectives, nouns, strict=True)],
        sh.product_prices.tolist(),
        stamps,
        stamps,
    )


def orders(sh: Shared, s: Stream, order_of: np.ndarray, line_totals: np.ndarray, n: int) -> Columns:
    """s: the orders' stream just after the order lines were drawn from it."""
    totals = np.bincount(order_of - 1, weights=line_totals, minlength=n).astype(np.int64)
    status = np.array(["pending", "paid", "shipped", "cancelled"])[
        s.weighted(np.cumsum([10.0, 30.0, 55.0, 5.0]), n)
    ]
    return (
        list(range(1, n + 1)),
        (s.weighted(sh.author_weights, n) + 1).tolist(),
        status.tolist(),
        totals.tolist(),
        sh.ts(365 * DAY + s.integers(0, 365 * DAY, n)),
    )


def accounts(sh: Shared) -> Columns:
    """One per user."""
    s = Stream(RANDOM_SEED + 9)
    n = sh.users
    uids = list(range(1, n + 1))
    return uids, uids, s.integers(0, 1_000_000, n).tolist(), [1] * n


def transfers(sh: Shared) -> Columns:
    """Between two different accounts."""
    s = Stream(RANDOM_SEED + 10)
    n = sh.transfers
    source = s.integers(1, sh.users + 1, n)
    target = s.integers(1, sh.users, n)
    target = target + (target >= source)
    return (
        list(range(1, n + 1)),
        source.tolist(),
        target.tolist(),
        s.integers(1, 50_000, n).tolist(),
        sh.ts(365 * DAY + s.integers(0, 365 * DAY, n)),
    )
