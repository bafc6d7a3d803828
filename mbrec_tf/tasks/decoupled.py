"""The whole-data loss in closed form: weighted regression over every item, two forms.

A score is a dot product `R̂(u, v) = queries[u] · items[v]` (EHCF passes `p_u ⊙ h_k` as the
query; WMF and CMF pass `p_u`). Over a batch of users the target is the weighted regression

    L = Σ_u Σ_v c_uv (R(u, v) − R̂(u, v))²,   c_uv = c⁺ if R(u, v) = 1 else c⁻_v,

summed over *every* item, not a sample:

- `decoupled_loss`: the exact O((|B| + |V|) d² + |R_B| d) rewriting (EHCF, Eq. 8):

      Σ_{(u,v) ∈ R_B} [(c⁺ − c⁻_v) R̂² − 2 c⁺ R̂] + Σ_ij (Σ_u a_ui a_uj)(Σ_v c⁻_v q_vi q_vj)

  with a = queries. It equals `dense_loss` minus the parameter-free constant
  `positive_constant` = c⁺ · |R_B|. The item Gram Σ_v c⁻_v q_v q_vᵀ can be computed once
  per step (`weighted_item_gram`) and shared by every behavior that uses the same weights.
- `dense_loss`: the brute-force form that materialises the `|B| × |V|` score matrix
  ("EHCF-Original"); kept for exactness tests and to measure the speed-up.

Positives are given flat, as (row in the batch, item id) pairs, e.g. the `value_rowids()`
and `values` of a ragged `[B, None]` tensor of item ids; each pair must appear once.
`negative_weight` is a scalar (uniform c⁻) or a `[num_items]` vector (item-dependent c⁻,
`popularity_negative_weights`); `positive_weight` is a scalar c⁺ or one weight per
positive pair (WMF's confidence c⁺_uv = c⁺ + α r_uv from interaction counts r).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def gram(matrix: tf.Tensor, row_weights: tf.Tensor | None = None) -> tf.Tensor:
    """`[d, d]` Gram matrix Xᵀ diag(w) X of a `[n, d]` matrix (w = 1 when None).

    Its gradient is one matrix product, diag(w) X (U + Uᵀ) for upstream U, instead of the two
    that differentiating `matmul(X, X)` through both arguments costs.
    """

    @tf.custom_gradient
    def _gram(x: tf.Tensor) -> tuple[tf.Tensor, object]:
        weighted = x if row_weights is None else x * row_weights[:, None]
        value = tf.matmul(weighted, x, transpose_a=True)

        def grad(upstream: tf.Tensor) -> tf.Tensor:
            return gram_gradient(weighted, upstream)

        return value, grad

    return _gram(matrix)


def gram_gradient(weighted: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """The gradient diag(w) X (U + Uᵀ) of the Gram Xᵀ diag(w) X w.r.t. X, given diag(w) X."""
    return tf.matmul(weighted, upstream + tf.transpose(upstream))


def weighted_item_gram(
    items: tf.Tensor, negative_weight: tf.Tensor | float | None = None
) -> tf.Tensor:
    """`[d, d]` Gram matrix Σ_v c⁻_v q_v q_vᵀ of the item table (unweighted when None).

    A scalar weight scales the plain Gram `QᵀQ`; a `[num_items]` vector weights each row.
    """
    if negative_weight is None:
        return gram(items)
    weight = tf.convert_to_tensor(negative_weight, dtype=items.dtype)
    if weight.shape.rank == 0:
        return weight * gram(items)
    return gram(items, weight)


def pair_scores(
    queries: tf.Tensor, items: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor
) -> tf.Tensor:
    """`[N]` dot products `queries[rows[n]] · items[columns[n]]` of given pairs.

    The gradient is two sparse-dense products with the `[num_queries, num_items]` matrix of
    upstream values, which yields dense gradients directly (no `[N, d]` scatter-add and no
    IndexedSlices to densify when the item table also gets a dense gradient, as it does
    from the Gram term). Pairs must be distinct.
    """

    @tf.custom_gradient
    def _scores(q: tf.Tensor, v: tf.Tensor) -> tuple[tf.Tensor, object]:
        value = tf.reduce_sum(tf.gather(q, rows) * tf.gather(v, columns), axis=-1)

        def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            pairs = tf.SparseTensor(
                tf.stack([tf.cast(rows, tf.int64), tf.cast(columns, tf.int64)], axis=1),
                upstream,
                tf.stack([tf.shape(q, out_type=tf.int64)[0], tf.shape(v, out_type=tf.int64)[0]]),
            )
            return (
                tf.sparse.sparse_dense_matmul(pairs, v),
                tf.sparse.sparse_dense_matmul(pairs, q, adjoint_a=True),
            )

        return value, grad

    return _scores(queries, items)


def pair_products(
    user_vectors: tf.Tensor, items: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor
) -> tf.Tensor:
    """`[N, d]` element-wise products `user_vectors[rows[n]] ⊙ items[columns[n]]` of given pairs.

    One gather per side for all behaviors: h_kᵀ(p_u ⊙ q_v) of every behavior k is then one
    `[N, d] x [d, K]` product. The gradients are dense segment sums (no IndexedSlices to
    densify beside the item table's dense Gram gradient).
    """

    @tf.custom_gradient
    def _products(p: tf.Tensor, q: tf.Tensor) -> tuple[tf.Tensor, object]:
        user_rows = tf.gather(p, rows)
        item_rows = tf.gather(q, columns)

        def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return (
                tf.math.unsorted_segment_sum(upstream * item_rows, rows, tf.shape(p)[0]),
                tf.math.unsorted_segment_sum(upstream * user_rows, columns, tf.shape(q)[0]),
            )

        return user_rows * item_rows, grad

    return _products(user_vectors, items)


def decoupled_loss(
    queries: tf.Tensor,
    items: tf.Tensor,
    positive_rows: tf.Tensor,
    positive_items: tf.Tensor,
    negative_weight: tf.Tensor | float,
    *,
    item_gram: tf.Tensor | None = None,
    positive_weight: tf.Tensor | float = 1.0,
) -> tf.Tensor:
    """The exact whole-data loss of a user batch without any `|B| × |V|` tensor.

    Args:
      queries: `[B, d]` query vectors of the batch users.
      items: `[num_items, d]` item table.
      positive_rows: `[N]` int row (in `queries`) of each positive pair.
      positive_items: `[N]` int item id of each positive pair.
      negative_weight: scalar or `[num_items]` weight c⁻ of missing entries.
      item_gram: precomputed `weighted_item_gram(items, negative_weight)` (shared across
        behaviors in a step); computed here when None.
      positive_weight: weight c⁺ of observed entries.

    Returns:
      Scalar loss, equal to `dense_loss(...) - positive_constant(N, positive_weight)`.
    """
    if item_gram is None:
        item_gram = weighted_item_gram(items, negative_weight)
    query_gram = tf.matmul(queries, queries, transpose_a=True)
    all_pairs_term = tf.reduce_sum(query_gram * item_gram)

    scores = pair_scores(queries, items, positive_rows, positive_items)
    weight = tf.convert_to_tensor(negative_weight, dtype=items.dtype)
    if weight.shape.rank != 0:
        weight = tf.gather(weight, positive_items)
    positive_term = tf.reduce_sum(
        (positive_weight - weight) * tf.square(scores) - 2.0 * positive_weight * scores
    )
    return positive_term + all_pairs_term


def decoupled_losses(
    user_vectors: tf.Tensor,
    items: tf.Tensor,
    prediction_vectors: tf.Tensor,
    positive_rows: tf.Tensor,
    positive_items: tf.Tensor,
    positive_tasks: tf.Tensor,
    positive_negative_weights: tf.Tensor | float,
    item_grams: tf.Tensor,
    *,
    positive_weight: tf.Tensor | float = 1.0,
) -> tf.Tensor:
    """`decoupled_loss` of K tasks at once, with scores R̂_k(u, v) = h_kᵀ (p_u ⊙ q_v).

    All tasks share the user vectors and the item table and differ in their prediction
    vector h_k (EHCF's behaviors; CMF and WMF use h_k = 1). Positives of every task come in
    one flat list, so the gathers (and their gradients) run once, not once per task.

    Args:
      user_vectors: `[B, d]` p of the batch users.
      items: `[num_items, d]` item table Q.
      prediction_vectors: `[K, d]` h_k per task.
      positive_rows / positive_items / positive_tasks: `[N]` int batch row, item id and task
        index of each positive pair.
      positive_negative_weights: `[N]` c⁻ of each positive's item in its task (or a scalar).
      item_grams: `[K, d, d]` Σ_v c⁻_kv q_v q_vᵀ per task (e.g. w_k · QᵀQ, shared).
      positive_weight: c⁺.

    Returns:
      `[K]` losses; entry k equals `decoupled_loss` of task k.
    """
    queries, query_index = task_queries(
        user_vectors, prediction_vectors, positive_rows, positive_tasks
    )
    scores = pair_scores(queries, items, query_index, positive_items)
    return losses_from_scores(
        user_vectors,
        prediction_vectors,
        scores,
        positive_tasks,
        positive_negative_weights,
        item_grams,
        positive_weight=positive_weight,
    )


def task_queries(
    user_vectors: tf.Tensor,
    prediction_vectors: tf.Tensor,
    positive_rows: tf.Tensor,
    positive_tasks: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor]:
    """(`[K·B, d]` queries h_k ⊙ p_u, `[N]` row of each positive's query among them)."""
    batch_size = tf.shape(user_vectors, out_type=positive_rows.dtype)[0]
    dim = tf.shape(user_vectors)[1]
    queries = tf.reshape(prediction_vectors[:, None, :] * user_vectors[None], [-1, dim])
    return queries, tf.cast(positive_tasks, positive_rows.dtype) * batch_size + positive_rows


def losses_from_scores(
    user_vectors: tf.Tensor,
    prediction_vectors: tf.Tensor,
    scores: tf.Tensor,
    positive_tasks: tf.Tensor,
    positive_negative_weights: tf.Tensor | float,
    item_grams: tf.Tensor,
    *,
    positive_weight: tf.Tensor | float = 1.0,
) -> tf.Tensor:
    """`[K]` decoupled losses from the positives' scores and the per-task item Grams."""
    num_tasks = tf.shape(prediction_vectors)[0]
    user_gram = tf.matmul(user_vectors, user_vectors, transpose_a=True)
    weighted_grams = user_gram[None] * item_grams
    all_pairs = tf.reduce_sum(
        prediction_vectors[:, :, None] * weighted_grams * prediction_vectors[:, None, :], [1, 2]
    )
    terms = (positive_weight - positive_negative_weights) * tf.square(scores) - (
        2.0 * positive_weight * scores
    )
    return tf.math.unsorted_segment_sum(terms, positive_tasks, num_tasks) + all_pairs


def dense_loss(
    queries: tf.Tensor,
    items: tf.Tensor,
    positive_rows: tf.Tensor,
    positive_items: tf.Tensor,
    negative_weight: tf.Tensor | float,
    *,
    positive_weight: tf.Tensor | float = 1.0,
) -> tf.Tensor:
    """The brute-force weighted regression Σ_u Σ_v c_uv (R − R̂)² over the full score matrix.

    Same arguments as `decoupled_loss` (`positive_weight` may also be one weight per
    positive pair). Costs O(|B| |V| d) time and O(|B| |V|) memory.
    """
    scores = tf.matmul(queries, items, transpose_b=True)
    indices = tf.stack([tf.cast(positive_rows, tf.int64), tf.cast(positive_items, tf.int64)], 1)
    labels = tf.scatter_nd(
        indices,
        tf.ones_like(positive_rows, dtype=scores.dtype),
        tf.shape(scores, out_type=tf.int64),
    )
    positive = tf.broadcast_to(tf.cast(positive_weight, scores.dtype), tf.shape(positive_rows))
    positive_weights = tf.scatter_nd(indices, positive, tf.shape(scores, out_type=tf.int64))
    weight = tf.convert_to_tensor(negative_weight, dtype=scores.dtype)
    weights = weight * (1.0 - labels) + positive_weights
    return tf.reduce_sum(weights * tf.square(labels - scores))


def positive_constant(
    num_positives: tf.Tensor | int,
    positive_weight: tf.Tensor | float = 1.0,
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """The parameter-free part c⁺ · |R_B| by which `dense_loss` exceeds `decoupled_loss`.

    With one weight per positive pair (a `[N]` tensor) it is their sum Σ c⁺_uv.
    """
    weight = tf.cast(positive_weight, dtype)
    if weight.shape.rank:
        return tf.reduce_sum(weight)
    return weight * tf.cast(num_positives, dtype)


def popularity_negative_weights(
    item_counts: np.ndarray, mean_weight: float, alpha: float
) -> np.ndarray:
    """Item-dependent negative weights c⁻_v = c0 · f_v^α / Σ_v' f_v'^α with c0 = w · |V|.

    `f_v` is the item's interaction count (its popularity) and `mean_weight` is w, the mean
    negative weight: choosing c0 = w · |V| makes α = 0 give the uniform weight w exactly,
    so `alpha` only redistributes the same total weight towards popular items (eALS, He et
    al. 2016). Items with f_v = 0 get weight 0 when α > 0.
    """
    counts = np.asarray(item_counts, dtype=np.float64)
    if alpha == 0.0:
        return np.full(counts.shape, float(mean_weight))
    powered = np.power(counts, alpha)
    total = powered.sum()
    if total <= 0.0:
        raise ValueError("item-dependent negative weights need at least one interaction")
    return mean_weight * len(counts) * powered / total
