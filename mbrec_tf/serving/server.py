"""A local server that speaks TensorFlow Serving's REST and gRPC APIs for exported SavedModels.

Production serving is TensorFlow Serving itself; this server lets the same client code run
where its binary cannot be installed (laptops, CI). It serves one model, like
`tensorflow_model_server --model_name=... --model_base_path=...`:

- TF Serving's REST API: predict in the row and columnar formats, version status and
  metadata (`rest_api` lists the requests and replies).
- Versions as TF Serving's `model_version_policy` (`version_policy.VersionPolicy`): the latest
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

The rooms: `prediction` checks and runs a request whatever its protocol; `rest_api` maps
JSON bodies and paths onto it, `http_server` is the hardened HTTP layer beneath (connection
cap, backlog, read and idle timeouts), `grpc_service` maps TF Serving's protos onto it, and
`versions` loads, warms up and switches versions.

It binds to 127.0.0.1 unless told otherwise: it has no authentication.
"""

from __future__ import annotations

import threading
from typing import Any

from mbrec_tf.serving import load_retries
from mbrec_tf.serving.http_server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LISTEN_BACKLOG,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT,
    RestHttpServer,
)
from mbrec_tf.serving.prediction import (
    DEFAULT_MAX_IDS,
    DEFAULT_MAX_OUTPUT_VALUES,
    PredictionEndpoint,
    RequestLimits,
)
from mbrec_tf.serving.rest_api import RestApi
from mbrec_tf.serving.version_policy import VersionPolicy
from mbrec_tf.serving.versions import VersionWatcher

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_LISTEN_BACKLOG",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_IDS",
    "DEFAULT_MAX_OUTPUT_VALUES",
    "DEFAULT_READ_TIMEOUT",
    "ModelServer",
    "VersionPolicy",
]


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
        max_load_retries: int = load_retries.MAX_LOAD_RETRIES,
        load_retry_seconds: float = load_retries.LOAD_RETRY_SECONDS,
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
        self.endpoint = PredictionEndpoint(
            model_name, self.watcher, RequestLimits(max_ids, max_output_values)
        )
        self.api = RestApi(self.endpoint)
        self._http = RestHttpServer(
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
                    self.endpoint, host, grpc_port, max_message_bytes=max_body_bytes
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
