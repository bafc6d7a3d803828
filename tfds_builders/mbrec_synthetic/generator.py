"""Deterministic synthetic multi-behavior event logs with planted preferences (pure NumPy).

Users and items get latent vectors p_u, q_v ~ N(0, I_d); the planted affinity is
a(u, v) = p_u . q_v / sqrt(d), and each item has a popularity bias b_v ~ N(0, popularity^2).
The behaviors form a funnel (e.g. view -> cart -> buy):

- stage 1: each user touches n_1 items drawn without replacement with probabilities
  proportional to exp(sharpness * a(u, v) + b_v) (Gumbel top-k);
- stage k: keeps the n_k of the stage k-1 items with the highest
  sharpness * a(u, v) + b_v + stage_noise * N(0, 1), so deeper behaviors concentrate on
  the user's favourites and the target is predictable from taste, not from popularity.

Counts: n_1 = first_stage_min + Poisson(first_stage_mean - first_stage_min),
n_k = clip(round(keep_rate * n_{k-1}), min_target, n_{k-1}); every user has at least
`min_target` target items. Times: stage 1 events are uniform over 30 days, each later stage
of an item follows the previous one by an exponential delay. Realism knobs: `repeat_rate`
adds repeated later events (duplicates the preprocessing merges) and `late_view_rate` moves
the first-stage event of some target items after the purchase (the preprocessing drops it
for held-out pairs, as leakage).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfds_builders.mbrec_synthetic.events import (
    DAY,
    GeneratedSize,
    RawEvents,
    in_time_order,
    start_times,
)


@dataclasses.dataclass(frozen=True)
class SyntheticSpec(GeneratedSize):
    """Knobs of a synthetic dataset (see the module docstring)."""

    behaviors: tuple[str, ...] = ("view", "cart", "buy")
    latent_dim: int = 16
    # Funnel sizes: items per user in stage 1, the share kept by each later stage.
    first_stage_min: int = 12
    first_stage_mean: float = 36.0
    keep_rate: float = 0.5
    min_target: int = 5
    # Choice: how strongly taste, popularity and noise pick the items of each stage.
    sharpness: float = 2.0
    popularity: float = 0.5
    stage_noise: float = 1.0
    # Realism: repeated events, and views that follow the purchase.
    repeat_rate: float = 0.05
    late_view_rate: float = 0.05

    def __post_init__(self) -> None:
        self.require_at_least(
            ("first_stage_min", "min_target"),
            ("first_stage_mean", "first_stage_min"),
            ("num_items", "first_stage_min"),
        )


@dataclasses.dataclass(frozen=True)
class SyntheticLog(RawEvents):
    """The raw events (behaviors code `spec.behaviors`) plus the planted ground truth."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray

    def true_scores(self, users: np.ndarray, spec: SyntheticSpec) -> np.ndarray:
        """The planted target logits sharpness * a(u, v) + b_v for `users` x all items."""
        affinity = self.user_factors[users] @ self.item_factors.T / np.sqrt(spec.latent_dim)
        return spec.sharpness * affinity + self.item_bias


def generate(spec: SyntheticSpec, *, chunk_users: int = 1024) -> SyntheticLog:
    """Generates the event log of `spec` (the same spec always gives the same log)."""
    rng = np.random.default_rng(spec.seed)
    user_factors = rng.standard_normal((spec.num_users, spec.latent_dim))
    item_factors = rng.standard_normal((spec.num_items, spec.latent_dim))
    item_bias = spec.popularity * rng.standard_normal(spec.num_items)
    counts = _stage_counts(spec, rng)

    users, items, stages = [], [], []
    for start in range(0, spec.num_users, chunk_users):
        block = np.arange(start, min(start + chunk_users, spec.num_users))
        logits = spec.sharpness * (user_factors[block] @ item_factors.T) / np.sqrt(spec.latent_dim)
        logits += item_bias
        # Stage 1: Gumbel top-k = sampling without replacement proportional to exp(logit).
        perturbed = logits + rng.gumbel(size=logits.shape)
        ranked = np.argsort(-perturbed, axis=1)
        for row, user in enumerate(block):
            chosen = ranked[row, : counts[user, 0]]
            for stage in range(len(spec.behaviors)):
                if stage > 0:
                    noisy = logits[row, chosen] + spec.stage_noise * rng.standard_normal(
                        len(chosen)
                    )
                    chosen = chosen[np.argsort(-noisy, kind="stable")[: counts[user, stage]]]
                users.append(np.full(len(chosen), user))
                items.append(chosen)
                stages.append(np.full(len(chosen), stage))
    users_a = np.concatenate(users).astype(np.int64)
    items_a = np.concatenate(items).astype(np.int64)
    stages_a = np.concatenate(stages).astype(np.int64)
    timestamps = _timestamps(users_a, items_a, stages_a, spec, rng)
    users_a, items_a, stages_a, timestamps = _add_repeats(
        users_a, items_a, stages_a, timestamps, spec.repeat_rate, rng
    )
    return SyntheticLog(
        **in_time_order(users_a, items_a, stages_a, timestamps),
        user_factors=user_factors,
        item_factors=item_factors,
        item_bias=item_bias,
    )


def _stage_counts(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """[num_users, num_behaviors] number of items per user and behavior (non-increasing)."""
    first = spec.first_stage_min + rng.poisson(
        spec.first_stage_mean - spec.first_stage_min, size=spec.num_users
    )
    first = np.minimum(first, spec.num_items)
    counts = [first]
    for _ in spec.behaviors[1:]:
        previous = counts[-1]
        counts.append(np.clip(np.round(spec.keep_rate * previous), spec.min_target, previous))
    return np.stack(counts, axis=1).astype(np.int64)


def _timestamps(
    users: np.ndarray,
    items: np.ndarray,
    stages: np.ndarray,
    spec: SyntheticSpec,
    rng: np.random.Generator,
) -> np.ndarray:
    """Stage 1 uniform over 30 days; stage k = stage k-1 + exponential delay (mean 6 h)."""
    num_stages = len(spec.behaviors)
    pair_keys, pair = np.unique(users * spec.num_items + items, return_inverse=True)
    start = start_times(rng, len(pair_keys))
    delays = rng.exponential(6 * 3600, size=(len(pair_keys), num_stages)).astype(np.int64) + 1
    delays[:, 0] = 0
    offsets = np.cumsum(delays, axis=1)
    times = start[pair] + offsets[pair, stages]
    target = num_stages - 1
    if target > 0 and spec.late_view_rate > 0:
        reaches_target = np.zeros(len(pair_keys), dtype=bool)
        reaches_target[pair[stages == target]] = True
        late = reaches_target & (rng.random(len(pair_keys)) < spec.late_view_rate)
        rows = np.flatnonzero((stages == 0) & late[pair])
        after = rng.integers(60, DAY, size=len(rows))
        times[rows] = start[pair[rows]] + offsets[pair[rows], target] + after
    return times.astype(np.int64)


def _add_repeats(
    users: np.ndarray,
    items: np.ndarray,
    stages: np.ndarray,
    times: np.ndarray,
    rate: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Repeats a share `rate` of the events at a later time."""
    repeated = np.flatnonzero(rng.random(len(users)) < rate)
    later = times[repeated] + rng.integers(60, 3 * DAY, size=len(repeated))
    return (
        np.concatenate([users, users[repeated]]),
        np.concatenate([items, items[repeated]]),
        np.concatenate([stages, stages[repeated]]),
        np.concatenate([times, later]),
    )
