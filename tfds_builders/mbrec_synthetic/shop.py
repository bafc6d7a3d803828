"""Shop-scale synthetic event logs, generated user chunk by user chunk (pure NumPy).

Costs O(events) time and O(chunk) memory, so a million users and a 200k-item catalog build
on one machine. The planted structure:

- items: a power-law (Zipf) popularity, weight ∝ rank^-zipf_exponent over a random
  permutation of the item ids, and one of `num_categories` categories each;
- users: skewed activity (the number of views is log-normal, at least `min_views`) and
  `favourite_categories` favourite categories (drawn by category popularity); a view is
  of a favourite category with probability `taste`, else of the whole catalog, each by
  item popularity;
- a funnel: a viewed item is added to the cart with probability `cart_rate` (times
  `taste_boost` for favourite-category items), a carted item is bought with probability
  `buy_rate` (same boost); a share `off_funnel_rate` of the carts and buys are of items
  drawn afresh (not viewed, resp. not carted), and a user with fewer than `min_buys`
  purchases gets fresh ones up to it;
- time: views uniform over 30 days, a cart follows its view and a buy its cart by
  exponential delays.

Repeated draws of an item by a user are repeated events (the preprocessing merges them).
The log of a chunk depends only on the spec and the chunk's index, so a build is
deterministic and chunks can be made independently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from tfds_builders.mbrec_synthetic.events import (
    GeneratedSize,
    RawEvents,
    in_time_order,
    start_times,
)

BEHAVIORS = ("view", "cart", "buy")


@dataclasses.dataclass(frozen=True)
class ShopSpec(GeneratedSize):
    """Knobs of a shop-scale log (see the module docstring)."""

    # Catalog: categories and the power law of item popularity.
    num_categories: int = 1000
    zipf_exponent: float = 0.9
    # Activity: the log-normal number of views per user.
    mean_views: float = 52.0
    view_sigma: float = 1.0
    min_views: int = 5
    max_views: int = 5000
    # Taste: favourite categories and the share of views in them.
    favourite_categories: int = 3
    taste: float = 0.7
    # Funnel: view -> cart -> buy rates, their boost for liked items, fresh draws.
    cart_rate: float = 0.22
    buy_rate: float = 0.35
    taste_boost: float = 1.8
    off_funnel_rate: float = 0.05
    min_buys: int = 3
    chunk_users: int = 50_000  # users generated together (memory, not data)

    def __post_init__(self) -> None:
        self.require_at_least(("num_items", "num_categories"))
        if not 0.0 <= self.taste <= 1.0:
            raise ValueError("taste must be in [0, 1]")

    @property
    def num_chunks(self) -> int:
        return -(-self.num_users // self.chunk_users)


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Item popularity and categories, shared by every chunk.

    Items are ordered by category in `by_category` (item ids), with `cumulative` the
    running sum of their popularity in that order and `category_start` the first position
    of each category, so one uniform draw picks an item of a category by popularity.
    """

    by_category: np.ndarray
    cumulative: np.ndarray
    category_start: np.ndarray
    category_weight: np.ndarray
    item_category: np.ndarray


@dataclasses.dataclass(frozen=True)
class ChunkLog(RawEvents):
    """Raw events (behaviors code BEHAVIORS) of users `first_user .. first_user + num_users - 1`."""

    first_user: int
    num_users: int


def make_catalog(spec: ShopSpec) -> Catalog:
    """The item popularity and categories of `spec` (deterministic in `spec.seed`)."""
    rng = np.random.default_rng((spec.seed, 0))
    ranks = rng.permutation(spec.num_items) + 1
    popularity = ranks.astype(np.float64) ** -spec.zipf_exponent
    # Category sizes are themselves skewed; every category has at least one item.
    category_share = rng.dirichlet(np.full(spec.num_categories, 0.5))
    extra = rng.multinomial(spec.num_items - spec.num_categories, category_share)
    sizes = extra + 1
    item_category = np.repeat(np.arange(spec.num_categories), sizes)[
        rng.permutation(spec.num_items)
    ]
    by_category = np.argsort(item_category, kind="stable")
    cumulative = np.cumsum(popularity[by_category])
    category_start = np.concatenate([[0], np.cumsum(sizes)])
    ends = np.concatenate([[0.0], cumulative])[category_start]
    category_weight = np.diff(ends)
    return Catalog(
        by_category=by_category,
        cumulative=cumulative,
        category_start=category_start,
        category_weight=category_weight / category_weight.sum(),
        item_category=item_category,
    )


def _draw_in_categories(catalog: Catalog, categories: np.ndarray, rng) -> np.ndarray:
    """One item per entry of `categories`, by popularity within the category."""
    padded = np.concatenate([[0.0], catalog.cumulative])
    low = padded[catalog.category_start[categories]]
    high = padded[catalog.category_start[categories + 1]]
    position = np.searchsorted(catalog.cumulative, low + rng.random(len(categories)) * (high - low))
    return catalog.by_category[np.minimum(position, len(catalog.by_category) - 1)]


def _draw_anywhere(catalog: Catalog, count: int, rng) -> np.ndarray:
    """`count` items by popularity over the whole catalog."""
    position = np.searchsorted(catalog.cumulative, rng.random(count) * catalog.cumulative[-1])
    return catalog.by_category[np.minimum(position, len(catalog.by_category) - 1)]


def _draw_for_users(
    catalog: Catalog, favourites: np.ndarray, rows: np.ndarray, spec: ShopSpec, rng
) -> np.ndarray:
    """One item per entry of `rows` (row of the user in `favourites`), by taste."""
    tasteful = rng.random(len(rows)) < spec.taste
    pick = rng.integers(0, favourites.shape[1], size=len(rows))
    items = np.empty(len(rows), dtype=np.int64)
    items[tasteful] = _draw_in_categories(catalog, favourites[rows[tasteful], pick[tasteful]], rng)
    items[~tasteful] = _draw_anywhere(catalog, int((~tasteful).sum()), rng)
    return items


def generate_chunk(spec: ShopSpec, catalog: Catalog, chunk: int) -> ChunkLog:
    """The events of users `chunk * spec.chunk_users` onwards (at most chunk_users users)."""
    rng = np.random.default_rng((spec.seed, 1, chunk))
    first = chunk * spec.chunk_users
    num = min(spec.chunk_users, spec.num_users - first)
    favourites = rng.choice(
        spec.num_categories, size=(num, spec.favourite_categories), p=catalog.category_weight
    )
    mu = np.log(spec.mean_views) - spec.view_sigma**2 / 2
    views = np.clip(
        np.round(rng.lognormal(mu, spec.view_sigma, size=num)), spec.min_views, spec.max_views
    ).astype(np.int64)
    view_rows = np.repeat(np.arange(num), views)
    view_items = _draw_for_users(catalog, favourites, view_rows, spec, rng)
    view_times = start_times(rng, len(view_rows))

    def liked(rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.any(catalog.item_category[items][:, None] == favourites[rows], axis=1)

    def funnel_step(rows, items, times, rate, delay):
        boost = np.where(liked(rows, items), spec.taste_boost, 1.0)
        kept = rng.random(len(rows)) < np.minimum(rate * boost, 1.0)
        rows, items = rows[kept], items[kept]
        times = times[kept] + rng.exponential(delay, size=len(rows)).astype(np.int64) + 1
        # A share of the step's events are of items drawn afresh (off the funnel).
        fresh = rng.random(len(rows)) < spec.off_funnel_rate
        items = items.copy()
        items[fresh] = _draw_for_users(catalog, favourites, rows[fresh], spec, rng)
        return rows, items, times

    cart_rows, cart_items, cart_times = funnel_step(
        view_rows, view_items, view_times, spec.cart_rate, 2 * 3600
    )
    buy_rows, buy_items, buy_times = funnel_step(
        cart_rows, cart_items, cart_times, spec.buy_rate, 6 * 3600
    )
    # Top up users below min_buys with fresh purchases (distinct items are not guaranteed
    # by the draw, so draw a few more than needed; duplicates merge in preprocessing).
    missing = np.maximum(spec.min_buys + 1 - np.bincount(buy_rows, minlength=num), 0)
    extra_rows = np.repeat(np.arange(num), missing)
    extra_items = _draw_for_users(catalog, favourites, extra_rows, spec, rng)
    extra_times = start_times(rng, len(extra_rows))

    users = np.concatenate([view_rows, cart_rows, buy_rows, extra_rows]) + first
    items = np.concatenate([view_items, cart_items, buy_items, extra_items])
    behaviors = np.concatenate(
        [
            np.zeros(len(view_rows), np.int64),
            np.ones(len(cart_rows), np.int64),
            np.full(len(buy_rows) + len(extra_rows), 2, np.int64),
        ]
    )
    times = np.concatenate([view_times, cart_times, buy_times, extra_times])
    return ChunkLog(
        **in_time_order(users, items, behaviors, times), first_user=first, num_users=num
    )


def generate_chunks(spec: ShopSpec) -> Iterator[ChunkLog]:
    """Every chunk's events, in user order."""
    catalog = make_catalog(spec)
    for chunk in range(spec.num_chunks):
        yield generate_chunk(spec, catalog, chunk)
