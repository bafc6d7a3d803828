"""pipelines.export: a trained run's checkpoint becomes a new SavedModel version."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from mbrec_tf import registry, run_directory, training
from mbrec_tf.data.generated import random_data
from mbrec_tf.serving import export as export_lib
from pipelines import export as export_pipeline


def _flags(*argv: str) -> flags.FlagValues:
    values = flags.FlagValues()
    export_pipeline.define_flags(values)
    values(["export", *argv])
    return values


@pytest.fixture
def trained_run(tmp_path, monkeypatch):
    """A finished popularity run on tiny random data (the dataset loader returns it)."""
    data = random_data(num_users=12, num_items=16)
    monkeypatch.setattr(training, "load_data", lambda *args, **kwargs: data)
    settings = run_directory.RunSettings(
        model="popularity", dataset="random", model_dir=str(tmp_path / "run"), verbose=0
    )
    config = registry.resolve_config("popularity", "random")
    results = training.train_and_evaluate(settings, config, data=data)
    return settings.model_dir, data, results


def test_export_cli_writes_the_next_version(trained_run):
    model_dir, data, results = trained_run
    assert results["export_path"].endswith(os.path.join("export", "1"))  # by the training run
    path = export_pipeline.run(_flags(f"--model_dir={model_dir}", "--default_k=4"))
    assert path == os.path.join(model_dir, "export", "2")
    meta = export_lib.read_metadata(path)
    assert meta["default_k"] == 4
    assert meta["run"]["run_config"]["settings"]["model"] == "popularity"
    loaded = tf.saved_model.load(path)
    top = loaded.signatures["serving_default"](user=tf.constant(["u0"]))
    counts = data.item_popularity().copy()
    counts[data.known_target_items()[0].indices] = -1
    order = np.lexsort((np.arange(data.num_items), -counts))[:4]
    np.testing.assert_array_equal(top["item_ids"].numpy()[0], data.item_ids[order])


def test_export_cli_explicit_dir_and_version(trained_run, tmp_path):
    model_dir, _, _ = trained_run
    target = tmp_path / "models" / "pop"
    path = export_pipeline.run(
        _flags(f"--model_dir={model_dir}", f"--export_dir={target}", "--version=5")
    )
    assert path == str(target / "5")
    with pytest.raises(FileExistsError):
        export_pipeline.run(
            _flags(f"--model_dir={model_dir}", f"--export_dir={target}", "--version=5")
        )


def test_export_cli_needs_a_run_directory(tmp_path):
    with pytest.raises(flags.IllegalFlagValueError):
        _flags()
    with pytest.raises(FileNotFoundError, match="not a training run directory"):
        export_pipeline.run(_flags(f"--model_dir={tmp_path}"))
