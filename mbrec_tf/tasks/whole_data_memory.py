"""The whole-data task for scores with sparse memory terms: R̂_k = h_kᵀ(p_u ⊙ q_v) + S_k(u, v).

S_k is nonzero only on the pairs a user already has (the model's memory pairs P, which
include every positive). With D_k = h_kᵀ(p_u ⊙ q_v), the weighted regression over every
item splits exactly into EHCF's terms plus terms over P only:

    Σ_v c_uv (R_k − R̂_k)² = Σ_v c⁻_kv D_k² + Σ_{(u,v) ∈ P} [ c⁻_kv (R̂_k² − D_k²)
                             + R_k ((c⁺ − c⁻_kv) R̂_k² − 2 c⁺ R̂_k) ] + c⁺ |R_k|,

where the first sum is the Gram term Σ_ij (Σ_u a_ui a_uj)(Σ_v c⁻ q_vi q_vj) of EHCF. Each
memory pair is gathered once for every behavior (p_u ⊙ q_v, then one product with the
h_k), so the cost stays O((|B| + |V|) d² + |P| d K); nothing `|B| × |V|` is built ("dense"
does, for the exactness tests).
"""

from __future__ import annotations

from collections.abc import Mapping

import tensorflow as tf

from mbrec_tf.config import WholeDataConfig, per_behavior
from mbrec_tf.contracts import MemoryOutputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks import decoupled, whole_data


class MemoryWholeDataTask(whole_data.WholeDataTask):
    """`WholeDataTask` for scorers whose outputs are `contracts.MemoryOutputs`: the factors
    plus the batch's memory pairs, their 0/1 labels per behavior and their S_k."""

    def _losses_without_constant(
        self,
        positives: Mapping[str, tf.RaggedTensor],
        outputs: MemoryOutputs,
        loss: str,
        step: tf.Tensor | None = None,
    ) -> list[tf.Tensor]:
        del step  # the item Gram is exact at every step here
        if loss == "dense":
            return [
                self._dense_memory_loss(outputs, positives[b], k)
                for k, b in enumerate(self.behaviors)
            ]
        user_vectors = outputs["user_vectors"]
        items = outputs["item_vectors"]
        vectors = outputs["prediction_vectors"]
        rows = outputs["memory_rows"]
        item_ids = outputs["memory_items"]
        labels = outputs["memory_labels"]
        sparse = outputs["memory_terms"]
        num_tasks = len(self.behaviors)
        dtype = items.dtype

        user_gram = tf.matmul(user_vectors, user_vectors, transpose_a=True)
        weighted_grams = user_gram[None] * self.output_item_grams(outputs)
        all_pairs = tf.reduce_sum(
            vectors[:, :, None] * weighted_grams * vectors[:, None, :], [1, 2]
        )

        # D_k of every memory pair for every behavior: [n, K], one gather for all.
        products = decoupled.pair_products(user_vectors, items, rows, item_ids)
        dot = tf.matmul(products, vectors, transpose_b=True)
        tasks = tf.repeat(tf.range(num_tasks, dtype=rows.dtype), tf.size(rows))
        all_items = tf.tile(item_ids, [num_tasks])
        negative = tf.transpose(
            tf.reshape(self.pair_negative_weights(tasks, all_items, dtype), [num_tasks, -1])
        )
        scores = dot + sparse
        positive = self.positive_weight
        terms = negative * (tf.square(scores) - tf.square(dot)) + labels * (
            (positive - negative) * tf.square(scores) - 2.0 * positive * scores
        )
        return tf.unstack(tf.reduce_sum(terms, axis=0) + all_pairs, num=num_tasks)

    def _dense_memory_loss(
        self, outputs: MemoryOutputs, positives: tf.RaggedTensor, k: int
    ) -> tf.Tensor:
        """Brute force: the full `[B, V]` scores with S_k scattered in, minus c⁺ |R_k|."""
        users = outputs["user_vectors"]
        items = outputs["item_vectors"]
        queries = users * outputs["prediction_vectors"][k]
        indices = tf.stack([outputs["memory_rows"], outputs["memory_items"]], axis=1)
        shape = tf.stack([tf.shape(users)[0], tf.shape(items)[0]])
        sparse = tf.scatter_nd(indices, outputs["memory_terms"][:, k], shape)
        scores = tf.matmul(queries, items, transpose_b=True) + sparse
        label_indices = tf.stack(
            [tf.cast(positives.value_rowids(), tf.int64), tf.cast(positives.values, tf.int64)], 1
        )
        labels = tf.scatter_nd(
            label_indices,
            tf.ones_like(positives.values, dtype=scores.dtype),
            tf.shape(scores, out_type=tf.int64),
        )
        negative = self.negative_weight(k, scores.dtype)
        weights = negative + labels * (self.positive_weight - negative)
        value = tf.reduce_sum(weights * tf.square(labels - scores))
        return value - decoupled.positive_constant(
            tf.size(positives.values), self.positive_weight, dtype=scores.dtype
        )


def memory_whole_data_task(data: MultiBehaviorData, config: WholeDataConfig) -> MemoryWholeDataTask:
    """The whole-data task with memory terms over every behavior of `data`."""
    if config.gram_every != 1:
        raise ValueError("gram_every > 1 is not supported with memory terms: use 1")
    return MemoryWholeDataTask(
        data.behaviors,
        data.num_items,
        whole_data.popularity_weights_per_behavior(data, config),
        per_behavior(config.loss_coefficients, data.behaviors, "loss_coefficients", 1.0),
        positive_weight=config.positive_weight,
        loss=config.loss,
        alternate_tasks=config.alternate_tasks,
    )
