"""Recipes: how each family of models is trained, one object per family (as TF Model
Garden's tasks): the config base its models extend, the task builder, the input builder and
the type of its batches (`mbrec_tf.contracts`).

A registry entry names its recipe; a model with an objective of its own (MC-BPR's levels,
NMTR's cascade, EHCF with memory, each closed-form fit) takes its family's recipe with that
task swapped in (`with_task`). Everything else a family shares (inputs, checks of the
config, the default search space in `tuning`) follows from the recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import contracts, inputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks import sampled, whole_data
from mbrec_tf.tasks.base import ClosedFormTask, Task

InputBuilder = Callable[..., tf.data.Dataset]
TaskBuilder = Callable[[MultiBehaviorData, Any], Task | ClosedFormTask]
BatchSpec = Callable[[MultiBehaviorData, Any], dict]


def user_batch_spec(data: MultiBehaviorData, config: Any) -> dict:
    """The whole-data family's batches: `contracts.UserBatch` over every behavior of `data`."""
    weighted = float(getattr(config, "confidence_alpha", 0.0)) > 0
    return contracts.user_batch_spec(data.behaviors, weighted=weighted)


def example_batch_spec(data: MultiBehaviorData, config: Any) -> dict:
    """The sampled family's batches: `contracts.ExampleBatch` as `config` draws them."""
    return contracts.example_batch_spec(
        config.num_negatives,
        behavior_indices=len(config.positive_behaviors(tuple(data.behaviors))) > 1,
        mask_behaviors=data.supportive_behaviors if config.behavior_masks else (),
    )


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A family's training: config base, task builder, input builder and the TensorSpecs
    of its batches (both None: fitted in closed form)."""

    name: str
    config_base: type
    task: TaskBuilder | None
    inputs: InputBuilder | None
    batch_spec: BatchSpec | None = None

    def with_task(self, task: TaskBuilder) -> Recipe:
        """This recipe with a model's own objective."""
        return dataclasses.replace(self, task=task)

    @property
    def closed_form(self) -> bool:
        """True when the family is fitted from the data in one step, not by `fit`."""
        return self.inputs is None

    def check(self, model: str, config_cls: type) -> None:
        """A registry entry must extend the family's config and name a task."""
        if not issubclass(config_cls, self.config_base):
            raise TypeError(
                f"{model}: {config_cls.__name__} must extend {self.config_base.__name__} "
                f"(the {self.name} recipe's config)"
            )
        if self.task is None:
            raise TypeError(f"{model}: the {self.name} recipe needs the model's task (with_task)")


WHOLE_DATA = Recipe(
    "whole_data",
    config_lib.WholeDataConfig,
    whole_data.whole_data_task,
    inputs.user_batches,
    user_batch_spec,
)
SAMPLED = Recipe(
    "sampled",
    config_lib.SampledConfig,
    sampled.sampled_task,
    inputs.sampled_examples,
    example_batch_spec,
)
CLOSED_FORM = Recipe("closed_form", config_lib.TrainConfig, None, None)
