"""Most-popular items: ranks every item by its number of target training interactions."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.base import Recommender


@dataclasses.dataclass(frozen=True)
class PopularityConfig(config_lib.TrainConfig):
    """Popularity has nothing to tune; `epochs` is ignored."""


class Popularity(Recommender):
    """Scores are log(1 + target training count), the same for every user.

    Written as a rank-1 factorised model (query = 1, item vector = score), so it goes
    through the same matrix-product evaluation and retrieval export as EHCF or BPR. The
    scores are set in closed form (`mbrec_tf.tasks.PopularityFit`) or from `item_counts`.
    """

    def __init__(self, item_counts: np.ndarray, num_users: int, **kwargs):
        super().__init__(num_users=num_users, num_items=len(item_counts), **kwargs)
        self.item_scores = tf.Variable(
            self.scores_from_counts(item_counts), trainable=False, name="item_scores"
        )

    @staticmethod
    def scores_from_counts(item_counts: np.ndarray) -> np.ndarray:
        """`[num_items, 1]` item vectors log(1 + count) for target training counts."""
        return np.log1p(np.asarray(item_counts, dtype=np.float32))[:, None]

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.ones([tf.shape(user_ids)[0], 1], dtype=self.item_scores.dtype)

    def item_embeddings(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.item_scores)


def build(data: MultiBehaviorData, config: PopularityConfig) -> Popularity:
    """An unfitted popularity model (every score 0) for `data`."""
    del config
    return Popularity(np.zeros(data.num_items), num_users=data.num_users)
