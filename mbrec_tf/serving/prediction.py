"""Request limits shared by every protocol: checked on shapes, before any model call.

The REST and gRPC front ends turn a request into named input arrays their own way; both
then call `predict`, which refuses a request whose reply would exceed the limits before the
model runs. The limits live in one `RequestLimits` (the server's `--max_ids` and
`--max_output_values`), so both protocols refuse the same requests with the same message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from mbrec_tf.serving.versions import Servable, bad_request

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
