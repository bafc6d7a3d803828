"""EHCF, touched first: EHCF trained as it is, ranking the user's supportive items first.

The target score is

    R̂(u, v) = h_Kᵀ (p_u ⊙ q_v) + t(u, v) · (G · Σ_b w_b x_b(u, v) + α · pop(v)),

x_b the user's training pairs of supportive behavior b (or a request's items, at serving),
t(u, v) = 1 where the user touched v in any of them, w_b the touched-first heuristic's
weights (a later behavior of the funnel weighs more), G a gap wider than the range of
EHCF's scores, and pop(v) the normalised log target popularity. So the items the user
touched come first, by level, each level ordered by EHCF's score plus α of popularity (α
large: the heuristic's order, EHCF breaking ties); the items the user never touched are
ranked by EHCF's scores alone, so discovery is EHCF's own. The sparse terms are fixed, so
training is exactly EHCF's (same task, same steps, same epoch time), and so is the choice of
the epoch: validation ranks with EHCF's scores alone (`selection_scorer`), since the fixed
levels would leave the validation metric flat while EHCF learns.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import ehcf, touched
from mbrec_tf.models.base import dot_pairs
from mbrec_tf.models.memory import InteractionMemory, MemoryPairs, MemoryScoring

#: G: trained EHCF target scores are a regression onto 0/1 labels, within a few units of
#: [0, 1]; a gap of 100 per unit of behavior weight keeps the levels apart.
LEVEL_GAP = 100.0


@dataclasses.dataclass(frozen=True)
class EHCFTouchedConfig(ehcf.EHCFConfig):
    """EHCF's hyper-parameters plus the touched levels and the popularity weight α."""

    behavior_weights: tuple[str, ...] = config_lib.field(
        (),
        "Weight w_b of each supportive behavior (one number, one per behavior, or "
        "behavior:weight pairs). Empty = the funnel position (1, 2, ...).",
    )
    popularity_weight: float = config_lib.field(
        10.0,
        "α: weight of the normalised log target popularity added to EHCF's scores of the "
        "items the user touched.",
    )


class EHCFTouched(MemoryScoring, ehcf.EHCF):
    """EHCF whose target ranking puts the user's supportive items first (module docstring).

    Args:
      memory: the supportive behaviors' training pairs.
      behavior_weights: w_b per supportive behavior.
      item_scores: `[num_items]` α · pop(v), added on touched pairs only.
      Other arguments: as `EHCF`.
    """

    def __init__(
        self,
        memory: InteractionMemory,
        behavior_weights: list[float],
        item_scores: np.ndarray,
        *args,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if memory.behaviors != self.behaviors[:-1]:
            raise ValueError(f"memory of {memory.behaviors}, supportive {self.behaviors[:-1]}")
        if len(behavior_weights) != len(memory.behaviors):
            raise ValueError(f"{len(behavior_weights)} weights for behaviors {memory.behaviors}")
        self.memory = memory
        self.level_weights = tf.Variable(
            LEVEL_GAP * np.asarray(behavior_weights, np.float32),
            trainable=False,
            name="level_weights",
        )
        self.item_scores = tf.Variable(
            np.asarray(item_scores, np.float32), trainable=False, name="item_scores"
        )
        self._ehcf_ranking: EHCFRanking | None = None

    @property
    def is_factorized(self) -> bool:
        return False  # the target score adds the touched levels to the dot product

    def selection_scorer(self) -> EHCFRanking:
        """EHCF's own ranking (without the touched levels) selects the epoch."""
        if self._ehcf_ranking is None:
            self._ehcf_ranking = EHCFRanking(self)  # one object: compiled once per evaluator
        return self._ehcf_ranking

    @property
    def context_behaviors(self) -> tuple[str, ...]:
        """Behaviors whose items a request may send (serving with today's interactions)."""
        return self.memory.behaviors

    def scores_from_pairs(self, user_ids: tf.Tensor, pairs: MemoryPairs) -> tf.Tensor:
        """`[batch, num_items]` target scores given the batch's supportive pairs."""
        dense = tf.matmul(self.query_embeddings(user_ids), self.item_table, transpose_b=True)
        levels = tf.linalg.matvec(pairs.indicators, self.level_weights)
        # A request may have replaced every behavior of a snapshot pair: no longer touched.
        touched = tf.cast(tf.reduce_max(pairs.indicators, axis=1) > 0, levels.dtype)
        terms = levels + touched * tf.gather(self.item_scores, pairs.items)
        return dense + pairs.dense(terms, tf.shape(user_ids)[0], self.num_items)


class EHCFRanking:
    """The trained EHCF inside an `EHCFTouched`, ranking by h_Kᵀ(p_u ⊙ q_v) alone: what the
    evaluator needs of a factorised scorer, reading the model's own variables."""

    is_factorized = True

    def __init__(self, model: EHCFTouched):
        self.model = model
        self.num_items = model.num_items

    def scoring_tables(self) -> tuple[tf.Tensor, ...]:
        return ()

    def query_embeddings_given(self, user_ids: tf.Tensor, tables: tuple) -> tf.Tensor:
        return self.model.query_embeddings(user_ids)

    def item_embeddings_given(self, tables: tuple) -> tf.Tensor:
        return self.model.item_embeddings()

    def score_pairs_given(self, user_ids: tf.Tensor, item_ids: tf.Tensor, tables: tuple):
        return dot_pairs(
            self.query_embeddings_given(user_ids, tables),
            self.item_embeddings_given(tables),
            item_ids,
        )


def build(data: MultiBehaviorData, config: EHCFTouchedConfig) -> EHCFTouched:
    """EHCF over every behavior of `data`, with its supportive pairs and α · pop(v)."""
    behaviors = data.behaviors
    supportive = data.supportive_behaviors
    if not supportive:
        raise ValueError(f"ehcf_touched needs supportive behaviors; {data.name} has {behaviors}")
    memory = InteractionMemory([data.train[b] for b in supportive], supportive)
    weights = touched.behavior_weights(data, config)
    item_scores = touched.popularity_scores(data.item_popularity(), config.popularity_weight)
    return EHCFTouched(memory, weights, item_scores, **ehcf.ehcf_arguments(data, config))


#: EHCF's settings and the heuristic's behavior weights per dataset. α = 10 was chosen on the
#: validation split (BENCHMARKS.md): best on Beibei among 0.3–10, level on taobao_ub4 and
#: retailrocket.
DATASET_DEFAULTS: dict[str, dict[str, object]] = {
    name: {**ehcf.DATASET_DEFAULTS.get(name, {}), **touched.DATASET_DEFAULTS.get(name, {})}
    for name in {*ehcf.DATASET_DEFAULTS, *touched.DATASET_DEFAULTS}
}
