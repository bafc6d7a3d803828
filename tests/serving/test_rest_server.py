"""The local TF Serving-compatible REST server, over real HTTP on a free loopback port."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import DotModel, expected_top_k

from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving.server import ModelServer

NAME = "recs"


def request(url: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    """GET (no body) or POST JSON; returns (status, parsed JSON reply) for any status."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory, string_data):
    """A server on a free port over a base path holding version 1 (popularity)."""
    base = str(tmp_path_factory.mktemp("served"))
    model = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    export_lib.export_model(model, string_data, base, default_k=3)
    server = ModelServer(base, NAME, port=0, poll_seconds=0.1, max_ids=50)
    server.start()
    yield server, model, string_data, base
    server.stop()


def test_binds_to_loopback_by_default(served):
    server, *_ = served
    assert server.host == "127.0.0.1" and server.port > 0


def test_status(served):
    server, *_ = served
    status, body = request(f"{server.url}/v1/models/{NAME}")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert request(f"{server.url}/v1/models/{NAME}/versions/1")[0] == 200
    assert request(f"{server.url}/v1/models/{NAME}/versions/9")[0] == 404


def test_predict_row_and_columnar_formats(served):
    server, model, data, _ = served
    users = np.array([0, 6])
    order, scores = expected_top_k(model, data, users, k=3)
    raw_users = [str(u) for u in data.user_ids[users]]
    url = f"{server.url}/v1/models/{NAME}:predict"

    status, body = request(url, {"instances": raw_users})
    assert status == 200
    assert [p["item_ids"] for p in body["predictions"]] == data.item_ids[order].tolist()
    np.testing.assert_allclose([p["scores"] for p in body["predictions"]], scores, rtol=1e-6)

    status, body = request(url, {"instances": [{"user": u} for u in raw_users]})
    assert status == 200 and len(body["predictions"]) == 2

    status, body = request(url, {"signature_name": "", "instances": raw_users})  # the default
    assert status == 200 and len(body["predictions"]) == 2

    status, body = request(url, {"inputs": {"user": raw_users}})
    assert status == 200 and body["outputs"]["item_ids"] == data.item_ids[order].tolist()

    versioned = f"{server.url}/v1/models/{NAME}/versions/1:predict"
    assert request(versioned, {"inputs": raw_users})[1]["outputs"]["item_ids"] == (
        data.item_ids[order].tolist()
    )


def test_other_signatures(served):
    server, model, data, _ = served
    url = f"{server.url}/v1/models/{NAME}:predict"
    user = str(data.user_ids[2])
    status, body = request(url, {"signature_name": "top_k", "inputs": {"user": [user], "k": 7}})
    order, _ = expected_top_k(model, data, np.array([2]), k=7)
    assert status == 200 and body["outputs"]["item_ids"] == data.item_ids[order].tolist()

    items = [int(i) for i in data.item_ids[[1, 4]]]
    status, body = request(
        url, {"signature_name": "score", "instances": [{"user": user, "item": items}]}
    )
    expected = model.score_pairs(tf.constant([2]), tf.constant([[1, 4]])).numpy()
    assert status == 200
    np.testing.assert_allclose(body["predictions"], expected, rtol=1e-6)  # one output: plain rows

    status, body = request(url, {"signature_name": "user_embedding", "instances": [user]})
    assert status == 200 and body["predictions"] == [[1.0]]

    status, body = request(f"{server.url}/v1/models/{NAME}/metadata")
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert status == 200 and set(signatures) == {
        "serving_default",
        "top_k",
        "score",
        "user_embedding",
    }


@pytest.mark.parametrize(
    "body,raw,status,message",
    [
        (None, b"{not json", 400, "malformed JSON"),
        (None, b'{"inputs": ' + b"[" * 2_000, 400, "nested too deeply"),
        (None, b'{"inputs": ' + b"[" * 100_000, 400, "more than a request of at most 50"),
        (["u0"], None, 400, "must be a JSON object"),
        ({"instance": ["u0"]}, None, 400, "unknown field"),
        ({"instances": ["u0"], "inputs": ["u0"]}, None, 400, "exactly one of"),
        ({"signature_name": "serving_default"}, None, 400, "exactly one of"),
        ({"instances": []}, None, 400, "empty"),
        ({"instances": "u0"}, None, 400, "must be a list"),
        ({"instances": [1, 2]}, None, 400, "expects strings"),
        ({"instances": [["u0"]]}, None, 400, "must have shape [batch]"),
        ({"instances": [{"usr": "u0"}]}, None, 400, "needs exactly ['user']"),
        ({"inputs": {"user": ["u0"], "k": 3}}, None, 400, "unknown ['k']"),
        ({"inputs": ["u0"] * 51}, None, 400, "too many ids"),
        ({"signature_name": "nope", "inputs": ["u0"]}, None, 400, "unknown signature 'nope'"),
        ({"signature_name": 3, "inputs": ["u0"]}, None, 400, "'signature_name' must be a string"),
        (
            {"instances": ["u0", "stranger"]},
            None,
            400,
            "unknown user ids (not in the training data): [stranger]",
        ),
        (
            {"signature_name": "top_k", "inputs": {"user": ["u0"], "k": 500}},
            None,
            400,
            "k must be between 1 and",
        ),
        (
            {"signature_name": "top_k", "inputs": {"user": ["u0"], "k": 2.5}},
            None,
            400,
            "expects integers",
        ),
        ({"signature_name": "top_k", "inputs": {"user": ["u0"]}}, None, 400, "missing ['k']"),
        ({"signature_name": "top_k", "instances": [{"user": "u0", "k": 3}]}, None, 400, "columnar"),
        (
            {"signature_name": "score", "inputs": {"user": ["u0"], "item": [[100], [101, 102]]}},
            None,
            400,
            "ragged",
        ),
        (
            {"signature_name": "score", "inputs": {"user": ["u0"], "item": [[1]]}},
            None,
            400,
            "unknown item ids",
        ),
    ],
)
def test_bad_requests_get_a_clear_400_and_the_server_keeps_serving(
    served, body, raw, status, message
):
    server, *_ = served
    got_status, reply = request(f"{server.url}/v1/models/{NAME}:predict", body, raw)
    assert got_status == status
    assert message in reply["error"]
    assert request(f"{server.url}/v1/models/{NAME}:predict", {"instances": ["u0"]})[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"instances": []},
        {"inputs": {"user": []}},
        {"inputs": []},
        {"signature_name": "top_k", "inputs": {"user": [], "k": 3}},
        {"signature_name": "score", "inputs": {"user": [], "item": []}},
        {"signature_name": "score", "instances": []},
    ],
)
def test_a_request_for_no_users_is_one_400_in_both_formats(served, body):
    """Rows and columns agree: no users is a 400 (TF Serving refuses an empty 'instances')."""
    server, *_ = served
    status, reply = request(f"{server.url}/v1/models/{NAME}:predict", body)
    assert status == 400, reply
    assert "a request needs at least one row (one user)" in reply["error"]


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("POST", "/v1/models/other:predict", 404),
        ("GET", "/v1/models/other", 404),
        ("GET", "/v2/anything", 404),
        ("POST", f"/v1/models/{NAME}:classify", 404),
        ("GET", f"/v1/models/{NAME}:predict", 405),
        ("POST", f"/v1/models/{NAME}/versions/x:predict", 400),
    ],
)
def test_unknown_models_and_paths(served, method, path, status):
    server, *_ = served
    got, reply = request(server.url + path, {"instances": ["u0"]} if method == "POST" else None)
    assert got == status and reply["error"]


def test_a_new_version_is_picked_up_without_restart(tmp_path, string_data):
    base = str(tmp_path)
    export_lib.export_model(
        popularity.Popularity(string_data.item_popularity(), string_data.num_users),
        string_data,
        base,
        default_k=3,
    )
    dot = DotModel(string_data.num_users, string_data.num_items)
    with ModelServer(base, NAME, port=0, poll_seconds=0.1) as server:
        url = f"{server.url}/v1/models/{NAME}"
        assert request(url)[1]["model_version_status"][0]["version"] == "1"
        os.makedirs(os.path.join(base, "7"))  # an empty, unloadable version: reported, skipped
        export_lib.export_model(dot, string_data, base, default_k=3, version=8)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = request(url)[1]["model_version_status"]
            if [(s["version"], s["state"]) for s in statuses] == [("8", "AVAILABLE"), ("7", "END")]:
                break
            time.sleep(0.1)
        assert statuses[0] == {
            "version": "8",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        order, _ = expected_top_k(dot, string_data, np.array([0]), k=3)
        status, body = request(f"{url}:predict", {"instances": ["u0"]})
        assert (
            status == 200
            and body["predictions"][0]["item_ids"] == string_data.item_ids[order[0]].tolist()
        )
        assert request(f"{url}/versions/1:predict", {"instances": ["u0"]})[0] == 404


def test_a_broken_version_is_reported_and_the_previous_one_kept(tmp_path, string_data):
    from mbrec_tf.serving.server import VersionWatcher

    export_lib.export_model(
        popularity.Popularity(string_data.item_popularity(), string_data.num_users),
        string_data,
        str(tmp_path),
    )
    watcher = VersionWatcher(str(tmp_path), max_load_retries=0)  # END at once, no retry
    watcher.refresh()
    os.makedirs(tmp_path / "2")  # no SavedModel inside
    watcher.refresh()
    assert watcher.current().version == 1
    states = {s["version"]: s["state"] for s in watcher.statuses()}
    assert states == {"1": "AVAILABLE", "2": "END"}
    (tmp_path / "1").rename(tmp_path / "old")  # no version left: unloaded, as TF Serving does
    watcher.refresh()
    assert watcher.current() is None
