"""Exactness of multi-worker training: 2 local workers equal one process.

`pipelines.launch_local --workers=2` runs two `pipelines.train` processes under
MultiWorkerMirroredStrategy on loopback ports; the same command without it runs one
process with the default strategy. Same seed, data and global batch (16 users, tiny
synthetic data, 2 epochs of 7 steps, no dropout): the training loss after each epoch (from
TensorBoard) must agree to 1e-5 relative (float32 round-off of the all-reduce), and the
final validation and test metrics to 1e-6. Only the chief writes: one results.json, one
export, no worker folder left behind.
"""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"}
#: Stated tolerances: relative on the loss, absolute on the metrics.
LOSS_TOLERANCE, METRIC_TOLERANCE = 1e-5, 1e-6


def epoch_losses(log_dir: str) -> list[float]:
    """The `epoch_loss` scalars of `<log_dir>/train`, in step order."""
    values = {}
    train = os.path.join(log_dir, "train")
    for name in sorted(os.listdir(train)):
        for record in tf.data.TFRecordDataset(os.path.join(train, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == "epoch_loss":
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return [values[step] for step in sorted(values)]


def run(args, timeout=300):
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


def test_two_workers_equal_one_process(tmp_path):
    flags = [
        "--model=ehcf",
        "--dataset=mbrec_synthetic/tiny",
        f"--data_dir={tmp_path / 'data'}",
        "--epochs=2",
        "--keep_prob=1",
        "--batch_size=16",
        "--eval_every=1",
        "--metrics_k=5,10",
        "--seed=1",
        "--verbose=2",
    ]
    single_dir, multi_dir = tmp_path / "single", tmp_path / "multi"
    run(["pipelines.train", *flags, f"--model_dir={single_dir}"])  # also builds the data
    proc = run(["pipelines.launch_local", "--workers=2", "--", *flags, f"--model_dir={multi_dir}"])
    assert "[worker 1] worker done" in proc.stdout
    single = json.loads((single_dir / "results.json").read_text())
    multi = json.loads((multi_dir / "results.json").read_text())
    assert multi["strategy"] == "multi_worker" and multi["replicas"] == 2
    single_losses, multi_losses = (epoch_losses(d / "logs") for d in (single_dir, multi_dir))
    assert len(single_losses) == 2
    assert multi_losses == pytest.approx(single_losses, rel=LOSS_TOLERANCE)
    for split in ("valid", "test"):
        for name in ("hr@5", "hr@10", "ndcg@10", "mrr", "sampled/hr@10"):
            assert multi[split][name] == pytest.approx(single[split][name], abs=METRIC_TOLERANCE)
    assert multi["best_epoch"] == single["best_epoch"]
    assert (multi_dir / "export" / "1" / "saved_model.pb").exists()
    assert sorted(p.name for p in multi_dir.iterdir() if p.name.startswith(".")) == []


def test_a_failing_task_stops_the_cluster_with_one_line(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.launch_local",
            "--workers=2",
            "--",
            "--model=ehcf",
            "--no_such_flag=1",
            f"--model_dir={tmp_path}",
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("launch_local")]
    assert len(lines) == 1 and "failed (exit status 2)" in lines[0], proc.stderr[-2000:]
