"""A finished run rerun keeps its results; history.json survives a crash and a resume."""

import json
import os

import pytest

from mbrec_tf import registry, training
from mbrec_tf.data.testing import random_data


@pytest.fixture(scope="module")
def small_data():
    return random_data(num_users=24, num_items=30, behaviors=("view", "buy"))


def _settings(tmp_path, **overrides):
    options = dict(
        model="ehcf",
        dataset="random",
        model_dir=str(tmp_path / "run"),
        metrics_k=(10,),
        eval_every=1,
        verbose=0,
    )
    return training.RunSettings(**{**options, **overrides})


def _config(epochs=3):
    return registry.resolve_config("ehcf", "random", {"epochs": epochs, "embedding_dim": 8})


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_rerunning_a_finished_run_keeps_its_results_and_exports_nothing(tmp_path, small_data):
    settings = _settings(tmp_path)
    first = training.train_and_evaluate(settings, _config(), data=small_data)
    results_path = os.path.join(settings.model_dir, training.RESULTS_FILE)
    written = _read(results_path)
    again = training.train_and_evaluate(settings, _config(), data=small_data)
    assert again["finished_before"] is True
    assert _read(results_path) == written  # best_epoch, eval_every, timings all kept
    assert again["test"] == first["test"] and again["best_epoch"] == first["best_epoch"]
    assert os.listdir(os.path.join(settings.model_dir, "export")) == ["1"]
    # Asked for, it exports the selected weights again as a new version.
    exported = training.train_and_evaluate(settings, _config(), data=small_data, export_again=True)
    assert os.path.basename(exported["export_path"]) == "2"
    assert _read(results_path)["export_path"] == exported["export_path"]
    assert _read(results_path)["test"] == written["test"]


def test_a_run_stopped_before_its_results_reports_the_selected_weights(tmp_path, small_data):
    from mbrec_tf.evaluation import Evaluator

    settings = _settings(tmp_path)
    first = training.train_and_evaluate(settings, _config(), data=small_data)
    os.remove(os.path.join(settings.model_dir, training.RESULTS_FILE))  # killed while exporting
    again = training.train_and_evaluate(settings, _config(), data=small_data, export=False)
    assert again["best_epoch"] == first["best_epoch"] is not None
    restored, _, _, _ = training.restore_run(settings.model_dir, data=small_data)
    selected = Evaluator(small_data, split="test", ks=(10,))(restored)
    assert again["test"]["ndcg@10"] == pytest.approx(selected["ndcg@10"], abs=1e-6)
    assert again["test"]["ndcg@10"] == pytest.approx(first["test"]["ndcg@10"], abs=1e-6)


def test_history_is_written_as_the_run_goes_and_kept_across_a_resume(
    tmp_path, small_data, monkeypatch
):
    settings = _settings(tmp_path)
    save = training.CheckpointCallback.on_epoch_end

    def crash_after_second_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise RuntimeError("killed")

    monkeypatch.setattr(training.CheckpointCallback, "on_epoch_end", crash_after_second_epoch)
    with pytest.raises(RuntimeError, match="killed"):
        training.train_and_evaluate(settings, _config(epochs=4), data=small_data)
    history = _read(os.path.join(settings.model_dir, training.HISTORY_FILE))
    assert [e["epoch"] for e in history["evaluations"]] == [1, 2]
    assert len(history["epoch_seconds"]) == 2

    monkeypatch.setattr(training.CheckpointCallback, "on_epoch_end", save)
    results = training.train_and_evaluate(settings, _config(epochs=4), data=small_data)
    history = _read(os.path.join(settings.model_dir, training.HISTORY_FILE))
    assert [e["epoch"] for e in history["evaluations"]] == [1, 2, 3, 4]
    assert len(history["epoch_seconds"]) == 4
    assert [e["epoch"] for e in results["history"]] == [1, 2, 3, 4]
