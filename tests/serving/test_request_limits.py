"""The reply-size limit: refused before the model runs, the same way over REST and gRPC."""

from __future__ import annotations

import http.client
import json

import grpc
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from serving_helpers import DotModel
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving import prediction
from mbrec_tf.serving import versions as versions_lib
from mbrec_tf.serving.server import ModelServer

NAME = "recs"
LIMIT = 20  # values per reply: top_k answers 2 outputs × users × k


@pytest.fixture(scope="module")
def served(tmp_path_factory, string_data):
    base = str(tmp_path_factory.mktemp("limits"))
    model = DotModel(string_data.num_users, string_data.num_items)
    export_lib.export_model(model, string_data, base, default_k=3)
    with ModelServer(
        base, NAME, port=0, grpc_port=0, max_ids=50, max_output_values=LIMIT
    ) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        yield server, channel
        channel.close()


@pytest.fixture()
def model_calls(monkeypatch) -> list[str]:
    """Every signature call the server makes from now on, by signature name."""
    calls: list[str] = []
    real_run = versions_lib.Servable.run

    def counted_run(self, signature, inputs):
        calls.append(signature)
        return real_run(self, signature, inputs)

    monkeypatch.setattr(versions_lib.Servable, "run", counted_run)
    return calls


def rest(server, body: dict) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request("POST", f"/v1/models/{NAME}:predict", json.dumps(body).encode())
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def users(count: int) -> list[str]:
    return [f"u{i}" for i in range(count)]


@pytest.mark.parametrize(
    "body,values",
    [
        ({"signature_name": "top_k", "inputs": {"user": users(5), "k": 3}}, 30),
        ({"signature_name": "top_k", "inputs": {"user": users(1), "k": 11}}, 22),
        ({"instances": users(4)}, 24),  # serving_default: [batch, 3] twice
        ({"signature_name": "score", "inputs": {"user": users(4), "item": [[1] * 6] * 4}}, 24),
    ],
)
def test_rest_refuses_a_reply_over_the_limit_without_calling_the_model(
    served, model_calls, body, values
):
    server, _ = served
    status, reply = rest(server, body)
    assert status == 400, reply
    message = reply["error"]
    assert f"would hold {values} values" in message and f"limit of {LIMIT}" in message
    assert "--max_output_values" in message and "\n" not in message
    assert model_calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"signature_name": "top_k", "inputs": {"user": users(5), "k": 2}},  # 20: at the limit
        {"instances": users(3)},
        {"signature_name": "user_embedding", "instances": users(5)},  # [batch, 4]
    ],
)
def test_rest_serves_a_reply_within_the_limit(served, model_calls, body):
    server, _ = served
    status, reply = rest(server, body)
    assert status == 200, reply
    assert len(model_calls) == 1


def grpc_request(signature: str, count: int, k: int | None = None) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = NAME
    request.model_spec.signature_name = signature
    ids = np.array([u.encode() for u in users(count)], dtype=object)
    request.inputs["user"].CopyFrom(tf.make_tensor_proto(ids))
    if k is not None:
        request.inputs["k"].CopyFrom(tf.make_tensor_proto(np.int32(k)))
    return request


def test_grpc_refuses_a_reply_over_the_limit_without_calling_the_model(served, model_calls):
    _, channel = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for request, values in [
        (grpc_request("top_k", 5), 30),  # k from the SignatureDef default (3)
        (grpc_request("top_k", 1, k=11), 22),
        (grpc_request("", 4), 24),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"would hold {values} values" in caught.value.details()
        assert "--max_output_values" in caught.value.details()
    assert model_calls == []
    reply = stub.Predict(grpc_request("top_k", 5, k=2), timeout=30)
    assert tf.make_ndarray(reply.outputs["item_ids"]).shape == (5, 2)
    assert model_calls == ["top_k"]


def test_output_values_counts_every_signature_from_shapes(served):
    server, _ = served
    servable = server.watcher.current()
    user = np.array([b"u0", b"u1"], dtype=object)
    assert prediction.output_values(servable, "serving_default", {"user": user}) == 2 * 3 * 2
    top_k = {"user": user, "k": np.array(7, np.int32)}
    assert prediction.output_values(servable, "top_k", top_k) == 2 * 7 * 2
    items = np.zeros((2, 5), np.int64)
    assert prediction.output_values(servable, "score", {"user": user, "item": items}) == 2 * 5
    assert prediction.output_values(servable, "user_embedding", {"user": user}) == 2 * 4


def test_the_serve_flag_sets_the_limit(tmp_path, string_data):
    from pipelines import serve as serve_pipeline

    export_lib.export_model(
        DotModel(string_data.num_users, string_data.num_items), string_data, str(tmp_path)
    )
    values = flags.FlagValues()
    serve_pipeline.define_flags(values)
    values(["serve", f"--model_base_path={tmp_path}", "--port=0"])
    server = serve_pipeline.make_server(values)
    try:
        assert server.endpoint.limits.max_output_values == prediction.DEFAULT_MAX_OUTPUT_VALUES
    finally:
        server._http.server_close()
    values(["serve", f"--model_base_path={tmp_path}", "--port=0", "--max_output_values=99"])
    server = serve_pipeline.make_server(values)
    try:
        assert server.endpoint.limits == prediction.RequestLimits(max_output_values=99)
    finally:
        server._http.server_close()
