"""Timing of a full-ranking evaluation at Beibei's size, without loading Beibei.

`benchmark_full_ranking()` builds a random dataset of the given shape (by default the
public Beibei copy: 21,716 users, 7,977 items, ~283k target training pairs, one test item
per user) and a factorised model with random d-dimensional embeddings, then times
`Evaluator(..., protocols=("full",))` calls. The first call includes tracing; the figure
to report is the minimum over the later calls (the CPU may be shared).

    python -m mbrec_tf.evaluation.benchmark
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mbrec_tf.data.dataset import NO_ITEM, MultiBehaviorData, interaction_matrix
from mbrec_tf.evaluation import evaluator as evaluator_lib
from mbrec_tf.evaluation import metrics
from mbrec_tf.models.base import Recommender

BEIBEI_USERS = 21_716
BEIBEI_ITEMS = 7_977
BEIBEI_TRAIN_PAIRS = 282_860


class RandomEmbeddings(Recommender):
    """A factorised model with fixed random user and item vectors (timing only)."""

    requires_training = False

    def __init__(self, num_users: int, num_items: int, embedding_dim: int, seed: int = 0):
        super().__init__(num_users=num_users, num_items=num_items)
        rng = np.random.default_rng(seed)
        self.user_vectors = tf.Variable(
            rng.normal(size=(num_users, embedding_dim)).astype(np.float32), trainable=False
        )
        self.item_vectors = tf.Variable(
            rng.normal(size=(num_items, embedding_dim)).astype(np.float32), trainable=False
        )

    def query_embeddings(self, user_ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.user_vectors, user_ids)

    def item_embeddings(self) -> tf.Tensor:
        return tf.convert_to_tensor(self.item_vectors)


def random_target_data(
    num_users: int = BEIBEI_USERS,
    num_items: int = BEIBEI_ITEMS,
    num_train_pairs: int = BEIBEI_TRAIN_PAIRS,
    seed: int = 0,
) -> MultiBehaviorData:
    """A one-behavior dataset of the given size: random target-train pairs, one test item
    per user (outside its training items), no validation split, no stored negatives."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, num_users, size=num_train_pairs)
    items = rng.integers(0, num_items, size=num_train_pairs)
    test_items = rng.integers(0, num_items, size=num_users).astype(np.int64)
    keep = items != test_items[users]
    train = interaction_matrix(users[keep], items[keep], num_users, num_items)
    return MultiBehaviorData(
        name="random_target",
        behaviors=("buy",),
        train={"buy": train},
        valid_items=np.full(num_users, NO_ITEM, dtype=np.int64),
        test_items=test_items,
        user_ids=np.arange(num_users, dtype=np.int64),
        item_ids=np.arange(num_items, dtype=np.int64),
    )


def benchmark_full_ranking(
    num_users: int = BEIBEI_USERS,
    num_items: int = BEIBEI_ITEMS,
    num_train_pairs: int = BEIBEI_TRAIN_PAIRS,
    embedding_dim: int = 64,
    ks: Sequence[int] = metrics.DEFAULT_KS,
    batch_size: int = evaluator_lib.DEFAULT_BATCH_SIZE,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Seconds for full-ranking evaluations of every user (with per-group breakdown).

    Returns `setup_seconds` (Evaluator construction), `first_call_seconds` (includes
    tracing), `min_seconds` / `median_seconds` over `repeats` further calls, and the
    sizes measured.
    """
    data = random_target_data(num_users, num_items, num_train_pairs, seed)
    model = RandomEmbeddings(num_users, num_items, embedding_dim, seed)
    start = time.perf_counter()
    evaluator = evaluator_lib.Evaluator(
        data, "test", ks=ks, protocols=(evaluator_lib.FULL,), batch_size=batch_size
    )
    setup_seconds = time.perf_counter() - start
    start = time.perf_counter()
    evaluator(model)
    first_call_seconds = time.perf_counter() - start
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluator(model)
        timings.append(time.perf_counter() - start)
    return {
        "num_users": float(evaluator.num_users),
        "num_items": float(num_items),
        "num_train_pairs": float(data.target_train.nnz),
        "embedding_dim": float(embedding_dim),
        "batch_size": float(batch_size),
        "setup_seconds": setup_seconds,
        "first_call_seconds": first_call_seconds,
        "min_seconds": min(timings),
        "median_seconds": statistics.median(timings),
    }


if __name__ == "__main__":
    print(json.dumps(benchmark_full_ranking(), indent=2))
