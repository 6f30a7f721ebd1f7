"""Deterministic rows for the seeded database: the same scale gives the same rows on every machine."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate
from pathlib import Path

# Change when the generated rows change, so old seeds are rebuilt.
SEED_VERSION = 1
RANDOM_SEED = 20240101
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
# Word lists are committed inputs in the repository's data/ folder.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"

# Every seeded user's password is "course-password": an argon2id hash made once, so seeding stays fast
# and deterministic (hashing per user would take minutes and give random salts).
SEEDED_PASSWORD = "course-password"
SEEDED_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$Y291cnNlLXNlZWQtc2FsdA$eBBofd4psNGzOEm5h1++t+MIOLy/e0aIfboJRr2ts58"
)


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


def _lines(name: str) -> list[str]:
    return (DATA_DIR / name).read_text(encoding="utf-8").split()


@dataclass(frozen=True)
class TableRows:
    """One table's columns and a factory for its rows, already encoded for the target backend."""

    table: str
    columns: tuple[str, ...]
    count: int
    rows: Callable[[], Iterator[tuple]]


class Encoder:
    """Turns timestamps and UUIDs into what the target driver stores, without changing their meaning."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def ts(self, seconds: int) -> datetime | str:
        return _sqlite_ts(seconds) if self.backend == "sqlite" else _pg_ts(seconds)

    def uid(self, value: uuid.UUID) -> uuid.UUID | str:
        # SQLAlchemy's Uuid type stores 32 hex digits on SQLite and a native uuid on PostgreSQL.
        return value.hex if self.backend == "sqlite" else value


@cache
def _pg_ts(seconds: int) -> datetime:
    return BASE_TIME + timedelta(seconds=seconds)


@cache
def _sqlite_ts(seconds: int) -> str:
    # The exact text SQLAlchemy's SQLite DateTime writes, so ORM reads and comparisons agree with the seed.
    return (BASE_TIME + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")


def _zipf_cum_weights(n: int, rng: random.Random, exponent: float = 1.1) -> list[float]:
    """Cumulative weights where a few ids get most of the activity, the ids shuffled so skew is not by id."""
    ranks = list(range(1, n + 1))
    rng.shuffle(ranks)
    return list(accumulate(1.0 / (r**exponent) for r in ranks))


def build_tables(scale: str, backend: str) -> list[TableRows]:
    """All tables of the seed in foreign-key order. Rows come from one random.Random, so they are reproducible."""
    size = SIZES[scale]
    enc = Encoder(backend)
    words = _lines("words.txt")
    first_names = _lines("first_names.txt")
    last_names = _lines("last_names.txt")
    rng = random.Random(RANDOM_SEED)

    # Decide the shapes that several tables share up front, in a fixed order.
    user_ids = range(1, size.users + 1)
    post_ids = range(1, size.posts + 1)
    author_weights = _zipf_cum_weights(size.users, rng)
    post_weights = _zipf_cum_weights(size.posts, rng)
    # Posts start on whole hours, so many share a created_at: cursors must break ties.
    post_hours = [rng.randrange(0, 2 * 365 * 24) for _ in post_ids]
    post_authors = rng.choices(user_ids, cum_weights=author_weights, k=size.posts)
    user_days = [rng.randrange(0, 365) for _ in user_ids]
    item_counts = [1 + min(int(rng.expovariate(0.7)), 9) for _ in range(size.orders)]
    product_prices = [rng.randrange(99, 50_000) for _ in range(size.products)]

    def sentence(r: random.Random, lo: int, hi: int) -> str:
        return " ".join(r.choices(words, k=r.randint(lo, hi)))

    def users() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 1)
        for uid in user_ids:
            first, last = r.choice(first_names), r.choice(last_names)
            created = user_days[uid - 1] * 86_400 + r.randrange(0, 86_400)
            deleted = enc.ts(created + 86_400 * r.randrange(1, 300)) if r.random() < 0.03 else None
            roll = r.random()
            role = "admin" if roll < 0.005 else "moderator" if roll < 0.025 else "member"
            status = "suspended" if r.random() < 0.02 else "active"
            external = uuid.UUID(int=r.getrandbits(128), version=4)
            yield (
                uid,
                enc.uid(external),
                f"{first}.{last}.{uid}@example.com".lower(),
                f"{first} {last}",
                SEEDED_PASSWORD_HASH,
                status,
                role,
                enc.ts(created),
                enc.ts(created + r.randrange(0, 86_400 * 30)),
                deleted,
            )

    def profiles() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 2)
        pid = 0
        for uid in user_ids:
            if r.random() < 0.7:
                pid += 1
                yield (
                    pid,
                    uid,
                    sentence(r, 5, 20),
                    r.choice(last_names) + " City" if r.random() < 0.6 else None,
                )

    def posts() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 3)
        for pid in post_ids:
            created = post_hours[pid - 1] * 3600
            published = r.random() < 0.8
            deleted = enc.ts(created + 3600 * r.randrange(1, 500)) if r.random() < 0.02 else None
            yield (
                pid,
                post_authors[pid - 1],
                sentence(r, 3, 8).capitalize(),
                sentence(r, 20, 60),
                "published" if published else "draft",
                enc.ts(created + 3600 * r.randrange(0, 48)) if published else None,
                enc.ts(created),
                enc.ts(created + 3600 * r.randrange(0, 72)),
                deleted,
            )

    def comments() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 4)
        targets = r.choices(post_ids, cum_weights=post_weights, k=size.comments)
        authors = r.choices(user_ids, cum_weights=author_weights, k=size.comments)
        for cid in range(1, size.comments + 1):
            post_id = targets[cid - 1]
            created = post_hours[post_id - 1] * 3600 + r.randrange(60, 86_400 * 30)
            yield (cid, post_id, authors[cid - 1], sentence(r, 3, 25), enc.ts(created))

    def tags() -> Iterator[tuple]:
        chosen = random.Random(RANDOM_SEED + 5).sample(words, size.tags)
        yield from ((tid, name) for tid, name in enumerate(chosen, start=1))

    def post_tags() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 6)
        for pid in post_ids:
            for tag_id in sorted(set(r.choices(range(1, size.tags + 1), k=r.randint(0, 4)))):
                yield (pid, tag_id)

    def products() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 7)
        for pid in range(1, size.products + 1):
            created = enc.ts(r.randrange(0, 365 * 86_400))
            name = f"{r.choice(words).capitalize()} {r.choice(words)}"
            yield (pid, f"SKU-{pid:06d}", name, product_prices[pid - 1], created, created)

    def orders() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 8)
        buyers = r.choices(user_ids, cum_weights=author_weights, k=size.orders)
        statuses = ("pending", "paid", "shipped", "cancelled")
        for oid in range(1, size.orders + 1):
            total = sum(q * p for q, p in _order_lines(oid, item_counts[oid - 1], size, product_prices))
            created = 365 * 86_400 + r.randrange(0, 365 * 86_400)
            status = r.choices(statuses, weights=(10, 30, 55, 5))[0]
            yield (oid, buyers[oid - 1], status, total, enc.ts(created))

    def order_items() -> Iterator[tuple]:
        item_id = 0
        for oid in range(1, size.orders + 1):
            lines = _order_lines(oid, item_counts[oid - 1], size, product_prices)
            for (quantity, price), product_id in zip(lines, _order_products(oid, len(lines), size), strict=True):
                item_id += 1
                yield (item_id, oid, product_id, quantity, price)

    def accounts() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 9)
        yield from ((uid, uid, r.randrange(0, 1_000_000), 1) for uid in user_ids)

    def transfers() -> Iterator[tuple]:
        r = random.Random(RANDOM_SEED + 10)
        for tid in range(1, size.transfers + 1):
            src, dst = r.sample(user_ids, 2)
            yield (tid, src, dst, r.randrange(1, 50_000), enc.ts(365 * 86_400 + r.randrange(0, 365 * 86_400)))

    n_profiles = sum(1 for _ in profiles())
    n_post_tags = sum(1 for _ in post_tags())
    return [
        TableRows(
            "users",
            _cols("id external_id email name password_hash status role created_at updated_at deleted_at"),
            size.users,
            users,
        ),
        TableRows("profiles", _cols("id user_id bio location"), n_profiles, profiles),
        TableRows(
            "posts",
            _cols("id author_id title body status published_at created_at updated_at deleted_at"),
            size.posts,
            posts,
        ),
        TableRows("comments", _cols("id post_id author_id body created_at"), size.comments, comments),
        TableRows("tags", _cols("id name"), size.tags, tags),
        TableRows("post_tags", _cols("post_id tag_id"), n_post_tags, post_tags),
        TableRows("products", _cols("id sku name price_cents created_at updated_at"), size.products, products),
        TableRows("orders", _cols("id user_id status total_cents created_at"), size.orders, orders),
        TableRows(
            "order_items",
            _cols("id order_id product_id quantity unit_price_cents"),
            sum(len(_order_products(o, item_counts[o - 1], size)) for o in range(1, size.orders + 1)),
            order_items,
        ),
        TableRows("accounts", _cols("id user_id balance_cents version"), size.users, accounts),
        TableRows(
            "transfers",
            _cols("id from_account_id to_account_id amount_cents created_at"),
            size.transfers,
            transfers,
        ),
    ]


def _cols(names: str) -> tuple[str, ...]:
    return tuple(names.split())


def _order_products(order_id: int, n: int, size: Sizes) -> list[int]:
    # Derived from the order id alone, so orders and order_items agree without sharing state.
    r = random.Random(RANDOM_SEED * 31 + order_id)
    return r.sample(range(1, size.products + 1), min(n, size.products))


def _order_lines(order_id: int, n: int, size: Sizes, prices: list[int]) -> list[tuple[int, int]]:
    r = random.Random(RANDOM_SEED * 37 + order_id)
    return [(r.randint(1, 5), prices[p - 1]) for p in _order_products(order_id, n, size)]
