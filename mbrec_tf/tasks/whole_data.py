"""The whole-data task: weighted regression over every item, no negative sampling.

A score is a dot product `R̂(u, v) = queries[u] · items[v]` (EHCF passes `p_u ⊙ h_k` as the
query; WMF and CMF pass `p_u`). Over a batch of users the target is the weighted regression

    L = Σ_u Σ_v c_uv (R(u, v) − R̂(u, v))²,   c_uv = c⁺ if R(u, v) = 1 else c⁻_v,

summed over *every* item, not a sample. Two forms are provided:

- `decoupled_loss`: the exact O((|B| + |V|) d² + |R_B| d) rewriting (EHCF, Eq. 8):

      Σ_{(u,v) ∈ R_B} [(c⁺ − c⁻_v) R̂² − 2 c⁺ R̂] + Σ_ij (Σ_u a_ui a_uj)(Σ_v c⁻_v q_vi q_vj)

  with a = queries. It equals `dense_loss` minus the parameter-free constant
  `positive_constant` = c⁺ · |R_B|. The item Gram Σ_v c⁻_v q_v q_vᵀ can be computed once
  per step (`weighted_item_gram`) and shared by every behavior that uses the same weights.
- `dense_loss`: the brute-force form that materialises the `|B| × |V|` score matrix
  ("EHCF-Original"); kept for exactness tests and to measure the speed-up.

Positives are given flat, as (row in the batch, item id) pairs, e.g. the `value_rowids()`
and `values` of a ragged `[B, None]` tensor of item ids; each pair must appear once.
`negative_weight` is a scalar (uniform c⁻) or a `[num_items]` vector (item-dependent c⁻);
`positive_weight` is a scalar c⁺ or one weight per positive pair (WMF's confidence
c⁺_uv = c⁺ + α r_uv from interaction counts r, given as the batch's `positive_weights`).

`WholeDataTask` combines the losses of several behaviors that share P and Q and differ in
a prediction vector h_k: EHCF (h_k learned and transferred), CMF (every behavior, h_k = 1)
and WMF (the target alone, h = 1) use it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from mbrec_tf.config import WHOLE_DATA_LOSSES, WholeDataConfig, normalised, per_behavior
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks import refreshed_gram
from mbrec_tf.tasks.base import SUM, Task

#: The `outputs` key of the distinct item Grams when a distributed step exchanges them.
ITEM_GRAMS = "item_grams"


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


def flatten_positives(
    positives: Mapping[str, tf.RaggedTensor], behaviors: Sequence[str]
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(batch row, item id, behavior index) of every positive of every behavior, flat."""
    rows, items, tasks = [], [], []
    for k, behavior in enumerate(behaviors):
        ragged = positives[behavior]
        rows.append(ragged.value_rowids())
        items.append(ragged.values)
        tasks.append(tf.fill(tf.shape(ragged.values), k))
    if len(behaviors) == 1:
        return rows[0], items[0], tasks[0]
    return tf.concat(rows, 0), tf.concat(items, 0), tf.concat(tasks, 0)


class WholeDataTask(Task):
    """The whole-data regression of K behaviors with shared P, Q and one h_k per behavior.

    Consumes the outputs of a whole-data scorer — `user_vectors` `[B, d]` (p_u, after any
    dropout), `item_vectors` `[num_items, d]` (Q) and `prediction_vectors` `[K, d]` (h_k;
    ones for WMF and CMF) — and the batch's ragged `positives` per behavior. The loss is
    Σ_k λ_k L̃_k, each L̃_k the weighted regression of behavior k over every item, without
    its parameter-free constant (see `decoupled_loss`); with `alternate_tasks` a training
    step minimises one behavior's L̃_k, in turn by step.

    Args:
      behaviors: behavior names, the target last.
      num_items: |V|.
      negative_weights: per behavior, a float (uniform c⁻) or a `[num_items]` array.
      loss_coefficients: λ per behavior (normalised to sum 1 here); default equal.
      positive_weight: c⁺.
      loss: "decoupled" (exact, O((|B|+|V|) d²)) or "dense" (brute force).
      alternate_tasks: train one behavior per step, in turn, instead of the joint loss.
      gram_every: N > 1 refreshes the item Gram and applies its gradient every N training
        steps (`refreshed_gram`: cost linear in the data, approximate); 1 = exact.
    """

    reduction = SUM

    def __init__(
        self,
        behaviors: Sequence[str],
        num_items: int,
        negative_weights: Sequence[float | np.ndarray] | None = None,
        loss_coefficients: Sequence[float] | None = None,
        *,
        positive_weight: float = 1.0,
        loss: str = "decoupled",
        alternate_tasks: bool = False,
        gram_every: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.behaviors = tuple(behaviors)
        self.num_items = int(num_items)
        if loss not in WHOLE_DATA_LOSSES:
            raise ValueError(f"loss must be one of {WHOLE_DATA_LOSSES}, got {loss!r}")
        self.loss_kind = loss
        self.positive_weight = float(positive_weight)
        self.alternate_tasks = bool(alternate_tasks)
        num_behaviors = len(self.behaviors)
        coefficients = np.ones(num_behaviors) if loss_coefficients is None else loss_coefficients
        self.loss_coefficients = tuple(normalised(coefficients, "loss_coefficients"))
        if len(self.loss_coefficients) != num_behaviors:
            raise ValueError(
                f"{len(self.loss_coefficients)} loss coefficients for {num_behaviors} behaviors"
            )
        self._setup_negative_weights(
            [0.1] * num_behaviors if negative_weights is None else negative_weights
        )
        self.gram_every = int(gram_every)
        self.refreshed_gram = None
        if self.gram_every > 1:
            groups = sorted(set(self._weight_group))
            ones = np.ones(self.num_items)
            self.refreshed_gram = refreshed_gram.RefreshedGram(
                self.gram_every,
                np.stack([ones if g < 0 else self._weight_vectors[g] for g in groups]),
            )

    @property
    def loss_names(self) -> tuple[str, ...]:
        return tuple(f"loss/{behavior}" for behavior in self.behaviors)

    def _setup_negative_weights(self, negative_weights: Sequence[float | np.ndarray]) -> None:
        """Groups behaviors by weight shape so each distinct item Gram is built once a step.

        Each behavior's c⁻ is stored as scale_k · shape_k, where shape_k is all-ones (uniform
        weight: every such behavior shares the plain Gram QᵀQ) or a per-item vector; equal
        vectors share one weighted Gram.
        """
        if len(negative_weights) != len(self.behaviors):
            raise ValueError(
                f"{len(negative_weights)} negative weights for {len(self.behaviors)} behaviors"
            )
        self._weight_scales: list[float] = []
        self._weight_group: list[int] = []  # -1: plain Gram, else index in _weight_vectors
        vectors: list[np.ndarray] = []
        for weight in negative_weights:
            weight = np.asarray(weight, dtype=np.float64)
            if weight.ndim == 0:
                self._weight_scales.append(float(weight))
                self._weight_group.append(-1)
                continue
            if weight.shape != (self.num_items,):
                raise ValueError(
                    f"item negative weights need shape ({self.num_items},), got {weight.shape}"
                )
            scale = float(weight.mean())
            shape = weight / scale if scale > 0 else weight
            scale = scale if scale > 0 else 1.0
            match = next((i for i, v in enumerate(vectors) if np.array_equal(v, shape)), None)
            if match is None:
                vectors.append(shape)
                match = len(vectors) - 1
            self._weight_scales.append(scale)
            self._weight_group.append(match)
        self._weight_vectors = vectors

    def negative_weight(self, k: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """c⁻ of behavior k: a scalar or a `[num_items]` vector."""
        scale = tf.constant(self._weight_scales[k], dtype=dtype)
        group = self._weight_group[k]
        return scale if group < 0 else scale * tf.constant(self._weight_vectors[group], dtype)

    def behavior_losses(
        self,
        positives: Mapping[str, tf.RaggedTensor],
        outputs: Mapping[str, tf.Tensor],
        loss: str | None = None,
        with_constant: bool = False,
        step: tf.Tensor | None = None,
    ) -> list[tf.Tensor]:
        """L̃_k of every behavior for a user batch; `loss` overrides the form.

        L̃_k omits the parameter-free constant c⁺ · |positives of k|; `with_constant` adds
        it back, giving the weighted squared error Σ_u Σ_v c_uv (R − R̂)² itself (what is
        logged: positive, and falling as the model fits). Gradients are the same. A training
        `step` with `gram_every` > 1 takes the refreshed-Gram step. `outputs` may carry
        `positive_weights`: per behavior, a ragged c⁺ of each positive (else c⁺ for all).
        """
        losses = self._losses_without_constant(positives, outputs, loss or self.loss_kind, step)
        if not with_constant:
            return losses
        dtype = losses[0].dtype
        return [
            value + positive_constant(tf.size(positives[b].values), weight, dtype)
            for value, b, weight in zip(
                losses, self.behaviors, self._positive_weights(outputs, dtype), strict=True
            )
        ]

    def _positive_weights(
        self, outputs: Mapping[str, tf.Tensor], dtype: tf.DType
    ) -> list[tf.Tensor | float]:
        """c⁺ per behavior: `[N_k]` weights of its positives, or the scalar c⁺."""
        given = outputs.get("positive_weights", {})
        return [
            tf.cast(given[b].values, dtype) if b in given else self.positive_weight
            for b in self.behaviors
        ]

    def _flat_positive_weights(
        self, outputs: Mapping[str, tf.Tensor], dtype: tf.DType
    ) -> tf.Tensor | float:
        """c⁺ of every positive in `flatten_positives` order, or the scalar c⁺."""
        given = outputs.get("positive_weights")
        if not given:
            return self.positive_weight
        missing = [b for b in self.behaviors if b not in given]
        if missing:
            raise ValueError(f"positive_weights of every behavior or none; missing {missing}")
        weights = [tf.cast(given[b].values, dtype) for b in self.behaviors]
        return weights[0] if len(weights) == 1 else tf.concat(weights, 0)

    def _losses_without_constant(
        self,
        positives: Mapping[str, tf.RaggedTensor],
        outputs: Mapping[str, tf.Tensor],
        loss: str,
        step: tf.Tensor | None = None,
    ) -> list[tf.Tensor]:
        user_vectors = outputs["user_vectors"]
        items = outputs["item_vectors"]
        vectors = outputs["prediction_vectors"]
        dtype = items.dtype
        if loss == "dense":
            weights = self._positive_weights(outputs, dtype)
            return [
                self._dense_loss(user_vectors * vectors[k], items, positives[b], k, weights[k])
                for k, b in enumerate(self.behaviors)
            ]

        rows, item_ids, tasks = flatten_positives(positives, self.behaviors)
        positive_weight = self._flat_positive_weights(outputs, dtype)
        refreshed = self.refreshed_gram is not None and step is not None
        positive_weights = self.pair_negative_weights(tasks, item_ids, dtype)
        if refreshed:
            scales = tf.constant(self._weight_scales, dtype=dtype)
            groups = sorted(set(self._weight_group))
            queries, query_index = task_queries(user_vectors, vectors, rows, tasks)
            group_grams, scores = self.refreshed_gram.grams_and_scores(
                items, queries, query_index, item_ids, step
            )
            grams = {g: group_grams[i] for i, g in enumerate(groups)}
            item_grams = tf.stack([grams[g] for g in self._weight_group]) * scales[:, None, None]
            losses = losses_from_scores(
                user_vectors,
                vectors,
                scores,
                tasks,
                positive_weights,
                item_grams,
                positive_weight=positive_weight,
            )
        else:
            losses = decoupled_losses(
                user_vectors,
                items,
                vectors,
                rows,
                item_ids,
                tasks,
                positive_weights,
                self.output_item_grams(outputs),
                positive_weight=positive_weight,
            )
        return tf.unstack(losses, num=len(self.behaviors))

    def item_grams(self, items: tf.Tensor) -> tf.Tensor:
        """`[K, d, d]` Σ_v c⁻_kv q_v q_vᵀ per behavior; each distinct Gram is built once."""
        return self.stack_item_grams(self.distinct_item_grams(items))

    def distinct_item_grams(self, items: tf.Tensor) -> list[tf.Tensor]:
        """The `[d, d]` item Gram of each distinct negative-weight shape, in group order."""
        weight_vectors = [tf.constant(v, dtype=items.dtype) for v in self._weight_vectors]
        return [
            weighted_item_gram(items, None if g < 0 else weight_vectors[g])
            for g in sorted(set(self._weight_group))
        ]

    def stack_item_grams(self, distinct: Sequence[tf.Tensor]) -> tf.Tensor:
        """`[K, d, d]` per-behavior Grams from `distinct_item_grams`, scaled per behavior."""
        scales = tf.constant(self._weight_scales, dtype=distinct[0].dtype)
        grams = dict(zip(sorted(set(self._weight_group)), distinct, strict=True))
        return tf.stack([grams[g] for g in self._weight_group]) * scales[:, None, None]

    def output_item_grams(self, outputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """`[K, d, d]` item Grams: from the replicated terms in `outputs` when given there."""
        if ITEM_GRAMS in outputs:
            return self.stack_item_grams(outputs[ITEM_GRAMS])
        return self.item_grams(outputs["item_vectors"])

    def replicated_terms(self, outputs: Mapping[str, tf.Tensor]) -> dict[str, list[tf.Tensor]]:
        """The distinct item Grams, detached from the item table (see `Task`); none with
        `gram_every` > 1, whose refreshed Gram is a state of its own."""
        if self.refreshed_gram is not None:
            return {}
        return {ITEM_GRAMS: self.distinct_item_grams(tf.stop_gradient(outputs["item_vectors"]))}

    def replicated_terms_gradients(
        self, outputs: Mapping[str, tf.Tensor], gradients: Mapping[str, list[tf.Tensor]]
    ) -> dict[str, tf.Tensor]:
        """The item vectors' dense gradient of the Gram term, from the Grams' `[d, d]` ones."""
        items = outputs["item_vectors"]
        weight_vectors = [tf.constant(v, dtype=items.dtype) for v in self._weight_vectors]
        parts = [
            gram_gradient(items if g < 0 else items * weight_vectors[g][:, None], upstream)
            for g, upstream in zip(
                sorted(set(self._weight_group)), gradients[ITEM_GRAMS], strict=True
            )
        ]
        return {"item_vectors": tf.add_n(parts)}

    def pair_negative_weights(
        self, tasks: tf.Tensor, item_ids: tf.Tensor, dtype: tf.DType
    ) -> tf.Tensor:
        """`[N]` c⁻ of each (behavior index, item id) pair."""
        scales = tf.constant(self._weight_scales, dtype=dtype)
        weights = tf.gather(scales, tasks)
        if self._weight_vectors:
            # Per-item weights: the shape of each behavior's c⁻ (ones for uniform ones).
            table = tf.stack(
                [tf.ones([self.num_items], dtype)]
                + [tf.constant(v, dtype=dtype) for v in self._weight_vectors]
            )
            rows_in_table = tf.gather(tf.constant(self._weight_group) + 1, tasks)
            weights *= tf.gather_nd(
                table, tf.stack([rows_in_table, tf.cast(item_ids, tf.int32)], axis=1)
            )
        return weights

    def _dense_loss(
        self,
        queries: tf.Tensor,
        items: tf.Tensor,
        positives: tf.RaggedTensor,
        k: int,
        positive_weight: tf.Tensor | float | None = None,
    ) -> tf.Tensor:
        """Brute-force loss of behavior k minus its constant Σ c⁺ over its positives."""
        positive_weight = self.positive_weight if positive_weight is None else positive_weight
        value = dense_loss(
            queries,
            items,
            positives.value_rowids(),
            positives.values,
            self.negative_weight(k, items.dtype),
            positive_weight=positive_weight,
        )
        return value - positive_constant(
            tf.size(positives.values), positive_weight, dtype=items.dtype
        )

    def weighted_sum(self, losses: Sequence[tf.Tensor]) -> tf.Tensor:
        """Σ_k λ_k L̃_k."""
        pairs = zip(self.loss_coefficients, losses, strict=True)
        return tf.add_n([coefficient * value for coefficient, value in pairs])

    def objective(
        self, losses: Sequence[tf.Tensor], training: bool = False, step: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Σ λ_k L̃_k, or, training with `alternate_tasks`, L̃ of behavior `step mod K`."""
        if self.alternate_tasks and training and step is not None:
            task = tf.math.floormod(step, len(self.behaviors))
            mask = tf.one_hot(task, len(self.behaviors), dtype=losses[0].dtype)
            return tf.reduce_sum(mask * tf.stack(losses))
        return self.weighted_sum(losses)

    def call(self, batch, outputs, training=False, step=None):
        if "positive_weights" in batch:
            outputs = {**outputs, "positive_weights": batch["positive_weights"]}
        losses = self.behavior_losses(
            batch["positives"], outputs, with_constant=True, step=step if training else None
        )
        total = self.objective(losses, training=training, step=step)
        return total, dict(zip(self.loss_names, losses, strict=True))


def popularity_weights_per_behavior(
    data: MultiBehaviorData, config: WholeDataConfig
) -> list[float | np.ndarray]:
    """c⁻ per behavior of `data` from `negative_weight` and `negative_weight_alpha`."""
    weights = per_behavior(config.negative_weight, data.behaviors, "negative_weight", 0.1)
    if not config.negative_weight_alpha:
        return weights
    return [
        popularity_negative_weights(data.item_popularity(b), w, config.negative_weight_alpha)
        for b, w in zip(data.behaviors, weights, strict=True)
    ]


def whole_data_task(data: MultiBehaviorData, config: WholeDataConfig) -> WholeDataTask:
    """The whole-data task over every behavior of `data`, configured by `config`."""
    return WholeDataTask(
        data.behaviors,
        data.num_items,
        popularity_weights_per_behavior(data, config),
        per_behavior(config.loss_coefficients, data.behaviors, "loss_coefficients", 1.0),
        positive_weight=config.positive_weight,
        loss=config.loss,
        alternate_tasks=config.alternate_tasks,
        gram_every=config.gram_every,
    )
