"""Named types of what passes between input builders, scorers and tasks, with TensorSpecs.

Batches and outputs stay nested dicts, as Keras `fit`, tf.data and tf.distribute take
them; these `TypedDict`s name their keys, and each `*_spec` function gives the TensorSpec
structure that a producer declares and the tests check (`tests/test_contracts.py`).

- `UserBatch`: users with ragged positives per behavior (`inputs.user_batches`), read by the
  whole-data task.
- `ExampleBatch`: (user, positive, negatives[, masks]) examples (`inputs.sampled_examples`),
  read by the sampled task.
- `FactorOutputs`: a whole-data scorer's P rows, Q and h_k; `MemoryOutputs` adds the
  batch's memory pairs and their sparse terms (EHCF with memory).
- `ScoreOutputs`: a sampled scorer's logits, the positive in column 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import tensorflow as tf

#: Item ids of one behavior per user of the batch: int32 `[B, None]`, int64 row splits.
RAGGED_ITEMS = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1, row_splits_dtype=tf.int64)
#: Ids of a batch's users (or items): int32 `[B]`.
IDS = tf.TensorSpec([None], tf.int32)


class UserBatch(TypedDict, total=False):
    """A batch of users for the whole-data task."""

    user: tf.Tensor  # int32 [B]
    positives: dict[str, tf.RaggedTensor]  # behavior -> int32 [B, None] item ids
    positive_weights: dict[str, tf.RaggedTensor]  # behavior -> float32 [B, None]: c⁺ per pair


def user_batch_spec(behaviors: Sequence[str], *, weighted: bool = False) -> dict:
    """The TensorSpecs of a `UserBatch` over `behaviors` (`weighted`: WMF's confidences)."""
    spec: dict = {"user": IDS, "positives": {b: RAGGED_ITEMS for b in behaviors}}
    if weighted:
        weights = tf.RaggedTensorSpec(
            [None, None], tf.float32, ragged_rank=1, row_splits_dtype=tf.int64
        )
        spec["positive_weights"] = {b: weights for b in behaviors}
    return spec


class ExampleBatch(TypedDict, total=False):
    """A batch of sampled examples for the sampled task."""

    user: tf.Tensor  # int32 [B]
    positive: tf.Tensor  # int32 [B]
    negatives: tf.Tensor  # int32 [B, n]
    positive_behavior: tf.Tensor  # int32 [B]: index of the positive's behavior
    behavior_mask: dict[str, tf.Tensor]  # behavior -> float32 [B, 1 + n]: 1 where observed


def example_batch_spec(
    num_negatives: int, *, behavior_indices: bool = False, mask_behaviors: Sequence[str] = ()
) -> dict:
    """The TensorSpecs of an `ExampleBatch`: `behavior_indices` when positives come from
    several behaviors, a mask per behavior of `mask_behaviors`."""
    spec: dict = {
        "user": IDS,
        "positive": IDS,
        "negatives": tf.TensorSpec([None, num_negatives], tf.int32),
    }
    if behavior_indices:
        spec["positive_behavior"] = IDS
    if mask_behaviors:
        mask = tf.TensorSpec([None, 1 + num_negatives], tf.float32)
        spec["behavior_mask"] = {b: mask for b in mask_behaviors}
    return spec


class FactorOutputs(TypedDict, total=False):
    """A whole-data scorer's forward pass: the factors every behavior's score is made of."""

    user_vectors: tf.Tensor  # [B, d]: p_u of the batch's users, after any dropout
    item_vectors: tf.Tensor  # [num_items, d]: Q
    prediction_vectors: tf.Tensor  # [K, d]: h_k per behavior (ones for WMF and CMF)
    positive_weights: dict[str, tf.RaggedTensor]  # copied from the batch when it has them
    item_grams: tf.Tensor  # [G, d, d]: exchanged item Grams (distributed steps)


def factor_outputs_spec(num_items: int, dim: int, num_behaviors: int, dtype=tf.float32) -> dict:
    """The TensorSpecs of a scorer's `FactorOutputs`."""
    return {
        "user_vectors": tf.TensorSpec([None, dim], dtype),
        "item_vectors": tf.TensorSpec([num_items, dim], dtype),
        "prediction_vectors": tf.TensorSpec([num_behaviors, dim], dtype),
    }


class MemoryOutputs(FactorOutputs, total=False):
    """`FactorOutputs` plus the batch's memory pairs P: the pairs each user already has."""

    memory_rows: tf.Tensor  # int32 [n]: row of the pair's user in the batch
    memory_items: tf.Tensor  # int32 [n]: the pair's item
    memory_labels: tf.Tensor  # [n, K]: 1 where the pair is in behavior k
    memory_terms: tf.Tensor  # [n, K]: S_k, the pair's sparse term in behavior k's score


def memory_outputs_spec(num_items: int, dim: int, num_behaviors: int, dtype=tf.float32) -> dict:
    """The TensorSpecs of a scorer's `MemoryOutputs`."""
    pairs = tf.TensorSpec([None], tf.int32)
    per_behavior = tf.TensorSpec([None, num_behaviors], dtype)
    return {
        **factor_outputs_spec(num_items, dim, num_behaviors, dtype),
        "memory_rows": pairs,
        "memory_items": pairs,
        "memory_labels": per_behavior,
        "memory_terms": per_behavior,
    }


class ScoreOutputs(TypedDict):
    """A sampled scorer's forward pass: `[B, 1 + n]` logits, the positive in column 0, or
    one such matrix per behavior (models trained on each behavior's own examples)."""

    scores: tf.Tensor | dict[str, tf.Tensor]


def score_outputs_spec(num_negatives: int, behaviors: Sequence[str] = (), dtype=tf.float32) -> dict:
    """The TensorSpecs of `ScoreOutputs` (per behavior when `behaviors` is given)."""
    logits = tf.TensorSpec([None, 1 + num_negatives], dtype)
    if behaviors:
        return {"scores": {b: logits for b in behaviors}}
    return {"scores": logits}
