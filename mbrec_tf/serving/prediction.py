"""The protocol-neutral prediction layer: one place for every check a request goes through.

REST (`rest_api`) and gRPC (`grpc_service`) decode a request their own way (JSON values,
TensorProtos) and then hand it to a `PredictionEndpoint`, which resolves the model and
version, checks the signature, each input's size and shape, and the size of the reply
before the model runs, and runs it. Refusals are `RequestError`s carrying the HTTP status;
each front end turns them into its own reply (a JSON error, a gRPC status), so both
protocols refuse the same requests with the same message. The limits live in one
`RequestLimits` (the server's `--max_ids` and `--max_output_values`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from mbrec_tf.serving.versions import Servable, VersionWatcher, bad_request, not_found

DEFAULT_MAX_IDS = 1024
#: Most values in one reply (summed over outputs): 1,024 users × k = 256 × 2 outputs.
DEFAULT_MAX_OUTPUT_VALUES = 1024 * 256 * 2


@dataclasses.dataclass(frozen=True)
class RequestLimits:
    """Most values per input, and most values in one reply (e.g. users × k × outputs)."""

    max_ids: int = DEFAULT_MAX_IDS
    max_output_values: int = DEFAULT_MAX_OUTPUT_VALUES


def check_input_size(name: str, size: int, max_ids: int) -> None:
    """A 400 when one input holds more than `max_ids` values (checked before converting it)."""
    if size > max_ids:
        raise bad_request(
            f"too many ids: input {name!r} has {size} values, the limit is {max_ids} per "
            "input (the server's --max_ids raises it)"
        )


def shown_shape(spec: tf.TensorSpec) -> str:
    """A signature input's shape as the error messages show it: `[batch, 3]`."""
    return "[" + ", ".join("batch" if d is None else str(d) for d in spec.shape.as_list()) + "]"


def check_input_shape(name: str, shape: list[int], spec: tf.TensorSpec, hint: str = "") -> None:
    """A 400 when an input's shape does not fit its signature's (rank and static dims)."""
    expected = spec.shape
    if expected.rank is None:
        return
    if len(shape) != expected.rank or not expected.is_compatible_with(shape):
        raise bad_request(
            f"input {name!r} must have shape {shown_shape(spec)}, got shape {shape}{hint}"
        )


def empty_batch(what: str) -> Exception:
    """The one refusal of a request for no rows, in either format (as TF Serving refuses an
    empty 'instances' list)."""
    return bad_request(f"{what}: a request needs at least one row (one user)")


def check_batch_not_empty(arrays: Mapping[str, np.ndarray], specs: Mapping[str, tf.TensorSpec]):
    """A 400 when a batched input (rank >= 1, e.g. `user`) holds no rows."""
    for name in sorted(arrays):
        if specs[name].shape.rank and arrays[name].shape[:1] == (0,):
            raise empty_batch(f"input {name!r} is empty")


def _leading_and_inner(arrays: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """The batch size (largest leading dim) and the largest inner dim over the inputs."""
    batch = max((a.shape[0] for a in arrays.values() if a.ndim >= 1), default=1)
    inner = max((d for a in arrays.values() for d in a.shape[1:]), default=1)
    return batch, inner


def output_values(servable: Servable, signature: str, arrays: Mapping[str, Any]) -> int:
    """How many values a signature's outputs would hold for these inputs (from shapes only).

    An output's first unknown dimension is the batch; any other unknown one is `k` where
    the signature has a scalar `k` input (`top_k`), else the largest inner dimension of the
    inputs (the `n` of `score`'s [batch, n] items). Static dimensions count as they are.
    """
    shaped = {name: np.asarray(value) for name, value in arrays.items()}
    batch, inner = _leading_and_inner(shaped)
    k = shaped.get("k")
    if k is not None and k.ndim == 0 and k.dtype.kind in "iu":
        inner = max(int(k), 0)
    total = 0
    for info in servable.signature_protos[signature].outputs.values():
        dims = [d.size for d in info.tensor_shape.dim]
        count = 1
        for position, size in enumerate(dims):
            count *= size if size >= 0 else batch if position == 0 else inner
        total += count
    return total


def check_output_size(
    servable: Servable, signature: str, arrays: Mapping[str, Any], limits: RequestLimits
) -> None:
    """A 400 naming the limit when the reply would hold more than `max_output_values`."""
    values = output_values(servable, signature, arrays)
    if values > limits.max_output_values:
        raise bad_request(
            f"the reply would hold {values} values, over the limit of "
            f"{limits.max_output_values} per request: ask for fewer users or a smaller k, "
            "or raise the server's --max_output_values"
        )


def predict(
    servable: Servable, signature: str, arrays: Mapping[str, Any], limits: RequestLimits
) -> dict[str, np.ndarray]:
    """Runs a signature after checking the request's size; the model is not called otherwise."""
    check_output_size(servable, signature, arrays, limits)
    return servable.run(signature, arrays)


class PredictionEndpoint:
    """One served model: version resolution, signature checks and checked prediction."""

    def __init__(
        self, model_name: str, watcher: VersionWatcher, limits: RequestLimits | None = None
    ):
        self.model_name = model_name
        self.watcher = watcher
        self.limits = limits or RequestLimits()

    def check_model(self, name: str, label: str | None = None) -> None:
        """A 404 for another model's name or a version label (labels are not supported)."""
        if name != self.model_name:
            raise not_found(f"unknown model {name[:200]!r}; this server serves {self.model_name!r}")
        if label:
            raise not_found("version labels are not supported")

    def servable(self, version: int | None) -> Servable:
        """The served version asked for (the newest without a version), or a 404."""
        servable = self.watcher.get(version)
        if servable is not None:
            return servable
        if version is None:
            raise not_found(
                f"model {self.model_name!r} has no loaded version (base path "
                f"{self.watcher.base_path})"
            )
        served = sorted(self.watcher.served())
        state = self.watcher.state(version)
        raise not_found(
            f"version {version} of model {self.model_name!r} is not served"
            f"{'' if state is None else f' (state {state})'}; served versions: {served} "
            f"(policy {self.watcher.policy})"
        )

    def statuses(self, version: int | None) -> list[dict[str, Any]]:
        """The version states (all, or the one asked for), or a 404 when there are none."""
        entries = self.watcher.statuses()
        if version is not None:
            entries = [e for e in entries if e["version"] == str(version)]
        if not entries:
            raise not_found(
                f"no version{'' if version is None else f' {version}'} of model "
                f"{self.model_name!r} found"
            )
        return entries

    def input_specs(self, servable: Servable, signature: str) -> Mapping[str, tf.TensorSpec]:
        """The signature's input specs, or a 400 naming the signatures the model has."""
        if signature not in servable.inputs:
            raise bad_request(
                f"unknown signature {signature[:200]!r}; this model has {sorted(servable.inputs)}"
            )
        return servable.inputs[signature]

    def predict(
        self, servable: Servable, signature: str, arrays: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """Runs a signature on checked inputs once the reply's size is within the limits."""
        return predict(servable, signature, arrays, self.limits)
