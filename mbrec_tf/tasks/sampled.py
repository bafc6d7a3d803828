"""The sampled task: pairwise (BPR) and pointwise (log-loss) losses over sampled negatives.

Both take the scores (logits) of each example's positive item, `[B]`, and of its sampled
negatives, `[B, n]`, for any n >= 1:
- pairwise:  mean over (example, negative) of softplus(s_neg - s_pos) = -log sigmoid(s_pos - s_neg);
- pointwise: mean over all B * (1 + n) scores of the binary log-loss, label 1 for the
  positive and 0 for each negative (NCF's objective).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import tensorflow as tf

from mbrec_tf.config import SAMPLED_LOSSES, SampledConfig
from mbrec_tf.contracts import ExampleBatch, ScoreOutputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks.base import MEAN, Task

PAIRWISE, POINTWISE = SAMPLED_LOSSES
LOSSES = SAMPLED_LOSSES


def _sum_over_replicas(value: tf.Tensor) -> tf.Tensor:
    """`value` summed over the replicas of the current step (itself on one device)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce("sum", value)


def _weighted_mean(values: tf.Tensor, sample_weight: tf.Tensor | None) -> tf.Tensor:
    """Mean of `values` [B, m]; with `sample_weight` [B], a weighted mean over examples.

    On several replicas the train step adds the replicas' means weighted by their shares of
    the global batch's examples (n_r / N); a weighted mean is scaled here by N·w_r / (n_r·W)
    (w_r, W: the replica's and the global sums of weights), so the replicas still add up
    to the global batch's weighted mean.
    """
    per_example = tf.reduce_mean(values, axis=1)
    if sample_weight is None:
        return tf.reduce_mean(per_example)
    weight = tf.cast(sample_weight, per_example.dtype)
    weighted_sum = tf.reduce_sum(weight * per_example)
    examples = tf.cast(tf.shape(per_example)[0], per_example.dtype)
    scale = tf.math.divide_no_nan(
        _sum_over_replicas(examples), examples * _sum_over_replicas(tf.reduce_sum(weight))
    )
    return weighted_sum * scale


def pairwise_loss(
    positive_scores: tf.Tensor, negative_scores: tf.Tensor, sample_weight: tf.Tensor | None = None
) -> tf.Tensor:
    """Mean softplus(s_neg - s_pos) over every (example, negative) pair."""
    margins = negative_scores - positive_scores[:, None]
    return _weighted_mean(tf.nn.softplus(margins), sample_weight)


def pointwise_loss(
    positive_scores: tf.Tensor, negative_scores: tf.Tensor, sample_weight: tf.Tensor | None = None
) -> tf.Tensor:
    """Mean binary log-loss of the positive (label 1) and the negatives (label 0)."""
    # -log sigmoid(s) = softplus(-s) and -log(1 - sigmoid(s)) = softplus(s).
    values = tf.concat(
        [tf.nn.softplus(-positive_scores)[:, None], tf.nn.softplus(negative_scores)], 1
    )
    return _weighted_mean(values, sample_weight)


def get(name: str):
    """The loss function called `name` ('pairwise' or 'pointwise')."""
    functions = {PAIRWISE: pairwise_loss, POINTWISE: pointwise_loss}
    if name not in functions:
        raise ValueError(f"unknown sampled loss {name!r}; known: {LOSSES}")
    return functions[name]


class SampledTask(Task):
    """The sampled objective: each example's positive against its sampled negatives.

    Consumes a `contracts.ExampleBatch` and the scorer's `contracts.ScoreOutputs`:
    `[B, 1 + n]` logits with the positive in column 0, for the target (BPR, NCF, MBNCF); or,
    per behavior (NMTR-style multi-task learning), `{behavior: [B, 1 + n]}` logits, where
    an example counts for the behavior `batch["positive_behavior"]` (its index in
    `behaviors`) names, and the loss
    is Σ_k w_k · (mean loss of behavior k's examples). With `positive_weights` (one per
    positive behavior, MC-BPR's level weights), the target-score loss is the mean over
    examples weighted by the weight of the example's `batch["positive_behavior"]`.
    Optional Keras `loss_metrics` (e.g.
    `tf.keras.metrics.Mean`) are updated with the loss, as in TFRS tasks.
    """

    reduction = MEAN

    def __init__(
        self,
        loss: str = PAIRWISE,
        behaviors: Sequence[str] = (),
        behavior_weights: Sequence[float] | None = None,
        loss_metrics: Sequence[tf.keras.metrics.Metric] = (),
        positive_weights: Sequence[float] | None = None,
        name: str | None = None,
        **kwargs,
    ):
        super().__init__(name=name or f"{loss}_task", **kwargs)
        self.loss_name = loss
        self._loss = get(loss)
        self.behaviors = tuple(behaviors)
        weights = [1.0] * len(self.behaviors) if behavior_weights is None else behavior_weights
        if len(weights) != len(self.behaviors):
            raise ValueError(f"{len(weights)} behavior weights for behaviors {self.behaviors}")
        self.behavior_weights = tuple(float(w) for w in weights)
        self._loss_metrics = list(loss_metrics)
        self.positive_weights = (
            None if positive_weights is None else tuple(float(w) for w in positive_weights)
        )

    @property
    def loss_names(self) -> tuple[str, ...]:
        return tuple(f"loss/{behavior}" for behavior in self.behaviors)

    def call(
        self,
        batch: ExampleBatch,
        outputs: ScoreOutputs | tf.Tensor,
        training: bool = False,
        step: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        del training, step
        scores = outputs["scores"] if isinstance(outputs, Mapping) else outputs
        parts: dict[str, tf.Tensor] = {}
        if not self.behaviors:
            weight = batch.get("sample_weight")
            if self.positive_weights is not None:
                weights = tf.constant(self.positive_weights, scores.dtype)
                weight = tf.gather(weights, batch["positive_behavior"])
            loss = self._loss(scores[:, 0], scores[:, 1:], weight)
        else:
            terms = []
            for k, behavior in enumerate(self.behaviors):
                behavior_scores = scores[behavior]
                mask = tf.cast(tf.equal(batch["positive_behavior"], k), behavior_scores.dtype)
                part = self._loss(behavior_scores[:, 0], behavior_scores[:, 1:], mask)
                parts[f"loss/{behavior}"] = part
                terms.append(self.behavior_weights[k] * part)
            loss = tf.add_n(terms)
        for metric in self._loss_metrics:
            metric.update_state(loss)
        return loss, parts

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "loss": self.loss_name,
            "behaviors": list(self.behaviors),
            "behavior_weights": list(self.behavior_weights),
            "positive_weights": None
            if self.positive_weights is None
            else list(self.positive_weights),
        }


def sampled_task(data: MultiBehaviorData, config: SampledConfig) -> SampledTask:
    """The sampled task with `config.loss`: on the target score, or, when the scorer gives
    several positive behaviors their own logits, one loss per behavior weighted by
    `config.positive_behavior_weights`."""
    behaviors = config.positive_behaviors(tuple(data.behaviors))
    if len(behaviors) <= 1 or not config.scores_per_behavior():
        return SampledTask(config.loss)
    weights = config.positive_behavior_weights(behaviors)
    return SampledTask(config.loss, behaviors=behaviors, behavior_weights=weights)
