"""EHCF with memory of what the user already touched (MODELS.md §4).

R̂_k(u, v) = h_kᵀ (p_u ⊙ q_v) + S_k(u, v), where the sparse term lives on the pairs the user
already has in a supportive behavior b ≠ k:

    S_k(u, v) = Σ_{b supportive, b ≠ k} x_b(u, v) · (β_{k,b} + [k = target] · γ_{b,v}),

x_b the 0/1 matrix of behavior b, β learned per (behavior, supportive behavior) and, for the
target, γ_{b,v} a learned per-item scale of each supportive behavior (how often a carted v
gets bought). The whole-data task (`tasks.whole_data.MemoryWholeDataTask`) stays exact:
Σ_v c⁻ R̂² splits into EHCF's Gram term plus terms over the user's observed pairs only.
Ranking adds S_K to the dot product per evaluated user batch, so the model is scored through
`score_users` (not a plain dot product). At serving, x_b comes from the training snapshot or
from the request (`score_users_with_context`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.contracts import MemoryOutputs, UserBatch
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import ehcf
from mbrec_tf.models.memory import InteractionMemory, MemoryPairs, MemoryScoring


@dataclasses.dataclass(frozen=True)
class EHCFMemoryConfig(ehcf.EHCFConfig):
    """EHCF's hyper-parameters plus those of the sparse memory terms."""

    item_scales: bool = config_lib.field(
        True, "Learn γ_{b,v}: a per-item scale of each supportive behavior in the target score."
    )
    memory_l2: float = config_lib.field(
        0.0, "l2 coefficient on β and γ (times their sum of squares / 2)."
    )


class EHCFMemory(MemoryScoring, ehcf.EHCF):
    """EHCF plus β and γ on the memory pairs (see the module docstring).

    Args:
      memory: every trained behavior's training pairs (behaviors in the model's order).
      item_scales: whether γ is learned.
      memory_l2: ℓ2 coefficient on β and γ.
      Other arguments: as `EHCF`.
    """

    def __init__(
        self,
        memory: InteractionMemory,
        *args,
        item_scales: bool = True,
        memory_l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if memory.behaviors != self.behaviors:
            raise ValueError(f"memory of {memory.behaviors}, model of {self.behaviors}")
        self.memory = memory
        num_behaviors = len(self.behaviors)
        num_supportive = num_behaviors - 1
        self.memory_l2 = float(memory_l2)

        def penalty(weight: tf.Variable) -> tf.Tensor:
            return self.memory_l2 * tf.nn.l2_loss(weight)

        regularizer = penalty if self.memory_l2 else None
        self.behavior_terms = self.add_weight(
            name="memory_beta",
            shape=(num_behaviors, num_supportive),
            initializer="zeros",
            regularizer=regularizer,
        )
        # β_{k,b} applies where b is supportive and b ≠ k.
        allowed = np.ones((num_behaviors, num_supportive), np.float32)
        for k in range(num_supportive):
            allowed[k, k] = 0.0
        self.allowed_terms = tf.constant(allowed)
        self.item_scales = None
        if item_scales and num_supportive:
            self.item_scales = self.add_weight(
                name="memory_item_scales",
                shape=(num_supportive, self.num_items),
                initializer="zeros",
                regularizer=regularizer,
            )

    @property
    def is_factorized(self) -> bool:
        return False  # the target score adds sparse terms to the dot product

    @property
    def context_behaviors(self) -> tuple[str, ...]:
        """Behaviors whose items a request may send (serving with today's interactions)."""
        return self.behaviors[:-1]

    def sparse_terms(self, pairs: MemoryPairs) -> tf.Tensor:
        """`[n, K]` S_k of every memory pair for every behavior k."""
        beta = tf.convert_to_tensor(self.behavior_terms)
        beta = beta * tf.cast(self.allowed_terms, beta.dtype)
        supportive = tf.cast(pairs.indicators[:, :-1], beta.dtype)
        terms = tf.matmul(supportive, beta, transpose_b=True)
        if self.item_scales is None:
            return terms
        scales = tf.gather(tf.transpose(self.item_scales), pairs.items)  # [n, K - 1]
        target = tf.reduce_sum(supportive * scales, axis=1, keepdims=True)
        return terms + tf.pad(target, [[0, 0], [len(self.behaviors) - 1, 0]])

    def scores_from_pairs(self, user_ids: tf.Tensor, pairs: MemoryPairs) -> tf.Tensor:
        """`[batch, num_items]` target scores given the batch's memory pairs."""
        dense = tf.matmul(self.query_embeddings(user_ids), self.item_table, transpose_b=True)
        sparse = self.sparse_terms(pairs)[:, -1]
        return dense + pairs.dense(sparse, tf.shape(user_ids)[0], self.num_items)

    def call(self, batch: UserBatch, training: bool = False) -> MemoryOutputs:
        """EHCF's task inputs plus the batch's memory pairs and their sparse terms."""
        outputs = MemoryOutputs(**super().call(batch, training=training))
        pairs = self.memory.pairs(batch["user"])
        outputs["memory_rows"] = pairs.rows
        outputs["memory_items"] = pairs.items
        outputs["memory_labels"] = tf.cast(pairs.indicators, outputs["item_vectors"].dtype)
        outputs["memory_terms"] = self.sparse_terms(pairs)
        return outputs


def build(data: MultiBehaviorData, config: EHCFMemoryConfig) -> EHCFMemory:
    """An EHCF with memory over every behavior of `data` (restricted by `training_data`)."""
    behaviors = data.behaviors
    if len(behaviors) < 2:
        raise ValueError(f"ehcf_memory needs a supportive behavior; {data.name} has {behaviors}")
    memory = InteractionMemory([data.train[b] for b in behaviors], behaviors)
    return EHCFMemory(
        memory,
        item_scales=config.item_scales,
        memory_l2=config.memory_l2,
        **ehcf.ehcf_arguments(data, config),
    )


#: EHCF's settings per dataset; the memory terms' own settings chosen on validation.
DATASET_DEFAULTS: dict[str, dict[str, object]] = {
    name: dict(values) for name, values in ehcf.DATASET_DEFAULTS.items()
}
