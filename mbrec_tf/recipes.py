"""Recipes: how each family of models is trained, one object per family (as TF Model
Garden's tasks): the config base its models extend, the task builder, the input builder and
the type of its batches (`mbrec_tf.contracts`).

A registry entry names its recipe; a model with an objective of its own (MC-BPR's levels,
NMTR's cascade, EHCF with memory, each closed-form fit) takes its family's recipe with that
task swapped in (`with_task`). Everything else a family shares (inputs, the check of a
config's loss and negative sampler, the default search space `tuning` draws from) follows
from the recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import contracts, inputs
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.sampling import SAMPLERS
from mbrec_tf.search_space import SearchParam, SearchSpace
from mbrec_tf.tasks import sampled, whole_data
from mbrec_tf.tasks.base import ClosedFormTask, Task

InputBuilder = Callable[..., tf.data.Dataset]
TaskBuilder = Callable[[MultiBehaviorData, Any], Task | ClosedFormTask]
BatchSpec = Callable[[MultiBehaviorData, Any], dict]
#: (the model's config fields, its trained behaviors on demand) -> the family's parameters.
SpaceBuilder = Callable[[set[str], Callable[[], tuple[str, ...]]], list[SearchParam]]
ConfigCheck = Callable[[Any], None]


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


def check_whole_data_config(config: config_lib.WholeDataConfig) -> None:
    """The loss form is one the whole-data task computes."""
    if config.loss not in config_lib.WHOLE_DATA_LOSSES:
        raise ValueError(f"loss must be one of {config_lib.WHOLE_DATA_LOSSES}, got {config.loss!r}")


def check_sampled_config(config: config_lib.SampledConfig) -> None:
    """The negative sampler and the loss are ones the sampled family has."""
    if config.negative_sampler not in SAMPLERS:
        raise ValueError(
            f"negative_sampler must be one of {SAMPLERS}, got {config.negative_sampler!r}"
        )
    if config.loss not in config_lib.SAMPLED_LOSSES:
        raise ValueError(
            f"loss must be one of {config_lib.SAMPLED_LOSSES} for this model, got {config.loss!r}"
        )


def whole_data_search_space(
    fields: set[str], trained_behaviors: Callable[[], tuple[str, ...]]
) -> list[SearchParam]:
    """Negative weight per behavior, loss coefficients λ (several behaviors), dropout keep
    probability, learning rate."""
    trained = trained_behaviors()
    space = [SearchParam(f"negative_weight[{b}]", 1e-3, 0.5, log=True) for b in trained]
    if len(trained) > 1:
        space += [SearchParam(f"loss_coefficients[{b}]", 0.02, 1.0) for b in trained]
    if "keep_prob" in fields:
        space.append(SearchParam("keep_prob", 0.3, 1.0))
    space.append(SearchParam("learning_rate", 0.01, 0.3, log=True))
    return space


def sampled_search_space(
    fields: set[str], trained_behaviors: Callable[[], tuple[str, ...]]
) -> list[SearchParam]:
    """Factors, layers, negatives, learning rate, ℓ2 on the batch embeddings, and per level
    or per behavior weights (MC-BPR's levels, NMTR's λ)."""
    space = [
        SearchParam("learning_rate", 1e-4, 1e-2, log=True),
        SearchParam("embedding_l2", 1e-6, 1e-2, log=True),
    ]
    for name in ("embedding_dim", "mf_dim", "mlp_dim"):
        if name in fields:
            space.append(SearchParam(name, choices=(8, 16, 32, 64)))
    if "hidden_layers" in fields:
        space.append(SearchParam("hidden_layers", choices=("16,8", "32,16,8", "64,32,16")))
    if "num_negatives" in fields:
        space.append(SearchParam("num_negatives", 1, 8))
    if "loss_coefficients" in fields:
        space += [SearchParam(f"loss_coefficients[{b}]", 0.02, 1.0) for b in trained_behaviors()]
    if "level_weights" in fields:
        levels = (*trained_behaviors(), "unobserved")
        space += [SearchParam(f"level_weights[{b}]", 0.1, 1.0) for b in levels]
    return space


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A family's training: config base, task builder, input builder and the TensorSpecs
    of its batches (both None: fitted in closed form), the check of its configs' loss and
    sampler, and its default search space (None: the family has no such check or space)."""

    name: str
    config_base: type
    task: TaskBuilder | None
    inputs: InputBuilder | None
    batch_spec: BatchSpec | None = None
    config_check: ConfigCheck | None = None
    search_space: SpaceBuilder | None = None

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

    def validate_config(self, config: Any) -> None:
        """A config's loss and negative sampler are ones the family trains with (ValueError
        otherwise): one check for every model of the family."""
        if self.config_check is not None:
            self.config_check(config)

    def default_search_space(
        self, config_cls: type, trained_behaviors: Callable[[], tuple[str, ...]]
    ) -> SearchSpace:
        """The family's default space for a model of `config_cls`, on the fields it has
        (empty: the family has none)."""
        if self.search_space is None:
            return {}
        fields = {f.name for f in dataclasses.fields(config_cls)}
        space = self.search_space(fields, trained_behaviors)
        return {p.name: p for p in space if p.field in fields}


WHOLE_DATA = Recipe(
    "whole_data",
    config_lib.WholeDataConfig,
    whole_data.whole_data_task,
    inputs.user_batches,
    user_batch_spec,
    check_whole_data_config,
    whole_data_search_space,
)
SAMPLED = Recipe(
    "sampled",
    config_lib.SampledConfig,
    sampled.sampled_task,
    inputs.sampled_examples,
    example_batch_spec,
    check_sampled_config,
    sampled_search_space,
)
CLOSED_FORM = Recipe("closed_form", config_lib.TrainConfig, None, None)
