"""A local server that speaks TensorFlow Serving's REST and gRPC APIs for exported SavedModels.

Production serving is TensorFlow Serving itself; this server lets the same client code run
where its binary cannot be installed (laptops, CI). It serves one model, like
`tensorflow_model_server --model_name=... --model_base_path=...`:

- `POST /v1/models/<name>:predict` and `/v1/models/<name>/versions/<n>:predict` with TF
  Serving's request bodies: `{"signature_name": ..., "instances": [...]}` (row format,
  reply `{"predictions": [...]}`) or `{"signature_name": ..., "inputs": ...}` (columnar,
  reply `{"outputs": ...}`). As in TF Serving, every signature input must be given (a
  SignatureDef default is a gRPC feature), and a row-format object must have exactly the
  signature's input names.
- `GET /v1/models/<name>` and `/v1/models/<name>/versions/<n>`: version status;
  `GET /v1/models/<name>/metadata`: the signature definitions.
- Versions as TF Serving's `model_version_policy` (`versions.VersionPolicy`): the latest
  version by default, or all, or specific ones; each served version answers at
  `/versions/<n>`. The base path is polled; new versions are loaded and warmed up in the
  background and switched to atomically (see `versions`).
- gRPC (optional, `grpc_port`): TF Serving's `PredictionService` (`grpc_service`).
- Errors reply a one-line `{"error": "..."}`: 400 for malformed JSON, wrong or missing
  fields, wrong types or shapes, too many ids, a reply over `max_output_values` (checked
  before the model runs, see `prediction`), an unknown signature and any InvalidArgument
  from the model (unknown user or item ids, k out of range), and for malformed HTTP (bad
  request line, headers, Content-Length, version numbers); 404 for an unknown model,
  version or path; 405 for a wrong method; 408 for a body not received in time; 411, 413,
  414 and 431 as their names say. The server keeps serving after every error.

HTTP is the standard library's `http.server`, hardened: one thread per connection (HTTP/1.1
keep-alive; the model call releases the GIL, so threads overlap on the TensorFlow side) up
to `max_connections` (more get a 503 and are closed), a listen backlog of `listen_backlog`,
an idle timeout before each request and one read timeout for the whole request, head and
body, from its first byte (so that clients trickling bytes cannot hold connections), JSON for
every error the HTTP layer itself raises, and a client that disconnects or times out is a
debug log line, never a traceback. Parsing work is bounded before JSON decoding: a body
with more JSON separators than `max_ids` values per input could need is refused unparsed.

It binds to 127.0.0.1 unless told otherwise: it has no authentication.
"""

from __future__ import annotations

import base64
import dataclasses
import http
import io
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging

from mbrec_tf.serving import prediction
from mbrec_tf.serving import versions as versions_lib
from mbrec_tf.serving.prediction import (  # noqa: F401 - re-exported for callers of this module
    DEFAULT_MAX_IDS,
    DEFAULT_MAX_OUTPUT_VALUES,
    RequestLimits,
)
from mbrec_tf.serving.versions import (  # noqa: F401 - re-exported for callers of this module
    RequestError,
    Servable,
    VersionPolicy,
    VersionWatcher,
    bad_request,
    clean_tf_message,
    load_servable,
    not_found,
)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_LISTEN_BACKLOG = 1024
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_IDLE_TIMEOUT = 60.0
_MAX_VERSION = 2**63 - 1
_MAX_REQUEST_LINE = 65536
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
    if expected.rank is not None:
        wanted = "[" + ", ".join("batch" if d is None else str(d) for d in expected.as_list()) + "]"
        if len(shape) != expected.rank or not expected.is_compatible_with(shape):
            hint = ""
            if expected.rank == 0 and len(shape) == 1:
                hint = (
                    "; in the row ('instances') format every input gets a batch dimension, "
                    "so send a scalar input in the columnar ('inputs') format"
                )
            raise bad_request(f"input {name!r} must have shape {wanted}, got shape {shape}{hint}")
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


def empty_batch(what: str) -> RequestError:
    """The one refusal of a request for no rows, in either format (as TF Serving refuses an
    empty 'instances' list)."""
    return bad_request(f"{what}: a request needs at least one row (one user)")


def check_batch_not_empty(arrays: Mapping[str, np.ndarray], specs: Mapping[str, tf.TensorSpec]):
    """A 400 when a batched input (rank >= 1, e.g. `user`) holds no rows."""
    for name in sorted(arrays):
        if specs[name].shape.rank and arrays[name].shape[:1] == (0,):
            raise empty_batch(f"input {name!r} is empty")


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
    """Maps (method, path, body) to (status, JSON reply); independent of the HTTP server."""

    def __init__(
        self, model_name: str, watcher: VersionWatcher, limits: RequestLimits | None = None
    ):
        self.model_name = model_name
        self.watcher = watcher
        self.limits = limits or RequestLimits()

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
                f"no such path {shown!r}; try POST /v1/models/{self.model_name}:predict"
            )
        if match["name"] != self.model_name:
            raise not_found(
                f"unknown model {match['name'][:200]!r}; this server serves {self.model_name!r}"
            )
        if match["label"] is not None:
            raise not_found("version labels are not supported")
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
        return self.status(version)

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

    def status(self, version: int | None) -> dict[str, Any]:
        entries = self.watcher.statuses()
        if version is not None:
            entries = [e for e in entries if e["version"] == str(version)]
        if not entries:
            raise not_found(
                f"no version{'' if version is None else f' {version}'} of model "
                f"{self.model_name!r} found"
            )
        return {"model_version_status": entries}

    def metadata(self, version: int | None) -> dict[str, Any]:
        servable = self.servable(version)
        return {
            "model_spec": {
                "name": self.model_name,
                "signature_name": "",
                "version": str(servable.version),
            },
            "metadata": {"signature_def": {"signature_def": servable.signature_defs}},
        }

    def predict(self, body: bytes, version: int | None) -> dict[str, Any]:
        request = parse_predict_body(body, self.limits.max_ids)
        servable = self.servable(version)
        if request.signature not in servable.inputs:
            raise bad_request(
                f"unknown signature {request.signature[:200]!r}; this model has "
                f"{sorted(servable.inputs)}"
            )
        arrays = request_arrays(request, servable.inputs[request.signature], self.limits.max_ids)
        results = prediction.predict(servable, request.signature, arrays, self.limits)
        return format_outputs(results, servable.outputs[request.signature], request.row_format)


# --- HTTP ------------------------------------------------------------------------------------
class _RequestClock(io.RawIOBase):
    """The connection's reads, each given only the time left to the request being read.

    Before a request a read may wait `idle_timeout` for its first byte; from that byte on,
    the whole head and body must arrive within `read_timeout`, however the client spreads
    its bytes: a client trickling one byte at a time cannot hold a connection longer.
    """

    def __init__(self, connection: socket.socket, idle_timeout: float, read_timeout: float):
        super().__init__()
        self.connection = connection
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.deadline: float | None = None  # None: waiting for a request's first byte
        self.started = False  # a byte of the current request has been received

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        """Between requests: wait up to the idle timeout for the next one to begin."""
        self.deadline, self.started = None, False

    def request_started(self) -> None:
        """The request line is in: the head and body must follow within the deadline."""
        self.started = True
        if self.deadline is None:
            self.deadline = time.monotonic() + self.read_timeout

    def readinto(self, buffer) -> int:
        if self.deadline is None:
            self.connection.settimeout(self.idle_timeout)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request deadline passed")
            self.connection.settimeout(left)
        count = self.connection.recv_into(buffer)
        if count:
            self.request_started()
        return count


class _Handler(BaseHTTPRequestHandler):
    """Reads one request at a time, hands it to the RestApi, writes a JSON reply."""

    protocol_version = "HTTP/1.1"  # keep-alive: every reply has a Content-Length
    server_version = "mbrec_tf-serving"
    # Headers and body go out in separate writes; with Nagle's algorithm the body would
    # wait for the client's delayed ACK (~40 ms per request on keep-alive connections).
    disable_nagle_algorithm = True
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: replaced by one that keeps time
        self.clock = _RequestClock(
            self.connection, self.server.idle_timeout, self.server.read_timeout
        )
        self.rfile = io.BufferedReader(self.clock)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError as error:  # the client went away or stalled: nothing to answer
            logging.debug("connection from %s ended: %s", self.client_address[0], error)
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass

    def handle_one_request(self) -> None:
        server = self.server
        self.request_version = "HTTP/1.1"
        self.requestline, self.command = "", ""
        try:
            self.raw_requestline = self.rfile.readline(_MAX_REQUEST_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.clock.request_started()
            if len(self.raw_requestline) > _MAX_REQUEST_LINE:
                self.send_error(http.HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
                return
            if len(self.raw_requestline.split()) != 3:
                self.send_error(http.HTTPStatus.BAD_REQUEST, "malformed request line")
                return
            if not self.parse_request():  # replies itself (through send_error) when it fails
                return
        except TimeoutError:
            self.close_connection = True
            if self.clock.started:  # a request began but its head did not arrive in time
                self._reply(
                    http.HTTPStatus.REQUEST_TIMEOUT,
                    {"error": f"request head not received within {server.read_timeout:g} s"},
                )
            return  # an idle connection: closed quietly, as between keep-alive requests
        if self.command == "GET":
            self._get()
        elif self.command == "POST":
            self._post()
        else:
            self.close_connection = True
            self._reply(
                http.HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": f"method {self.command[:20]!r} is not supported; use GET or POST"},
            )
        self.wfile.flush()
        self.clock.next_request()

    def _get(self) -> None:
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self.close_connection = True  # a body we do not read
        self._reply(*self.server.api.handle("GET", self.path, b""))

    def _post(self) -> None:
        length = self._content_length()
        if length is None:
            return
        try:
            body = self._read_body(length)
        except TimeoutError:
            self.close_connection = True
            self._reply(
                http.HTTPStatus.REQUEST_TIMEOUT,
                {"error": f"request body not received within {self.server.read_timeout:g} s"},
            )
            return
        self._reply(*self.server.api.handle("POST", self.path, body))

    def _content_length(self) -> int | None:
        """The body's length, or None after replying why the request is refused."""
        error = None
        status = http.HTTPStatus.BAD_REQUEST
        values = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            status = http.HTTPStatus.LENGTH_REQUIRED
            error = "Transfer-Encoding bodies are not supported; send a Content-Length"
        elif not values:
            status = http.HTTPStatus.LENGTH_REQUIRED
            error = "Content-Length required"
        elif len(set(values)) > 1:
            error = "conflicting Content-Length headers"
        else:
            text = values[0].strip()
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                error = f"Content-Length must be a non-negative integer, got {text[:40]!r}"
            elif int(text) > self.server.max_body_bytes:
                status = http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                error = f"request body over {self.server.max_body_bytes} bytes"
        if error is None:
            return int(values[0])
        self.close_connection = True  # the body is not read: the connection cannot go on
        self._reply(status, {"error": error})
        return None

    def _read_body(self, length: int) -> bytes:
        """`length` bytes, all within the request's deadline (TimeoutError otherwise)."""
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionResetError("client closed the connection mid-body")
        return body

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """http.server's own errors (bad request line or headers) as one-line JSON."""
        del explain
        if self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.request_version = "HTTP/1.1"  # so that the reply has a status line
        self.close_connection = True
        text = message or http.HTTPStatus(code).phrase
        if code == http.HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            code = http.HTTPStatus.BAD_REQUEST  # a request this server cannot parse: 4xx
        self._reply(code, {"error": " ".join(str(text).split())[:300]})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.connection.settimeout(self.server.read_timeout)  # a whole reply, not each write
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        logging.debug("%s " + format, self.client_address[0], *args)


class _HttpServer(ThreadingHTTPServer):
    """Thread per connection, up to `max_connections`; a deep listen backlog."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        api: RestApi,
        *,
        max_body_bytes: int,
        listen_backlog: int,
        max_connections: int,
        read_timeout: float,
        idle_timeout: float,
    ):
        self.request_queue_size = listen_backlog  # listen() is called in __init__
        super().__init__(address, _Handler)
        self.api = api
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            logging.warning(
                "over %d connections: refusing %s", self.max_connections, client_address
            )
            body = json.dumps({"error": f"server busy: over {self.max_connections} connections"})
            reply = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
            )
            try:
                request.settimeout(1.0)
                request.sendall(reply.encode("ascii"))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logging.debug("connection from %s ended: %s", client_address, error)
        else:
            logging.exception("error while serving %s", client_address)


class ModelServer:
    """The version watcher plus the HTTP (and optional gRPC) server, started and stopped
    together.

    `port=0` picks a free port (see `.port`; `grpc_port=0` likewise, see `.grpc_port`;
    `grpc_port=None` serves no gRPC). Use as a context manager, or call `start()` and
    `stop()`; `serve_forever()` blocks (the CLI).
    """

    def __init__(
        self,
        model_base_path: str,
        model_name: str = "default",
        *,
        host: str = "127.0.0.1",
        port: int = 8501,
        grpc_port: int | None = None,
        poll_seconds: float = 1.0,
        version_policy: VersionPolicy | str = "latest",
        max_ids: int = DEFAULT_MAX_IDS,
        max_output_values: int = DEFAULT_MAX_OUTPUT_VALUES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        listen_backlog: int = DEFAULT_LISTEN_BACKLOG,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        warmup_iterations: int = 1,
        max_load_retries: int = versions_lib.MAX_LOAD_RETRIES,
        load_retry_seconds: float = versions_lib.LOAD_RETRY_SECONDS,
    ):
        if isinstance(version_policy, str):
            version_policy = VersionPolicy.parse(version_policy)
        self.watcher = VersionWatcher(
            model_base_path,
            poll_seconds,
            version_policy,
            warmup_iterations=warmup_iterations,
            max_load_retries=max_load_retries,
            load_retry_seconds=load_retry_seconds,
        )
        self.api = RestApi(model_name, self.watcher, RequestLimits(max_ids, max_output_values))
        self._http = _HttpServer(
            (host, port),
            self.api,
            max_body_bytes=max_body_bytes,
            listen_backlog=listen_backlog,
            max_connections=max_connections,
            read_timeout=read_timeout,
            idle_timeout=idle_timeout,
        )
        self._grpc = None
        if grpc_port is not None:
            from mbrec_tf.serving import grpc_service

            try:
                self._grpc = grpc_service.GrpcServer(
                    self.api, host, grpc_port, max_message_bytes=max_body_bytes
                )
            except OSError:
                self._http.server_close()
                raise
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return self._http.server_address[0]

    @property
    def port(self) -> int:
        return self._http.server_address[1]

    @property
    def grpc_port(self) -> int | None:
        return None if self._grpc is None else self._grpc.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ModelServer:
        """Loads the selected versions, starts polling and serves in background threads."""
        self.watcher.start()
        if self._grpc is not None:
            self._grpc.start()
        self._thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Loads the selected versions, starts polling and serves in this thread until stopped."""
        self.watcher.start()
        if self._grpc is not None:
            self._grpc.start()
        try:
            self._http.serve_forever()
        finally:
            if self._grpc is not None:
                self._grpc.stop()
            self.watcher.stop()
            self._http.server_close()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._grpc is not None:
            self._grpc.stop()
        self.watcher.stop()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
