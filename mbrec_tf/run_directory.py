"""The run directory: its file names, its records (run_config.json, history.json), and the
checks that keep a user's other files safe when a run is started, resumed or overwritten.

A run lives in one `model_dir`:
  run_config.json   model, dataset, seed and the resolved hyper-parameters (written first)
  checkpoints/      ckpt-N: model, optimizer and epoch after epoch N (epochs count from 1);
                    re-running the same configuration resumes from the latest one
  selected/         ckpt-N: the selected weights, those of epoch N (best on validation)
  logs/             TensorBoard event files (train/ and validation/)
  history.json      every validation evaluation (epoch, metrics) and each epoch's seconds,
                    kept across resumes (learning curves, seconds per epoch)
  results.json      {"flags", "config", "valid", "test", "timings", ...} written at the end
  export/<version>/ the SavedModel (unless another export directory is given)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import files
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import RunNotFoundError, UserError

RUN_CONFIG_FILE = "run_config.json"
RESULTS_FILE = "results.json"
HISTORY_FILE = "history.json"
CHECKPOINT_SUBDIR = "checkpoints"
SELECTED_SUBDIR = "selected"
LOG_SUBDIR = "logs"
EXPORT_SUBDIR = "export"
#: Everything a training run writes in its directory: `--overwrite` deletes these, nothing else.
RUN_ENTRIES = (
    RUN_CONFIG_FILE,
    RESULTS_FILE,
    HISTORY_FILE,
    CHECKPOINT_SUBDIR,
    SELECTED_SUBDIR,
    LOG_SUBDIR,
    EXPORT_SUBDIR,
)
_WRITE_PROBE_PREFIX = ".write_check_"


def read_json(path: str) -> dict[str, Any]:
    """A JSON file this toolkit wrote; a damaged one (cut short, edited) is a `UserError`."""
    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path} is damaged (not valid JSON: {error.msg}, line {error.lineno}): restore "
            "it, or start the run afresh with --overwrite"
        ) from None


def read_run_config(model_dir: str) -> dict[str, Any]:
    """The run record of `model_dir`; a `RunNotFoundError` when it holds no training run."""
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise RunNotFoundError(
            f"--model_dir={model_dir} is not a training run directory (no {RUN_CONFIG_FILE}): "
            "pass the --model_dir of a pipelines.train run"
        )
    return read_json(path)


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """Everything about a run that is not a model hyper-parameter."""

    model: str
    dataset: str = "mbrec_synthetic"
    data_dir: str | None = None
    manual_dir: str | None = None
    model_dir: str = "runs/default"
    export_dir: str | None = None
    eval_every: int = 1  # 0: chosen from measured times (see EvaluationCallback)
    metrics_k: tuple[int, ...] = (10, 50, 100, 200)
    eval_users: int | None = None  # a seeded sample of this many users per split; None: all
    monitor: str = "ndcg@10"
    patience: int = 0
    checkpoint_every: int = 1
    seed: int = 42
    verbose: int = 1
    strategy: str = "default"  # the --strategy the run was trained under (distribute.py)

    @property
    def dataset_name(self) -> str:
        """The dataset without its TFDS config (`mbrec_synthetic/tiny` -> `mbrec_synthetic`)."""
        return self.dataset.split("/")[0]


def make_run_config(settings: RunSettings, config: Any, data: MultiBehaviorData) -> dict:
    """The run record: settings, resolved config and data statistics, as JSON values."""
    run_config = {
        "settings": dataclasses.asdict(settings),
        "config": config_lib.to_dict(config),
        "dataset_statistics": data.statistics(),
        "raw_files": (data.raw_files or {}).get("files", {}),
    }
    if data.raw_files:
        run_config["raw_files_dir"] = data.raw_files["manual_dir"]
    return json.loads(json.dumps(run_config, default=str))


#: Run settings that may change when a run directory is resumed: they change neither the
#: model nor which weights are selected (where the data lives, how often to evaluate or
#: checkpoint, what to report, where to export).
RESUMABLE_SETTINGS = (
    "model_dir",
    "data_dir",
    "manual_dir",
    "export_dir",
    "eval_every",
    "checkpoint_every",
    "metrics_k",
    "verbose",
    "strategy",
)


def run_config_changes(
    previous: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """(changes that make another run, changes a resumed run may have) between two records.

    More `epochs` than before continues a run; fewer, or any other hyper-parameter,
    setting or data statistic that differs, is another run.
    """
    other_run, allowed = [], []
    for section in ("settings", "config", "dataset_statistics", "raw_files"):
        old, new = previous.get(section, {}), current.get(section, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) == new.get(key):
                continue
            if section == "raw_files":
                other_run.append(f"raw file {key} differs")
                continue
            change = f"{key}: {old.get(key, '(unset)')} -> {new.get(key, '(unset)')}"
            if section == "settings" and key in RESUMABLE_SETTINGS:
                allowed.append(change)
            elif section == "config" and key == "epochs" and int(new[key]) >= int(old[key]):
                allowed.append(change)
            else:
                other_run.append(change)
    return other_run, allowed


def written_by_toolkit(name: str, entries: Sequence[str]) -> bool:
    """Whether `name` in a directory is one of `entries`, a temporary file of one, or a probe."""
    return (
        name in entries
        or (name.endswith(".tmp") and name[: -len(".tmp")] in entries)
        or name.startswith(_WRITE_PROBE_PREFIX)
    )


def foreign_entries(directory: str, entries: Sequence[str]) -> list[str]:
    """The names in `directory` (if it exists) that are not among `entries` (see above)."""
    if not tf.io.gfile.isdir(directory):
        return []
    names = (n.rstrip("/") for n in tf.io.gfile.listdir(directory))
    return sorted(n for n in names if not written_by_toolkit(n, entries))


def delete_entries(directory: str, entries: Sequence[str]) -> list[str]:
    """Deletes `entries` (and their temporary files) from `directory`; nothing else.

    Returns the names left there (files this toolkit did not write).
    """
    if not tf.io.gfile.isdir(directory):
        return []
    for name in tf.io.gfile.listdir(directory):
        name = name.rstrip("/")
        if not written_by_toolkit(name, entries):
            continue
        path = os.path.join(directory, name)
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
    return foreign_entries(directory, entries)


def check_not_foreign(directory: str, flag: str, marker: str, what: str) -> None:
    """Raises a `UserError` if `directory` holds files but no `marker` (it is not `what`)."""
    if tf.io.gfile.exists(os.path.join(directory, marker)):
        return
    foreign = foreign_entries(directory, ())
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(
            f"--{flag}={directory} holds files that are not {what} ({shown}; no {marker}): "
            "not using it; pass an empty or new directory"
        )


def check_run_directory(model_dir: str) -> None:
    """Refuses (`UserError`) a `model_dir` that holds files but no training run."""
    check_not_foreign(model_dir, "model_dir", RUN_CONFIG_FILE, "a training run")


def delete_run(model_dir: str) -> list[str]:
    """Deletes what a training run wrote in `model_dir`; returns the other names left there."""
    return delete_entries(model_dir, RUN_ENTRIES)


def prepare_run_directory(model_dir: str, run_config: Mapping[str, Any], overwrite: bool) -> None:
    """Makes `model_dir` ready for this run's configuration, or raises a `UserError`.

    A directory is new, empty, or a run: a run there is resumed only if its recorded
    configuration equals this one (up to `RESUMABLE_SETTINGS` and more epochs); with
    `overwrite`, the files a previous run wrote there are deleted first (other files stay).
    (`check_run_directory` refuses a directory that holds other files but no run.)
    """
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    exists = tf.io.gfile.exists(path)
    if overwrite and exists:
        kept = delete_run(model_dir)
        logging.warning(
            "--overwrite: deleted the previous run in %s%s",
            model_dir,
            f" (kept files it did not write: {', '.join(kept)})" if kept else "",
        )
        exists = False
    if exists:
        other_run, allowed = run_config_changes(read_json(path), run_config)
        if other_run:
            raise UserError(
                f"--model_dir={model_dir} holds a run of another configuration "
                f"({'; '.join(other_run)}): use a new --model_dir, or --overwrite to start "
                "it afresh"
            )
        for change in allowed:
            logging.warning("resuming %s with %s (does not change the model)", model_dir, change)
    check_writable(model_dir, "model_dir")
    files.write_json(path, run_config)


def check_writable(directory: str, flag: str) -> None:
    """Creates `directory` and checks that files can be written there (`UserError` if not)."""
    try:
        tf.io.gfile.makedirs(directory)
        probe = os.path.join(directory, f"{_WRITE_PROBE_PREFIX}{os.getpid()}")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "message", None) or error
        raise UserError(
            f"cannot write to --{flag}={directory} ({reason}): choose a writable directory"
        ) from error


def next_epoch(model_dir: str) -> int:
    """The epoch a rerun of the run in `model_dir` starts with (1 + its last checkpoint's)."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))
    return 1 + (int(latest.rsplit("-", 1)[1]) if latest else 0)


def previous_best(
    model_dir: str, monitor: str, initial_epoch: int, selected_epoch: int | None
) -> tuple[int, dict[str, float]] | None:
    """(0-based epoch, metrics) of the best evaluation recorded in `history.json` up to
    `initial_epoch`, the one a resumed run must beat; None when there is none, or when
    its weights are not the run's selected checkpoint (then only new evaluations count)."""
    path = os.path.join(model_dir, HISTORY_FILE)
    if initial_epoch < 1 or not tf.io.gfile.exists(path):
        return None
    best = None
    for evaluation in read_json(path).get("evaluations", []):
        value = evaluation.get(monitor)
        if evaluation["epoch"] > initial_epoch or value is None or math.isnan(value):
            continue
        if best is None or value > best[monitor]:
            best = evaluation
    if best is None:
        return None
    if best["epoch"] != selected_epoch:
        logging.warning(
            "%s: the best evaluation before the resume (epoch %d) has no saved weights; the "
            "selected epoch is chosen among the evaluations from epoch %d on",
            model_dir,
            best["epoch"],
            initial_epoch + 1,
        )
        return None
    metrics = {k: v for k, v in best.items() if k != "epoch"}
    return best["epoch"] - 1, metrics


def update_history(model_dir: str, eval_callback: Any, initial_epoch: int) -> dict[str, list]:
    """Adds this `fit`'s evaluations and epoch times to `<model_dir>/history.json`.

    Entries of epochs after `initial_epoch` replace any earlier record of them (a run killed
    after its last checkpoint repeats those epochs). Per-user-group metrics are left out;
    results.json has them for the selected epoch.
    """
    path = os.path.join(model_dir, HISTORY_FILE)
    history: dict[str, list] = {"evaluations": [], "epoch_seconds": []}
    if tf.io.gfile.exists(path):
        history = read_json(path)
    history["evaluations"] = [e for e in history["evaluations"] if e["epoch"] <= initial_epoch]
    history["epoch_seconds"] = history["epoch_seconds"][:initial_epoch]
    if eval_callback is not None:
        for epoch, metrics in eval_callback.evaluations:
            kept = {k: v for k, v in metrics.items() if not k.startswith("groups/")}
            history["evaluations"].append({"epoch": epoch + 1, **kept})
        history["epoch_seconds"].extend(float(s) for s in eval_callback.epoch_seconds)
    files.write_json(path, history)
    return history


class HistoryCallback(tf.keras.callbacks.Callback):
    """Rewrites `history.json` after every epoch, so a crash keeps the curve so far."""

    def __init__(self, model_dir: str, eval_callback: Any, initial_epoch: int):
        super().__init__()
        self.model_dir = model_dir
        self.eval_callback = eval_callback
        self.initial_epoch = initial_epoch

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        update_history(self.model_dir, self.eval_callback, self.initial_epoch)
