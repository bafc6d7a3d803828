"""pipelines.reproduce on the tiny synthetic data: tables, plots, and reuse of finished runs."""

import json
import os
import subprocess
import sys

import pytest

from mbrec_tf import reproduction

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _reproduce(tmp_path, *extra):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.reproduce",
            "--models=popularity,ehcf_sin",
            "--datasets=mbrec_synthetic/tiny",
            "--seeds=1,2",
            "--hparams=epochs=2,embedding_dim=8",
            f"--data_dir={tmp_path / 'tfds'}",
            f"--output_dir={tmp_path / 'out'}",
            *extra,
        ],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_reproduce_writes_tables_and_plots_then_reuses_runs(tmp_path):
    first = _reproduce(tmp_path)
    assert "reused" not in first
    out = tmp_path / "out"
    table = (out / "table.md").read_text()
    for model in ("popularity", "ehcf_sin"):
        assert f"| {model} |" in table
    assert "± " in table and "sampled HR@10" in table
    assert (out / "table.csv").read_text().count("ehcf_sin,hr@10,") == 1
    assert "S: seconds per epoch" in (out / "runtime.md").read_text()
    for name in ("hr_at_k", "hr100_by_epoch", "hr100_by_group"):
        assert (out / "plots" / f"{name}_mbrec_synthetic_tiny.png").stat().st_size > 1000
    for model in ("popularity", "ehcf_sin"):
        for seed in (1, 2):
            assert (out / "runs" / "mbrec_synthetic_tiny" / model / f"seed_{seed}").is_dir()

    # An earlier report's plot of another dataset, and a file of the user's.
    record = json.loads((out / "plots" / "plots.json").read_text())
    assert sorted(record["plots"]) == sorted(p.name for p in (out / "plots").glob("*.png"))
    (out / "plots" / "hr_at_k_beibei.png").write_bytes(b"old")
    (out / "plots" / "plots.json").write_text(
        json.dumps({"plots": [*record["plots"], "hr_at_k_beibei.png"]})
    )
    (out / "plots" / "mine.png").write_bytes(b"the user's")

    second = _reproduce(tmp_path)
    assert second.count("reused") == 4
    assert (out / "table.md").read_text() == table
    assert not (out / "plots" / "hr_at_k_beibei.png").exists()  # not in this report
    assert (out / "plots" / "mine.png").read_bytes() == b"the user's"  # never ours
    assert json.loads((out / "plots" / "plots.json").read_text()) == record


def test_lambda_points_cover_the_simplex():
    points = reproduction.lambda_points(("view", "cart", "buy"), 2)
    assert len(points) == 6 and all(sum(p) == pytest.approx(1.0) for p in points)
    assert (0.5, 0.5, 0.0) in points and (0.0, 0.0, 1.0) in points
    assert reproduction.lambda_points(("cart", "buy"), 4)[1] == (0.25, 0.75)
    with pytest.raises(ValueError, match="2 or 3 behaviors"):
        reproduction.lambda_points(("pv", "fav", "cart", "buy"), 2)
