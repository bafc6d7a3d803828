"""MFPR: MF for personalized ranking from multiple implicit feedback (Liu et al. 2017).

The implicit part of the model: a user's items are ordered by the strongest behavior the
user has with them, buy ≻ cart ≻ view ≻ unobserved (the dataset's funnel, target first),
and every preference pair (i ≻ j) of that order is a training triple of the BPR criterion
on matrix factorisation. Each touched pair is a positive once, at its strongest level
(`mc_bpr.exclusive_levels`); its negative is drawn uniformly from all the user's items of
weaker levels (`sampling.LevelAwareSampler` with `by_size`), so every pair of the order is
equally likely and there are no level weights. MC-BPR differs by its level weights: it
picks a weaker level first (by β) and weighs positives by level.
"""

from __future__ import annotations

import dataclasses

from mbrec_tf import config as config_lib
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import mc_bpr, mf
from mbrec_tf.sampling import LevelAwareSampler
from mbrec_tf.tasks.sampled import SampledTask

#: Per-dataset defaults (BPR's settings; epochs picked on validation, see BENCHMARKS.md).
DATASET_DEFAULTS = {
    "taobao_ub4": {"batch_size": 256, "learning_rate": 0.002, "embedding_l2": 1e-3, "epochs": 8},
    "beibei": {"batch_size": 256, "learning_rate": 0.002, "embedding_l2": 1e-3, "epochs": 6},
}


@dataclasses.dataclass(frozen=True)
class MFPRConfig(config_lib.SampledConfig):
    """MFPR: MF, pairwise, every preference pair of the behavior order equally likely."""

    batch_size: int = config_lib.field(1024, "Training examples (positive pairs) per batch.")
    embedding_l2: float = config_lib.field(
        1e-5, "L2 penalty on each batch's embeddings (per example)."
    )
    negative_sampler: str = config_lib.field(
        "level", "level: negatives uniform over the items of weaker levels (the only choice)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.negative_sampler != "level":
            raise ValueError(
                f"mfpr draws negatives from weaker levels: negative_sampler must be "
                f"'level', got {self.negative_sampler!r}"
            )

    def positive_behaviors(self, behaviors: tuple[str, ...]) -> tuple[str, ...]:
        """Every behavior's pairs are positives (at their level)."""
        return tuple(behaviors)

    def make_sampler(self, data: MultiBehaviorData) -> LevelAwareSampler:
        return LevelAwareSampler(data, by_size=True)


def task(data: MultiBehaviorData, config: MFPRConfig) -> SampledTask:
    """The plain loss over every example, whatever its positive's level."""
    del data
    return SampledTask(config.loss)


training_data = mc_bpr.exclusive_levels
build = mf.build
