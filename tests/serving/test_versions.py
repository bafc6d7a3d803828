"""Version policy, background loading with warm-up, atomic switches under load."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import DotModel, expected_top_k

from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib
from mbrec_tf.serving import versions as versions_lib
from mbrec_tf.serving import warmup as warmup_lib
from mbrec_tf.serving.server import ModelServer
from mbrec_tf.serving.versions import VersionPolicy, VersionWatcher

NAME = "recs"


def call(server, method: str, path: str, body: object = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, f"/v1/models/{NAME}{path}", data)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def states(server) -> list[tuple[str, str]]:
    return [(s["version"], s["state"]) for s in call(server, "GET", "")[1]["model_version_status"]]


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def export_pop(data, base: str, version: int | None = None) -> str:
    model = popularity.Popularity(data.item_popularity(), data.num_users)
    return export_lib.export_model(model, data, base, default_k=3, version=version)


def export_dot(data, base: str, version: int | None = None, seed: int = 0) -> str:
    model = DotModel(data.num_users, data.num_items, seed=seed)
    return export_lib.export_model(model, data, base, default_k=3, version=version)


def top_items(data, model, user: int) -> list:
    order, _ = expected_top_k(model, data, np.array([user]), k=3)
    return data.item_ids[order[0]].tolist()


@pytest.mark.parametrize(
    "text,available,selected",
    [
        ("latest", [1, 2, 5], [5]),
        ("latest:2", [1, 2, 5], [2, 5]),
        ("all", [1, 2, 5], [1, 2, 5]),
        ("specific:1,5,9", [1, 2, 5], [1, 5]),
        ("specific:9", [1, 2, 5], []),
        ("latest", [], []),
    ],
)
def test_version_policy_selects_like_tf_serving(text, available, selected):
    policy = VersionPolicy.parse(text)
    assert policy.select(available) == selected
    assert VersionPolicy.parse(str(policy)) == policy


@pytest.mark.parametrize("text", ["", "newest", "latest:0", "latest:x", "specific:", "specific:a"])
def test_bad_version_policies_are_refused(text):
    with pytest.raises(ValueError, match="model_version_policy"):
        VersionPolicy.parse(text)


def test_policy_all_serves_every_version_at_its_own_path(tmp_path, string_data):
    base = str(tmp_path)
    export_pop(string_data, base, version=1)
    export_dot(string_data, base, version=2)
    dot = DotModel(string_data.num_users, string_data.num_items)
    with ModelServer(base, NAME, port=0, poll_seconds=0.1, version_policy="all") as server:
        assert states(server) == [("2", "AVAILABLE"), ("1", "AVAILABLE")]
        body = {"instances": ["u0"]}
        v1 = call(server, "POST", "/versions/1:predict", body)
        v2 = call(server, "POST", "/versions/2:predict", body)
        latest = call(server, "POST", ":predict", body)
        assert v1[0] == v2[0] == latest[0] == 200
        assert v2[1] == latest[1] and v1[1] != v2[1]
        assert v2[1]["predictions"][0]["item_ids"] == top_items(string_data, dot, 0)
        assert call(server, "GET", "/versions/1/metadata")[1]["model_spec"]["version"] == "1"
        # A removed version is unloaded and leaves the status; the other keeps serving.
        shutil.rmtree(os.path.join(base, "1"))
        wait_for(lambda: states(server) == [("2", "AVAILABLE")])
        status, reply = call(server, "POST", "/versions/1:predict", body)
        assert status == 404 and "served versions: [2]" in reply["error"]
        assert call(server, "GET", "/versions/1")[0] == 404


def test_policy_specific_serves_only_the_listed_versions(tmp_path, string_data):
    base = str(tmp_path)
    export_pop(string_data, base, version=1)
    export_dot(string_data, base, version=2)
    with ModelServer(base, NAME, port=0, version_policy="specific:1") as server:
        assert states(server) == [("1", "AVAILABLE")]
        assert call(server, "POST", "/versions/1:predict", {"instances": ["u0"]})[0] == 200
        assert call(server, "POST", ":predict", {"instances": ["u0"]})[0] == 200
        assert call(server, "POST", "/versions/2:predict", {"instances": ["u0"]})[0] == 404


def test_warm_up_replays_the_exports_records(tmp_path, string_data):
    path = export_dot(string_data, str(tmp_path))
    servable = versions_lib.load_servable(path, 1)
    assert versions_lib.warm_up(servable) == 4  # serving_default, top_k, score, user_embedding
    assert versions_lib.warm_up(servable, iterations=2) == 8


def test_a_version_is_loaded_and_warmed_up_off_the_request_path(tmp_path, string_data, monkeypatch):
    """While version 2 loads (held here in its warm-up), version 1 answers every request."""
    base = str(tmp_path)
    export_pop(string_data, base, version=1)
    release = threading.Event()
    real_warm_up = versions_lib.warm_up

    def slow_warm_up(servable, iterations=1):
        if servable.version == 2:
            release.wait(30)
        return real_warm_up(servable, iterations)

    monkeypatch.setattr(versions_lib, "warm_up", slow_warm_up)
    with ModelServer(base, NAME, port=0, poll_seconds=0.05) as server:
        v1_reply = call(server, "POST", ":predict", {"instances": ["u0"]})[1]
        export_dot(string_data, base, version=2)
        wait_for(lambda: ("2", "LOADING") in states(server))
        assert states(server) == [("2", "LOADING"), ("1", "AVAILABLE")]
        for _ in range(5):
            assert call(server, "POST", ":predict", {"instances": ["u0"]})[1] == v1_reply
        status, reply = call(server, "POST", "/versions/2:predict", {"instances": ["u0"]})
        assert status == 404 and "state LOADING" in reply["error"]
        release.set()
        wait_for(lambda: states(server) == [("2", "AVAILABLE")])
        assert call(server, "POST", ":predict", {"instances": ["u0"]})[1] != v1_reply


def test_switch_under_load_fails_no_request(tmp_path, string_data):
    base = str(tmp_path / "base")
    export_pop(string_data, base, version=1)
    staged = export_dot(string_data, str(tmp_path / "staging"), version=2)
    pop = popularity.Popularity(string_data.item_popularity(), string_data.num_users)
    dot = DotModel(string_data.num_users, string_data.num_items)
    answers = {tuple(top_items(string_data, m, 0)) for m in (pop, dot)}
    errors, seen = [], set()
    stop = threading.Event()
    lock = threading.Lock()

    def client(server):
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        while not stop.is_set():
            try:
                connection.request("POST", f"/v1/models/{NAME}:predict", b'{"instances": ["u0"]}')
                reply = connection.getresponse()
                body = json.loads(reply.read())
                items = tuple(body["predictions"][0]["item_ids"])
                with lock:
                    seen.add(items)
                    if reply.status != 200 or items not in answers:
                        errors.append(body)
            except Exception as error:  # noqa: BLE001 - counted, not raised
                with lock:
                    errors.append(repr(error))
                connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        connection.close()

    with ModelServer(base, NAME, port=0, poll_seconds=0.05) as server:
        threads = [threading.Thread(target=client, args=(server,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.3)
            os.rename(staged, os.path.join(base, "2"))
            wait_for(lambda: states(server) == [("2", "AVAILABLE")])
            time.sleep(0.3)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    assert errors == []
    assert seen == answers  # both versions answered, nothing else


def test_a_version_that_fails_to_load_or_warm_up_is_reported_and_the_old_one_serves(
    tmp_path, string_data
):
    base = str(tmp_path)
    export_pop(string_data, base, version=1)
    watcher = VersionWatcher(base)
    watcher.refresh()
    os.makedirs(os.path.join(base, "2"))  # no SavedModel inside
    path = export_dot(string_data, base, version=3)
    with tf.io.TFRecordWriter(
        os.path.join(path, export_lib.ASSETS_EXTRA, warmup_lib.WARMUP_FILE)
    ) as writer:
        writer.write(b"\x0a\x00")  # a PredictionLog holding a ClassifyLog
    watcher.refresh()
    assert watcher.current().version == 1
    statuses = {
        s["version"]: (s["state"], s["status"]["error_message"]) for s in watcher.statuses()
    }
    assert statuses["1"] == ("AVAILABLE", "")
    assert statuses["2"][0] == statuses["3"][0] == "END"
    assert "SavedModel" in statuses["2"][1] and "warm-up record 0" in statuses["3"][1]
    shutil.rmtree(os.path.join(base, "2"))
    shutil.rmtree(os.path.join(base, "3"))
    watcher.refresh()
    assert [s["version"] for s in watcher.statuses()] == ["1"]
