"""The whole-data step with the item Gram refreshed every N steps (cost linear in the data).

The exact decoupled step (`decoupled.decoupled_losses`) computes the item Gram
G = Σ_v c⁻_v q_v q_vᵀ and its gradient on the item table, diag(c⁻) Q (U + Uᵀ) for the
Gram's upstream U, at every step: 2 |V| d² per step, so an epoch costs (|U|/|B|) |V| d² and
grows with |U| · |V|. Here, with `every` = N:

- a *refresh* step (step mod N = 0) computes G from the current table and stores it, and
  applies to the item table the Gram gradient diag(c⁻) Q (S + Sᵀ), with S the sum of the
  Gram upstreams U of this step and of every step since the last refresh;
- the other steps use the stored G (users and prediction vectors get their exact
  gradients given that G), add their U to S, and touch only the item rows that are
  positives of the batch: the item gradient is sparse (`tf.IndexedSlices`), so the
  optimizer updates those rows alone.

An epoch then costs (|U|/|B|)/N · |V| d² + |U| d² + |R| d: with N about the number of steps
per epoch, it grows with |U| + |V| + |R|. Step 0 is a refresh, and a refresh step equals the
exact step (same loss, same gradients), so N = 1 is the exact step; for N > 1 this is the
approximation above (a stale Gram for up to N - 1 steps, the item table's Gram gradient
delayed to the next refresh and taken at that step's table). Single device only.
"""

from __future__ import annotations

import tensorflow as tf


class RefreshedGram(tf.Module):
    """Holds the stored Grams and the summed upstreams of one whole-data task.

    Args:
      every: N, the refresh period in steps (>= 1).
      group_weights: `[G, num_items]` per-item weights c⁻ of each Gram group (ones for
        the plain Gram QᵀQ).
    """

    def __init__(self, every: int, group_weights: tf.Tensor, name: str = "refreshed_gram"):
        super().__init__(name=name)
        if every < 1:
            raise ValueError(f"gram_every must be >= 1, got {every}")
        self.every = int(every)
        self.group_weights = tf.convert_to_tensor(group_weights)
        self.stored: tf.Variable | None = None
        self.upstream: tf.Variable | None = None

    def _ensure_state(self, dim: int, dtype: tf.DType) -> None:
        if self.stored is not None:
            return
        groups = int(self.group_weights.shape[0])
        with tf.init_scope():
            self.stored = tf.Variable(tf.zeros([groups, dim, dim], dtype), trainable=False)
            self.upstream = tf.Variable(tf.zeros([groups, dim, dim], dtype), trainable=False)

    def grams_and_scores(
        self,
        items: tf.Tensor,
        queries: tf.Tensor,
        query_index: tf.Tensor,
        positive_items: tf.Tensor,
        step: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(`[G, d, d]` item Grams, `[N]` scores queries[query_index] · items[positive_items]).

        The Grams are fresh on refresh steps and stored ones otherwise; see the module
        docstring for the gradients.
        """
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise ValueError("gram_every > 1 trains on one device only; use gram_every=1")
        dim = int(items.shape[-1])
        self._ensure_state(dim, items.dtype)
        refresh = tf.equal(tf.math.floormod(tf.cast(step, tf.int64), self.every), 0)
        weights = tf.cast(self.group_weights, items.dtype)
        groups = range(int(self.group_weights.shape[0]))
        stored, upstream_sum = self.stored, self.upstream

        def fresh_grams(table: tf.Tensor) -> tf.Tensor:
            return tf.stack(
                [tf.matmul(weights[g][:, None] * table, table, transpose_a=True) for g in groups]
            )

        @tf.custom_gradient
        def _forward(table: tf.Tensor, task_queries: tf.Tensor):
            grams = tf.cond(refresh, lambda: fresh_grams(table), lambda: tf.identity(stored))
            stored.assign(grams)
            query_rows = tf.gather(task_queries, query_index)
            scores = tf.reduce_sum(query_rows * tf.gather(table, positive_items), axis=-1)

            def grad(gram_upstream: tf.Tensor, score_upstream: tf.Tensor):
                pairs = tf.SparseTensor(
                    tf.stack(
                        [tf.cast(query_index, tf.int64), tf.cast(positive_items, tf.int64)], 1
                    ),
                    score_upstream,
                    tf.stack(
                        [
                            tf.shape(task_queries, out_type=tf.int64)[0],
                            tf.shape(table, out_type=tf.int64)[0],
                        ]
                    ),
                )
                query_grad = tf.sparse.sparse_dense_matmul(pairs, table)
                unique_items, position = tf.unique(tf.cast(positive_items, tf.int32))
                positive_rows = tf.math.unsorted_segment_sum(
                    score_upstream[:, None] * query_rows, position, tf.size(unique_items)
                )
                total = upstream_sum + gram_upstream
                upstream_sum.assign(tf.where(refresh, tf.zeros_like(total), total))

                def dense_rows():
                    symmetric = total + tf.linalg.matrix_transpose(total)
                    gram_grad = tf.add_n(
                        [tf.matmul(weights[g][:, None] * table, symmetric[g]) for g in groups]
                    )
                    values = tf.tensor_scatter_nd_add(
                        gram_grad, unique_items[:, None], positive_rows
                    )
                    return tf.range(tf.shape(table)[0]), values

                indices, values = tf.cond(
                    refresh, dense_rows, lambda: (unique_items, positive_rows)
                )
                item_grad = tf.IndexedSlices(values, indices, tf.shape(table))
                return item_grad, query_grad

            return (grams, scores), grad

        return _forward(items, queries)
