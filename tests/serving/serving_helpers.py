"""Test doubles and reference computations for the serving tests (tiny, CPU, deterministic).

A plain module (not conftest.py), so test files import it by a name no other folder uses.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.data.generated import random_data
from mbrec_tf.models.base import Recommender


class DotModel(Recommender):
    """A factorised model with fixed random embeddings: score = p_u . q_v."""

    requires_training = False

    def __init__(self, num_users: int, num_items: int, dim: int = 4, seed: int = 0):
        super().__init__(num_users=num_users, num_items=num_items)
        rng = np.random.default_rng(seed)
        self.user_table = tf.Variable(rng.normal(size=(num_users, dim)).astype(np.float32))
        self.item_table = tf.Variable(rng.normal(size=(num_items, dim)).astype(np.float32))

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.user_table, user_ids)

    def item_embeddings(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.item_table)


class BiasedModel(Recommender):
    """A non-factorised model: score = p_u . q_v + b_v (no query/item embeddings)."""

    requires_training = False

    def __init__(self, num_users: int, num_items: int, dim: int = 3, seed: int = 1):
        super().__init__(num_users=num_users, num_items=num_items)
        rng = np.random.default_rng(seed)
        self.user_table = tf.Variable(rng.normal(size=(num_users, dim)).astype(np.float32))
        self.item_table = tf.Variable(rng.normal(size=(num_items, dim)).astype(np.float32))
        self.item_bias = tf.Variable(rng.normal(size=(num_items,)).astype(np.float32))

    def score_users(self, user_ids: tf.Tensor) -> tf.Tensor:
        users = tf.gather(self.user_table, user_ids)
        return tf.matmul(users, self.item_table, transpose_b=True) + self.item_bias

    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.score_users(user_ids), item_ids, batch_dims=1)


def expected_top_k(model: Recommender, data: MultiBehaviorData, users: np.ndarray, k: int):
    """Reference top-k by numpy: target-train items masked, score descending, index ascending."""
    scores = model.score_users(tf.constant(users, dtype=tf.int32)).numpy().astype(np.float64)
    mask = data.known_target_items()[users].toarray() > 0
    scores[mask] = -np.inf
    items = np.arange(data.num_items)
    order = np.stack([np.lexsort((items, -row))[:k] for row in scores])
    return order, np.take_along_axis(scores, order, axis=1)


def int_user_data() -> MultiBehaviorData:
    """random_data with int64 user ids and string item ids (the other way round)."""
    data = random_data(num_users=20, num_items=30, seed=3)
    return dataclasses.replace(
        data,
        user_ids=np.arange(5000, 5000 + data.num_users, dtype=np.int64),
        item_ids=np.array([f"item-{i}" for i in range(data.num_items)]),
    )
