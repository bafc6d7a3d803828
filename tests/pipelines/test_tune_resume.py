"""A tuning study killed mid-trial and resumed equals the uninterrupted study."""

import csv
import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Runs pipelines.tune, killed (KeyboardInterrupt, as Ctrl-C) when trial KILL_AT starts.
KILLED_TUNE = textwrap.dedent(
    """
    import os, runpy, sys
    from mbrec_tf import training

    train = training.train_and_evaluate
    started = []

    def killed_at_start(*args, **kwargs):
        started.append(1)
        if len(started) == int(os.environ["KILL_AT"]):
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    training.train_and_evaluate = killed_at_start
    sys.argv = ["tune.py", *sys.argv[1:]]
    runpy.run_module("pipelines.tune", run_name="__main__")
    """
)


def _tune(args, kill_at=None):
    command = [sys.executable, "-m", "pipelines.tune"]
    if kill_at is not None:
        command = [sys.executable, "-c", KILLED_TUNE]
    return subprocess.run(
        [*command, *args],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KILL_AT": str(kill_at)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def _completed(tune_dir):
    with open(tune_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    return rows, [
        (row["learning_rate"], row["negative_weight[buy]"], row["ndcg@10"])
        for row in rows
        if row["state"] == "complete"
    ]


def test_a_resumed_study_equals_the_uninterrupted_one(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(
        json.dumps(
            {
                "learning_rate": {"low": 0.01, "high": 0.1, "log": True},
                "negative_weight[buy]": {"low": 0.01, "high": 0.5, "log": True},
            }
        )
    )
    common = [
        "--model=ehcf_sin",
        "--dataset=mbrec_synthetic/tiny",
        f"--data_dir={tmp_path / 'tfds'}",
        f"--search_space={space}",
        "--epochs=1",
        "--embedding_dim=8",
        "--num_trials=3",
    ]
    whole = _tune([*common, f"--tune_dir={tmp_path / 'whole'}"])
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = _tune([*common, f"--tune_dir={tmp_path / 'killed'}"], kill_at=2)
    assert killed.returncode != 0 and "trial 1:" in killed.stdout
    resumed = _tune([*common, f"--tune_dir={tmp_path / 'killed'}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "1 of 3 trials done" in resumed.stdout

    _, expected = _completed(tmp_path / "whole")
    rows, got = _completed(tmp_path / "killed")
    assert got == expected  # the same parameters, in the same order, with the same scores
    assert [row["state"] for row in rows].count("interrupted") == 1
    assert len(set(row["run_dir"] for row in rows)) == 3  # the killed trial's folder reused
    best_whole = json.loads((tmp_path / "whole" / "best.json").read_text())
    best_killed = json.loads((tmp_path / "killed" / "best.json").read_text())
    assert best_killed["overrides"] == best_whole["overrides"]
    assert best_killed["value"] == pytest.approx(best_whole["value"], abs=1e-6)
