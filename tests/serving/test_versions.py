"""Version policy, background loading with warm-up, atomic switches under load."""

from __future__ import annotations

import http.client
import json
import logging
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
    watcher = VersionWatcher(base, max_load_retries=0)
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


def test_a_failed_load_is_retried_with_back_off_then_ends_until_its_files_change(
    tmp_path, string_data, monkeypatch
):
    base = str(tmp_path)
    export_pop(string_data, base, version=1)
    loads: list[float] = []
    real_load = versions_lib.load_servable

    def counted_load(path, version):
        if version == 2:
            loads.append(time.monotonic())
        return real_load(path, version)

    monkeypatch.setattr(versions_lib, "load_servable", counted_load)
    watcher = VersionWatcher(base, max_load_retries=2, load_retry_seconds=0.2)
    broken = os.path.join(base, "2")
    os.makedirs(broken)  # no SavedModel inside
    watcher.refresh()
    assert watcher.current().version == 1
    assert [s["state"] for s in watcher.statuses()] == ["LOADING", "AVAILABLE"]
    deadline = time.monotonic() + 10
    while len(loads) < 3 and time.monotonic() < deadline:
        watcher.refresh()  # polls that come before the retry is due do not load
        time.sleep(0.02)
    waits = np.diff(loads)
    assert len(loads) == 3 and waits[0] >= 0.2 and waits[1] >= 0.4  # the wait doubles
    watcher.refresh()
    time.sleep(1.0)
    watcher.refresh()
    assert len(loads) == 3  # two retries, then END while the files stay as they are
    statuses = {s["version"]: s for s in watcher.statuses()}
    assert (
        statuses["2"]["state"] == "END" and "SavedModel" in statuses["2"]["status"]["error_message"]
    )
    shutil.rmtree(broken)
    export_dot(string_data, str(tmp_path / "staging"), version=2)
    os.rename(str(tmp_path / "staging" / "2"), broken)  # the files changed: tried again
    watcher.refresh()
    assert len(loads) == 4 and watcher.current().version == 2
    assert [s["state"] for s in watcher.statuses()] == ["AVAILABLE"]


def test_a_version_picked_up_mid_copy_is_served_once_the_copy_completes(
    tmp_path, string_data, caplog, capfd
):
    """A version folder whose files are still being copied fails to load; it is retried and
    served once the copy is complete, with one warning line and no traceback."""
    caplog.set_level(logging.DEBUG)
    base = str(tmp_path / "base")
    export_pop(string_data, base, version=1)
    staged = export_dot(string_data, str(tmp_path / "staging"), version=2)
    target = os.path.join(base, "2")
    with ModelServer(
        base, NAME, port=0, poll_seconds=0.05, load_retry_seconds=0.2, max_load_retries=3
    ) as server:
        v1_reply = call(server, "POST", ":predict", {"instances": ["u0"]})[1]
        # The copy so far: everything but the variables, and half of saved_model.pb.
        shutil.copytree(staged, target, ignore=shutil.ignore_patterns("variables", "*.pb"))
        with open(os.path.join(staged, "saved_model.pb"), "rb") as file:
            graph = file.read()
        with open(os.path.join(target, "saved_model.pb"), "wb") as file:
            file.write(graph[: len(graph) // 2])
        wait_for(lambda: "could not load version 2" in caplog.text)
        assert states(server) == [("2", "LOADING"), ("1", "AVAILABLE")]
        assert call(server, "POST", ":predict", {"instances": ["u0"]})[1] == v1_reply
        time.sleep(0.5)  # retries on the unchanged, incomplete copy keep failing
        # The copy completes.
        shutil.copytree(os.path.join(staged, "variables"), os.path.join(target, "variables"))
        with open(os.path.join(target, "saved_model.pb"), "wb") as file:
            file.write(graph)
        wait_for(lambda: states(server) == [("2", "AVAILABLE")], timeout=10)
        dot = DotModel(string_data.num_users, string_data.num_items)
        reply = call(server, "POST", ":predict", {"instances": ["u0"]})[1]
        assert reply["predictions"][0]["item_ids"] == top_items(string_data, dot, 0)
    failures = [r for r in caplog.records if "could not load version 2" in r.getMessage()]
    assert 1 <= len(failures) <= 2 and all("\n" not in r.getMessage() for r in failures)
    assert all(r.levelno == logging.WARNING for r in failures)
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in capfd.readouterr().err


def test_the_serve_flags_set_the_load_retries(tmp_path, string_data):
    from absl import flags

    from pipelines import serve as serve_pipeline

    export_pop(string_data, str(tmp_path))
    values = flags.FlagValues()
    serve_pipeline.define_flags(values)
    values(
        [
            "serve",
            f"--model_base_path={tmp_path}",
            "--port=0",
            "--max_num_load_retries=2",
            "--load_retry_interval_seconds=0.5",
        ]
    )
    server = serve_pipeline.make_server(values)
    try:
        assert server.watcher.max_load_retries == 2
        assert server.watcher.load_retry_seconds == 0.5
    finally:
        server._http.server_close()
