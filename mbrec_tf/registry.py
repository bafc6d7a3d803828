"""Model registry: one entry per model = name, config, scorer, recipe, defaults.

Adding a model means one short model file (its config, `build` and `DATASET_DEFAULTS`), one
`_spec(...)` in `_SPECS` below and its line in `_DESCRIPTIONS`; the pipelines read everything
else (flags, defaults, inputs) from here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import optimizers, recipes
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models import (
    cmf,
    ehcf,
    ehcf_memory,
    ehcf_touched,
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

    def make_config(self, *layers: Mapping[str, Any]) -> Any:
        """The config from its defaults overridden by each layer in turn, its loss and
        negative sampler checked by the recipe."""
        config = config_lib.make_config(self.config_cls, *layers)
        self.recipe.validate_config(config)
        return config

    def resolve_config(self, dataset: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """The config: dataclass defaults <- defaults for `dataset` <- `overrides`."""
        defaults = self.dataset_defaults.get(dataset.split("/")[0], {})
        return self.make_config(defaults, overrides or {})


#: One line per model for `--help` and the README.
_DESCRIPTIONS: dict[str, str] = {
    "popularity": "Most-popular target items (a sanity baseline; needs no training).",
    "touched": "Touched first: the user's supportive items by behavior weight, then "
    "target popularity (no training).",
    "ehcf": "EHCF: whole-data multi-behavior CF with transfer between behaviors.",
    "ehcf_memory": "EHCF with memory: learned sparse terms on the pairs the user already "
    "has in supportive behaviors (per behavior, per item).",
    "ehcf_touched": "EHCF, touched first: EHCF trained as it is; the user's supportive items "
    "ranked first by level, each level and the untouched items by EHCF's scores.",
    "ehcf_sin": "EHCF-Sin: EHCF on the target behavior alone.",
    "wmf": "WMF: whole-data weighted MF on the target behavior (Hu et al. 2008).",
    "expomf": "ExpoMF: exposure MF fitted by EM, item-popularity exposure priors "
    "(Liang et al. 2016).",
    "cmf": "CMF: every behavior factorised with shared user and item embeddings.",
    "bpr": "BPR: matrix factorisation, pairwise loss, uniform negatives.",
    ncf.GMF: "GMF (NCF): weighted element-wise product of embeddings, log-loss.",
    ncf.MLP: "MLP (NCF): ReLU tower on [user ; item] embeddings, log-loss.",
    ncf.NEUMF: "NeuMF: GMF and MLP fused (He et al. 2017), optionally pre-trained.",
    "mbncf": "MBNCF: MF + one MLP branch per behavior, supportive negatives.",
    "mc_bpr": "MC-BPR: MF, positives of every behavior level over weaker levels' items.",
    "mfpr": "MFPR: MF, pairwise, every preference of buy > cart > view > untouched.",
    "nmtr": "NMTR: a NeuMF-style predictor per behavior, cascaded, log-loss per behavior.",
}


def _spec(
    name: str, module: ModuleType, config_cls: type, recipe: recipes.Recipe, **fields: Any
) -> ModelSpec:
    """The spec of model `name`; its scorer and per-dataset defaults are, unless given in
    `fields`, its model file's `build` and `DATASET_DEFAULTS` (every model file has them)."""
    fields.setdefault("scorer", module.build)
    fields.setdefault("dataset_defaults", getattr(module, "DATASET_DEFAULTS", {}))
    description = _DESCRIPTIONS[name]
    return ModelSpec(
        name=name, config_cls=config_cls, recipe=recipe, description=description, **fields
    )


def _ncf_spec(mode: str) -> ModelSpec:
    """One of the three NCF models (GMF, MLP, NeuMF): one config, the build of that mode."""
    scorer = functools.partial(ncf.build, mode=mode)
    defaults = ncf.DATASET_DEFAULTS[mode]
    return _spec(
        mode, ncf, ncf.NCFConfig, recipes.SAMPLED, scorer=scorer, dataset_defaults=defaults
    )


_SPECS: tuple[ModelSpec, ...] = (
    _spec(
        "popularity",
        popularity,
        popularity.PopularityConfig,
        recipes.CLOSED_FORM.with_task(closed_form.popularity_fit),
    ),
    _spec(
        "touched",
        touched,
        touched.TouchedConfig,
        recipes.CLOSED_FORM.with_task(closed_form.touched_fit),
    ),
    _spec("ehcf", ehcf, ehcf.EHCFConfig, recipes.WHOLE_DATA, training_data=ehcf.training_data),
    _spec(
        "ehcf_memory",
        ehcf_memory,
        ehcf_memory.EHCFMemoryConfig,
        recipes.WHOLE_DATA.with_task(whole_data_memory.memory_whole_data_task),
        training_data=ehcf.training_data,
    ),
    _spec(
        "ehcf_touched",
        ehcf_touched,
        ehcf_touched.EHCFTouchedConfig,
        recipes.WHOLE_DATA,
        training_data=ehcf.training_data,
    ),
    _spec("ehcf_sin", ehcf, ehcf.EHCFConfig, recipes.WHOLE_DATA, training_data=target_only),
    _spec("wmf", wmf, wmf.WMFConfig, recipes.WHOLE_DATA, training_data=target_only),
    _spec(
        "expomf",
        expomf,
        expomf.ExpoMFConfig,
        recipes.CLOSED_FORM.with_task(exposure_em.expomf_fit),
        training_data=target_only,
    ),
    _spec("cmf", cmf, cmf.CMFConfig, recipes.WHOLE_DATA),
    _spec("bpr", mf, mf.BPRConfig, recipes.SAMPLED),
    *(_ncf_spec(mode) for mode in ncf.MODES),
    _spec("mbncf", mbncf, mbncf.MBNCFConfig, recipes.SAMPLED),
    _spec(
        "mc_bpr",
        mc_bpr,
        mc_bpr.MCBPRConfig,
        recipes.SAMPLED.with_task(mc_bpr.task),
        training_data=mc_bpr.exclusive_levels,
    ),
    _spec("mfpr", mfpr, mfpr.MFPRConfig, recipes.SAMPLED, training_data=mfpr.training_data),
    _spec("nmtr", nmtr, nmtr.NMTRConfig, recipes.SAMPLED.with_task(nmtr.task)),
)

REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}


def get(name: str) -> ModelSpec:
    """The spec registered under `name`, with the known names in the error otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(REGISTRY)}")
    return REGISTRY[name]


def as_spec(model: ModelSpec | str) -> ModelSpec:
    """A spec given as itself or by its registered name (library functions take either)."""
    return model if isinstance(model, ModelSpec) else get(model)


def resolve_config(name: str, dataset: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """Config of `name`: dataclass defaults <- defaults for `dataset` <- `overrides`."""
    return get(name).resolve_config(dataset, overrides)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One model resolved once from `--model`: its spec, the dataset its config is for and
    that config; the library passes it down instead of looking the name up again.

    Attributes:
      spec: the model's registry entry.
      dataset: the TFDS dataset as named (a config after `/` allowed); its name part picks
        the per-dataset defaults.
      config: the resolved config.
      overrides: what was set over the defaults (recorded in a run's results).
    """

    spec: ModelSpec
    dataset: str
    config: Any
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def model(self) -> str:
        """The `--model` name."""
        return self.spec.name

    def with_overrides(self, overrides: Mapping[str, Any]) -> Experiment:
        """The same model and dataset, configured from the defaults with `overrides`
        (instead of this experiment's own overrides, not on top of them)."""
        config = self.spec.resolve_config(self.dataset, overrides)
        return dataclasses.replace(self, config=config, overrides=dict(overrides))

    def training_data(self, data: MultiBehaviorData) -> MultiBehaviorData:
        """The behaviors of `data` the model trains on, as configured."""
        return self.spec.training_data(data, self.config)


def experiment(
    model: ModelSpec | str,
    dataset: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    config: Any = None,
) -> Experiment:
    """`model` on `dataset`: its config from the dataclass, the dataset's defaults and
    `overrides`, or `config` as it is when the caller resolved it already."""
    spec = as_spec(model)
    overrides = dict(overrides or {})
    if config is None:
        config = spec.resolve_config(dataset, overrides)
    else:
        spec.recipe.validate_config(config)
    return Experiment(spec, dataset, config, overrides)


def recorded_experiment(run_config: Mapping[str, Any]) -> Experiment:
    """The experiment a run directory's record names, its config rebuilt from the recorded
    values alone (no per-dataset defaults applied again)."""
    settings = run_config["settings"]
    spec = get(settings["model"])
    return Experiment(spec, settings["dataset"], spec.make_config(run_config["config"]))
