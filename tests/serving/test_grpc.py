"""The gRPC API, called with TF Serving's own client stubs (tensorflow-serving-api)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import DotModel, expected_top_k
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving.server import ModelServer

NAME = "recs"


@pytest.fixture(scope="module")
def served(tmp_path_factory, string_data):
    base = str(tmp_path_factory.mktemp("grpc"))
    model = DotModel(string_data.num_users, string_data.num_items)
    export_lib.export_model(model, string_data, base, default_k=3)
    with ModelServer(base, NAME, port=0, grpc_port=0, max_ids=50) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        yield server, channel, model, string_data
        channel.close()


def predict_request(signature: str = "", version: int | None = None, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def test_predict_with_the_official_stub(served):
    server, channel, model, data = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    users = np.array([0, 5])
    order, scores = expected_top_k(model, data, users, k=3)
    reply = stub.Predict(predict_request(user=data.user_ids[users].astype(object)), timeout=30)
    assert reply.model_spec.name == NAME and reply.model_spec.version.value == 1
    assert reply.model_spec.signature_name == "serving_default"
    items = tf.make_ndarray(reply.outputs["item_ids"])
    assert items.tolist() == data.item_ids[order].tolist()
    np.testing.assert_allclose(tf.make_ndarray(reply.outputs["scores"]), scores, rtol=1e-6)

    # top_k: `k` has a SignatureDef default (3 here), so it may be left out, as in TF Serving.
    reply = stub.Predict(predict_request("top_k", 1, user=np.array([b"u0"], dtype=object)))
    assert tf.make_ndarray(reply.outputs["item_ids"]).shape == (1, 3)
    request = predict_request("top_k", user=np.array([b"u0"], dtype=object), k=np.int32(7))
    request.output_filter.append("scores")
    reply = stub.Predict(request)
    assert list(reply.outputs) == ["scores"]
    assert tf.make_ndarray(reply.outputs["scores"]).shape == (1, 7)


def test_metadata_and_status(served):
    _, channel, *_ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = NAME
    request.metadata_field.append("signature_def")
    reply = stub.GetModelMetadata(request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    reply.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "top_k", "score", "user_embedding"}
    assert signatures.signature_def["top_k"].inputs["k"].dtype == tf.int32.as_datatype_enum

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = NAME
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request)
    (entry,) = status.model_version_status
    assert entry.version == 1
    assert entry.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize(
    "request_,code,message",
    [
        (predict_request(user=np.array([b"u0"], dtype=object)), None, None),
        (predict_request(user=np.array([1, 2])), "INVALID_ARGUMENT", "must be string"),
        (predict_request(user=np.array([[b"u0"]], dtype=object)), "INVALID_ARGUMENT", "shape"),
        (
            predict_request(user=np.array([b"u0"] * 51, dtype=object)),
            "INVALID_ARGUMENT",
            "too many",
        ),
        (
            predict_request(user=np.array([b"ghost"], dtype=object)),
            "INVALID_ARGUMENT",
            "unknown user",
        ),
        (predict_request("nope", user=np.array([b"u0"], dtype=object)), "INVALID_ARGUMENT", "nope"),
        (
            predict_request("score", user=np.array([b"u0"], dtype=object)),
            "INVALID_ARGUMENT",
            "item",
        ),
        (
            predict_request(usr=np.array([b"u0"], dtype=object)),
            "INVALID_ARGUMENT",
            "unknown ['usr']",
        ),
        (predict_request(version=9, user=np.array([b"u0"], dtype=object)), "NOT_FOUND", "9"),
    ],
)
def test_errors_use_tf_serving_status_codes(served, request_, code, message):
    _, channel, *_ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    if code is None:
        assert stub.Predict(request_).outputs
        return
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request_)
    assert caught.value.code() == getattr(grpc.StatusCode, code)
    assert message in caught.value.details()


def test_unknown_model_and_bad_tensors(served):
    _, channel, *_ = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_request(user=np.array([b"u0"], dtype=object))
    request.model_spec.name = "other"
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    too_many = predict_request(user=np.array([b"u0", b"u1"], dtype=object))
    too_many.inputs["user"].tensor_shape.dim[0].size = 1  # shape says 1, content has 2
    torn = predict_request("top_k", user=np.array([b"u0"], dtype=object), k=np.int32(3))
    torn.inputs["k"].ClearField("int_val")
    torn.inputs["k"].tensor_content = b"\x01\x02\x03"  # not a whole int32
    for request in (too_many, torn):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
