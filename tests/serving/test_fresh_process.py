"""Exports reload in a fresh process, and `saved_model_cli` shows and runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import DotModel, expected_top_k

from mbrec_tf.models import popularity
from mbrec_tf.serving import export as export_lib

ENV = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
CLI = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]

# Runs in a new interpreter: loads each export with TensorFlow alone (no mbrec_tf import)
# and prints the top-k and pair scores of the given raw users as JSON.
RELOAD = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    results = []
    for path, users, items in json.loads(sys.argv[1]):
        loaded = tf.saved_model.load(path)
        specs = loaded.signatures["score"].structured_input_signature[1]
        users = tf.constant(users, dtype=specs["user"].dtype)
        items = tf.constant(items, dtype=specs["item"].dtype)
        top = loaded.signatures["serving_default"](user=users)
        scores = loaded.signatures["score"](user=users, item=items)
        ids = top["item_ids"].numpy()
        results.append({
            "item_ids": [[i.decode() if isinstance(i, bytes) else int(i) for i in r] for r in ids],
            "scores": top["scores"].numpy().tolist(),
            "pair_scores": scores["scores"].numpy().tolist(),
        })
    print(json.dumps(results))
    """
)


def _run(command: list[str]) -> str:
    """Runs a command in a fresh process; its stdout, or a failure showing its stderr."""
    process = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=240)
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout


def _plain(values: np.ndarray) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, string_data, int_data):
    """A popularity export with string user ids and a factorised one with int user ids."""
    cases = []
    for name, model, data in (
        (
            "popularity",
            popularity.Popularity(string_data.item_popularity(), string_data.num_users),
            string_data,
        ),
        ("dot", DotModel(int_data.num_users, int_data.num_items), int_data),
    ):
        base = tmp_path_factory.mktemp(name)
        path = export_lib.export_model(model, data, str(base), default_k=4)
        cases.append((model, data, path))
    return cases


def test_reload_in_a_fresh_process_matches_the_model(exported):
    users = np.array([0, 2, 5])
    items = np.array([[0, 1], [2, 3], [4, 5]])
    request = [
        [path, _plain(data.user_ids[users]), [_plain(row) for row in data.item_ids[items]]]
        for _, data, path in exported
    ]
    stdout = _run([sys.executable, "-c", RELOAD, json.dumps(request)])
    results = json.loads(stdout.strip().splitlines()[-1])
    for (model, data, _), result in zip(exported, results, strict=True):
        order, scores = expected_top_k(model, data, users, k=4)
        assert result["item_ids"] == [_plain(row) for row in data.item_ids[order]]
        np.testing.assert_allclose(result["scores"], scores, rtol=1e-6)
        pairs = model.score_pairs(tf.constant(users), tf.constant(items)).numpy()
        np.testing.assert_allclose(result["pair_scores"], pairs, rtol=1e-6)


def test_saved_model_cli_show_lists_the_signatures(exported):
    _, _, path = exported[1]
    shown = _run([*CLI, "show", "--all", "--dir", path])
    for signature in ("serving_default", "top_k", "score", "user_embedding"):
        assert f"signature_def['{signature}']" in shown
    assert "inputs['user'] tensor_info:\n        dtype: DT_INT64" in shown


def test_saved_model_cli_run_returns_the_same_top_k(exported, tmp_path):
    model, data, path = exported[0]
    users = np.array([1, 4])
    outdir = tmp_path / "cli"
    raw = json.dumps([str(u) for u in data.user_ids[users]])
    _run(
        [
            *CLI,
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "top_k",  # k is left out: the SignatureDef default (default_k=4) applies
            "--input_exprs",
            f"user={raw}",
            "--outdir",
            str(outdir),
        ]
    )
    order, scores = expected_top_k(model, data, users, k=4)
    np.testing.assert_array_equal(np.load(outdir / "item_ids.npy"), data.item_ids[order])
    np.testing.assert_allclose(np.load(outdir / "scores.npy"), scores, rtol=1e-6)
