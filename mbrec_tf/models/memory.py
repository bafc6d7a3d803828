"""What each user already touched: the sparse (user, item, behaviors) pairs of the training data.

`InteractionMemory` holds the union of several behaviors' training pairs as one ragged table
(per user: item ids, and a 0/1 indicator per behavior), stored in variables so that it is
checkpointed and exported with the model. Models that add sparse terms on the pairs a user
already has (the touched-first heuristic, EHCF with memory) read it through `pairs`, and
serving may replace a user's items of a behavior by the ones a request sends (`with_context`).

Scores built on it are linear in the indicators, so a pair listed twice (once from the
snapshot, once from a request) adds up to the same score as one listing of its union.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import tensorflow as tf


class MemoryPairs:
    """A batch's memory pairs: batch row, item id and `[n, num_behaviors]` indicators."""

    def __init__(self, rows: tf.Tensor, items: tf.Tensor, indicators: tf.Tensor):
        self.rows = rows
        self.items = items
        self.indicators = indicators

    def dense(self, values: tf.Tensor, batch_size: tf.Tensor, num_items: int) -> tf.Tensor:
        """`[batch, num_items]` matrix with each pair's `values` added at (row, item)."""
        indices = tf.stack([self.rows, self.items], axis=1)
        return tf.scatter_nd(indices, values, tf.stack([batch_size, num_items]))


def union_table(matrices: Sequence[sp.spmatrix]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(items int32 [nnz], row_splits int64 [U+1], indicators float32 [nnz, B]) of the union."""
    num_users, num_items = matrices[0].shape
    union = sp.csr_matrix((num_users, num_items), dtype=np.float32)
    for matrix in matrices:
        union = union + sp.csr_matrix(matrix, dtype=np.float32)
    union = sp.csr_matrix(union)
    union.sort_indices()
    union.data[:] = 1.0
    indicators = np.zeros((union.nnz, len(matrices)), np.float32)
    for column, matrix in enumerate(matrices):
        # union + b has the union's entries (a superset of b's), each 1 + [pair in b].
        binary = sp.csr_matrix(matrix, dtype=np.float32)
        binary.data[:] = 1.0
        combined = sp.csr_matrix(union + binary)
        combined.sort_indices()
        indicators[:, column] = combined.data - 1.0
    return union.indices.astype(np.int32), union.indptr.astype(np.int64), indicators


class InteractionMemory(tf.Module):
    """The union of the training pairs of `behaviors`, per user, with behavior indicators.

    Args:
      matrices: one binary `num_users x num_items` matrix per behavior.
      behaviors: their names (the order of the indicator columns).
    """

    def __init__(self, matrices: Sequence[sp.spmatrix], behaviors: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        if len(matrices) != len(behaviors) or not matrices:
            raise ValueError(f"{len(matrices)} matrices for behaviors {tuple(behaviors)}")
        self.behaviors = tuple(behaviors)
        self.num_users, self.num_items = matrices[0].shape
        items, splits, indicators = union_table(matrices)
        self.items = tf.Variable(items, trainable=False, name="memory_items")
        self.row_splits = tf.Variable(splits, trainable=False, name="memory_row_splits")
        self.indicators = tf.Variable(indicators, trainable=False, name="memory_indicators")

    def pairs(self, user_ids: tf.Tensor) -> MemoryPairs:
        """The memory pairs of a user batch (rows index `user_ids`)."""
        items = tf.RaggedTensor.from_row_splits(self.items, self.row_splits, validate=False)
        indicators = tf.RaggedTensor.from_row_splits(
            self.indicators, self.row_splits, validate=False
        )
        user_ids = tf.cast(user_ids, tf.int64)
        rows_items = tf.gather(items, user_ids)
        return MemoryPairs(
            tf.cast(rows_items.value_rowids(), tf.int32),
            rows_items.values,
            tf.gather(indicators, user_ids).values,
        )

    def with_context(
        self,
        user_ids: tf.Tensor,
        context: Mapping[str, tf.RaggedTensor],
        replace: Mapping[str, tf.Tensor] | None = None,
    ) -> MemoryPairs:
        """The batch's pairs where each behavior in `context` takes the request's items.

        `context[b]` is a `[batch, None]` ragged tensor of item ids: the user's items of
        behavior b now, which replace the training snapshot's items of b. `replace[b]`, a
        bool scalar (default True), False keeps the snapshot of b and adds `context[b]`.
        """
        pairs = self.pairs(user_ids)
        replace = dict(replace or {})
        dtype = pairs.indicators.dtype
        replaced = tf.stack(
            [
                tf.cast(replace.get(b, True), dtype) if b in context else tf.zeros([], dtype)
                for b in self.behaviors
            ]
        )
        rows = [pairs.rows]
        items = [pairs.items]
        indicators = [pairs.indicators * (1.0 - replaced)]
        for column, behavior in enumerate(self.behaviors):
            if behavior not in context:
                continue
            ragged = context[behavior]
            rows.append(tf.cast(ragged.value_rowids(), tf.int32))
            items.append(tf.cast(ragged.values, tf.int32))
            one_hot = tf.one_hot(column, len(self.behaviors), dtype=pairs.indicators.dtype)
            indicators.append(tf.tile(one_hot[None], [tf.size(ragged.values), 1]))
        return MemoryPairs(tf.concat(rows, 0), tf.concat(items, 0), tf.concat(indicators, 0))


class MemoryScoring:
    """Target scoring of a model whose scores are `scores_from_pairs(user_ids, pairs)` over
    its `InteractionMemory` (`self.memory`): with the training snapshot of the users'
    pairs, or with a request's items (serving with today's interactions). A mixin, listed
    before the Keras base class."""

    memory: InteractionMemory
    num_items: int

    def scores_from_pairs(self, user_ids: tf.Tensor, pairs: MemoryPairs) -> tf.Tensor:
        """`[batch, num_items]` target scores given the batch's memory pairs."""
        raise NotImplementedError

    def score_users(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.scores_from_pairs(user_ids, self.memory.pairs(user_ids))

    def score_users_with_context(
        self,
        user_ids: tf.Tensor,
        context: Mapping[str, tf.RaggedTensor],
        replace: Mapping[str, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """Scores with the request's items of the behaviors in `context` (`with_context`)."""
        return self.scores_from_pairs(
            user_ids, self.memory.with_context(user_ids, context, replace)
        )

    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        scores = self.score_users(user_ids)
        if item_ids.shape.rank == 1:
            return tf.gather(scores, item_ids[:, None], batch_dims=1)[:, 0]
        return tf.gather(scores, item_ids, batch_dims=1)
