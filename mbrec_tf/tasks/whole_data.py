"""The whole-data task: the weighted regression of K behaviors over every item.

`WholeDataTask` combines the losses of several behaviors that share P and Q and differ in
a prediction vector h_k: EHCF (h_k learned and transferred), CMF (every behavior, h_k = 1)
and WMF (the target alone, h = 1) use it unchanged. Each behavior's loss is the exact
decoupled form of `tasks.decoupled` (or its brute-force form, for tests), the item Grams
built once per step and shared by behaviors with the same negative weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from mbrec_tf.config import WHOLE_DATA_LOSSES, WholeDataConfig, normalised, per_behavior
from mbrec_tf.contracts import FactorOutputs, UserBatch
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks import decoupled, refreshed_gram
from mbrec_tf.tasks.base import SUM, Task

#: The `outputs` key of the distinct item Grams when a distributed step exchanges them.
ITEM_GRAMS = "item_grams"


def flatten_positives(
    positives: Mapping[str, tf.RaggedTensor], behaviors: Sequence[str]
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(batch row, item id, behavior index) of every positive of every behavior, flat."""
    rows, items, tasks = [], [], []
    for k, behavior in enumerate(behaviors):
        ragged = positives[behavior]
        rows.append(ragged.value_rowids())
        items.append(ragged.values)
        tasks.append(tf.fill(tf.shape(ragged.values), k))
    if len(behaviors) == 1:
        return rows[0], items[0], tasks[0]
    return tf.concat(rows, 0), tf.concat(items, 0), tf.concat(tasks, 0)


class WholeDataTask(Task):
    """The whole-data regression of K behaviors with shared P, Q and one h_k per behavior.

    Consumes a `contracts.UserBatch` (ragged `positives` per behavior) and the scorer's
    `contracts.FactorOutputs` (p_u after any dropout, Q, and h_k: ones for WMF and CMF). The loss is
    Σ_k λ_k L̃_k, each L̃_k the weighted regression of behavior k over every item, without
    its parameter-free constant (see `decoupled_loss`); with `alternate_tasks` a training
    step minimises one behavior's L̃_k, in turn by step.

    Args:
      behaviors: behavior names, the target last.
      num_items: |V|.
      negative_weights: per behavior, a float (uniform c⁻) or a `[num_items]` array.
      loss_coefficients: λ per behavior (normalised to sum 1 here); default equal.
      positive_weight: c⁺.
      loss: "decoupled" (exact, O((|B|+|V|) d²)) or "dense" (brute force).
      alternate_tasks: train one behavior per step, in turn, instead of the joint loss.
      gram_every: N > 1 refreshes the item Gram and applies its gradient every N training
        steps (`refreshed_gram`: cost linear in the data, approximate); 1 = exact.
    """

    reduction = SUM

    def __init__(
        self,
        behaviors: Sequence[str],
        num_items: int,
        negative_weights: Sequence[float | np.ndarray] | None = None,
        loss_coefficients: Sequence[float] | None = None,
        *,
        positive_weight: float = 1.0,
        loss: str = "decoupled",
        alternate_tasks: bool = False,
        gram_every: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.behaviors = tuple(behaviors)
        self.num_items = int(num_items)
        if loss not in WHOLE_DATA_LOSSES:
            raise ValueError(f"loss must be one of {WHOLE_DATA_LOSSES}, got {loss!r}")
        self.loss_kind = loss
        self.positive_weight = float(positive_weight)
        self.alternate_tasks = bool(alternate_tasks)
        num_behaviors = len(self.behaviors)
        coefficients = np.ones(num_behaviors) if loss_coefficients is None else loss_coefficients
        self.loss_coefficients = tuple(normalised(coefficients, "loss_coefficients"))
        if len(self.loss_coefficients) != num_behaviors:
            raise ValueError(
                f"{len(self.loss_coefficients)} loss coefficients for {num_behaviors} behaviors"
            )
        self._setup_negative_weights(
            [0.1] * num_behaviors if negative_weights is None else negative_weights
        )
        self.gram_every = int(gram_every)
        self.refreshed_gram = None
        if self.gram_every > 1:
            groups = sorted(set(self._weight_group))
            ones = np.ones(self.num_items)
            self.refreshed_gram = refreshed_gram.RefreshedGram(
                self.gram_every,
                np.stack([ones if g < 0 else self._weight_vectors[g] for g in groups]),
            )

    @property
    def loss_names(self) -> tuple[str, ...]:
        return tuple(f"loss/{behavior}" for behavior in self.behaviors)

    def _setup_negative_weights(self, negative_weights: Sequence[float | np.ndarray]) -> None:
        """Groups behaviors by weight shape so each distinct item Gram is built once a step.

        Each behavior's c⁻ is stored as scale_k · shape_k, where shape_k is all-ones (uniform
        weight: every such behavior shares the plain Gram QᵀQ) or a per-item vector; equal
        vectors share one weighted Gram.
        """
        if len(negative_weights) != len(self.behaviors):
            raise ValueError(
                f"{len(negative_weights)} negative weights for {len(self.behaviors)} behaviors"
            )
        self._weight_scales: list[float] = []
        self._weight_group: list[int] = []  # -1: plain Gram, else index in _weight_vectors
        vectors: list[np.ndarray] = []
        for weight in negative_weights:
            weight = np.asarray(weight, dtype=np.float64)
            if weight.ndim == 0:
                self._weight_scales.append(float(weight))
                self._weight_group.append(-1)
                continue
            if weight.shape != (self.num_items,):
                raise ValueError(
                    f"item negative weights need shape ({self.num_items},), got {weight.shape}"
                )
            scale = float(weight.mean())
            shape = weight / scale if scale > 0 else weight
            scale = scale if scale > 0 else 1.0
            match = next((i for i, v in enumerate(vectors) if np.array_equal(v, shape)), None)
            if match is None:
                vectors.append(shape)
                match = len(vectors) - 1
            self._weight_scales.append(scale)
            self._weight_group.append(match)
        self._weight_vectors = vectors

    def negative_weight(self, k: int, dtype: tf.DType = tf.float32) -> tf.Tensor:
        """c⁻ of behavior k: a scalar or a `[num_items]` vector."""
        scale = tf.constant(self._weight_scales[k], dtype=dtype)
        group = self._weight_group[k]
        return scale if group < 0 else scale * tf.constant(self._weight_vectors[group], dtype)

    def behavior_losses(
        self,
        positives: Mapping[str, tf.RaggedTensor],
        outputs: FactorOutputs,
        loss: str | None = None,
        with_constant: bool = False,
        step: tf.Tensor | None = None,
    ) -> list[tf.Tensor]:
        """L̃_k of every behavior for a user batch; `loss` overrides the form.

        L̃_k omits the parameter-free constant c⁺ · |positives of k|; `with_constant` adds
        it back, giving the weighted squared error Σ_u Σ_v c_uv (R − R̂)² itself (what is
        logged: positive, and falling as the model fits). Gradients are the same. A training
        `step` with `gram_every` > 1 takes the refreshed-Gram step. `outputs` may carry
        `positive_weights`: per behavior, a ragged c⁺ of each positive (else c⁺ for all).
        """
        losses = self._losses_without_constant(positives, outputs, loss or self.loss_kind, step)
        if not with_constant:
            return losses
        dtype = losses[0].dtype
        return [
            value + decoupled.positive_constant(tf.size(positives[b].values), weight, dtype)
            for value, b, weight in zip(
                losses, self.behaviors, self._positive_weights(outputs, dtype), strict=True
            )
        ]

    def _positive_weights(self, outputs: FactorOutputs, dtype: tf.DType) -> list[tf.Tensor | float]:
        """c⁺ per behavior: `[N_k]` weights of its positives, or the scalar c⁺."""
        given = outputs.get("positive_weights", {})
        return [
            tf.cast(given[b].values, dtype) if b in given else self.positive_weight
            for b in self.behaviors
        ]

    def _flat_positive_weights(self, outputs: FactorOutputs, dtype: tf.DType) -> tf.Tensor | float:
        """c⁺ of every positive in `flatten_positives` order, or the scalar c⁺."""
        given = outputs.get("positive_weights")
        if not given:
            return self.positive_weight
        missing = [b for b in self.behaviors if b not in given]
        if missing:
            raise ValueError(f"positive_weights of every behavior or none; missing {missing}")
        weights = [tf.cast(given[b].values, dtype) for b in self.behaviors]
        return weights[0] if len(weights) == 1 else tf.concat(weights, 0)

    def _losses_without_constant(
        self,
        positives: Mapping[str, tf.RaggedTensor],
        outputs: FactorOutputs,
        loss: str,
        step: tf.Tensor | None = None,
    ) -> list[tf.Tensor]:
        user_vectors = outputs["user_vectors"]
        items = outputs["item_vectors"]
        vectors = outputs["prediction_vectors"]
        dtype = items.dtype
        if loss == "dense":
            weights = self._positive_weights(outputs, dtype)
            return [
                self._dense_loss(user_vectors * vectors[k], items, positives[b], k, weights[k])
                for k, b in enumerate(self.behaviors)
            ]

        rows, item_ids, tasks = flatten_positives(positives, self.behaviors)
        positive_weight = self._flat_positive_weights(outputs, dtype)
        refreshed = self.refreshed_gram is not None and step is not None
        positive_weights = self.pair_negative_weights(tasks, item_ids, dtype)
        if refreshed:
            scales = tf.constant(self._weight_scales, dtype=dtype)
            groups = sorted(set(self._weight_group))
            queries, query_index = decoupled.task_queries(user_vectors, vectors, rows, tasks)
            group_grams, scores = self.refreshed_gram.grams_and_scores(
                items, queries, query_index, item_ids, step
            )
            grams = {g: group_grams[i] for i, g in enumerate(groups)}
            item_grams = tf.stack([grams[g] for g in self._weight_group]) * scales[:, None, None]
            losses = decoupled.losses_from_scores(
                user_vectors,
                vectors,
                scores,
                tasks,
                positive_weights,
                item_grams,
                positive_weight=positive_weight,
            )
        else:
            losses = decoupled.decoupled_losses(
                user_vectors,
                items,
                vectors,
                rows,
                item_ids,
                tasks,
                positive_weights,
                self.output_item_grams(outputs),
                positive_weight=positive_weight,
            )
        return tf.unstack(losses, num=len(self.behaviors))

    def item_grams(self, items: tf.Tensor) -> tf.Tensor:
        """`[K, d, d]` Σ_v c⁻_kv q_v q_vᵀ per behavior; each distinct Gram is built once."""
        return self.stack_item_grams(self.distinct_item_grams(items))

    def distinct_item_grams(self, items: tf.Tensor) -> list[tf.Tensor]:
        """The `[d, d]` item Gram of each distinct negative-weight shape, in group order."""
        weight_vectors = [tf.constant(v, dtype=items.dtype) for v in self._weight_vectors]
        return [
            decoupled.weighted_item_gram(items, None if g < 0 else weight_vectors[g])
            for g in sorted(set(self._weight_group))
        ]

    def stack_item_grams(self, distinct: Sequence[tf.Tensor]) -> tf.Tensor:
        """`[K, d, d]` per-behavior Grams from `distinct_item_grams`, scaled per behavior."""
        scales = tf.constant(self._weight_scales, dtype=distinct[0].dtype)
        grams = dict(zip(sorted(set(self._weight_group)), distinct, strict=True))
        return tf.stack([grams[g] for g in self._weight_group]) * scales[:, None, None]

    def output_item_grams(self, outputs: FactorOutputs) -> tf.Tensor:
        """`[K, d, d]` item Grams: from the replicated terms in `outputs` when given there."""
        if ITEM_GRAMS in outputs:
            return self.stack_item_grams(outputs[ITEM_GRAMS])
        return self.item_grams(outputs["item_vectors"])

    def replicated_terms(self, outputs: FactorOutputs) -> dict[str, list[tf.Tensor]]:
        """The distinct item Grams, detached from the item table (see `Task`); none with
        `gram_every` > 1, whose refreshed Gram is a state of its own."""
        if self.refreshed_gram is not None:
            return {}
        return {ITEM_GRAMS: self.distinct_item_grams(tf.stop_gradient(outputs["item_vectors"]))}

    def replicated_terms_gradients(
        self, outputs: FactorOutputs, gradients: Mapping[str, list[tf.Tensor]]
    ) -> dict[str, tf.Tensor]:
        """The item vectors' dense gradient of the Gram term, from the Grams' `[d, d]` ones."""
        items = outputs["item_vectors"]
        weight_vectors = [tf.constant(v, dtype=items.dtype) for v in self._weight_vectors]
        parts = [
            decoupled.gram_gradient(
                items if g < 0 else items * weight_vectors[g][:, None], upstream
            )
            for g, upstream in zip(
                sorted(set(self._weight_group)), gradients[ITEM_GRAMS], strict=True
            )
        ]
        return {"item_vectors": tf.add_n(parts)}

    def pair_negative_weights(
        self, tasks: tf.Tensor, item_ids: tf.Tensor, dtype: tf.DType
    ) -> tf.Tensor:
        """`[N]` c⁻ of each (behavior index, item id) pair."""
        scales = tf.constant(self._weight_scales, dtype=dtype)
        weights = tf.gather(scales, tasks)
        if self._weight_vectors:
            # Per-item weights: the shape of each behavior's c⁻ (ones for uniform ones).
            table = tf.stack(
                [tf.ones([self.num_items], dtype)]
                + [tf.constant(v, dtype=dtype) for v in self._weight_vectors]
            )
            rows_in_table = tf.gather(tf.constant(self._weight_group) + 1, tasks)
            weights *= tf.gather_nd(
                table, tf.stack([rows_in_table, tf.cast(item_ids, tf.int32)], axis=1)
            )
        return weights

    def _dense_loss(
        self,
        queries: tf.Tensor,
        items: tf.Tensor,
        positives: tf.RaggedTensor,
        k: int,
        positive_weight: tf.Tensor | float | None = None,
    ) -> tf.Tensor:
        """Brute-force loss of behavior k minus its constant Σ c⁺ over its positives."""
        positive_weight = self.positive_weight if positive_weight is None else positive_weight
        value = decoupled.dense_loss(
            queries,
            items,
            positives.value_rowids(),
            positives.values,
            self.negative_weight(k, items.dtype),
            positive_weight=positive_weight,
        )
        return value - decoupled.positive_constant(
            tf.size(positives.values), positive_weight, dtype=items.dtype
        )

    def weighted_sum(self, losses: Sequence[tf.Tensor]) -> tf.Tensor:
        """Σ_k λ_k L̃_k."""
        pairs = zip(self.loss_coefficients, losses, strict=True)
        return tf.add_n([coefficient * value for coefficient, value in pairs])

    def objective(
        self, losses: Sequence[tf.Tensor], training: bool = False, step: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Σ λ_k L̃_k, or, training with `alternate_tasks`, L̃ of behavior `step mod K`."""
        if self.alternate_tasks and training and step is not None:
            task = tf.math.floormod(step, len(self.behaviors))
            mask = tf.one_hot(task, len(self.behaviors), dtype=losses[0].dtype)
            return tf.reduce_sum(mask * tf.stack(losses))
        return self.weighted_sum(losses)

    def call(
        self,
        batch: UserBatch,
        outputs: FactorOutputs,
        training: bool = False,
        step: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        if "positive_weights" in batch:
            outputs = {**outputs, "positive_weights": batch["positive_weights"]}
        losses = self.behavior_losses(
            batch["positives"], outputs, with_constant=True, step=step if training else None
        )
        total = self.objective(losses, training=training, step=step)
        return total, dict(zip(self.loss_names, losses, strict=True))


def popularity_weights_per_behavior(
    data: MultiBehaviorData, config: WholeDataConfig
) -> list[float | np.ndarray]:
    """c⁻ per behavior of `data` from `negative_weight` and `negative_weight_alpha`."""
    weights = per_behavior(config.negative_weight, data.behaviors, "negative_weight", 0.1)
    if not config.negative_weight_alpha:
        return weights
    return [
        decoupled.popularity_negative_weights(
            data.item_popularity(b), w, config.negative_weight_alpha
        )
        for b, w in zip(data.behaviors, weights, strict=True)
    ]


def whole_data_task(data: MultiBehaviorData, config: WholeDataConfig) -> WholeDataTask:
    """The whole-data task over every behavior of `data`, configured by `config`."""
    return WholeDataTask(
        data.behaviors,
        data.num_items,
        popularity_weights_per_behavior(data, config),
        per_behavior(config.loss_coefficients, data.behaviors, "loss_coefficients", 1.0),
        positive_weight=config.positive_weight,
        loss=config.loss,
        alternate_tasks=config.alternate_tasks,
        gram_every=config.gram_every,
    )
