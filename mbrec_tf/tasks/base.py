"""The task contract: a batch and the scorer's outputs in, a loss (and its named parts) out.

As in TensorFlow Recommenders, a model computes what its objective needs and hands it to a
task (`tfrs.tasks.Ranking` takes labels and predictions); the task owns the objective. The
one training step of `Recommender` calls the scorer once and the task once per batch.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import tensorflow as tf


class Reduction(enum.Enum):
    """How a task's loss scales with the batch, which fixes how replicas combine."""

    #: A mean over the batch's examples: under a `tf.distribute` strategy each replica's
    #: loss is divided by the number of replicas before gradients are summed.
    MEAN = "mean"
    #: A sum over the batch (additive over any split of it): each replica's sum is used as
    #: it is, since summing the replicas' gradients gives the global batch's.
    SUM = "sum"


MEAN = Reduction.MEAN
SUM = Reduction.SUM


class Task(tf.keras.layers.Layer):
    """Base of the objectives: `task(batch, outputs, training, step) -> (loss, parts)`.

    `loss` is the scalar that is minimised; `parts` maps each name of `loss_names` to a
    scalar that is logged beside it (e.g. one loss per behavior). `reduction` says how the
    loss scales with the batch (`MEAN` or `SUM`), which fixes how replicas combine.
    """

    reduction: Reduction = Reduction.MEAN

    @property
    def sums_over_batch(self) -> bool:
        """True for a sum-reduced loss (each replica's loss is used as it is)."""
        return self.reduction is Reduction.SUM

    @property
    def loss_names(self) -> tuple[str, ...]:
        """Names of the parts logged with the loss (they become `fit` log keys)."""
        return ()

    def replicated_terms(self, outputs: Mapping[str, Any]) -> dict[str, list[tf.Tensor]]:
        """Inputs of the loss that every replica computes alike from replicated variables,
        detached from them; `call` takes them from `outputs` when they are given there.

        A synchronous distributed step all-reduces their gradients (small) instead of the
        gradients those variables get through them (large), and back-propagates the sums
        on every replica with `replicated_terms_gradients`. None by default.
        """
        del outputs
        return {}

    def replicated_terms_gradients(
        self, outputs: Mapping[str, Any], gradients: Mapping[str, list[tf.Tensor]]
    ) -> dict[str, tf.Tensor]:
        """Gradients of the `outputs` the replicated terms come from, given the terms' ones."""
        raise NotImplementedError(f"{type(self).__name__} has no replicated terms")

    def call(
        self,
        batch: Mapping[str, Any],
        outputs: Any,
        training: bool = False,
        step: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        raise NotImplementedError


class ClosedFormTask:
    """An objective solved in closed form from the data instead of by gradient steps."""

    def fit(self, model: tf.keras.Model, data: Any) -> None:
        """Sets `model`'s parameters to the solution for `data`."""
        raise NotImplementedError
