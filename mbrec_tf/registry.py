"""Model registry: one entry per model = name, config, scorer, recipe, defaults.

Adding a model means one short model file (its config and scorer) and one `ModelSpec` in
`_SPECS` below; the pipelines read everything else (flags, defaults, inputs) from here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import optimizers, recipes
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import (
    cmf,
    ehcf,
    ehcf_memory,
    expomf,
    mbncf,
    mc_bpr,
    mf,
    mfpr,
    ncf,
    nmtr,
    popularity,
    touched,
    wmf,
)
from mbrec_tf.models.base import Recommender
from mbrec_tf.tasks import closed_form, exposure_em, whole_data_memory
from mbrec_tf.tasks.base import ClosedFormTask, Task


def all_behaviors(data: MultiBehaviorData, config: Any) -> MultiBehaviorData:
    """The data as it is: the model trains on every behavior."""
    del config
    return data


def target_only(data: MultiBehaviorData, config: Any) -> MultiBehaviorData:
    """The target behavior alone (single-behavior models: EHCF-Sin, WMF)."""
    chosen = tuple(getattr(config, "behaviors", ()) or ())
    if chosen and chosen != (data.target,):
        raise ValueError(f"this model trains on the target {data.target!r} only, not {chosen}")
    return data.with_behaviors((data.target,))


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to configure, build, train and feed one model.

    Attributes:
      name: the `--model` value.
      config_cls: frozen dataclass of hyper-parameters (extends `TrainConfig`).
      scorer: `(data, config) -> Recommender`, an untrained model for that data.
      recipe: how the model's family trains (`mbrec_tf.recipes`): its task builder
        `(data, config) -> Task | ClosedFormTask` and input builder `(data, config, seed,
        input_context) -> tf.data.Dataset` of one epoch (None: fitted in closed form).
      training_data: `(data, config) -> data`, the behaviors the model trains on (all of
        them by default); scorer, task and inputs all see this data.
      dataset_defaults: dataset name -> hyper-parameter overrides for that dataset.
      description: one line for `--help` and the README.
    """

    name: str
    config_cls: type
    scorer: Callable[[MultiBehaviorData, Any], Recommender]
    recipe: recipes.Recipe
    training_data: Callable[[MultiBehaviorData, Any], MultiBehaviorData] = all_behaviors
    dataset_defaults: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        self.recipe.check(self.name, self.config_cls)

    @property
    def task(self) -> recipes.TaskBuilder:
        """The objective's builder (the recipe's)."""
        return self.recipe.task

    @property
    def inputs(self) -> recipes.InputBuilder | None:
        """The input builder (the recipe's; None for models fitted in closed form)."""
        return self.recipe.inputs

    def build(self, data: MultiBehaviorData, config: Any) -> Recommender:
        """The untrained scorer for `data` (uncompiled: enough to restore and evaluate)."""
        return self.scorer(self.training_data(data, config), config)

    def build_task(self, data: MultiBehaviorData, config: Any) -> Task | ClosedFormTask:
        return self.task(self.training_data(data, config), config)

    def compile(self, model: Recommender, data: MultiBehaviorData, config: Any) -> None:
        """Attaches the task and the configured optimizer (gradient-trained models)."""
        model.compile(
            optimizer=optimizers.make_optimizer(config), task=self.build_task(data, config)
        )

    def build_inputs(
        self,
        data: MultiBehaviorData,
        config: Any,
        seed: int,
        input_context: tf.distribute.InputContext | None = None,
        *,
        repeat: bool = False,
    ) -> tf.data.Dataset:
        """One epoch of training batches (each new iteration is a new epoch); with `repeat`,
        every epoch after the other, endlessly (a stateless dataset)."""
        if self.inputs is None:
            raise ValueError(f"{self.name} is fitted in closed form: it has no training input")
        return self.inputs(
            self.training_data(data, config), config, seed, input_context, repeat=repeat
        )

    def batch_spec(self, data: MultiBehaviorData, config: Any) -> dict:
        """The TensorSpecs of the training batches `build_inputs` yields (`contracts`)."""
        if self.recipe.batch_spec is None:
            raise ValueError(f"{self.name} is fitted in closed form: it has no training batches")
        return self.recipe.batch_spec(self.training_data(data, config), config)

    @property
    def closed_form(self) -> bool:
        """True when the model is fitted from the data in one step, not by `fit`."""
        return self.recipe.closed_form


_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="popularity",
        config_cls=popularity.PopularityConfig,
        scorer=popularity.build,
        recipe=recipes.CLOSED_FORM.with_task(closed_form.popularity_fit),
        description="Most-popular target items (a sanity baseline; needs no training).",
    ),
    ModelSpec(
        name="touched",
        config_cls=touched.TouchedConfig,
        scorer=touched.build,
        recipe=recipes.CLOSED_FORM.with_task(closed_form.touched_fit),
        dataset_defaults=touched.DATASET_DEFAULTS,
        description="Touched first: the user's supportive items by behavior weight, then "
        "target popularity (no training).",
    ),
    ModelSpec(
        name="ehcf",
        config_cls=ehcf.EHCFConfig,
        scorer=ehcf.build,
        recipe=recipes.WHOLE_DATA,
        training_data=ehcf.training_data,
        dataset_defaults=ehcf.DATASET_DEFAULTS,
        description="EHCF: whole-data multi-behavior CF with transfer between behaviors.",
    ),
    ModelSpec(
        name="ehcf_memory",
        config_cls=ehcf_memory.EHCFMemoryConfig,
        scorer=ehcf_memory.build,
        recipe=recipes.WHOLE_DATA.with_task(whole_data_memory.memory_whole_data_task),
        training_data=ehcf.training_data,
        dataset_defaults=ehcf_memory.DATASET_DEFAULTS,
        description="EHCF with memory: learned sparse terms on the pairs the user already "
        "has in supportive behaviors (per behavior, per item).",
    ),
    ModelSpec(
        name="ehcf_sin",
        config_cls=ehcf.EHCFConfig,
        scorer=ehcf.build,
        recipe=recipes.WHOLE_DATA,
        training_data=target_only,
        dataset_defaults=ehcf.DATASET_DEFAULTS,
        description="EHCF-Sin: EHCF on the target behavior alone.",
    ),
    ModelSpec(
        name="wmf",
        config_cls=wmf.WMFConfig,
        scorer=wmf.build,
        recipe=recipes.WHOLE_DATA,
        training_data=target_only,
        dataset_defaults=wmf.DATASET_DEFAULTS,
        description="WMF: whole-data weighted MF on the target behavior (Hu et al. 2008).",
    ),
    ModelSpec(
        name="expomf",
        config_cls=expomf.ExpoMFConfig,
        scorer=expomf.build,
        recipe=recipes.CLOSED_FORM.with_task(exposure_em.expomf_fit),
        training_data=target_only,
        dataset_defaults=expomf.DATASET_DEFAULTS,
        description="ExpoMF: exposure MF fitted by EM, item-popularity exposure priors "
        "(Liang et al. 2016).",
    ),
    ModelSpec(
        name="cmf",
        config_cls=cmf.CMFConfig,
        scorer=cmf.build,
        recipe=recipes.WHOLE_DATA,
        dataset_defaults=cmf.DATASET_DEFAULTS,
        description="CMF: every behavior factorised with shared user and item embeddings.",
    ),
    ModelSpec(
        name="bpr",
        config_cls=mf.BPRConfig,
        scorer=mf.build,
        recipe=recipes.SAMPLED,
        dataset_defaults=mf.DATASET_DEFAULTS,
        description="BPR: matrix factorisation, pairwise loss, uniform negatives.",
    ),
    ModelSpec(
        name="gmf",
        config_cls=ncf.NCFConfig,
        scorer=ncf.build_gmf,
        recipe=recipes.SAMPLED,
        dataset_defaults=ncf.DATASET_DEFAULTS[ncf.GMF],
        description="GMF (NCF): weighted element-wise product of embeddings, log-loss.",
    ),
    ModelSpec(
        name="mlp",
        config_cls=ncf.NCFConfig,
        scorer=ncf.build_mlp,
        recipe=recipes.SAMPLED,
        dataset_defaults=ncf.DATASET_DEFAULTS[ncf.MLP],
        description="MLP (NCF): ReLU tower on [user ; item] embeddings, log-loss.",
    ),
    ModelSpec(
        name="neumf",
        config_cls=ncf.NCFConfig,
        scorer=ncf.build_neumf,
        recipe=recipes.SAMPLED,
        dataset_defaults=ncf.DATASET_DEFAULTS[ncf.NEUMF],
        description="NeuMF: GMF and MLP fused (He et al. 2017), optionally pre-trained.",
    ),
    ModelSpec(
        name="mbncf",
        config_cls=mbncf.MBNCFConfig,
        scorer=mbncf.build,
        recipe=recipes.SAMPLED,
        dataset_defaults=mbncf.DATASET_DEFAULTS,
        description="MBNCF: MF + one MLP branch per behavior, supportive negatives.",
    ),
    ModelSpec(
        name="mc_bpr",
        config_cls=mc_bpr.MCBPRConfig,
        scorer=mc_bpr.build,
        recipe=recipes.SAMPLED.with_task(mc_bpr.task),
        training_data=mc_bpr.exclusive_levels,
        dataset_defaults=mc_bpr.DATASET_DEFAULTS,
        description="MC-BPR: MF, positives of every behavior level over weaker levels' items.",
    ),
    ModelSpec(
        name="mfpr",
        config_cls=mfpr.MFPRConfig,
        scorer=mfpr.build,
        recipe=recipes.SAMPLED,
        training_data=mfpr.training_data,
        dataset_defaults=mfpr.DATASET_DEFAULTS,
        description="MFPR: MF, pairwise, every preference of buy > cart > view > untouched.",
    ),
    ModelSpec(
        name="nmtr",
        config_cls=nmtr.NMTRConfig,
        scorer=nmtr.build,
        recipe=recipes.SAMPLED.with_task(nmtr.task),
        dataset_defaults=nmtr.DATASET_DEFAULTS,
        description="NMTR: a NeuMF-style predictor per behavior, cascaded, log-loss per behavior.",
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get(name: str) -> ModelSpec:
    """The spec registered under `name`, with the known names in the error otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(REGISTRY)}")
    return REGISTRY[name]


def resolve_config(name: str, dataset: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """Config of `name`: dataclass defaults <- defaults for `dataset` <- `overrides`."""
    spec = get(name)
    return config_lib.make_config(
        spec.config_cls, spec.dataset_defaults.get(dataset, {}), overrides or {}
    )
