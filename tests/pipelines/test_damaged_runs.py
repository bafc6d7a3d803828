"""Damaged run files are one line (or a fallback), and Ctrl-C says how to resume."""

import glob
import os
import subprocess
import sys
import textwrap

import pytest

from mbrec_tf import registry, run_directory, training
from mbrec_tf.data.generated import random_data
from mbrec_tf.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def small_data():
    return random_data(num_users=24, num_items=30, behaviors=("view", "buy"))


def _settings(tmp_path):
    return run_directory.RunSettings(
        model="ehcf", dataset="random", model_dir=str(tmp_path / "run"), metrics_k=(10,), verbose=0
    )


def _config(epochs):
    return registry.resolve_config("ehcf", "random", {"epochs": epochs, "embedding_dim": 8})


def _cut_in_half(path):
    with open(path, "rb") as f:
        content = f.read()
    with open(path, "wb") as f:
        f.write(content[: len(content) // 2])


def test_a_truncated_run_config_is_one_line(tmp_path, small_data):
    settings = _settings(tmp_path)
    training.train_and_evaluate(settings, _config(1), data=small_data, export=False)
    _cut_in_half(os.path.join(settings.model_dir, run_directory.RUN_CONFIG_FILE))
    with pytest.raises(UserError, match=r"run_config.json is damaged .*--overwrite"):
        training.train_and_evaluate(settings, _config(2), data=small_data, export=False)
    with pytest.raises(UserError, match=r"run_config.json is damaged"):
        training.restore_run(settings.model_dir, data=small_data)


def _data_files(model_dir, epoch):
    pattern = os.path.join(model_dir, run_directory.CHECKPOINT_SUBDIR, f"ckpt-{epoch}.data-*")
    return glob.glob(pattern)


def test_a_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path, small_data, monkeypatch):
    settings = _settings(tmp_path)
    training.train_and_evaluate(settings, _config(3), data=small_data, export=False)
    for path in _data_files(settings.model_dir, 3):
        _cut_in_half(path)
    started = []
    original_fit = training.tf.keras.Model.fit

    def recording_fit(self, *args, **kwargs):
        started.append(kwargs["initial_epoch"])
        return original_fit(self, *args, **kwargs)

    monkeypatch.setattr(training.tf.keras.Model, "fit", recording_fit)
    results = training.train_and_evaluate(settings, _config(4), data=small_data, export=False)
    assert started == [2]  # resumed after epoch 2, the newest checkpoint that reads whole
    assert results["epochs_trained"] == 4


def test_every_checkpoint_damaged_is_one_line(tmp_path, small_data):
    settings = _settings(tmp_path)
    training.train_and_evaluate(settings, _config(2), data=small_data, export=False)
    for epoch in (1, 2):
        for path in _data_files(settings.model_dir, epoch):
            _cut_in_half(path)
    with pytest.raises(UserError, match=r"every checkpoint in .* is damaged .*--overwrite"):
        training.train_and_evaluate(settings, _config(3), data=small_data, export=False)


def test_ctrl_c_during_training_says_how_to_resume(tmp_path):
    """Ctrl-C after epoch 2 of 4: one line naming epoch 3, exit status 130."""
    script = textwrap.dedent(
        """
        import runpy, sys
        from mbrec_tf import checkpoints

        save = checkpoints.CheckpointCallback.on_epoch_end

        def ctrl_c_after_second_epoch(self, epoch, logs=None):
            save(self, epoch, logs)
            if epoch == 1:
                raise KeyboardInterrupt

        checkpoints.CheckpointCallback.on_epoch_end = ctrl_c_after_second_epoch
        sys.argv = ["train.py", *sys.argv[1:]]
        runpy.run_module("pipelines.train", run_name="__main__")
        """
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "--model=ehcf_sin",
            "--dataset=mbrec_synthetic/tiny",
            f"--data_dir={tmp_path / 'tfds'}",
            f"--model_dir={tmp_path / 'run'}",
            "--epochs=4",
            "--embedding_dim=8",
        ],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr  # (the first build's progress bars come before)
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "interrupted; rerun the same command to resume from epoch 3", proc.stderr
