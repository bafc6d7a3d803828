"""Serving with today's interactions: `top_k_context` of the memory models, reloaded in a
fresh process, over REST and gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc
from test_grpc import predict_request
from test_rest_server import request

from mbrec_tf import registry
from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving.server import ModelServer

ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}

# Runs in a new interpreter with TensorFlow alone: per case, the default top-k and the
# top-k with the request's context, as JSON.
RELOAD = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    results = []
    for path, users, context, k in json.loads(sys.argv[1]):
        loaded = tf.saved_model.load(path)
        specs = loaded.signatures["top_k_context"].structured_input_signature[1]
        users = tf.constant(users, dtype=specs["user"].dtype)
        inputs = {b: tf.reshape(tf.constant(v, dtype=specs[b].dtype), [len(v), -1])
                  for b, v in context.items()}
        plain = loaded.signatures["top_k"](user=users, k=tf.constant(k))
        now = loaded.signatures["top_k_context"](user=users, k=tf.constant(k), **inputs)
        def ids(out):
            return [[i.decode() if isinstance(i, bytes) else int(i) for i in row]
                    for row in out["item_ids"].numpy()]
        results.append({"plain": ids(plain), "now": ids(now),
                        "now_scores": now["scores"].numpy().tolist()})
    print(json.dumps(results))
    """
)


def _model(name: str, data):
    spec = registry.get(name)
    config = registry.resolve_config(name, data.name, {"embedding_dim": 4})
    tf.keras.utils.set_random_seed(0)
    model = spec.build(data, config)
    if spec.closed_form:
        spec.build_task(data, config).fit(model, data)
    else:
        rng = np.random.default_rng(0)
        for name in ("behavior_terms", "item_scales"):  # ehcf_memory's learned terms
            if getattr(model, name, None) is not None:
                variable = getattr(model, name)
                variable.assign(rng.normal(size=variable.shape))
    return model


def _plain(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


def _expected(model, data, users, context_items, keep_snapshot, k):
    """Reference top-k with context, from the in-process model: masked, score descending."""
    context = {
        b: tf.ragged.constant([list(r) for r in rows], dtype=tf.int32, ragged_rank=1)
        for b, rows in context_items.items()
    }
    replace = {b: tf.constant(b not in keep_snapshot) for b in context}
    scores = model.score_users_with_context(tf.constant(users), context, replace).numpy()
    scores = scores.astype(np.float64)
    scores[data.known_target_items()[users].toarray() > 0] = -np.inf
    items = np.arange(data.num_items)
    order = np.stack([np.lexsort((items, -row))[:k] for row in scores])
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, string_data, int_data):
    """Exports of touched and ehcf_touched (integer item ids) and ehcf_memory (string)."""
    cases = []
    models = (("touched", string_data), ("ehcf_memory", int_data), ("ehcf_touched", string_data))
    for name, data in models:
        model = _model(name, data)
        path = export_lib.export_model(model, data, str(tmp_path_factory.mktemp(name)))
        cases.append((model, data, path))
    return cases


def test_fresh_process_reload_with_and_without_context(exported):
    users = np.array([0, 3])
    k = 5
    request_cases, expectations = [], []
    for model, data, path in exported:
        padding = -1 if data.item_ids.dtype.kind in "iu" else ""
        # User 0's cart now: items 1 and 2 (padded); user 3's cart is empty now. `view`
        # is sent with width 0: the training snapshot's views stay.
        cart = [[1, 2], []]
        raw_cart = [_plain(data.item_ids[row]) + [padding] * (2 - len(row)) for row in cart]
        context = {"view": [[], []], "cart": raw_cart}
        request_cases.append([path, _plain(data.user_ids[users]), context, k])
        expectations.append(
            (
                _expected(model, data, users, {}, (), k),
                _expected(model, data, users, {"view": [[], []], "cart": cart}, ("view",), k),
            )
        )
    process = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(request_cases)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(process.stdout.strip().splitlines()[-1])
    for (_, data, _), result, (plain, now) in zip(exported, results, expectations, strict=True):
        assert result["plain"] == [_plain(data.item_ids[row]) for row in plain[0]]
        assert result["now"] == [_plain(data.item_ids[row]) for row in now[0]]
        np.testing.assert_allclose(result["now_scores"], now[1], rtol=1e-5)
        # The context moved the ranking (user 0's new cart items, user 3's emptied cart).
        assert result["now"] != result["plain"]


def test_empty_context_equals_the_snapshot(exported):
    model, data, path = exported[0]
    loaded = tf.saved_model.load(path)
    users = tf.constant(data.user_ids[:4].astype(object))
    empty = tf.zeros([4, 0], tf.int64)
    now = loaded.signatures["top_k_context"](user=users, k=tf.constant(6), view=empty, cart=empty)
    plain = loaded.signatures["top_k"](user=users, k=tf.constant(6))
    np.testing.assert_array_equal(now["item_ids"].numpy(), plain["item_ids"].numpy())


def test_rest_and_grpc_reject_malformed_context(exported):
    model, data, path = exported[0]
    base = os.path.dirname(path)
    user = str(data.user_ids[0])
    good_cart = [int(data.item_ids[1])]
    with ModelServer(base, "recs", port=0, grpc_port=0, max_ids=50) as server:
        url = f"{server.url}/v1/models/recs:predict"
        body = {
            "signature_name": "top_k_context",
            "inputs": {"user": [user], "k": 3, "view": [[]], "cart": [good_cart]},
        }
        status, reply = request(url, body)
        assert status == 200, reply
        order, _ = _expected(
            model, data, np.array([0]), {"view": [[]], "cart": [[1]]}, ("view",), 3
        )
        assert reply["outputs"]["item_ids"] == [_plain(data.item_ids[order[0]])]
        for cart, message in (([987654], "unknown cart item ids"), (["x"], "")):
            bad = {**body, "inputs": {**body["inputs"], "cart": [cart]}}
            status, reply = request(url, bad)
            assert status == 400 and message in reply["error"], reply
        wrong_rows = {**body, "inputs": {**body["inputs"], "cart": [good_cart, good_cart]}}
        status, reply = request(url, wrong_rows)
        assert status == 400 and "one row of item ids per user" in reply["error"], reply

        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        inputs = {
            "user": np.array([user.encode()], dtype=object),
            "k": np.int32(3),
            "view": np.zeros([1, 0], np.int64),
            "cart": np.array([good_cart], np.int64),
        }
        reply = stub.Predict(predict_request("top_k_context", **inputs), timeout=30)
        assert tf.make_ndarray(reply.outputs["item_ids"]).tolist() == [
            _plain(data.item_ids[order[0]])
        ]
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(
                predict_request(
                    "top_k_context", **{**inputs, "cart": np.array([[987654]], np.int64)}
                ),
                timeout=30,
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        channel.close()
