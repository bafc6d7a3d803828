"""pipelines.tune end to end on the tiny synthetic data: trials, resume, best.json, train."""

import csv
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(module, *args, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def space_file(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(
        json.dumps(
            {
                "learning_rate": {"low": 0.01, "high": 0.1, "log": True},
                "negative_weight[buy]": {"choices": [0.05, 0.2]},
            }
        )
    )
    return str(path)


def test_tune_resumes_writes_best_and_train_accepts_it(tmp_path, space_file):
    tune_dir = tmp_path / "study"
    common = [
        "--model=ehcf_sin",
        "--dataset=mbrec_synthetic/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--tune_dir={tune_dir}",
        f"--search_space={space_file}",
        "--epochs=2",
        "--embedding_dim=8",
    ]
    first = _run("pipelines.tune", *common, "--num_trials=2")
    assert "best configuration" in first.stdout

    # A trial left running by a killed process is re-queued with its parameters.
    import optuna

    study = optuna.load_study(study_name="tune", storage=f"sqlite:///{tune_dir / 'study.db'}")
    killed = study.ask()
    killed.suggest_float("learning_rate", 0.01, 0.1, log=True)
    killed.suggest_categorical("negative_weight[buy]", [0.05, 0.2])
    second = _run("pipelines.tune", *common, "--num_trials=3")
    assert "resuming 1 interrupted trial(s)" in second.stdout
    assert "2 of 3 trials done" in second.stdout

    with open(tune_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    states = [row["state"] for row in rows]
    assert states.count("complete") == 3 and states.count("interrupted") == 1
    interrupted = next(row for row in rows if row["state"] == "interrupted")
    resumed = [r for r in rows if r["learning_rate"] == interrupted["learning_rate"]]
    assert any(r["state"] == "complete" for r in resumed)  # same parameters, run to the end
    for row in rows:
        if row["state"] == "complete":
            assert 0.0 <= float(row["ndcg@10"]) <= 1.0
            assert os.path.exists(os.path.join(row["run_dir"], "results.json"))
            with open(os.path.join(row["run_dir"], "history.json")) as f:
                assert json.load(f)["evaluations"]  # validation only: no test metric used
            with open(os.path.join(row["run_dir"], "results.json")) as f:
                trial_results = json.load(f)
            assert trial_results["valid"] and trial_results["test"] is None  # test unread

    best = json.loads((tune_dir / "best.json").read_text())
    assert best["model"] == "ehcf_sin" and best["objective"] == "valid ndcg@10"
    top = max(float(r["ndcg@10"]) for r in rows if r["state"] == "complete")
    assert best["value"] == pytest.approx(top, abs=1e-4)
    assert "learning_rate" in best["overrides"]
    # The trials' length is not carried into the final run: recorded, not an override.
    assert "epochs" not in best["overrides"] and best["tuned_with"] == {"epochs": 2}
    assert best["overrides"]["embedding_dim"] == 8  # other fixed flags are carried

    # A third call with the budget reached trains nothing more.
    third = _run("pipelines.tune", *common, "--num_trials=3")
    assert "3 of 3 trials done" in third.stdout and "trial 4" not in third.stdout

    model_dir = tmp_path / "final"
    train = _run(
        "pipelines.train",
        "--model=ehcf_sin",
        "--dataset=mbrec_synthetic/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--config={tune_dir / 'best.json'}",
        "--epochs=1",
        "--learning_rate=0.3",  # a flag beats the file
        f"--model_dir={model_dir}",
    )
    assert "export:" in train.stdout
    assert "trained 2 epochs; this run trains --epochs=1" in train.stdout
    results = json.loads((model_dir / "results.json").read_text())
    assert results["config"]["learning_rate"] == pytest.approx(0.3)
    assert results["config"]["negative_weight"] == best["overrides"]["negative_weight"]
    assert results["config"]["embedding_dim"] == 8 and results["config"]["epochs"] == 1
    assert results["test"]  # the final run reads the test split


def test_tune_refuses_another_study_and_bad_files(tmp_path, space_file):
    args = [
        "--model=ehcf_sin",
        "--dataset=mbrec_synthetic/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--tune_dir={tmp_path / 'study'}",
        "--num_trials=1",
        "--epochs=1",
        "--embedding_dim=8",
    ]
    _run("pipelines.tune", *args, f"--search_space={space_file}")
    other = _run("pipelines.tune", *args, check=False)  # default space: another study
    assert other.returncode == 2
    assert "holds a study with other space" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"num_negatives": {"low": 1, "high": 3}}')
    refused = _run("pipelines.tune", *args, f"--search_space={bad}", "--overwrite", check=False)
    assert refused.returncode == 2 and "not hyper-parameters of ehcf_sin" in refused.stderr
    wrong = _run(
        "pipelines.train",
        "--model=bpr",
        "--dataset=mbrec_synthetic/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--config={tmp_path / 'study' / 'best.json'}",
        check=False,
    )
    assert wrong.returncode == 2 and "configures --model=ehcf_sin" in wrong.stderr
