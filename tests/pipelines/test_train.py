"""End-to-end training runs: results.json, checkpoints and resume, export, the CLI."""

import json
import os
import subprocess
import sys

import pytest

from mbrec_tf import checkpoints, registry, run_directory, training
from mbrec_tf.data.generated import random_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(tmp_path, model, epochs=2, **overrides):
    data = random_data(num_users=24, num_items=30, behaviors=("view", "buy"))
    settings = run_directory.RunSettings(
        model=model,
        dataset="random",
        model_dir=str(tmp_path / model),
        metrics_k=(5, 10),
        verbose=0,
    )
    config = registry.resolve_config(model, "random", {"epochs": epochs, **overrides})
    return data, settings, training.train_and_evaluate(settings, config, data=data)


def test_popularity_run_writes_results_and_export(tmp_path):
    _, settings, results = _run(tmp_path, "popularity")
    with open(os.path.join(settings.model_dir, "results.json")) as f:
        written = json.load(f)
    for split in ("valid", "test"):
        for key in ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "mrr"):
            assert 0.0 <= written[split][key] <= 1.0
    assert set(written["timings"]) == {"train_seconds", "eval_seconds", "epoch_seconds"}
    assert written["history"] == []  # fitted in closed form: no validation curve
    assert written["flags"]["model"] == "popularity"
    assert os.path.isdir(results["export_path"])
    assert os.path.basename(results["export_path"]).isdigit()


@pytest.mark.parametrize("model", sorted(set(registry.REGISTRY) & {"ehcf", "bpr"}))
def test_trainable_run_resumes_from_its_checkpoint(tmp_path, model):
    data, settings, first = _run(tmp_path, model, epochs=2, embedding_dim=8)
    assert first["epochs_trained"] == 2
    ckpt_dir = os.path.join(settings.model_dir, run_directory.CHECKPOINT_SUBDIR)
    assert any(name.startswith("ckpt-") for name in os.listdir(ckpt_dir))
    # Re-running with more epochs continues from epoch 2, not from scratch.
    config = registry.resolve_config(model, "random", {"epochs": 3, "embedding_dim": 8})
    resumed = training.train_and_evaluate(settings, config, data=data)
    assert resumed["epochs_trained"] == 3
    restored, _, _, _ = training.restore_run(settings.model_dir, data=data)
    # The final checkpoint holds the weights that produced the reported test metrics.
    from mbrec_tf.evaluation import Evaluator

    again = Evaluator(data, split="test", ks=(5, 10))(restored)
    for key in ("hr@5", "ndcg@10", "mrr"):
        assert again[key] == pytest.approx(resumed["test"][key], abs=1e-6)
    logs = os.path.join(settings.model_dir, run_directory.LOG_SUBDIR)
    assert os.path.isdir(logs) and os.listdir(logs)


@pytest.mark.parametrize(
    "bad_flag, message",
    [
        ("--metrics_k=ten", "metrics_k"),
        ("--num_negatives=2", "--num_negatives does not apply to --model=popularity"),
        ("--metrics_k=50", "--monitor names a cut-off that --metrics_k does not compute"),
    ],
)
def test_cli_refuses_bad_flags_with_a_clear_message(tmp_path, bad_flag, message):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.train", "--model=popularity", bad_flag]
        + [f"--model_dir={tmp_path}"],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert message in proc.stderr


def test_a_crashed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    """A run killed after epoch 2 of 4 continues at epoch 3 when started again."""
    data = random_data(num_users=24, num_items=30, behaviors=("view", "buy"))
    settings = run_directory.RunSettings(
        model="ehcf", dataset="random", model_dir=str(tmp_path / "run"), metrics_k=(10,), verbose=0
    )
    config = registry.resolve_config("ehcf", "random", {"epochs": 4, "embedding_dim": 8})
    save = checkpoints.CheckpointCallback.on_epoch_end
    epochs_started = []

    def crash_after_second_epoch(self, epoch, logs=None):
        save(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(checkpoints.CheckpointCallback, "on_epoch_end", crash_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        training.train_and_evaluate(settings, config, data=data)
    assert not os.path.exists(os.path.join(settings.model_dir, "results.json"))

    monkeypatch.setattr(checkpoints.CheckpointCallback, "on_epoch_end", save)
    original_fit = training.tf.keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        epochs_started.append(kwargs["initial_epoch"])
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(training.tf.keras.Model, "fit", recording_fit)
    results = training.train_and_evaluate(settings, config, data=data)
    assert epochs_started == [2]
    assert results["epochs_trained"] == 4


def _settings(tmp_path, **overrides) -> run_directory.RunSettings:
    options = dict(
        model="ehcf", dataset="random", model_dir=str(tmp_path / "run"), metrics_k=(10,), verbose=0
    )
    options.update(overrides)
    return run_directory.RunSettings(**options)


def _config(**overrides):
    return registry.resolve_config("ehcf", "random", {"epochs": 2, "embedding_dim": 8, **overrides})


@pytest.fixture(scope="module")
def small_data():
    return random_data(num_users=24, num_items=30, behaviors=("view", "buy"))


def test_a_run_directory_holds_one_configuration(tmp_path, small_data):
    from mbrec_tf.errors import UserError

    training.train_and_evaluate(_settings(tmp_path), _config(), data=small_data)
    with pytest.raises(UserError, match=r"keep_prob: 0.5 -> 0.9.*--overwrite"):
        training.train_and_evaluate(_settings(tmp_path), _config(keep_prob=0.9), data=small_data)
    # Evaluation cadence and more epochs continue the same run.
    resumed = training.train_and_evaluate(
        _settings(tmp_path, eval_every=2), _config(epochs=3), data=small_data
    )
    assert resumed["epochs_trained"] == 3
    fresh = training.train_and_evaluate(
        _settings(tmp_path), _config(keep_prob=0.9), data=small_data, overwrite=True
    )
    assert fresh["config"]["keep_prob"] == 0.9 and fresh["epochs_trained"] == 2
    assert os.path.basename(fresh["export_path"]) == "1"  # the old exports went too


def test_eval_users_evaluates_the_same_seeded_sample_of_both_splits(tmp_path, small_data):
    from mbrec_tf.errors import UserError
    from mbrec_tf.evaluation import Evaluator

    settings = _settings(tmp_path, eval_users=7, seed=5)
    results = training.train_and_evaluate(settings, _config(), data=small_data, export=False)
    assert results["valid"]["num_users"] == 7 and results["test"]["num_users"] == 7
    restored, _, _, _ = training.restore_run(settings.model_dir, data=small_data)
    again = Evaluator(small_data, "test", ks=(10,), sample_users=7, seed=5)(restored)
    assert again["hr@10"] == pytest.approx(results["test"]["hr@10"], abs=1e-6)
    # Another sample would select on other users: another run.
    with pytest.raises(UserError, match="eval_users: 7 -> 8"):
        training.train_and_evaluate(
            _settings(tmp_path, eval_users=8, seed=5), _config(), data=small_data
        )


def test_no_untrained_export_and_unwritable_directories_fail_before_training(tmp_path, small_data):
    from mbrec_tf.errors import UserError

    with pytest.raises(UserError, match="at least one epoch"):
        training.train_and_evaluate(_settings(tmp_path), _config(epochs=0), data=small_data)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    settings = _settings(tmp_path, export_dir=str(blocker / "export"))
    with pytest.raises(UserError, match="cannot write to --export_dir"):
        training.train_and_evaluate(settings, _config(), data=small_data)
    assert not os.path.exists(os.path.join(settings.model_dir, "checkpoints"))


def test_epochs_are_numbered_from_one_everywhere(tmp_path, small_data):
    from tensorboard.backend.event_processing import event_accumulator

    settings = _settings(tmp_path, eval_every=1)
    results = training.train_and_evaluate(settings, _config(epochs=3), data=small_data)
    assert 1 <= results["best_epoch"] <= 3
    selected = os.listdir(os.path.join(settings.model_dir, run_directory.SELECTED_SUBDIR))
    assert f"ckpt-{results['best_epoch']}.index" in selected
    steps = {}
    for split in ("train", "validation"):
        events = event_accumulator.EventAccumulator(os.path.join(settings.model_dir, "logs", split))
        events.Reload()
        tag = "epoch_loss" if split == "train" else "epoch_ndcg@10"
        steps[split] = [event.step for event in _scalars(events, tag)]
    assert steps == {"train": [1, 2, 3], "validation": [1, 2, 3]}
    checkpoints = os.listdir(os.path.join(settings.model_dir, run_directory.CHECKPOINT_SUBDIR))
    assert {"ckpt-1.index", "ckpt-2.index", "ckpt-3.index"} <= set(checkpoints)


def _scalars(events, tag):
    """Scalar events of `tag`, whether written as scalars or as tensors."""
    if tag in events.Tags().get("scalars", []):
        return events.Scalars(tag)
    return events.Tensors(tag)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model=popularity", "--dataset=nope"], "unknown dataset 'nope'"),
        (["--model=ehcf", "--dataset=beibei", "--data_dir={tmp}/tfds"], "--manual_dir"),
    ],
)
def test_user_errors_are_one_line_with_exit_status_2(tmp_path, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.train", f"--model_dir={tmp_path}/run"]
        + [arg.format(tmp=tmp_path) for arg in args],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
