"""Loaded model versions for the local servers: loading, warm-up, the version policy.

A `VersionWatcher` polls a base path of integer version folders (TF Serving's layout) and
keeps the versions its `VersionPolicy` asks for loaded. Loading happens in the watcher's
own thread, never on a request: a version is loaded, warmed up with the export's
`assets.extra/tf_serving_warmup_requests` (as TF Serving replays them), and only then
published, by replacing the dictionary of served versions in one assignment. Requests read
that dictionary without a lock and keep the `Servable` they got until they finish, so a
switch never fails or stalls a request. The policy follows TF Serving's
`model_version_policy`: a new latest version is loaded before the old one is unloaded, and a
version whose folder is removed is unloaded and leaves the status. A version that fails to
load (or to warm up) leaves the versions already served in place and is retried as
`load_retries` schedules (state LOADING meanwhile, END once given up).
"""

from __future__ import annotations

import dataclasses
import http
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving import load_retries
from mbrec_tf.serving import warmup as warmup_lib
from mbrec_tf.serving.version_policy import VersionPolicy

#: TF Serving reads at most this many warm-up records.
MAX_WARMUP_RECORDS = 1000
#: Seconds an unloaded version is kept referenced, so that requests still using it finish.
RETIRE_SECONDS = 1.0


class RequestError(Exception):
    """A request the server refuses, with the HTTP status to reply."""

    def __init__(self, status: http.HTTPStatus, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> RequestError:
    return RequestError(http.HTTPStatus.BAD_REQUEST, message)


def not_found(message: str) -> RequestError:
    return RequestError(http.HTTPStatus.NOT_FOUND, message)


def clean_tf_message(message: str) -> str:
    """The useful line of a TensorFlow error (the assertion text, without node traces)."""
    if "assertion failed:" in message:
        text = message.split("assertion failed:", 1)[1].split("\n")[0].strip()
        return re.sub(r"^\[(.*?)\]\s*", r"\1 ", text).strip()
    lines = [
        line.strip()
        for line in message.splitlines()
        if line.strip()
        and not line.startswith("\t [[")
        and not line.startswith("Detected at node")
        and line.strip() not in ("Graph execution error:", "<stack traces unavailable>")
    ]
    return " ".join(lines) or message


# --- one loaded version ----------------------------------------------------------------------
@dataclasses.dataclass
class Servable:
    """One loaded model version: its signatures, their input specs and output names."""

    version: int
    path: str
    loaded: Any  # the tf.saved_model.load object; keeps the signatures' resources alive
    inputs: dict[str, dict[str, tf.TensorSpec]]
    outputs: dict[str, list[str]]
    signature_protos: dict[str, meta_graph_pb2.SignatureDef]
    signature_defs: dict[str, Any]
    metadata: dict[str, Any]

    def run(self, signature: str, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Calls a signature; InvalidArgument from the graph becomes a 400 RequestError."""
        function = self.loaded.signatures[signature]
        specs = self.inputs[signature]
        try:
            tensors = {
                name: tf.constant(value, dtype=specs[name].dtype) for name, value in inputs.items()
            }
        except (TypeError, ValueError, OverflowError) as error:
            raise bad_request(f"inputs do not convert to the signature's dtypes: {error}") from None
        try:
            results = function(**tensors)
        except tf.errors.InvalidArgumentError as error:
            raise bad_request(clean_tf_message(error.message)) from None
        return {name: value.numpy() for name, value in results.items()}

    def defaults(self, signature: str) -> dict[str, np.ndarray]:
        """The SignatureDef's default input values (e.g. `k` of `top_k`)."""
        proto = self.signature_protos[signature]
        return {name: tf.make_ndarray(tensor) for name, tensor in proto.defaults.items()}


def load_servable(path: str, version: int) -> Servable:
    """Loads a SavedModel version folder and describes its signatures."""
    loaded = tf.saved_model.load(path)
    inputs: dict[str, dict[str, tf.TensorSpec]] = {}
    outputs: dict[str, list[str]] = {}
    for name, function in loaded.signatures.items():
        _, keyword_specs = function.structured_input_signature
        inputs[name] = dict(keyword_specs)
        outputs[name] = sorted(function.structured_outputs)
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        saved_model.ParseFromString(file.read())
    protos = {
        key: value
        for key, value in saved_model.meta_graphs[0].signature_def.items()
        if not key.startswith("__")
    }
    return Servable(
        version=version,
        path=path,
        loaded=loaded,
        inputs=inputs,
        outputs=outputs,
        signature_protos=protos,
        signature_defs={
            key: json_format.MessageToDict(value, preserving_proto_field_name=True)
            for key, value in protos.items()
        },
        metadata=export_lib.read_metadata(path),
    )


def warm_up(servable: Servable, iterations: int = 1) -> int:
    """Replays the version's warm-up records (`PredictionLog`s); returns how many calls ran.

    A record that fails (an unknown signature, a model error) fails the load, as in TF
    Serving. A version without the file is not warmed up.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(servable.path, export_lib.ASSETS_EXTRA, warmup_lib.WARMUP_FILE)
    if not os.path.exists(path):
        return 0
    requests = []
    for index, record in enumerate(tf.data.TFRecordDataset(path)):
        if index >= MAX_WARMUP_RECORDS:
            break
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"warm-up record {index} is not a predict_log")
        request = log.predict_log.request
        signature = request.model_spec.signature_name or "serving_default"
        if signature not in servable.inputs:
            raise ValueError(f"warm-up record {index} names unknown signature {signature!r}")
        arrays = servable.defaults(signature)
        arrays.update({key: tf.make_ndarray(value) for key, value in request.inputs.items()})
        requests.append((signature, arrays))
    for _ in range(iterations):
        for signature, arrays in requests:
            servable.run(signature, arrays)
    return len(requests) * iterations


def _status(version: int, state: str, code: str, message: str) -> dict[str, Any]:
    return {
        "version": str(version),
        "state": state,
        "status": {"error_code": code, "error_message": message},
    }


class VersionWatcher:
    """Keeps the versions the policy selects under `base_path` loaded, polling for changes."""

    def __init__(
        self,
        base_path: str,
        poll_seconds: float = 1.0,
        policy: VersionPolicy | None = None,
        warmup_iterations: int = 1,
        max_load_retries: int = load_retries.MAX_LOAD_RETRIES,
        load_retry_seconds: float = load_retries.LOAD_RETRY_SECONDS,
    ):
        self.base_path = base_path
        self.poll_seconds = poll_seconds
        self.policy = policy or VersionPolicy()
        self.warmup_iterations = warmup_iterations
        self.max_load_retries = max_load_retries
        self.load_retry_seconds = load_retry_seconds
        self._served: dict[int, Servable] = {}  # replaced, never mutated: readers need no lock
        self._failed: dict[int, load_retries.FailedLoad] = {}
        self._loading: set[int] = set()
        # Unloaded versions, kept a moment so that requests still using one finish first and
        # the version's TensorFlow resources are freed here, not in a request's thread.
        self._retired: list[tuple[float, Servable]] = []
        self._lock = threading.Lock()  # serialises the writers
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # readers (request threads)
    def served(self) -> dict[int, Servable]:
        """Version -> Servable of every served version (a snapshot)."""
        return self._served

    def current(self) -> Servable | None:
        """The newest served version (what a request without a version gets)."""
        served = self._served
        return served[max(served)] if served else None

    def get(self, version: int | None) -> Servable | None:
        served = self._served
        if version is None:
            return served[max(served)] if served else None
        return served.get(version)

    def state(self, version: int) -> str | None:
        """AVAILABLE, LOADING, END (failed) or None (not known)."""
        if version in self._served:
            return "AVAILABLE"
        with self._lock:
            failed = self._failed.get(version)
            if version in self._loading or (failed is not None and failed.retrying):
                return "LOADING"
            if failed is not None:
                return "END"
        return None

    def statuses(self) -> list[dict[str, Any]]:
        """TF Serving's `model_version_status` entries, newest version first."""
        served = self._served
        with self._lock:
            failed, loading = dict(self._failed), set(self._loading)
        entries = {v: _status(v, "AVAILABLE", "OK", "") for v in served}
        for version, failure in failed.items():  # waiting for a retry: LOADING, as TF Serving
            if failure.retrying:
                entries[version] = _status(version, "LOADING", "OK", "")
            else:
                entries[version] = _status(version, "END", "UNKNOWN", failure.message)
        entries.update({v: _status(v, "LOADING", "OK", "") for v in loading})
        return [entries[v] for v in sorted(entries, reverse=True)]

    # the writer (the watcher's thread, or a direct call)
    def refresh(self) -> None:
        """One poll: loads what the policy now selects, then unloads what it no longer does."""
        with self._refresh_lock:
            existing = export_lib.existing_versions(self.base_path)
            with self._lock:
                for version in [v for v in self._failed if v not in existing]:
                    del self._failed[version]  # a removed version leaves the status
            failed = self._not_due()
            while True:  # a failed load changes the selection: e.g. the previous latest
                wanted = self.policy.select([v for v in existing if v not in failed])
                missing = sorted(set(wanted) - set(self._served), reverse=True)
                if not missing:
                    break
                for version in missing:
                    self._load(version)
                failed = self._not_due()
            keep = set(wanted)
            now = time.monotonic()
            with self._lock:
                gone = sorted(set(self._served) - keep)
                self._retired += [(now, self._served[v]) for v in gone]
                if gone:
                    self._served = {v: s for v, s in self._served.items() if v in keep}
            for version in gone:
                logging.info("unloaded version %d of %s", version, self.base_path)
            expired = [s for t, s in self._retired if now - t >= RETIRE_SECONDS]
            self._retired = [(t, s) for t, s in self._retired if now - t < RETIRE_SECONDS]
            del expired  # the last references: freed in this thread

    def _not_due(self) -> set[int]:
        """Failed versions not to try on this poll (see `load_retries.not_due`)."""
        with self._lock:
            failed = dict(self._failed)
        return load_retries.not_due(failed, self.base_path, time.monotonic())

    def _load(self, version: int) -> None:
        path = os.path.join(self.base_path, str(version))
        with self._lock:
            self._loading.add(version)
            previous = self._failed.get(version)
        fingerprint = load_retries.folder_fingerprint(path)
        try:
            servable = load_servable(path, version)
            calls = warm_up(servable, self.warmup_iterations)
        except Exception as error:  # noqa: BLE001 - any load failure is reported, not fatal
            self._record_failure(version, path, error, fingerprint, previous)
            return
        with self._lock:
            self._served = {**self._served, version: servable}  # the switch: one assignment
            self._loading.discard(version)
            self._failed.pop(version, None)
        after = "" if previous is None else f" after {previous.failures} failed loads"
        logging.info("serving version %d from %s (%d warm-up calls)%s", version, path, calls, after)

    def _record_failure(
        self,
        version: int,
        path: str,
        error: Exception,
        fingerprint: load_retries.Fingerprint | None,
        previous: load_retries.FailedLoad | None,
    ) -> None:
        """Schedules the retry of a failed load (or gives up); logs one line per new error."""
        message = " ".join(f"{type(error).__name__}: {error}".split())
        failure = load_retries.FailedLoad.after(
            previous,
            message,
            fingerprint,
            time.monotonic(),
            self.max_load_retries,
            self.load_retry_seconds,
        )
        if failure.retrying:
            if previous is None or previous.message != message:  # one line per distinct error
                logging.warning(
                    "could not load version %d from %s (retrying in %.3g s; a folder still "
                    "being copied loads once complete): %s",
                    version,
                    path,
                    load_retries.retry_wait(failure.failures, self.load_retry_seconds),
                    message,
                )
        else:
            logging.error(
                "could not load version %d from %s after %d tries; it is tried again when its "
                "files change: %s",
                version,
                path,
                failure.unchanged_failures,
                message,
            )
        with self._lock:
            self._loading.discard(version)
            self._failed[version] = failure

    def start(self) -> None:
        """Loads what is there now, then keeps polling in a daemon thread."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="version-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - the poller must survive, e.g. I/O errors
                logging.error("polling %s failed: %s", self.base_path, error)
