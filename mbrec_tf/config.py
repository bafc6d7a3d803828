"""Hyper-parameter dataclasses: one frozen dataclass per model, extending `TrainConfig`.

Each field may carry `metadata={"help": ...}`; the pipelines turn every field of the chosen
model's config into an absl flag of the same name, so `--negative_weight=0.1` overrides
`EHCFConfig.negative_weight`. Supported field types: int, float, str, bool, and tuples of
those (comma-separated flags).

Besides `TrainConfig` (every trainable model), two families share fields here, so that the
models built on one task read the same names: `WholeDataConfig` (the whole-data task:
EHCF, WMF, CMF) and `SampledConfig` (sampled examples and the sampled task: BPR, NCF, MBNCF).
Which losses and negative samplers a family has is checked by its recipe (`mbrec_tf.recipes`)
when a config is resolved.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from typing import Any


def field(default: Any, help: str) -> Any:  # noqa: A002 - mirrors absl's argument name
    """A dataclass field with a help text (tuples are stored as immutable defaults)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings every trainable model shares."""

    embedding_dim: int = field(64, "Size of user and item embeddings.")
    learning_rate: float = field(0.001, "Optimizer learning rate.")
    optimizer: str = field("adam", "Optimizer name: adam, adagrad or sgd.")
    batch_size: int = field(256, "Training batch size (users or examples, per model).")
    epochs: int = field(20, "Number of training epochs.")
    adagrad_initial_accumulator: float = field(
        0.1, "Adagrad's initial accumulator value (with --optimizer=adagrad)."
    )

    def __post_init__(self) -> None:
        for name in ("embedding_dim", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0, got {self.epochs}")


#: Names of the whole-data loss forms: exact and fast, or brute force over every item.
WHOLE_DATA_LOSSES = ("decoupled", "dense")
#: Names of the sampled losses.
SAMPLED_LOSSES = ("pairwise", "pointwise")


@dataclasses.dataclass(frozen=True)
class WholeDataConfig(TrainConfig):
    """The whole-data task's settings: weights of missing entries, task weights, loss form."""

    batch_size: int = field(256, "Users per training batch.")
    negative_weight: tuple[str, ...] = field(
        ("0.1",),
        "Weight w of missing entries: one value, one per behavior, or behavior:value pairs.",
    )
    negative_weight_alpha: float = field(
        0.0,
        "0 = uniform negative weight; > 0 = item-dependent c_v = w|V| f_v^a / sum f^a "
        "(f_v: the item's training count in that behavior).",
    )
    loss_coefficients: tuple[str, ...] = field(
        (),
        "Task weights lambda: one per behavior or behavior:value pairs (pairs for absent "
        "behaviors are ignored); normalised to sum 1. Empty = equal weights.",
    )
    alternate_tasks: bool = field(
        False, "Ablation (no multi-task learning): one behavior's loss per step, in turn."
    )
    loss: str = field(
        "decoupled", "decoupled (exact, fast) or dense (brute force, 'EHCF-Original')."
    )
    positive_weight: float = field(1.0, "Weight c+ of observed entries.")
    gram_every: int = field(
        1,
        "Refresh the item Gram and apply its gradient every N training steps (N > 1: cost "
        "linear in users + items + interactions, approximate; 1 = the exact step).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gram_every < 1:
            raise ValueError(f"gram_every must be >= 1, got {self.gram_every}")
        if self.negative_weight_alpha < 0 or self.positive_weight <= 0:
            raise ValueError("negative_weight_alpha must be >= 0 and positive_weight > 0")


@dataclasses.dataclass(frozen=True)
class FactorDropoutConfig(WholeDataConfig):
    """The whole-data factor models' training (EHCF, WMF, CMF): the EHCF authors' Adagrad
    settings and dropout on the user embedding."""

    learning_rate: float = field(0.05, "Optimizer learning rate.")
    optimizer: str = field("adagrad", "Optimizer name: adagrad, adam or sgd.")
    epochs: int = field(100, "Number of training epochs.")
    adagrad_initial_accumulator: float = field(
        1e-8, "Adagrad's initial accumulator (the EHCF authors use 1e-8; Keras' default is 0.1)."
    )
    keep_prob: float = field(
        0.5, "Dropout keep probability of the user embedding in training (1 = no dropout)."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.keep_prob <= 1.0:
            raise ValueError(f"keep_prob must be in (0, 1], got {self.keep_prob}")


@dataclasses.dataclass(frozen=True)
class SampledConfig(TrainConfig):
    """Sampled training: negatives per positive, the sampler, the loss, batch penalties."""

    batch_size: int = field(256, "Training examples (positive pairs) per batch.")
    num_negatives: int = field(1, "Negatives drawn per positive pair.")
    negative_sampler: str = field(
        "uniform",
        "uniform (items without a target training interaction), supportive (items touched "
        "only through supportive behaviors, filled up uniformly) or level (MC-BPR levels).",
    )
    loss: str = field(
        "pairwise", "pairwise (softplus(s_neg - s_pos)) or pointwise (binary log-loss)."
    )
    embedding_l2: float = field(0.0, "L2 penalty on each batch's embeddings (per example).")
    init_std: float = field(0.01, "Std of the Gaussian initialisation of the embeddings.")

    #: Whether training batches carry per-behavior masks of their items (`behavior_mask`).
    behavior_masks: typing.ClassVar[bool] = False

    def positive_behaviors(self, behaviors: tuple[str, ...]) -> tuple[str, ...]:
        """The behaviors whose training pairs are positives (default: the target, last)."""
        return behaviors[-1:]

    def scores_per_behavior(self) -> bool:
        """Whether the scorer gives each positive behavior its own logits (one loss each)
        rather than one target score for positives of every behavior (default: one)."""
        return False

    def positive_behavior_weights(self, behaviors: tuple[str, ...]) -> tuple[float, ...]:
        """Loss weight of each positive behavior when there are several (default: equal)."""
        return (1.0,) * len(behaviors)

    def make_sampler(self, data: Any) -> Any:
        """The `sampling.NegativeSampler` of `negative_sampler` for the training data."""
        from mbrec_tf.sampling import make_sampler

        return make_sampler(self.negative_sampler, data, getattr(self, "supportive_share", 0.5))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_negatives < 1:
            raise ValueError(f"num_negatives must be >= 1, got {self.num_negatives}")
        if self.embedding_l2 < 0 or self.init_std <= 0:
            raise ValueError("embedding_l2 must be >= 0 and init_std > 0")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")


def check_layers(hidden_layers: Sequence[int], name: str = "hidden_layers") -> None:
    """Raises unless `hidden_layers` is one or more positive layer sizes."""
    if not hidden_layers or min(hidden_layers) < 1:
        raise ValueError(f"{name} must be one or more positive sizes, got {tuple(hidden_layers)}")


def normalised(values: Sequence[float], name: str) -> list[float]:
    """`values` scaled to sum 1 (all must be >= 0 and not all zero)."""
    values = [float(v) for v in values]
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ValueError(f"{name} must be >= 0 and not all zero, got {values}")
    total = sum(values)
    return [v / total for v in values]


def per_behavior(
    values: Sequence[str], behaviors: Sequence[str], name: str, default: float
) -> list[float]:
    """One float per behavior from a config tuple.

    Accepts: empty (every behavior gets `default`), one number (for all), one number per
    behavior (in order), or `behavior:value` pairs naming every behavior present (pairs of
    behaviors absent from the data are ignored, so one preset serves data ablations).
    """
    values = [str(v).strip() for v in values if str(v).strip()]
    if not values:
        return [float(default)] * len(behaviors)
    named = [":" in v for v in values]
    if all(named):
        mapping = {}
        for entry in values:
            key, value = entry.split(":", 1)
            mapping[key.strip()] = float(value)
        missing = [b for b in behaviors if b not in mapping]
        if missing:
            raise ValueError(f"{name}={','.join(values)} gives no value for behaviors {missing}")
        return [mapping[b] for b in behaviors]
    if any(named):
        raise ValueError(f"{name}: use either plain numbers or behavior:value pairs, not both")
    numbers = [float(v) for v in values]
    if len(numbers) == 1:
        return numbers * len(behaviors)
    if len(numbers) != len(behaviors):
        raise ValueError(
            f"{name} has {len(numbers)} values for {len(behaviors)} behaviors {tuple(behaviors)}"
        )
    return numbers


def field_types(config_cls: type) -> dict[str, Any]:
    """Resolved type hints of a config dataclass's fields."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def coerce(value: Any, hint: Any, name: str) -> Any:
    """Converts a flag or JSON value to the field's type, with a clear error."""
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            (item_type, *_) = typing.get_args(hint)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            return tuple(item_type(v) if item_type is not bool else _to_bool(v) for v in value)
        if hint is bool:
            return _to_bool(value)
        return hint(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"hyper-parameter {name}={value!r}: expected {hint}") from error


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ValueError(value)
    return bool(value)


def make_config(config_cls: type, *layers: Mapping[str, Any]) -> Any:
    """Builds `config_cls` from its defaults overridden by each mapping in turn.

    Keys that are not fields of `config_cls` are an error, so a typo never passes silently.
    """
    types = field_types(config_cls)
    values: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.items():
            if name not in types:
                raise ValueError(
                    f"{config_cls.__name__} has no hyper-parameter {name!r}; known: {sorted(types)}"
                )
            values[name] = coerce(value, types[name], name)
    return config_cls(**values)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }
