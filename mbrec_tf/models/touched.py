"""Touched first: the user's supportive items first, then target popularity (no training).

MODELS.md §3 (heuristic). score(u, v) = Σ_b w_b · x_b(u, v) + ε · pop(v), where x_b is
the 0/1 matrix of supportive behavior b, w_b its weight (a later behavior of the funnel
weighs more by default) and pop(v) = log(1 + target training count of v) / log(1 + the
largest count) ∈ [0, 1]: with ε below the smallest gap between weight sums, popularity only
breaks ties among items with the same behaviors (and orders the untouched items).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.base import Recommender
from mbrec_tf.models.memory import InteractionMemory, MemoryPairs, MemoryScoring


@dataclasses.dataclass(frozen=True)
class TouchedConfig(config_lib.TrainConfig):
    """Weights of the supportive behaviors and of the popularity tie-break; `epochs` ignored."""

    behavior_weights: tuple[str, ...] = config_lib.field(
        (),
        "Weight w_b of each supportive behavior (one number, one per behavior, or "
        "behavior:weight pairs). Empty = the funnel position (1, 2, ...).",
    )
    popularity_weight: float = config_lib.field(
        1e-3, "ε: weight of the normalised log target popularity (ties, untouched items)."
    )


class TouchedFirst(MemoryScoring, Recommender):
    """Σ_b w_b x_b(u, v) from an `InteractionMemory` of the supportive behaviors, + ε pop(v).

    Args:
      memory: the supportive behaviors' training pairs.
      behavior_weights: w_b per memory behavior.
      item_scores: `[num_items]` ε · pop(v) (set by `tasks.closed_form.TouchedFit`).
    """

    def __init__(
        self,
        memory: InteractionMemory,
        behavior_weights: Sequence[float],
        item_scores: np.ndarray,
        **kwargs,
    ):
        super().__init__(num_users=memory.num_users, num_items=memory.num_items, **kwargs)
        if len(behavior_weights) != len(memory.behaviors):
            raise ValueError(f"{len(behavior_weights)} weights for behaviors {memory.behaviors}")
        self.memory = memory
        self.behavior_weights = tf.Variable(
            np.asarray(behavior_weights, np.float32), trainable=False, name="behavior_weights"
        )
        self.item_scores = tf.Variable(
            np.asarray(item_scores, np.float32), trainable=False, name="item_scores"
        )

    @property
    def context_behaviors(self) -> tuple[str, ...]:
        """Behaviors whose items a request may send (serving with today's interactions)."""
        return self.memory.behaviors

    def scores_from_pairs(self, user_ids: tf.Tensor, pairs: MemoryPairs) -> tf.Tensor:
        """`[batch, num_items]` scores given the batch's memory pairs."""
        touched = tf.linalg.matvec(pairs.indicators, self.behavior_weights)
        batch_size = tf.shape(user_ids)[0]
        return pairs.dense(touched, batch_size, self.num_items) + self.item_scores[None]


def popularity_scores(item_counts: np.ndarray, weight: float) -> np.ndarray:
    """ε · log(1 + count) / log(1 + largest count), in [0, ε]."""
    logs = np.log1p(np.asarray(item_counts, np.float64))
    top = logs.max() if len(logs) and logs.max() > 0 else 1.0
    return weight * logs / top


def behavior_weights(data: MultiBehaviorData, config: TouchedConfig) -> list[float]:
    """w_b of each supportive behavior of `data` (default: 1, 2, ... along the funnel)."""
    supportive = data.supportive_behaviors
    if not config.behavior_weights:
        return [float(k + 1) for k in range(len(supportive))]
    return config_lib.per_behavior(config.behavior_weights, supportive, "behavior_weights", 1.0)


def build(data: MultiBehaviorData, config: TouchedConfig) -> TouchedFirst:
    """The heuristic for `data`: its memory and weights; item scores are set by the fit."""
    supportive = data.supportive_behaviors
    if not supportive:
        raise ValueError(f"touched needs supportive behaviors; {data.name} has {data.behaviors}")
    memory = InteractionMemory([data.train[b] for b in supportive], supportive)
    return TouchedFirst(memory, behavior_weights(data, config), np.zeros(data.num_items))


#: Weights chosen on the validation split (NDCG@10, see BENCHMARKS.md); Beibei has one
#: supportive behavior (cart), where the weight does not change the ranking.
DATASET_DEFAULTS: dict[str, dict[str, object]] = {
    "taobao_ub4": {"behavior_weights": ("pv:1", "fav:2", "cart:4")},
}
