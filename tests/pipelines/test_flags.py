"""Model flags are scoped to `--model`: its own flags and help text, others refused."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.train", *args],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "model, present, absent, own_help",
    [
        ("ehcf", "--negative_weight", "--num_negatives", "decoupled (exact, fast) or dense"),
        ("bpr", "--num_negatives", "--negative_weight", "pairwise (softplus(s_neg - s_pos))"),
    ],
)
def test_help_lists_the_common_flags_and_exactly_the_models_own(model, present, absent, own_help):
    proc = _train(f"--model={model}", "--help")
    shown = proc.stdout + proc.stderr
    for flag in (present, "--model_dir", "--dataset", "--epochs", "--seed"):
        assert f"{flag}:" in shown, flag
    assert f"{absent}:" not in shown
    assert own_help in shown  # the model's own help text for its --loss flag


def test_a_flag_of_another_model_is_refused_with_one_line():
    proc = _train("--model=ehcf", "--num_negatives=3")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "--num_negatives does not apply to --model=ehcf" in lines[0]
    assert "bpr" in lines[0]  # and says which models have it


@pytest.mark.parametrize("args", [("--help",), ("--model=ehcf", "--help"), ("--helpfull",)])
def test_help_exits_0_and_plain_help_shows_the_common_hyper_parameters(args):
    proc = _train(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ("--epochs", "--batch_size", "--learning_rate", "--model", "--model_dir"):
        assert f"{flag}:" in proc.stdout, flag


def test_a_hyper_parameter_without_a_model_still_says_to_name_it():
    proc = _train("--epochs=3")
    assert proc.returncode == 2
    assert "--epochs is a model hyper-parameter: name the model" in proc.stderr


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_commands_print_no_tensorflow_or_tfds_info_lines(tmp_path):
    """train, evaluate, export and recommend share one bootstrap that hides INFO logging."""
    import json
    import re

    data = ["--dataset=mbrec_synthetic/tiny", f"--data_dir={tmp_path / 'tfds'}"]
    run = tmp_path / "run"
    outputs = [_cli("pipelines.train", "--model=popularity", *data, f"--model_dir={run}")]
    outputs.append(
        _cli("pipelines.evaluate", f"--model_dir={run}", f"--data_dir={tmp_path / 'tfds'}")
    )
    outputs.append(_cli("pipelines.export", f"--model_dir={run}"))
    with open(run / "export" / "2" / "assets.extra" / "mbrec_export.json") as f:
        user = json.load(f)["example_users"][0]
    outputs.append(_cli("pipelines.recommend", f"--export_dir={run / 'export'}", f"--user={user}"))
    for proc in outputs:
        info = [line for line in proc.stderr.splitlines() if re.match(r"I\d{4} ", line)]
        assert info == [], proc.args[2]
