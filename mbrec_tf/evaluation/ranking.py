"""Ranks of a batch's held-out items from its scores: full ranking with each row's masked
(and, for the new-item ranks, touched) items left out, and ranking among sampled negatives.

Ranks are 0-based and ties pessimistic (`metrics.pessimistic_ranks`); no score is written
into and no item or user is looped over.
"""

from __future__ import annotations

import tensorflow as tf

from mbrec_tf.evaluation import metrics


def full_ranks_from_scores(
    scores: tf.Tensor, targets: tf.Tensor, masked_rows: tf.Tensor, masked_items: tf.Tensor
) -> tf.Tensor:
    """Full-ranking ranks from `scores` [B, num_items], with the masked items left out.

    `masked_rows`/`masked_items` list the (row, item) pairs that are not candidates; they
    must not contain the held-out item of their row. Counting over all items and then
    subtracting the masked ones that score at least as high avoids writing into `scores`.
    """
    target_scores = tf.gather(scores, targets, batch_dims=1)
    # Over all items the held-out item counts itself once: hence the - 1.
    at_or_above_all = metrics.pessimistic_ranks(target_scores, scores) - 1
    return at_or_above_all - count_at_or_above(scores, target_scores, masked_rows, masked_items)


def count_at_or_above(
    scores: tf.Tensor, target_scores: tf.Tensor, rows: tf.Tensor, items: tf.Tensor
) -> tf.Tensor:
    """Per row of `scores`, how many of the listed (row, item) pairs are at or above its
    held-out item's score (pairs distinct, none the held-out item)."""
    listed = tf.gather_nd(scores, tf.stack([rows, items], axis=1))
    above = metrics.at_or_above(listed, tf.gather(target_scores, rows))
    return tf.math.unsorted_segment_sum(
        tf.cast(above, tf.int32), rows, num_segments=tf.shape(scores)[0]
    )


def full_and_new_ranks(
    scores: tf.Tensor,
    targets: tf.Tensor,
    masked_rows: tf.Tensor,
    masked_items: tf.Tensor,
    touched_rows: tf.Tensor,
    touched_items: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Full-ranking ranks, and the ranks among untouched items (touched pairs left out too)."""
    ranks = full_ranks_from_scores(scores, targets, masked_rows, masked_items)
    target_scores = tf.gather(scores, targets, batch_dims=1)
    return ranks, ranks - count_at_or_above(scores, target_scores, touched_rows, touched_items)


def sampled_ranks_from_scores(
    scores: tf.Tensor, negatives: tf.Tensor, targets: tf.Tensor
) -> tf.Tensor:
    """Ranks from `scores` [B, 1 + n] of (held-out item, n negatives), in that order.

    A negative equal to the held-out item (never in well-formed data) is not a candidate.
    """
    return metrics.pessimistic_ranks(
        scores[:, 0], scores[:, 1:], where=tf.not_equal(negatives, targets[:, None])
    )
