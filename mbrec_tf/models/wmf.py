"""WMF: weighted matrix factorisation over the whole matrix (Hu, Koren & Volinsky 2008).

MODELS.md §3. R̂(u, v) = p_uᵀ q_v, fitted by the whole-data task (`tasks.whole_data`) on
the target behavior alone: every missing entry weighs c⁻ (`--negative_weight`, optionally
popularity-shaped), every observed one c⁺ + α r_uv (`--confidence_alpha`, the paper's
confidence 1 + α r with c⁺ = 1). The datasets built here merge repeated events (their
training matrices are 0/1), so there r = 1 and α only raises c⁺ to c⁺ + α; a dataset whose
matrix holds interaction counts gets the count-based confidence exactly. It is EHCF's
loss with h fixed to ones; `SharedFactorMF` also serves CMF (several behaviors, h_k = 1).
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.contracts import FactorOutputs, UserBatch
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.base import Recommender


@dataclasses.dataclass(frozen=True)
class SharedFactorConfig(config_lib.FactorDropoutConfig):
    """Settings of the whole-data MF models (WMF, CMF): EHCF's optimiser, lighter dropout."""

    keep_prob: float = config_lib.field(
        0.8, "Dropout keep probability of the user embedding in training (1 = no dropout)."
    )


@dataclasses.dataclass(frozen=True)
class WMFConfig(SharedFactorConfig):
    """WMF: the whole-data regression of the target behavior alone."""

    confidence_alpha: float = config_lib.field(
        0.0,
        "Confidence of observed entries c+ + alpha * r (r: the stored interaction count; "
        "1 on datasets whose repeated events are merged). 0 = c+ for every positive.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.confidence_alpha < 0:
            raise ValueError(f"confidence_alpha must be >= 0, got {self.confidence_alpha}")


class SharedFactorMF(Recommender):
    """P and Q shared by `num_behaviors` behaviors that all score p_uᵀ q_v (h_k = 1).

    `call` returns the whole-data task's inputs (p_u with dropout in training, Q, and a
    `[K, d]` block of ones as prediction vectors); ranking is p_u · q_v.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        num_behaviors: int = 1,
        *,
        embedding_dim: int = 64,
        keep_prob: float = 1.0,
        **kwargs,
    ):
        super().__init__(num_users=num_users, num_items=num_items, **kwargs)
        if not 0.0 < keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
        self.num_behaviors = int(num_behaviors)
        self.keep_prob = float(keep_prob)
        self.user_table = self.add_weight(
            name="user_embeddings",
            shape=(self.num_users, embedding_dim),
            initializer=tf.keras.initializers.TruncatedNormal(stddev=0.01),
        )
        self.item_table = self.add_weight(
            name="item_embeddings",
            shape=(self.num_items, embedding_dim),
            initializer=tf.keras.initializers.TruncatedNormal(stddev=0.01),
        )

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.nn.embedding_lookup(self.user_table, user_ids)

    def item_embeddings(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.item_table)

    def call(self, batch: UserBatch, training: bool = False) -> FactorOutputs:
        user_vectors = tf.nn.embedding_lookup(self.user_table, batch["user"])
        if training and self.keep_prob < 1.0:
            user_vectors = tf.nn.dropout(user_vectors, rate=1.0 - self.keep_prob)
        return {
            "user_vectors": user_vectors,
            "item_vectors": tf.convert_to_tensor(self.item_table),
            "prediction_vectors": tf.ones(
                [self.num_behaviors, self.item_table.shape[1]], self.item_table.dtype
            ),
        }


def build(data: MultiBehaviorData, config: SharedFactorConfig, **kwargs) -> SharedFactorMF:
    """P and Q for every behavior of `data` (WMF: the target alone, by its training data)."""
    return SharedFactorMF(
        data.num_users,
        data.num_items,
        len(data.behaviors),
        embedding_dim=config.embedding_dim,
        keep_prob=config.keep_prob,
        **kwargs,
    )


#: Beibei: EHCF's whole-data settings for the target behavior (w = 0.1, 200 epochs);
#: chosen on validation, see BENCHMARKS.md.
DATASET_DEFAULTS: dict[str, dict[str, object]] = {
    "beibei": {"epochs": 200},
}
