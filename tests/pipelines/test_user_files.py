"""No command deletes or mixes in files it did not write: run and study directories."""

import os
import subprocess
import sys

import pytest

from mbrec_tf import registry, run_directory, training
from mbrec_tf.data.generated import random_data
from mbrec_tf.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(module, *args):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _user_files(directory):
    """A user's own files in `directory`: one at the top, one in a sub-folder."""
    os.makedirs(directory / "sub", exist_ok=True)
    (directory / "precious.txt").write_text("mine")
    (directory / "sub" / "data.csv").write_text("1,2\n")


def _still_there(directory):
    return (directory / "precious.txt").read_text() == "mine" and (
        directory / "sub" / "data.csv"
    ).read_text() == "1,2\n"


@pytest.fixture(scope="module")
def small_data():
    return random_data(num_users=16, num_items=20, behaviors=("view", "buy"))


def _train(model_dir, data, overwrite=False):
    settings = run_directory.RunSettings(
        model="popularity", dataset="random", model_dir=str(model_dir), metrics_k=(5,), verbose=0
    )
    config = registry.resolve_config("popularity", "random", {})
    return training.train_and_evaluate(settings, config, data=data, overwrite=overwrite)


@pytest.mark.parametrize("overwrite", [False, True])
def test_train_refuses_a_folder_that_is_not_a_run(tmp_path, small_data, overwrite):
    folder = tmp_path / "mine"
    _user_files(folder)
    with pytest.raises(UserError, match=r"--model_dir=.*not a training run.*precious\.txt"):
        _train(folder, small_data, overwrite=overwrite)
    assert _still_there(folder)
    assert sorted(os.listdir(folder)) == ["precious.txt", "sub"]  # nothing mixed in


def test_train_overwrite_deletes_only_what_the_run_wrote(tmp_path, small_data):
    run = tmp_path / "run"
    _train(run, small_data)
    _user_files(run)  # the user keeps notes beside the run
    (run / "export" / "notes.txt").write_text("also mine")
    results = _train(run, small_data, overwrite=True)
    assert _still_there(run)
    assert os.path.basename(results["export_path"]) == "1"  # the old run's export went
    assert not (run / "export" / "notes.txt").exists()  # the run's export folder is its own


def test_a_run_folder_with_a_users_file_still_resumes(tmp_path, small_data):
    run = tmp_path / "run"
    _train(run, small_data)
    (run / "notes.txt").write_text("mine")
    _train(run, small_data)  # a run directory, not a foreign one
    assert (run / "notes.txt").read_text() == "mine"


TUNE = [
    "--model=ehcf_sin",
    "--dataset=mbrec_synthetic/tiny",
    "--num_trials=1",
    "--epochs=1",
    "--embedding_dim=8",
    "--learning_rate=0.05",
    "--keep_prob=0.5",
]


def test_tune_overwrite_refuses_a_folder_that_is_not_a_study(tmp_path):
    folder = tmp_path / "mine"
    _user_files(folder)
    proc = _cli("pipelines.tune", *TUNE, f"--data_dir={tmp_path / 'tfds'}", f"--tune_dir={folder}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a tuning study" in lines[0], proc.stderr
    proc = _cli(
        "pipelines.tune",
        *TUNE,
        f"--data_dir={tmp_path / 'tfds'}",
        f"--tune_dir={folder}",
        "--overwrite",
    )
    assert proc.returncode == 2 and "not a tuning study" in proc.stderr
    assert _still_there(folder)
    assert sorted(os.listdir(folder)) == ["precious.txt", "sub"]


def test_tune_overwrite_deletes_only_what_the_study_wrote(tmp_path):
    study = tmp_path / "study"
    args = [*TUNE, f"--data_dir={tmp_path / 'tfds'}", f"--tune_dir={study}"]
    first = _cli("pipelines.tune", *args)
    assert first.returncode == 0, first.stderr[-2000:]
    _user_files(study)
    second = _cli("pipelines.tune", *args, "--overwrite")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "0 of 1 trials done" in second.stdout  # a new study
    assert _still_there(study)
    assert (study / "best.json").exists()
