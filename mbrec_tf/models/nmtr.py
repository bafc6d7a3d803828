"""NMTR: neural multi-task recommendation with cascaded predictions (Gao et al. 2019).

Shared user and item embeddings (a GMF part of size `mf_dim`, an MLP part of size
`mlp_dim`) feed one NeuMF-style interaction function per behavior: behavior k's own logit
is o_k = w_k . [p_u ⊙ q_v ; MLP_k([p'_u ; q'_v])] + b_k, with its own ReLU tower MLP_k. The
behaviors are cascaded along the funnel (the dataset's behavior order, the target last):
s_1 = o_1 and s_k = o_k + a_k · s_{k-1} + c_k, where a_k (starting at 1) and c_k (at 0)
transform the score of the behavior before. The target's score s_K ranks items.

Training: every behavior's training pairs are positives of that behavior; each has
`num_negatives` sampled negatives, and behavior k's pointwise log-loss on s_k is computed
over its own examples; the loss is Σ_k λ_k · loss_k (`loss_coefficients`, normalised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf.contracts import ExampleBatch, ScoreOutputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import layers
from mbrec_tf.models.base import Recommender
from mbrec_tf.tasks.sampled import SampledTask

#: Per-dataset defaults (NCF's settings; epochs picked on validation, see BENCHMARKS.md).
DATASET_DEFAULTS = {
    "taobao_ub4": {"batch_size": 256, "learning_rate": 0.002, "epochs": 2},
    "beibei": {"batch_size": 256, "learning_rate": 0.002, "epochs": 2},
}


@dataclasses.dataclass(frozen=True)
class NMTRConfig(config_lib.SampledConfig):
    """NMTR: one NeuMF-style predictor per behavior, cascaded; a log-loss per behavior."""

    batch_size: int = config_lib.field(1024, "Training examples (positive pairs) per batch.")
    num_negatives: int = config_lib.field(4, "Negatives drawn per positive pair.")
    loss: str = config_lib.field(
        "pointwise", "pointwise (binary log-loss, NMTR's) or pairwise (softplus(s_neg - s_pos))."
    )
    mf_dim: int = config_lib.field(8, "Size of the shared GMF embeddings.")
    mlp_dim: int = config_lib.field(32, "Size of the shared MLP embeddings, per side.")
    hidden_layers: tuple[int, ...] = config_lib.field(
        (32, 16, 8), "Sizes of the ReLU layers of each behavior's MLP tower."
    )
    loss_coefficients: tuple[str, ...] = config_lib.field(
        (),
        "Loss weights λ per behavior: one per behavior or behavior:value pairs; normalised "
        "to sum 1. Empty = equal weights.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        config_lib.check_layers(self.hidden_layers)
        if self.mf_dim < 1 or self.mlp_dim < 1:
            raise ValueError(f"mf_dim and mlp_dim must be >= 1, got {self.mf_dim}, {self.mlp_dim}")

    def positive_behaviors(self, behaviors: tuple[str, ...]) -> tuple[str, ...]:
        """Every behavior's pairs are positives of that behavior's task."""
        return tuple(behaviors)

    def coefficients(self, behaviors: Sequence[str]) -> list[float]:
        """λ of each behavior, summing to 1."""
        values = config_lib.per_behavior(self.loss_coefficients, behaviors, "loss_coefficients", 1)
        return config_lib.normalised(values, "loss_coefficients")


class NMTR(Recommender):
    """Per-behavior NeuMF-style logits on shared embeddings, cascaded along `behaviors`."""

    def __init__(
        self,
        num_users: int,
        num_items: int,
        behaviors: Sequence[str],
        *,
        mf_dim: int = 8,
        mlp_dim: int = 32,
        hidden_layers: Sequence[int] = (32, 16, 8),
        init_std: float = 0.01,
        embedding_l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(num_users, num_items, **kwargs)
        if not behaviors:
            raise ValueError("NMTR needs at least the target behavior")
        self.behaviors = tuple(behaviors)
        self.mf_dim = int(mf_dim)
        self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item = layers.neumf_tables(
            num_users, num_items, mf_dim, mlp_dim, init_std, float(embedding_l2)
        )
        self.towers = [
            layers.MLPTower(hidden_layers, mlp_dim, mlp_dim, name=f"tower_{k}")
            for k in range(len(self.behaviors))
        ]
        width = self.mf_dim + self.towers[0].output_dim
        self.predictions = [
            layers.dense(1, width, f"prediction_{k}", initializer="lecun_uniform")
            for k in range(len(self.behaviors))
        ]
        links = len(self.behaviors) - 1
        self.cascade_scale = self.add_weight(
            name="cascade_scale", shape=(links,), initializer="ones"
        )
        self.cascade_bias = self.add_weight(
            name="cascade_bias", shape=(links,), initializer="zeros"
        )

    def _cascade(self, logits: list[tf.Tensor]) -> list[tf.Tensor]:
        """s_1 = o_1, s_k = o_k + a_k s_{k-1} + c_k."""
        scores = [logits[0]]
        for k in range(1, len(logits)):
            previous = self.cascade_scale[k - 1] * scores[-1] + self.cascade_bias[k - 1]
            scores.append(logits[k] + previous)
        return scores

    def behavior_scores(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> list[tf.Tensor]:
        """The cascaded score of each behavior for pairs; `item_ids` `[B]` or `[B, n]`."""
        product, mlp_users, mlp_items = layers.neumf_pair_inputs(
            (self.gmf_user, self.gmf_item), (self.mlp_user, self.mlp_item), user_ids, item_ids
        )
        logits = [
            tf.squeeze(prediction(tf.concat([product, tower(mlp_users, mlp_items)], -1)), -1)
            for tower, prediction in zip(self.towers, self.predictions, strict=True)
        ]
        return self._cascade(logits)

    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        return self.behavior_scores(user_ids, item_ids)[-1]

    def call(self, batch: ExampleBatch, training: bool = False) -> ScoreOutputs:
        """Each behavior's cascaded logits `[B, 1 + n]` (positive in column 0), by behavior."""
        del training
        scores = self.behavior_scores(batch["user"], layers.example_items(batch))
        if len(self.behaviors) == 1:
            return {"scores": scores[0]}
        return {"scores": dict(zip(self.behaviors, scores, strict=True))}

    def score_users(self, user_ids: tf.Tensor) -> tf.Tensor:
        projections = [tower.item_projection(self.mlp_item.embeddings) for tower in self.towers]
        gmf_items = tf.convert_to_tensor(self.gmf_item.embeddings)

        def chunk_scores(users: tf.Tensor) -> tf.Tensor:
            gmf_users, mlp_users = self.gmf_user(users), self.mlp_user(users)
            logits = []
            for tower, projection, prediction in zip(
                self.towers, projections, self.predictions, strict=True
            ):
                weights, bias = prediction.kernel[:, 0], prediction.bias[0]
                hidden = tower.cross(mlp_users, projection)
                mlp_part = tf.tensordot(hidden, weights[self.mf_dim :], axes=1)
                query = gmf_users * weights[: self.mf_dim]
                logits.append(mlp_part + tf.matmul(query, gmf_items, transpose_b=True) + bias)
            return self._cascade(logits)[-1]

        # One tower's activations at a time, plus each behavior's [chunk, items] logits.
        width = self.towers[0].widest + len(self.towers)
        chunk = layers.chunk_size_for(self.num_items, width)
        return layers.chunked_user_scores(chunk_scores, user_ids, chunk)


def build(data: MultiBehaviorData, config: NMTRConfig) -> NMTR:
    return NMTR(
        data.num_users,
        data.num_items,
        data.behaviors,
        mf_dim=config.mf_dim,
        mlp_dim=config.mlp_dim,
        hidden_layers=config.hidden_layers,
        init_std=config.init_std,
        embedding_l2=config.embedding_l2,
    )


def task(data: MultiBehaviorData, config: NMTRConfig) -> SampledTask:
    """Σ_k λ_k · (the loss of behavior k's examples on its cascaded scores)."""
    if len(data.behaviors) == 1:
        return SampledTask(config.loss)
    return SampledTask(
        config.loss, behaviors=data.behaviors, behavior_weights=config.coefficients(data.behaviors)
    )
