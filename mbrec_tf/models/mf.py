"""BPR: matrix factorisation trained with the pairwise loss on uniform negatives.

score(u, v) = p_u . q_v. Factorised (query = p_u, items = Q), so evaluation and export use
one matrix product. Trained by the sampled task (pairwise: softplus(s_neg - s_pos)), plus
`embedding_l2` times the squared norms of the batch's embeddings.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.contracts import ExampleBatch, ScoreOutputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import layers
from mbrec_tf.models.base import Recommender


@dataclasses.dataclass(frozen=True)
class BPRConfig(config_lib.SampledConfig):
    """BPR: `embedding_dim` factors, one uniform negative per positive by default."""

    batch_size: int = config_lib.field(1024, "Training examples (positive pairs) per batch.")
    embedding_l2: float = config_lib.field(
        1e-5, "L2 penalty on each batch's embeddings (per example)."
    )


#: Per-dataset defaults picked on the validation split (sampled NDCG@10), see BENCHMARKS.md.
DATASET_DEFAULTS = {
    "taobao_ub4": {"batch_size": 256, "learning_rate": 0.002, "embedding_l2": 1e-3, "epochs": 8},
    "beibei": {"batch_size": 256, "learning_rate": 0.002, "embedding_l2": 1e-3, "epochs": 6},
}


class MatrixFactorization(Recommender):
    """User and item embedding tables whose dot product is the target score.

    `embedding_l2` penalises the embeddings each training batch looks up (per example).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int,
        *,
        init_std: float = 0.01,
        embedding_l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(num_users, num_items, **kwargs)
        l2 = float(embedding_l2)
        self.user_embedding = layers.embedding(num_users, dim, init_std, "user_embedding", l2)
        self.item_embedding = layers.embedding(num_items, dim, init_std, "item_embedding", l2)

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        return self.user_embedding(user_ids)

    def item_embeddings(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.item_embedding.embeddings)

    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        users = self.user_embedding(user_ids)
        items = self.item_embedding(item_ids)
        if items.shape.rank == 3:
            users = users[:, None, :]
        return tf.reduce_sum(users * items, axis=-1)

    def call(self, batch: ExampleBatch, training: bool = False) -> ScoreOutputs:
        """Logits `[B, 1 + n]` of each example's positive (column 0) and negatives."""
        del training
        return {"scores": self.score_pairs(batch["user"], layers.example_items(batch))}


def build(data: MultiBehaviorData, config: BPRConfig) -> MatrixFactorization:
    return MatrixFactorization(
        data.num_users,
        data.num_items,
        config.embedding_dim,
        init_std=config.init_std,
        embedding_l2=config.embedding_l2,
    )
