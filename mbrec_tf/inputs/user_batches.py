"""User batches with ragged per-behavior positives, the input of the whole-data task.

The rows are gathered inside the graph from one ragged constant per behavior, so there is
no per-user Python work while training, and the shuffle's state lives in tf.data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from mbrec_tf.data.dataset import MultiBehaviorData


def ragged_rows(matrix: sp.csr_matrix) -> tf.RaggedTensor:
    """The rows of a CSR matrix as an int32 RaggedTensor `[num_rows, None]` of column ids."""
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    return tf.RaggedTensor.from_row_splits(
        tf.constant(matrix.indices.astype(np.int32)),
        tf.constant(matrix.indptr.astype(np.int64)),
        validate=False,
    )


def training_users(data: MultiBehaviorData, behaviors: Sequence[str] | None = None) -> np.ndarray:
    """Users with at least one training interaction in `behaviors` (default: all)."""
    counts = np.zeros(data.num_users, dtype=np.int64)
    for behavior in behaviors or data.behaviors:
        counts += np.diff(data.train[behavior].indptr)
    return np.flatnonzero(counts > 0).astype(np.int32)


def per_replica_batch_size(
    global_batch_size: int, input_context: tf.distribute.InputContext | None
) -> int:
    """The batch one replica gets of `global_batch_size` (all of it without a context)."""
    if input_context is None:
        return int(global_batch_size)
    return int(input_context.get_per_replica_batch_size(global_batch_size))


def user_batches(
    data: MultiBehaviorData,
    config,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    *,
    shuffle: bool = True,
) -> tf.data.Dataset:
    """One epoch of `{"user": int32 [B], "positives": {behavior: int32 ragged [B, None]}}`.

    Every behavior of `data` is included (restrict `data` to choose them). Users without any
    training interaction are left out (they carry no signal for a whole-data loss). Shuffled
    with `seed`, afresh each epoch, when `shuffle`. With an `input_context`, each input
    pipeline keeps its shard of the (identically shuffled) users and batches
    `config.batch_size` split over the replicas.
    """
    behaviors = tuple(data.behaviors)
    users = training_users(data, behaviors)
    rows = {b: ragged_rows(data.train[b]) for b in behaviors}

    def gather(user_batch: tf.Tensor) -> dict:
        return {
            "user": user_batch,
            "positives": {b: tf.gather(rows[b], user_batch) for b in behaviors},
        }

    dataset = tf.data.Dataset.from_tensor_slices(users)
    if shuffle:
        dataset = dataset.shuffle(len(users), seed=seed, reshuffle_each_iteration=True)
    if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    return (
        dataset.batch(per_replica_batch_size(config.batch_size, input_context))
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
