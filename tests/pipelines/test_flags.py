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
