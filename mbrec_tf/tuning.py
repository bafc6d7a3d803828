"""Hyper-parameter search on the validation split, and configuration files.

A search space (`mbrec_tf.search_space`) maps parameter names to ranges; the values a trial
draws for one field's behaviors are joined into the field's `behavior:value` form. A model's
default space is its recipe's (`default_search_space`); a JSON file replaces it.

The search itself uses Optuna (TPE, seeded): define-by-run spaces suit per-behavior
parameters, and its SQLite storage makes a study resumable with no code of ours. KerasTuner
was not used: its current releases are built on Keras 3, which this project must not mix
with the legacy Keras its models use.

A configuration file (`best.json`, written by `pipelines.tune`, read by `pipelines.train
--config=...`) is `{"model": ..., "dataset": ..., "overrides": {field: value}}`; other keys
(the objective, its value, the trial, and `tuned_with`: the trials' --epochs, which the final
run does not inherit) are informative.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from mbrec_tf import config as config_lib
from mbrec_tf import files, registry
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from mbrec_tf.search_space import PER_BEHAVIOR, SearchSpace, parse_search_space


def default_search_space(model: registry.ModelSpec | str, data: MultiBehaviorData) -> SearchSpace:
    """The default space of `model` on `data`: the model's own (a config's `search_space`)
    or its recipe's, on the fields the model has."""
    spec = registry.as_spec(model)
    model = spec.name
    own_space = getattr(spec.config_cls, "search_space", None)
    if own_space is not None:  # a model's own default (e.g. ExpoMF's EM settings)
        return parse_search_space(own_space, f"{model}'s default search space")
    if spec.closed_form:
        raise UserError(f"{model} is fitted in closed form: it has no hyper-parameters to tune")

    def trained_behaviors() -> tuple[str, ...]:
        return tuple(spec.training_data(data, spec.config_cls()).behaviors)

    chosen = spec.recipe.default_search_space(spec.config_cls, trained_behaviors)
    if not chosen:
        raise UserError(f"{model} has no default search space: give one with --search_space")
    return chosen


def check_search_space(model: registry.ModelSpec | str, space: SearchSpace) -> None:
    """Every parameter names a field of `model`'s config."""
    spec = registry.as_spec(model)
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    unknown = sorted(p.name for p in space.values() if p.field not in fields)
    if unknown:
        raise UserError(
            f"search space: {', '.join(unknown)} not hyper-parameters of {spec.name} "
            f"(known: {', '.join(sorted(fields))})"
        )


def suggest(trial: Any, space: SearchSpace, int_fields: set[str]) -> dict[str, Any]:
    """Draws one value per parameter from an Optuna trial; returns them by parameter name."""
    values: dict[str, Any] = {}
    for name, param in space.items():
        if param.choices is not None:
            values[name] = trial.suggest_categorical(name, list(param.choices))
        elif param.field in int_fields:
            values[name] = trial.suggest_int(name, int(param.low), int(param.high), log=param.log)
        else:
            values[name] = trial.suggest_float(name, param.low, param.high, log=param.log)
    return values


def overrides_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Config overrides from parameter values: per-behavior values become `b:value` tuples.

    Floats keep 6 significant digits, so a trial's configuration and the file written from
    it are the same.
    """
    overrides: dict[str, Any] = {}
    for name, value in params.items():
        match = PER_BEHAVIOR.match(name)
        if match:
            field, behavior = match.groups()
            overrides.setdefault(field, []).append(f"{behavior}:{_short(value)}")
        else:
            overrides[name] = float(_short(value)) if isinstance(value, float) else value
    return overrides


def _short(value: Any) -> str:
    """A float in 6 significant digits (configuration files stay readable)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def int_fields(model: registry.ModelSpec | str) -> set[str]:
    """Config fields of `model` that hold integers."""
    types = config_lib.field_types(registry.as_spec(model).config_cls)
    return {name for name, hint in types.items() if hint is int}


def trial_key(params: Mapping[str, Any]) -> str:
    """A short stable name for a parameter set (a resumed trial finds its run directory)."""
    text = json.dumps({k: _short(v) for k, v in sorted(params.items())}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


#: Fixed trial settings that best.json records under `tuned_with` but does not carry into
#: the final run: the trials' length is the search's budget.
NOT_CARRIED = ("epochs",)


def write_config_file(path: str, payload: Mapping[str, Any]) -> None:
    """Writes a configuration file (see the module doc) atomically."""
    files.write_json(path, payload, sort_keys=False)


def read_config_file(
    path: str, model: registry.ModelSpec | str
) -> tuple[dict[str, Any], str | None]:
    """The overrides of a configuration file for `model`, and the dataset it was tuned on."""
    spec = registry.as_spec(model)
    model = spec.name
    try:
        with open(path) as f:
            payload = json.load(f)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(payload, Mapping) or not isinstance(payload.get("overrides"), Mapping):
        raise UserError(f"{path}: not a configuration file (needs an 'overrides' object)")
    if payload.get("model", model) != model:
        raise UserError(
            f"{path} configures --model={payload['model']}, not --model={model}: "
            f"pass --model={payload['model']} or another file"
        )
    overrides = dict(payload["overrides"])
    try:
        spec.resolve_config(payload.get("dataset", ""), overrides)
    except ValueError as error:
        raise UserError(f"{path}: {error}") from None
    return overrides, payload.get("dataset")


def read_tuned_with(path: str) -> dict[str, Any]:
    """The trial settings a configuration file records but does not carry (`tuned_with`)."""
    with open(path) as f:
        tuned_with = json.load(f).get("tuned_with")
    return dict(tuned_with) if isinstance(tuned_with, Mapping) else {}


def finite(value: Any) -> bool:
    """Whether a trial value is a finite number."""
    return isinstance(value, (int, float)) and math.isfinite(value)
