"""Search spaces: parameter names and their ranges, as `pipelines.tune` searches them.

A search space maps parameter names to ranges. A name is a config field (`learning_rate`) or,
for a per-behavior tuple field, the field and one behavior (`negative_weight[view]`). A range
is `{"low": a, "high": b, "log": bool}` (an integer field draws integers) or
`{"choices": [...]}`. Each model family's recipe has a default space (`mbrec_tf.recipes`); a
JSON file of the same form replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from mbrec_tf.errors import UserError

#: A per-behavior parameter's name: `field[behavior]`.
PER_BEHAVIOR = re.compile(r"^(\w+)\[(\w+)\]$")


@dataclasses.dataclass(frozen=True)
class SearchParam:
    """One searched value: a float or int range (optionally log-scaled), or choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def field(self) -> str:
        """The config field this parameter sets."""
        match = PER_BEHAVIOR.match(self.name)
        return match.group(1) if match else self.name

    @property
    def behavior(self) -> str | None:
        """The behavior of a per-behavior parameter, else None."""
        match = PER_BEHAVIOR.match(self.name)
        return match.group(2) if match else None

    def to_json(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


SearchSpace = dict[str, SearchParam]


def parse_search_space(raw: Mapping[str, Any], source: str = "search space") -> SearchSpace:
    """A search space from its JSON form, with one-line errors naming `source`."""
    space: SearchSpace = {}
    if not isinstance(raw, Mapping) or not raw:
        raise UserError(f"{source}: expected a non-empty JSON object of parameter ranges")
    for name, spec in raw.items():
        if not isinstance(spec, Mapping):
            raise UserError(f"{source}: {name}: expected {{low, high[, log]}} or {{choices}}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise UserError(f"{source}: {name}: choices must be a non-empty list")
            space[name] = SearchParam(name, choices=tuple(choices))
            continue
        try:
            low, high = float(spec["low"]), float(spec["high"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{source}: {name}: needs numeric low and high, or choices") from None
        log = bool(spec.get("log", False))
        if not low <= high or (log and low <= 0):
            raise UserError(f"{source}: {name}: needs low <= high (and low > 0 with log)")
        space[name] = SearchParam(name, low=low, high=high, log=log)
    return space


def read_search_space(path: str) -> SearchSpace:
    """A search space from a JSON file."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    return parse_search_space(raw, source=path)
