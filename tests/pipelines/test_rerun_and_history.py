"""A finished run rerun keeps its results; history.json survives a crash and a resume."""

import json
import os

import numpy as np
import pytest

from mbrec_tf import checkpoints, registry, run_directory, training
from mbrec_tf.data.generated import random_data


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
    return run_directory.RunSettings(**{**options, **overrides})


def _config(epochs=3):
    return registry.resolve_config("ehcf", "random", {"epochs": epochs, "embedding_dim": 8})


def _read(path):
    with open(path) as f:
        return json.load(f)


def _kill_after_second_epoch(monkeypatch):
    """Makes the run raise right after checkpointing its second epoch, as a kill would;
    returns the checkpoint callback's own `on_epoch_end`, to put back."""
    save = checkpoints.CheckpointCallback.on_epoch_end

    def crash_after_second_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise RuntimeError("killed")

    monkeypatch.setattr(checkpoints.CheckpointCallback, "on_epoch_end", crash_after_second_epoch)
    return save


def test_rerunning_a_finished_run_keeps_its_results_and_exports_nothing(tmp_path, small_data):
    settings = _settings(tmp_path)
    first = training.train_and_evaluate(settings, _config(), data=small_data)
    results_path = os.path.join(settings.model_dir, run_directory.RESULTS_FILE)
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
    os.remove(
        os.path.join(settings.model_dir, run_directory.RESULTS_FILE)
    )  # killed while exporting
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
    save = _kill_after_second_epoch(monkeypatch)
    with pytest.raises(RuntimeError, match="killed"):
        training.train_and_evaluate(settings, _config(epochs=4), data=small_data)
    history = _read(os.path.join(settings.model_dir, run_directory.HISTORY_FILE))
    assert [e["epoch"] for e in history["evaluations"]] == [1, 2]
    assert len(history["epoch_seconds"]) == 2

    monkeypatch.setattr(checkpoints.CheckpointCallback, "on_epoch_end", save)
    results = training.train_and_evaluate(settings, _config(epochs=4), data=small_data)
    history = _read(os.path.join(settings.model_dir, run_directory.HISTORY_FILE))
    assert [e["epoch"] for e in history["evaluations"]] == [1, 2, 3, 4]
    assert len(history["epoch_seconds"]) == 4
    assert [e["epoch"] for e in results["history"]] == [1, 2, 3, 4]


_MAKE_EVALUATOR = training._make_evaluator


class _ScriptedValidation:
    """The run's validation evaluator with `ndcg@10` replaced by scripted values, one per
    evaluation during `fit` (then the real one); records the weights it saw each time."""

    def __init__(self, evaluator, values):
        self._evaluator = evaluator
        self._values = list(values)
        self.weights = []

    def __getattr__(self, name):
        return getattr(self._evaluator, name)

    def __call__(self, model):
        results = self._evaluator(model)
        self.weights.append([v.numpy() for v in model.trainable_variables])
        if self._values:
            results = {**results, "ndcg@10": self._values.pop(0)}
        return results


def _script_validation(monkeypatch, values):
    """Makes every run's validation evaluator a `_ScriptedValidation` of `values`."""
    scripted = []

    def make_scripted(data, split, settings):
        evaluator = _MAKE_EVALUATOR(data, split, settings)
        if split != "valid":
            return evaluator
        scripted.append(_ScriptedValidation(evaluator, values))
        return scripted[-1]

    monkeypatch.setattr(training, "_make_evaluator", make_scripted)
    return scripted


def _assert_selected_weights(model_dir, data, expected):
    restored, _, _, _ = training.restore_run(model_dir, data=data)
    got_weights = [v.numpy() for v in restored.trainable_variables]
    for got, want in zip(got_weights, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def test_a_killed_run_resumed_keeps_its_best_evaluation_from_before_the_kill(
    tmp_path, small_data, monkeypatch
):
    settings = _settings(tmp_path)
    save = _kill_after_second_epoch(monkeypatch)
    before = _script_validation(monkeypatch, [0.9, 0.1])
    with pytest.raises(RuntimeError, match="killed"):
        training.train_and_evaluate(settings, _config(epochs=4), data=small_data)
    epoch_1_weights = before[0].weights[0]

    monkeypatch.setattr(checkpoints.CheckpointCallback, "on_epoch_end", save)
    _script_validation(monkeypatch, [0.2, 0.3])  # epochs 3 and 4: both below epoch 1
    results = training.train_and_evaluate(settings, _config(epochs=4), data=small_data)
    assert results["best_epoch"] == 1
    assert [e["epoch"] for e in results["history"]] == [1, 2, 3, 4]
    _assert_selected_weights(settings.model_dir, small_data, epoch_1_weights)


def test_a_finished_run_given_more_epochs_selects_among_all_its_evaluations(
    tmp_path, small_data, monkeypatch
):
    for name, later_values, best_epoch in (("better", [0.2, 0.95], 4), ("worse", [0.2, 0.3], 1)):
        settings = _settings(tmp_path, model_dir=str(tmp_path / name))
        first = _script_validation(monkeypatch, [0.9, 0.1])
        assert training.train_and_evaluate(settings, _config(2), data=small_data)["best_epoch"] == 1
        later = _script_validation(monkeypatch, later_values)
        results = training.train_and_evaluate(settings, _config(4), data=small_data)
        assert results["best_epoch"] == best_epoch
        expected = first[0].weights[0] if best_epoch == 1 else later[0].weights[1]
        _assert_selected_weights(settings.model_dir, small_data, expected)
