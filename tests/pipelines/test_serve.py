"""pipelines.serve (as a real process) and pipelines.recommend on an exported model."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from absl import flags

from mbrec_tf.data.generated import random_data
from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib
from pipelines import recommend as recommend_pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def export_base(tmp_path_factory):
    """A popularity export of tiny data with item titles; returns (base dir, data)."""
    data = random_data(num_users=10, num_items=14)
    data = dataclasses.replace(data, item_titles=np.array([f"Movie {i}" for i in range(14)]))
    base = str(tmp_path_factory.mktemp("export"))
    export_lib.export_model(
        popularity.Popularity(data.item_popularity(), data.num_users), data, base, default_k=3
    )
    return base, data


def _expected(data, user: int, k: int) -> list[int]:
    counts = data.item_popularity().copy()
    counts[data.known_target_items()[user].indices] = -1
    return data.item_ids[np.lexsort((np.arange(data.num_items), -counts))[:k]].tolist()


def test_serve_process_answers_predict_requests(export_base):
    base, data = export_base
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [
        sys.executable,
        "-m",
        "pipelines.serve",
        f"--model_base_path={base}",
        "--model_name=pop",
        "--port=0",
        "--grpc_port=0",
        "--model_version_policy=all",
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        first_line = process.stdout.readline()  # "serving model 'pop' from ... at <url>"
        assert "http://127.0.0.1:" in first_line, first_line
        url = first_line.strip().rsplit(" at ", 1)[1]
        body = json.dumps({"instances": ["u1"]}).encode()
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}:predict", data=body, timeout=10) as reply:
                    predictions = json.loads(reply.read())["predictions"]
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        assert predictions[0]["item_ids"] == _expected(data, 1, 3)
        grpc_port = int(first_line.split("gRPC on 127.0.0.1:")[1].split()[0])
        _check_grpc(grpc_port, data)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _check_grpc(port: int, data) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "pop"
    request.inputs["user"].CopyFrom(tf.make_tensor_proto(np.array([b"u1"], dtype=object)))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )
    assert tf.make_ndarray(reply.outputs["item_ids"])[0].tolist() == _expected(data, 1, 3)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model_version_policy=newest"], "--model_version_policy must be latest"),
        (["--model_version_policy=specific:x"], "--model_version_policy must be latest"),
        (["--port=PORT_IN_USE"], "cannot listen on 127.0.0.1"),
        (["--port=0", "--grpc_port=PORT_IN_USE"], "could not bind gRPC"),
    ],
)
def test_serve_flag_mistakes_are_one_line_usage_errors(export_base, capsys, argv, message):
    import socket

    from pipelines import serve as serve_pipeline

    base, _ = export_base
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        argv = [a.replace("PORT_IN_USE", str(taken.getsockname()[1])) for a in argv]
        values = flags.FlagValues()
        serve_pipeline.define_flags(values)
        values(["serve", f"--model_base_path={base}", *argv])
        with pytest.raises(SystemExit) as caught:
            serve_pipeline.make_server(values)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def _flags(*argv: str) -> flags.FlagValues:
    values = flags.FlagValues()
    recommend_pipeline.define_flags(values)
    values(["recommend", *argv])
    return values


def test_recommend_prints_items_with_titles(export_base, capsys):
    base, data = export_base
    values = _flags(f"--export_dir={base}", "--user=u2", "--k=5")
    rows = recommend_pipeline.recommend(values.export_dir, values.user, values.k)
    assert [r.item_id for r in rows] == _expected(data, 2, 5)
    assert rows[0].title == f"Movie {data.item_ids.tolist().index(rows[0].item_id)}"
    table = recommend_pipeline.format_table("u2", rows)
    assert table.splitlines()[0] == "top 5 for user u2:"
    assert "title" in table.splitlines()[1] and rows[4].title in table.splitlines()[6]
    default = recommend_pipeline.recommend(os.path.join(base, "1"), "u2")
    assert len(default) == 3  # the export's default_k


def test_recommend_unknown_user_is_a_clear_error(export_base):
    base, _ = export_base
    with pytest.raises(
        ValueError, match=r"unknown user ids \(not in the training data\): \[ghost\]"
    ):
        recommend_pipeline.recommend(base, "ghost")
