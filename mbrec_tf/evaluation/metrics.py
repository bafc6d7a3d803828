"""Ranking metrics for one held-out item per user, computed from 0-based ranks.

The rank of the held-out item is the number of other candidates that score at least as
high as it (pessimistic ties), so a model that gives every item the same score ranks the
held-out item last rather than first. A non-finite score (NaN, ±inf) never helps: a
non-finite held-out score ranks behind every candidate, and a non-finite competitor counts
as at or above the held-out item, so an all-NaN model scores HR = 0. This is spelled out
with `is_finite`, never left to a comparison with NaN, which `tf.function` may rewrite.

Everything here is TensorFlow and accepts NumPy arrays as well as tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

DEFAULT_KS: tuple[int, ...] = (10, 50, 100, 200)


def at_or_above(other_scores: tf.Tensor, target_scores: tf.Tensor) -> tf.Tensor:
    """Whether each competitor counts at or above its held-out item (broadcasting).

    True where `other >= target`, where the competitor's score is not finite, and
    everywhere when the held-out score is not finite.
    """
    other_scores = tf.convert_to_tensor(other_scores)
    target_scores = tf.cast(target_scores, other_scores.dtype)
    lowest = tf.constant(-np.inf, dtype=other_scores.dtype)
    target_scores = tf.where(tf.math.is_finite(target_scores), target_scores, lowest)
    return tf.logical_or(
        other_scores >= target_scores, tf.logical_not(tf.math.is_finite(other_scores))
    )


def pessimistic_ranks(
    target_scores: tf.Tensor, other_scores: tf.Tensor, where: tf.Tensor | None = None
) -> tf.Tensor:
    """0-based rank of each row's target among its other candidates, ties counted above.

    The rank is how many of `other_scores` are `at_or_above` the target's score.

    Args:
      target_scores: `[B]` score of each user's held-out item.
      other_scores: `[B, N]` scores of the other candidates (not the held-out item).
      where: optional `[B, N]` bool, False for entries that are not candidates.

    Returns:
      int32 `[B]` ranks.
    """
    above = at_or_above(other_scores, tf.convert_to_tensor(target_scores)[:, None])
    if where is not None:
        above = tf.logical_and(above, where)
    return tf.reduce_sum(tf.cast(above, tf.int32), axis=1)


def _as_ranks(ranks) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(ranks), tf.float64)


def hit_rate(ranks, k: int) -> tf.Tensor:
    """Per-user hit at `k`: 1.0 where rank < k, else 0.0."""
    return tf.cast(_as_ranks(ranks) < k, tf.float64)


def ndcg(ranks, k: int) -> tf.Tensor:
    """Per-user NDCG at `k` with one relevant item: 1 / log2(rank + 2) where rank < k."""
    ranks = _as_ranks(ranks)
    gain = tf.math.log(2.0 * tf.ones_like(ranks)) / tf.math.log(ranks + 2.0)
    return tf.where(ranks < k, gain, tf.zeros_like(ranks))


def reciprocal_rank(ranks) -> tf.Tensor:
    """Per-user reciprocal rank 1 / (rank + 1) (its mean is the MRR)."""
    return 1.0 / (_as_ranks(ranks) + 1.0)


def summarize_ranks(ranks, ks: Sequence[int] = DEFAULT_KS, prefix: str = "") -> dict[str, float]:
    """Mean HR@K and NDCG@K for each K, and MRR, over `ranks`, as Python floats.

    Keys are `f"{prefix}hr@{k}"`, `f"{prefix}ndcg@{k}"` and `f"{prefix}mrr"`. An empty
    `ranks` gives an empty dict (no user, no mean).
    """
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        return {}
    summary: dict[str, float] = {}
    for k in ks:
        summary[f"{prefix}hr@{k}"] = float(tf.reduce_mean(hit_rate(ranks, k)))
    for k in ks:
        summary[f"{prefix}ndcg@{k}"] = float(tf.reduce_mean(ndcg(ranks, k)))
    summary[f"{prefix}mrr"] = float(tf.reduce_mean(reciprocal_rank(ranks)))
    return summary
