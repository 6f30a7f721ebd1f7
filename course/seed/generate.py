"""Deterministic rows for the seeded database: the same scale gives the same rows on every machine.

Rows are drawn a column at a time with numpy from PCG64 bit streams. Only the raw 64-bit output of the bit
generator is used (stable across numpy versions and platforms); integers, floats and weighted choices are derived
from it here, so no numpy sampling algorithm that might change between releases decides a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from course.seed.streams import Stream, external_ids, order_lines, post_tags, zipf_cum_weights
from course.seed.text import Vocabulary, encode_times
from course.settings import project_root

# Change when the generated rows change, so old seeds are rebuilt.
SEED_VERSION = 2
RANDOM_SEED = 20240101
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
# Word lists are committed inputs in the repository's data/ folder: beside the package in an editable install,
# else in the checkout being worked in (a package installed from a wheel on a hub, a clone in the learner's home).
DATA_DIR = Path(__file__).resolve().parents[2] / "data"

# Every seeded user's password is "course-password": an argon2id hash made once, so seeding stays fast
# and deterministic (hashing per user would take minutes and give random salts).
SEEDED_PASSWORD = "course-password"
SEEDED_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$Y291cnNlLXNlZWQtc2FsdA$eBBofd4psNGzOEm5h1++t+MIOLy/e0aIfboJRr2ts58"
)
DAY = 86_400
HOUR = 3_600


@dataclass(frozen=True)
class Sizes:
    """How many rows each scale has; the child tables (items, tags per post) follow from these."""

    users: int
    posts: int
    comments: int
    tags: int
    products: int
    orders: int
    transfers: int


SIZES = {
    "tiny": Sizes(users=200, posts=1_000, comments=3_000, tags=20, products=100, orders=500, transfers=500),
    "small": Sizes(
        users=5_000, posts=40_000, comments=120_000, tags=50, products=1_000, orders=20_000, transfers=20_000
    ),
    "large": Sizes(
        users=100_000,
        posts=400_000,
        comments=1_200_000,
        tags=200,
        products=10_000,
        orders=200_000,
        transfers=200_000,
    ),
}


@dataclass(frozen=True)
class TableRows:
    """One table's columns and a factory for its rows, already encoded for the target backend."""

    table: str
    columns: tuple[str, ...]
    count: int
    rows: Callable[[], Iterator[tuple]]


def _nullable(values: list, keep: np.ndarray) -> list:
    """values where keep is True, None elsewhere."""
    return [v if k else None for v, k in zip(values, keep.tolist(), strict=True)]


def _rows(*columns: list) -> Callable[[], Iterator[tuple]]:
    return lambda: zip(*columns, strict=True)


def build_tables(scale: str, backend: str) -> list[TableRows]:
    """All tables of the seed in foreign-key order, each drawn from its own stream, so they are reproducible."""
    size = SIZES[scale]
    vocab = Vocabulary.load(DATA_DIR if (DATA_DIR / "words.txt").exists() else project_root() / "data")

    def ts(seconds: np.ndarray) -> list:
        return encode_times(seconds, BASE_TIME, backend)

    # Shapes that several tables share, drawn first from one stream in a fixed order.
    shared = Stream(RANDOM_SEED)
    author_weights = zipf_cum_weights(size.users, shared)
    post_weights = zipf_cum_weights(size.posts, shared)
    # Posts start on whole hours, so many share a created_at: cursors must break ties.
    post_hours = shared.integers(0, 2 * 365 * 24, size.posts)
    post_authors = shared.weighted(author_weights, size.posts) + 1
    user_days = shared.integers(0, 365, size.users)
    product_prices = shared.integers(99, 50_000, size.products)
    user_ids = np.arange(1, size.users + 1)
    post_ids = np.arange(1, size.posts + 1)
    tables: list[TableRows] = []
    # Each table's columns, in its column order; every list has one value per row.
    columns: tuple[list[Any], ...]

    # users
    s = Stream(RANDOM_SEED + 1)
    n = size.users
    first = vocab.pick(vocab.first_names, s, n)
    last = vocab.pick(vocab.last_names, s, n)
    created = user_days * DAY + s.integers(0, DAY, n)
    deleted = created + DAY * s.integers(1, 300, n)
    roll = s.uniform(n)
    role = np.where(roll < 0.005, "admin", np.where(roll < 0.025, "moderator", "member")).tolist()
    status = np.where(s.chance(0.02, n), "suspended", "active").tolist()
    external = external_ids(s, n)
    external_col: list[Any] = [u.hex for u in external] if backend == "sqlite" else list(external)
    uids = user_ids.tolist()
    emails = [f"{f}.{la}.{i}@example.com".lower() for f, la, i in zip(first, last, uids, strict=True)]
    names = [f"{f} {la}" for f, la in zip(first, last, strict=True)]
    columns = (
        uids,
        external_col,
        emails,
        names,
        [SEEDED_PASSWORD_HASH] * n,
        status,
        role,
        ts(created),
        ts(created + s.integers(0, DAY * 30, n)),
        _nullable(ts(deleted), s.chance(0.03, n)),
    )
    tables.append(
        TableRows(
            "users",
            _cols("id external_id email name password_hash status role created_at updated_at deleted_at"),
            n,
            _rows(*columns),
        )
    )

    # profiles: seven users in ten have one
    s = Stream(RANDOM_SEED + 2)
    owners = user_ids[s.chance(0.7, size.users)]
    n = len(owners)
    locations = [f"{name} City" for name in vocab.pick(vocab.last_names, s, n)]
    columns = (
        list(range(1, n + 1)),
        owners.tolist(),
        vocab.sentences(s, n, 5, 20),
        _nullable(locations, s.chance(0.6, n)),
    )
    tables.append(TableRows("profiles", _cols("id user_id bio location"), n, _rows(*columns)))

    # posts
    s = Stream(RANDOM_SEED + 3)
    n = size.posts
    created = post_hours * HOUR
    published = s.chance(0.8, n)
    columns = (
        post_ids.tolist(),
        post_authors.tolist(),
        [title.capitalize() for title in vocab.sentences(s, n, 3, 8)],
        vocab.sentences(s, n, 20, 60),
        np.where(published, "published", "draft").tolist(),
        _nullable(ts(created + HOUR * s.integers(0, 48, n)), published),
        ts(created),
        ts(created + HOUR * s.integers(0, 72, n)),
        _nullable(ts(created + HOUR * s.integers(1, 500, n)), s.chance(0.02, n)),
    )
    tables.append(
        TableRows(
            "posts",
            _cols("id author_id title body status published_at created_at updated_at deleted_at"),
            n,
            _rows(*columns),
        )
    )

    # comments: on popular posts, by active users, within 30 days of the post
    s = Stream(RANDOM_SEED + 4)
    n = size.comments
    targets = s.weighted(post_weights, n)
    columns = (
        list(range(1, n + 1)),
        (targets + 1).tolist(),
        (s.weighted(author_weights, n) + 1).tolist(),
        vocab.sentences(s, n, 3, 25),
        ts(post_hours[targets] * HOUR + s.integers(60, DAY * 30, n)),
    )
    tables.append(TableRows("comments", _cols("id post_id author_id body created_at"), n, _rows(*columns)))

    # tags and post_tags: up to four tags per post
    s = Stream(RANDOM_SEED + 5)
    tag_names = [vocab.words[i] for i in s.permutation(len(vocab.words))[: size.tags].tolist()]
    tables.append(TableRows("tags", ("id", "name"), size.tags, _rows(list(range(1, size.tags + 1)), tag_names)))
    s = Stream(RANDOM_SEED + 6)
    post_col, tag_col = post_tags(s, size.posts, size.tags)
    tables.append(TableRows("post_tags", ("post_id", "tag_id"), len(post_col), _rows(post_col, tag_col)))

    # products
    s = Stream(RANDOM_SEED + 7)
    n = size.products
    stamps = ts(s.integers(0, 365 * DAY, n))
    adjectives, nouns = vocab.pick(vocab.words, s, n), vocab.pick(vocab.words, s, n)
    columns = (
        list(range(1, n + 1)),
        [f"SKU-{i:06d}" for i in range(1, n + 1)],
        [f"{a.capitalize()} {b}" for a, b in zip(adjectives, nouns, strict=True)],
        product_prices.tolist(),
        stamps,
        stamps,
    )
    tables.append(
        TableRows("products", _cols("id sku name price_cents created_at updated_at"), n, _rows(*columns))
    )

    # orders and order_items
    s = Stream(RANDOM_SEED + 8)
    order_of, product_of, quantity = order_lines(s, size.orders, size.products)
    prices = product_prices[product_of - 1]
    n = size.orders
    totals = np.bincount(order_of - 1, weights=quantity * prices, minlength=n).astype(np.int64)
    status = np.array(["pending", "paid", "shipped", "cancelled"])[
        s.weighted(np.cumsum([10.0, 30.0, 55.0, 5.0]), n)
    ]
    columns = (
        list(range(1, n + 1)),
        (s.weighted(author_weights, n) + 1).tolist(),
        status.tolist(),
        totals.tolist(),
        ts(365 * DAY + s.integers(0, 365 * DAY, n)),
    )
    tables.append(TableRows("orders", _cols("id user_id status total_cents created_at"), n, _rows(*columns)))
    items = len(order_of)
    columns = (
        list(range(1, items + 1)),
        order_of.tolist(),
        product_of.tolist(),
        quantity.tolist(),
        prices.tolist(),
    )
    tables.append(
        TableRows("order_items", _cols("id order_id product_id quantity unit_price_cents"), items, _rows(*columns))
    )

    # accounts: one per user
    s = Stream(RANDOM_SEED + 9)
    n = size.users
    columns = (uids, uids, s.integers(0, 1_000_000, n).tolist(), [1] * n)
    tables.append(TableRows("accounts", _cols("id user_id balance_cents version"), n, _rows(*columns)))

    # transfers between two different accounts
    s = Stream(RANDOM_SEED + 10)
    n = size.transfers
    source = s.integers(1, size.users + 1, n)
    target = s.integers(1, size.users, n)
    target = target + (target >= source)
    columns = (
        list(range(1, n + 1)),
        source.tolist(),
        target.tolist(),
        s.integers(1, 50_000, n).tolist(),
        ts(365 * DAY + s.integers(0, 365 * DAY, n)),
    )
    tables.append(
        TableRows(
            "transfers", _cols("id from_account_id to_account_id amount_cents created_at"), n, _rows(*columns)
        )
    )
    return tables


def _cols(names: str) -> tuple[str, ...]:
    return tuple(names.split())
