"""Deterministic rows for the seeded database: the same scale gives the same rows on every machine.

Rows are drawn a column at a time with numpy from PCG64 bit streams. Only the raw 64-bit output of the bit
generator is used (stable across numpy versions and platforms); integers, floats and weighted choices are derived
from it here, so no numpy sampling algorithm that might change between releases decides a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from course.seed import tables as draw
from course.seed.streams import Stream, order_lines, post_tags, zipf_cum_weights
from course.seed.tables import SEEDED_PASSWORD, SEEDED_PASSWORD_HASH
from course.seed.text import Vocabulary
from course.settings import project_root

# Change when the generated rows change, so old seeds are rebuilt.
SEED_VERSION = 2
# Word lists are committed inputs in the repository's data/ folder: beside the package in an editable install,
# else in the checkout being worked in (a package installed from a wheel on a hub, a clone in the learner's home).
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def word_lists() -> Vocabulary:
    """The seed's word lists, from the first of those two places that has them."""
    return Vocabulary.load(DATA_DIR if (DATA_DIR / "words.txt").exists() else project_root() / "data")


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
    """One table: its column names, its row count, and a factory that draws its column values when called.

    The values are drawn only when `data()` is called (each call draws the same values again), so a loader can
    start sending one table while the next is still to be drawn. Values are encoded for the target ("sqlite" or
    "postgres") as its driver takes them.
    """

    table: str
    columns: tuple[str, ...]
    count: int
    data: Callable[[], Sequence[list[Any]]]

    def rows(self) -> Iterator[tuple]:
        """The rows as tuples, in column order."""
        return zip(*self.data(), strict=True)


def build_tables(scale: str, backend: str) -> list[TableRows]:
    """All tables of the seed in foreign-key order; each table's values are drawn when its `data()` is called.

    backend is the encoding: "sqlite" (text timestamps, hex UUIDs) or "postgres" (asyncpg's Python types, but
    timestamps as int64 microseconds since 2000-01-01 UTC: see pg_load.binary_timestamps).
    """
    size = SIZES[scale]
    # Shapes that several tables share, drawn first from one stream in a fixed order.
    shared = Stream(draw.RANDOM_SEED)
    author_weights = zipf_cum_weights(size.users, shared)
    sh = draw.Shared(
        backend=backend,
        vocab=word_lists(),
        users=size.users,
        posts=size.posts,
        comments=size.comments,
        products=size.products,
        transfers=size.transfers,
        author_weights=author_weights,
        post_weights=zipf_cum_weights(size.posts, shared),
        # Posts start on whole hours, so many share a created_at: cursors must break ties.
        post_hours=shared.integers(0, 2 * 365 * 24, size.posts),
        post_authors=shared.weighted(author_weights, size.posts) + 1,
        user_days=shared.integers(0, 365, size.users),
        product_prices=shared.integers(99, 50_000, size.products),
    )
    # The row counts that are themselves drawn (profiles, tags per post, order lines) are drawn here; the rest of
    # each table waits for its data() call.
    profile_count = len(draw.profile_owners(sh, Stream(draw.RANDOM_SEED + 2)))
    post_col, tag_col = post_tags(Stream(draw.RANDOM_SEED + 6), size.posts, size.tags)
    order_stream = Stream(draw.RANDOM_SEED + 8)
    order_of, product_of, quantity = order_lines(order_stream, size.orders, size.products)
    prices = sh.product_prices[product_of - 1]
    after_lines = order_stream.state()
    items = len(order_of)

    def order_columns() -> draw.Columns:
        return draw.orders(sh, Stream.restored(after_lines), order_of, quantity * prices, size.orders)

    def item_columns() -> draw.Columns:
        return (
            list(range(1, items + 1)),
            order_of.tolist(),
            product_of.tolist(),
            quantity.tolist(),
            prices.tolist(),
        )

    return [
        TableRows("users", _cols(USERS), size.users, partial(draw.users, sh)),
        TableRows("profiles", _cols("id user_id bio location"), profile_count, partial(draw.profiles, sh)),
        TableRows("posts", _cols(POSTS), size.posts, partial(draw.posts, sh)),
        TableRows(
            "comments", _cols("id post_id author_id body created_at"), size.comments, partial(draw.comments, sh)
        ),
        TableRows("tags", ("id", "name"), size.tags, partial(draw.tags, sh, size.tags)),
        TableRows("post_tags", ("post_id", "tag_id"), len(post_col), lambda: (post_col, tag_col)),
        TableRows(
            "products",
            _cols("id sku name price_cents created_at updated_at"),
            size.products,
            partial(draw.products, sh),
        ),
        TableRows("orders", _cols("id user_id status total_cents created_at"), size.orders, order_columns),
        TableRows("order_items", _cols("id order_id product_id quantity unit_price_cents"), items, item_columns),
        TableRows("accounts", _cols("id user_id balance_cents version"), size.users, partial(draw.accounts, sh)),
        TableRows("transfers", _cols(TRANSFERS), size.transfers, partial(draw.transfers, sh)),
    ]


USERS = "id external_id email name password_hash status role created_at updated_at deleted_at"
POSTS = "id author_id title body status published_at created_at updated_at deleted_at"
TRANSFERS = "id from_account_id to_account_id amount_cents created_at"


def _cols(names: str) -> tuple[str, ...]:
    return tuple(names.split())


__all__ = [
    "SEEDED_PASSWORD",
    "SEEDED_PASSWORD_HASH",
    "SEED_VERSION",
    "SIZES",
    "Sizes",
    "TableRows",
    "build_tables",
]
