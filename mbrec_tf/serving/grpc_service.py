"""TF Serving's gRPC API for the local server: `PredictionService` and `ModelService`.

The services are the ones of the `tensorflow-serving-api` package, so a client written for
`tensorflow_model_server --port=...` (`prediction_service_pb2_grpc.PredictionServiceStub`)
works unchanged:

- `PredictionService.Predict`: `model_spec` (name, optional version, signature name; empty
  means `serving_default`), `inputs` (TensorProtos; an input the SignatureDef has a default
  for may be left out, as in TF Serving), `output_filter`.
- `PredictionService.GetModelMetadata` with `metadata_field: "signature_def"`: a
  `SignatureDefMap` packed in `metadata["signature_def"]`.
- `ModelService.GetModelStatus`: the same version states as the REST status.

Classify, Regress and MultiInference answer UNIMPLEMENTED (the exports have no such
signatures). Requests are checked before any tensor is converted: names, dtypes and the
number of values per input (`max_ids`), then shapes, then the size of the reply
(`prediction.predict`, as for REST). Errors use TF Serving's status codes:
INVALID_ARGUMENT for a bad request, NOT_FOUND for an unknown model or version.
"""

from __future__ import annotations

import concurrent.futures
import http

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from mbrec_tf.serving import prediction
from mbrec_tf.serving.prediction import PredictionEndpoint
from mbrec_tf.serving.versions import RequestError, Servable, bad_request

_CODES = {
    http.HTTPStatus.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    http.HTTPStatus.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
}
_STATES = {
    "LOADING": get_model_status_pb2.ModelVersionStatus.LOADING,
    "AVAILABLE": get_model_status_pb2.ModelVersionStatus.AVAILABLE,
    "END": get_model_status_pb2.ModelVersionStatus.END,
}


def _abort(context: grpc.ServicerContext, error: RequestError) -> None:
    context.abort(_CODES.get(error.status, grpc.StatusCode.INTERNAL), error.message)


def _servable(endpoint: PredictionEndpoint, model_spec) -> Servable:
    """The version a request's `model_spec` names (model, optional version), or a 404."""
    endpoint.check_model(model_spec.name, model_spec.version_label)
    version = model_spec.version.value if model_spec.HasField("version") else None
    return endpoint.servable(version)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over the served versions."""

    def __init__(self, endpoint: PredictionEndpoint):
        self.endpoint = endpoint

    def Predict(self, request, context):  # noqa: N802 - the proto's method name
        try:
            return self._predict(request)
        except RequestError as error:
            _abort(context, error)

    def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            servable = _servable(self.endpoint, request.model_spec)
            fields = list(request.metadata_field)
            if fields != ["signature_def"]:
                raise bad_request(
                    f"metadata_field must be ['signature_def'] (the only one), got {fields}"
                )
        except RequestError as error:
            _abort(context, error)
        reply = get_model_metadata_pb2.GetModelMetadataResponse()
        self._spec(reply.model_spec, servable, "")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, proto in servable.signature_protos.items():
            signature_map.signature_def[name].CopyFrom(proto)
        reply.metadata["signature_def"].Pack(signature_map)
        return reply

    def _spec(self, spec, servable: Servable, signature: str) -> None:
        spec.name = self.endpoint.model_name
        spec.version.value = servable.version
        spec.signature_name = signature

    def _predict(self, request) -> predict_pb2.PredictResponse:
        servable = _servable(self.endpoint, request.model_spec)
        signature = request.model_spec.signature_name or "serving_default"
        specs = self.endpoint.input_specs(servable, signature)
        defaults = servable.defaults(signature)
        given = set(request.inputs)
        unknown = sorted(given - set(specs))
        missing = sorted(set(specs) - given - set(defaults))
        if unknown or missing:
            raise bad_request(
                f"signature {signature!r} has inputs {sorted(specs)}; "
                f"missing {missing}, unknown {unknown}"
            )
        arrays = {name: value for name, value in defaults.items() if name not in given}
        for name in sorted(given):
            arrays[name] = self._to_array(name, request.inputs[name], specs[name])
        outputs = servable.outputs[signature]
        wanted = list(request.output_filter) or outputs
        unknown_outputs = sorted(set(wanted) - set(outputs))
        if unknown_outputs:
            raise bad_request(f"output_filter names unknown outputs {unknown_outputs}; {outputs}")
        results = self.endpoint.predict(servable, signature, arrays)
        reply = predict_pb2.PredictResponse()
        self._spec(reply.model_spec, servable, signature)
        for name in wanted:
            reply.outputs[name].CopyFrom(tf.make_tensor_proto(results[name]))
        return reply

    def _to_array(self, name: str, proto, spec: tf.TensorSpec) -> np.ndarray:
        if proto.dtype != spec.dtype.as_datatype_enum:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "no dtype"
            raise bad_request(f"input {name!r} must be {spec.dtype.name}, got {got}")
        dims = [d.size for d in proto.tensor_shape.dim]
        if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
            raise bad_request(f"input {name!r} needs a fully known shape, got {dims}")
        size = int(np.prod(dims, dtype=np.float64)) if dims else 1
        prediction.check_input_size(name, size, self.endpoint.limits.max_ids)
        prediction.check_input_shape(name, dims, spec)
        try:
            return tf.make_ndarray(proto)
        except (TypeError, ValueError) as error:
            raise bad_request(f"input {name!r} is not a valid tensor: {error}") from None


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus (HandleReloadConfigRequest answers UNIMPLEMENTED)."""

    def __init__(self, endpoint: PredictionEndpoint):
        self.endpoint = endpoint

    def GetModelStatus(self, request, context):  # noqa: N802
        spec = request.model_spec
        try:
            self.endpoint.check_model(spec.name)
            entries = self.endpoint.statuses(
                spec.version.value if spec.HasField("version") else None
            )
        except RequestError as error:
            _abort(context, error)
        reply = get_model_status_pb2.GetModelStatusResponse()
        for entry in entries:
            status = reply.model_version_status.add()
            status.version = int(entry["version"])
            status.state = _STATES[entry["state"]]
            if entry["state"] == "END":
                status.status.error_code = 2  # tensorflow.error.UNKNOWN
            status.status.error_message = entry["status"]["error_message"]
        return reply


class GrpcServer:
    """A grpc server with both services on `host:port` (0: a free port, see `.port`)."""

    def __init__(
        self,
        endpoint: PredictionEndpoint,
        host: str,
        port: int,
        max_message_bytes: int,
        workers: int = 32,
    ):
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        self._server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
            options=options,
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(endpoint), self._server
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(endpoint), self._server
        )
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as error:  # grpcio reports a taken port this way
            raise OSError(f"could not bind gRPC to {address}: {error}") from None
        if self.port == 0:
            raise OSError(f"could not bind gRPC to {address}")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 1.0) -> None:
        self._server.stop(grace).wait()
