"""User batches with ragged per-behavior positives, the input of the whole-data task.

The rows are gathered inside the graph from one ragged constant per behavior, so there is
no per-user Python work while training; the epoch number that seeds each epoch's shuffle
comes from tf.data (`epoch_numbers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from mbrec_tf.contracts import UserBatch
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


def ragged_values(matrix: sp.csr_matrix, scale: float, offset: float) -> tf.RaggedTensor:
    """`offset + scale · value` of each stored entry of a CSR matrix, row by row (float32)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    return tf.RaggedTensor.from_row_splits(
        tf.constant((offset + scale * matrix.data).astype(np.float32)),
        tf.constant(matrix.indptr.astype(np.int64)),
        validate=False,
    )


def training_users(data: MultiBehaviorData, behaviors: Sequence[str] | None = None) -> np.ndarray:
    """Users with at least one training interaction in `behaviors` (default: all)."""
    counts = np.zeros(data.num_users, dtype=np.int64)
    for behavior in behaviors or data.behaviors:
        counts += np.diff(data.train[behavior].indptr)
    return np.flatnonzero(counts > 0).astype(np.int32)


def epoch_numbers(repeat: bool, start_epoch: int = 0) -> tf.data.Dataset:
    """The epoch numbers an input draws: `start_epoch`, `start_epoch` + 1, ... endlessly
    with `repeat`; else one number per iteration, from a counter each iteration advances."""
    if repeat:
        return tf.data.Dataset.counter(start_epoch)
    epoch_counter = tf.Variable(int(start_epoch), dtype=tf.int64, trainable=False)
    return tf.data.Dataset.range(1).map(lambda _: epoch_counter.assign_add(1) - 1)


def replica_batches(
    global_batches: tf.data.Dataset, input_context: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    """Each global batch as the batches of this input pipeline's replicas, in replica order.

    Replica r of R gets rows [⌊r·b/R⌋, ⌊(r+1)·b/R⌋) of a global batch of b rows: every
    global batch gives every replica one batch (empty when b < R), so a synchronous step
    of all replicas sees exactly the global batch the single-device run sees, last batch
    included, and every input pipeline yields the same number of steps. Every pipeline
    must produce the same global batches (same seed). Without a context, or with one
    replica, the global batches are returned as they are.
    """
    if input_context is None or input_context.num_replicas_in_sync <= 1:
        return global_batches
    replicas = int(input_context.num_replicas_in_sync)
    local = replicas // int(input_context.num_input_pipelines)
    first = int(input_context.input_pipeline_id) * local

    def pieces(batch) -> tf.data.Dataset:
        size = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]

        def piece(replica: tf.Tensor):
            low, high = replica * size // replicas, (replica + 1) * size // replicas
            return tf.nest.map_structure(lambda values: values[low:high], batch)

        return tf.data.Dataset.range(first, first + local).map(piece)

    return global_batches.flat_map(pieces)


def user_batches(
    data: MultiBehaviorData,
    config,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    *,
    shuffle: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """One epoch of `contracts.UserBatch`es (`contracts.user_batch_spec`).

    With `config.confidence_alpha` > 0 (WMF) each batch also has `positive_weights`: per
    behavior, the confidence c⁺ + α r_uv of each positive, r_uv the value stored in the
    training matrix (the interaction count where a dataset keeps counts, else 1).

    Every behavior of `data` is included (restrict `data` to choose them). Users without any
    training interaction are left out (they carry no signal for a whole-data loss). Shuffled
    with `seed`, afresh each epoch, when `shuffle`. With an `input_context`, each input
    pipeline yields its replicas' shares of every global batch of `config.batch_size` users
    (`replica_batches`). With `repeat`, every epoch after the other, endlessly: the same
    batches as iterating the one-epoch dataset again and again, with no state in the
    dataset (a parameter server's workers cannot create its epoch counter).
    """
    behaviors = tuple(data.behaviors)
    users = training_users(data, behaviors)
    rows = {b: ragged_rows(data.train[b]) for b in behaviors}
    alpha = float(getattr(config, "confidence_alpha", 0.0))
    positive_weight = float(getattr(config, "positive_weight", 1.0))
    confidences = {
        b: ragged_values(data.train[b], alpha, positive_weight) for b in behaviors if alpha > 0
    }

    def gather(user_batch: tf.Tensor) -> UserBatch:
        batch: UserBatch = {
            "user": user_batch,
            "positives": {b: tf.gather(rows[b], user_batch) for b in behaviors},
        }
        if alpha > 0:
            batch["positive_weights"] = {
                b: tf.gather(confidences[b], user_batch) for b in behaviors
            }
        return batch

    # Epoch e's order is a stateless shuffle seeded by (seed, e), e from `epoch_numbers`:
    # every input pipeline, and one process, draw the same orders.
    user_ids = tf.constant(users)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        order = user_ids
        if shuffle:
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(user_ids, seed=key)
        return tf.data.Dataset.from_tensor_slices(order).batch(config.batch_size)

    dataset = epoch_numbers(repeat).flat_map(epoch_batches)
    if not repeat:
        steps = -(-len(users) // int(config.batch_size))
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps))
    dataset = replica_batches(dataset, input_context)
    return dataset.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
