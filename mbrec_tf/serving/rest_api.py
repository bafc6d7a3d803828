"""TF Serving's REST API on JSON bodies, independent of any HTTP server.

`RestApi.handle(method, path, body)` returns `(status, JSON reply)`:

- `POST /v1/models/<name>:predict` and `/v1/models/<name>/versions/<n>:predict` with TF
  Serving's request bodies: `{"signature_name": ..., "instances": [...]}` (row format,
  reply `{"predictions": [...]}`) or `{"signature_name": ..., "inputs": ...}` (columnar,
  reply `{"outputs": ...}`). As in TF Serving, every signature input must be given (a
  SignatureDef default is a gRPC feature), and a row-format object must have exactly the
  signature's input names.
- `GET /v1/models/<name>` and `/v1/models/<name>/versions/<n>`: version status;
  `GET /v1/models/<name>/metadata`: the signature definitions.

This module turns JSON into named numpy arrays and replies back into JSON; everything else
a request is checked for (model, version, signature, sizes, shapes, the reply's size) is
the shared `prediction` layer's, as for gRPC. Parsing work is bounded before JSON decoding:
a body with more JSON separators than `max_ids` values per input could need is refused
unparsed.
"""

from __future__ import annotations

import base64
import dataclasses
import http
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from mbrec_tf.serving import prediction
from mbrec_tf.serving.prediction import (
    DEFAULT_MAX_IDS,
    PredictionEndpoint,
    check_batch_not_empty,
    empty_batch,
)
from mbrec_tf.serving.versions import RequestError, bad_request, not_found

_MAX_VERSION = 2**63 - 1
_INT_LIMITS = {
    tf.int32: (-(2**31), 2**31 - 1),
    tf.int64: (-(2**63), 2**63 - 1),
}
_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<verb>:[A-Za-z]+)|(?P<metadata>/metadata))?/?$"
)


def max_json_separators(max_ids: int) -> int:
    """Most `,`, `[` and `{` bytes a body may hold: generous for `max_ids` values per input.

    A request has a handful of inputs of at most `max_ids` values each; in the row format
    every value may sit in its own object and list. Counting those bytes takes milliseconds
    even for a body at the size cap, while decoding millions of tiny JSON values takes
    seconds (holding the GIL), so the count decides before the decoder runs.
    """
    return 32 * max_ids + 1024


def parse_version(text: str | None) -> int | None:
    """A URL's version number (ASCII digits, int64), or a 400."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > _MAX_VERSION:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise bad_request(f"version must be a non-negative 64-bit integer, got {shown!r}")
    return int(text)


# --- request bodies --------------------------------------------------------------------------
def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _shape_of(value: Any, name: str) -> list[int]:
    """Shape of a nested JSON list; ragged nesting is an error."""
    if not isinstance(value, list):
        return []
    if not value:
        return [0]
    inner = _shape_of(value[0], name)
    for element in value[1:]:
        if _shape_of(element, name) != inner:
            raise bad_request(f"input {name!r}: nested lists of different lengths (ragged input)")
    return [len(value), *inner]


def _leaves(value: Any):
    if isinstance(value, list):
        for element in value:
            yield from _leaves(element)
    else:
        yield value


def _leaf(value: Any, dtype: tf.DType, name: str) -> Any:
    """One JSON value converted to `dtype`, or a 400 naming what was expected."""
    if dtype == tf.string:
        if isinstance(value, str):
            try:
                return value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate escape such as "\\ud800"
                raise bad_request(f"input {name!r}: invalid unicode in {value!r}") from None
        if _is_b64(value) and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except ValueError:
                raise bad_request(f"input {name!r}: invalid base64 in {value!r}") from None
        raise bad_request(f"input {name!r} expects strings, got {json.dumps(value)}")
    if dtype.is_integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(
                f"input {name!r} expects integers ({dtype.name}), got {json.dumps(value)}"
            )
        limits = _INT_LIMITS.get(dtype)  # dtype.min/max are slow: looked up once per id
        low, high = limits if limits is not None else (dtype.min, dtype.max)
        if not low <= value <= high:
            raise bad_request(f"input {name!r}: {value} is out of range for {dtype.name}")
        return value
    if dtype.is_floating:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_request(
                f"input {name!r} expects numbers ({dtype.name}), got {json.dumps(value)}"
            )
        return value
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise bad_request(f"input {name!r} expects booleans, got {json.dumps(value)}")
        return value
    raise bad_request(f"input {name!r} has dtype {dtype.name}, which this server does not accept")


def to_array(value: Any, spec: tf.TensorSpec, name: str, max_ids: int) -> np.ndarray:
    """A JSON value as a numpy array matching `spec` (dtype, rank, static dims)."""
    try:
        shape = _shape_of(value, name)
    except RecursionError:
        raise bad_request(f"input {name!r} is nested too deeply") from None
    expected = spec.shape
    if shape == [0] and expected.rank is not None and expected.rank > 1:
        shape = [0] + [d or 0 for d in expected.as_list()[1:]]  # `[]`: no rows of any rank
    hint = ""
    if expected.rank == 0 and len(shape) == 1:
        hint = (
            "; in the row ('instances') format every input gets a batch dimension, "
            "so send a scalar input in the columnar ('inputs') format"
        )
    prediction.check_input_shape(name, shape, spec, hint)
    size = int(np.prod(shape)) if shape else 1
    prediction.check_input_size(name, size, max_ids)
    leaves = [_leaf(v, spec.dtype, name) for v in _leaves(value)]
    numpy_dtype = object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
    try:
        return np.array(leaves, dtype=numpy_dtype).reshape(shape)
    except (OverflowError, ValueError) as error:
        raise bad_request(f"input {name!r}: {error}") from None


@dataclasses.dataclass(frozen=True)
class PredictRequest:
    """A parsed predict body: signature, row or columnar format, and the raw JSON inputs."""

    signature: str
    row_format: bool
    payload: Any


def parse_predict_body(body: bytes, max_ids: int = DEFAULT_MAX_IDS) -> PredictRequest:
    """Checks the size and top-level structure of a predict request body."""
    separators = body.count(b",") + body.count(b"[") + body.count(b"{")
    if separators > max_json_separators(max_ids):
        raise bad_request(
            f"the body has {separators} JSON list/object/separator characters, more than a "
            f"request of at most {max_ids} values per input needs "
            f"({max_json_separators(max_ids)}); send fewer values"
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"malformed JSON: {error}") from None
    except RecursionError:
        raise bad_request("malformed JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer over Python's digit limit
        raise bad_request(f"malformed JSON: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise bad_request("the request body must be a JSON object")
    allowed = {"signature_name", "instances", "inputs"}
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise bad_request(
            f"unknown field(s) {unknown}: a predict request has 'instances' or 'inputs' "
            "and optionally 'signature_name'"
        )
    signature = document.get("signature_name", "")
    if not isinstance(signature, str):
        raise bad_request("'signature_name' must be a string")
    signature = signature or "serving_default"  # as TF Serving: empty means the default
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances == has_inputs:
        raise bad_request(
            "the request needs exactly one of 'instances' (rows) or 'inputs' (columns)"
        )
    if has_instances:
        instances = document["instances"]
        if not isinstance(instances, list):
            raise bad_request("'instances' must be a list")
        if not instances:
            raise empty_batch("'instances' is an empty list")
        return PredictRequest(signature, True, instances)
    return PredictRequest(signature, False, document["inputs"])


def request_arrays(
    request: PredictRequest, specs: Mapping[str, tf.TensorSpec], max_ids: int
) -> dict[str, np.ndarray]:
    """The named input arrays of a request, checked against the signature's specs."""
    names = sorted(specs)
    if request.row_format:
        rows = request.payload
        if isinstance(rows[0], dict) and not _is_b64(rows[0]):
            columns: dict[str, list] = {name: [] for name in names}
            for position, row in enumerate(rows):
                if not isinstance(row, dict) or _is_b64(row):
                    raise bad_request(f"instance {position} is not an object like instance 0")
                if sorted(row) != names:
                    raise bad_request(
                        f"instance {position} has keys {sorted(row)}; this signature needs "
                        f"exactly {names}"
                    )
                for name in names:
                    columns[name].append(row[name])
        else:
            if len(names) != 1:
                raise bad_request(
                    f"'instances' is a plain list, but this signature has inputs {names}: "
                    "send a list of objects, one key per input"
                )
            for position, row in enumerate(rows):
                if isinstance(row, dict) and not _is_b64(row):
                    raise bad_request(f"instance {position} is an object, instance 0 is not")
            columns = {names[0]: rows}
        arrays = {name: to_array(columns[name], specs[name], name, max_ids) for name in names}
        batch = {len(a) for a in arrays.values()}
        if len(batch) != 1:
            raise bad_request("the inputs of the instances have different batch sizes")
        return arrays
    payload = request.payload
    if isinstance(payload, dict) and not _is_b64(payload):
        if sorted(payload) != names:
            missing = sorted(set(names) - set(payload))
            extra = sorted(set(payload) - set(names))
            raise bad_request(
                f"'inputs' must have exactly the signature's inputs {names}; "
                f"missing {missing}, unknown {extra}"
            )
        arrays = {name: to_array(payload[name], specs[name], name, max_ids) for name in names}
    elif len(names) != 1:
        raise bad_request(
            f"'inputs' is a plain value, but this signature has inputs {names}: send an object"
        )
    else:
        arrays = {names[0]: to_array(payload, specs[names[0]], names[0], max_ids)}
    check_batch_not_empty(arrays, specs)
    return arrays


def _json_ready(array: np.ndarray) -> Any:
    """Nested Python lists of a numpy array; bytes become text."""
    if array.dtype == object or array.dtype.kind == "S":
        decode = np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])
        return decode(array).tolist() if array.size else array.tolist()
    return array.tolist()


def format_outputs(
    results: Mapping[str, np.ndarray], names: list[str], row_format: bool
) -> dict[str, Any]:
    """TF Serving's reply: `predictions` (one entry per row) or `outputs` (columns)."""
    if not row_format:
        if len(names) == 1:
            return {"outputs": _json_ready(results[names[0]])}
        return {"outputs": {name: _json_ready(results[name]) for name in names}}
    columns = {name: _json_ready(results[name]) for name in names}
    sizes = {len(column) if isinstance(column, list) else -1 for column in columns.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise bad_request(
            f"outputs {names} do not share a batch dimension; use the 'inputs' format"
        )
    (size,) = sizes
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(size)]}


# --- the REST API ----------------------------------------------------------------------------
class RestApi:
    """Maps (method, path, body) to (status, JSON reply) over a `PredictionEndpoint`."""

    def __init__(self, endpoint: PredictionEndpoint):
        self.endpoint = endpoint

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            return http.HTTPStatus.OK, self._route(method, path.split("?", 1)[0], body)
        except RequestError as error:
            return error.status, {"error": error.message}
        except Exception as error:  # noqa: BLE001 - one bad request must not stop the server
            logging.exception("internal error for %s %.200s", method, path)
            return http.HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {error}"}

    def _route(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        match = _ROUTE.match(path)
        if not match:
            shown = path if len(path) <= 200 else path[:200] + "..."
            raise not_found(
                f"no such path {shown!r}; try POST /v1/models/{self.endpoint.model_name}:predict"
            )
        self.endpoint.check_model(match["name"], match["label"])
        version = parse_version(match["version"])
        verb = match["verb"]
        if verb is not None:
            if verb != ":predict":
                raise not_found(f"unsupported method {verb[:50]!r}; only :predict")
            if method != "POST":
                raise RequestError(http.HTTPStatus.METHOD_NOT_ALLOWED, ":predict needs POST")
            return self.predict(body, version)
        if method != "GET":
            raise RequestError(http.HTTPStatus.METHOD_NOT_ALLOWED, "this path needs GET")
        if match["metadata"]:
            return self.metadata(version)
        return {"model_version_status": self.endpoint.statuses(version)}

    def metadata(self, version: int | None) -> dict[str, Any]:
        servable = self.endpoint.servable(version)
        return {
            "model_spec": {
                "name": self.endpoint.model_name,
                "signature_name": "",
                "version": str(servable.version),
            },
            "metadata": {"signature_def": {"signature_def": servable.signature_defs}},
        }

    def predict(self, body: bytes, version: int | None) -> dict[str, Any]:
        request = parse_predict_body(body, self.endpoint.limits.max_ids)
        servable = self.endpoint.servable(version)
        specs = self.endpoint.input_specs(servable, request.signature)
        arrays = request_arrays(request, specs, self.endpoint.limits.max_ids)
        results = self.endpoint.predict(servable, request.signature, arrays)
        return format_outputs(results, servable.outputs[request.signature], request.row_format)
