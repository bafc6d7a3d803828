"""MC-BPR: BPR with multi-channel positives and level-aware negatives (Loni et al. 2016).

A user's items fall into levels: the strongest behavior the user has with the item (the
target first, then each supportive behavior, weaker down the funnel), then "unobserved".
Every training pair is a positive at its level (each pair once, at the strongest level it
has), ranked by the pairwise loss above negatives drawn from weaker levels only
(`sampling.LevelAwareSampler`): a level l' below the positive's level is chosen with
probability proportional to its weight β_l' among the user's non-empty weaker levels, then
an item of that level uniformly. The loss weights each example by β of its positive's
level, so in expectation positives of level l count in proportion to β_l · |level l|, as
Loni et al.'s positive-level sampling. The scorer is BPR's matrix factorisation.

`level_weights` are β: `behavior:value` pairs naming every behavior and `unobserved`
(pairs of absent behaviors are ignored), or plain numbers strongest level first, or empty
for equal weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from mbrec_tf import config as config_lib
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import mf
from mbrec_tf.sampling import LevelAwareSampler
from mbrec_tf.sampling.samplers import difference, union
from mbrec_tf.tasks.sampled import SampledTask

#: Per-dataset defaults: BPR's settings; on Beibei the level weights with the better
#: validation NDCG@10 of two tried (equal, or unobserved 4x), see BENCHMARKS.md.
DATASET_DEFAULTS = {
    "taobao_ub4": {"batch_size": 256, "learning_rate": 0.002, "embedding_l2": 1e-3, "epochs": 8},
    "beibei": {
        "batch_size": 256,
        "learning_rate": 0.002,
        "embedding_l2": 1e-3,
        "epochs": 6,
        "level_weights": ("buy:1", "cart:1", "view:1", "unobserved:4"),
    },
}

#: The name of the level of items the user has no training interaction with.
UNOBSERVED = "unobserved"


@dataclasses.dataclass(frozen=True)
class MCBPRConfig(config_lib.SampledConfig):
    """MC-BPR: MF, positives of every behavior level, negatives from weaker levels."""

    batch_size: int = config_lib.field(1024, "Training examples (positive pairs) per batch.")
    embedding_l2: float = config_lib.field(
        1e-5, "L2 penalty on each batch's embeddings (per example)."
    )
    negative_sampler: str = config_lib.field(
        "level", "level: negatives from levels weaker than the positive's (the only choice)."
    )
    level_weights: tuple[str, ...] = config_lib.field(
        (),
        "Level weights β: behavior:value pairs for every behavior and 'unobserved', or "
        "values strongest level first; empty = equal. Weighs positives by their level and "
        "picks a negative's level in proportion to β.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.negative_sampler != "level":
            raise ValueError(
                f"mc_bpr draws negatives from weaker levels: negative_sampler must be "
                f"'level', got {self.negative_sampler!r}"
            )

    def positive_behaviors(self, behaviors: tuple[str, ...]) -> tuple[str, ...]:
        """Every behavior's pairs are positives (at their level)."""
        return tuple(behaviors)

    def weights(self, behaviors: Sequence[str]) -> dict[str, float]:
        """β of each level (the behaviors and `unobserved`) of data with `behaviors`."""
        levels = (*reversed(tuple(behaviors)), UNOBSERVED)
        values = config_lib.per_behavior(self.level_weights, levels, "level_weights", 1.0)
        if any(v < 0 for v in values) or sum(values[:-1]) <= 0:
            raise ValueError(f"level_weights must be >= 0 with a positive behavior, got {values}")
        return dict(zip(levels, values, strict=True))

    def make_sampler(self, data: MultiBehaviorData) -> LevelAwareSampler:
        weights = self.weights(data.behaviors)
        return LevelAwareSampler(
            data, [weights[b] for b in (*reversed(data.behaviors), UNOBSERVED)]
        )


def exclusive_levels(data: MultiBehaviorData, config: object = None) -> MultiBehaviorData:
    """Each behavior's matrix keeps the pairs whose strongest behavior it is (one level each)."""
    del config
    shape = (data.num_users, data.num_items)
    stronger = sp.csr_matrix(shape, dtype=np.float32)
    train = {}
    for behavior in reversed(data.behaviors):
        train[behavior] = difference(data.train[behavior], stronger)
        stronger = union([stronger, train[behavior]], shape)
    return dataclasses.replace(data, train={b: train[b] for b in data.behaviors})


def task(data: MultiBehaviorData, config: MCBPRConfig) -> SampledTask:
    """The pairwise loss with each example weighted by β of its positive's level."""
    if len(data.behaviors) == 1:
        return SampledTask(config.loss)
    weights = config.weights(data.behaviors)
    return SampledTask(config.loss, positive_weights=[weights[b] for b in data.behaviors])


build = mf.build
