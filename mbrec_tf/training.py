"""Training runs in named steps: load, build (inside `strategy.scope()`), restore, fit (or fit
in closed form), select the best epoch, evaluate, export.

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
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import distribute, files, registry
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import RunNotFoundError, UserError
from mbrec_tf.models.base import Recommender

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


def load_data(
    dataset: str, data_dir: str | None = None, manual_dir: str | None = None
) -> MultiBehaviorData:
    """Loads `dataset` ("name" or "name/config") through its TFDS builder."""
    from mbrec_tf.data import loading  # the TFDS stack is only needed when data is loaded

    return loading.load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)


def build(
    spec: registry.ModelSpec,
    config: Any,
    data: MultiBehaviorData,
    strategy: tf.distribute.Strategy | None = None,
) -> Recommender:
    """The model, compiled with its task and optimizer, created inside `strategy.scope()`.

    Closed-form models are built uncompiled: they have no gradient steps. Under a
    distributed strategy the optimizer's slots are created here, in the strategy's scope,
    not inside the first distributed step.
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = spec.build(data, config)
        if not spec.closed_form:
            spec.compile(model, data, config)
            if distribute.is_distributed(strategy):
                distribute.create_optimizer_slots(model)
    return model


def _checkpoint(model: Recommender) -> tuple[tf.train.Checkpoint, tf.Variable]:
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    items: dict[str, Any] = {"model": model, "epoch": epoch}
    if getattr(model, "optimizer", None) is not None:
        items["optimizer"] = model.optimizer
    return tf.train.Checkpoint(**items), epoch


class CheckpointCallback(tf.keras.callbacks.Callback):
    """Saves model, optimizer and the finished epoch count every `every_n_epochs` epochs."""

    def __init__(
        self, manager: tf.train.CheckpointManager, epoch: tf.Variable, every_n_epochs: int = 1
    ):
        super().__init__()
        self.manager = manager
        self.epoch = epoch
        self.every_n_epochs = every_n_epochs

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.epoch.assign(epoch + 1)
        if (epoch + 1) % self.every_n_epochs == 0:
            self.manager.save(checkpoint_number=epoch + 1)


def _one_based(epoch_index: int | None) -> int | None:
    """A 0-based Keras epoch index as the epoch number used everywhere else (1 = first)."""
    return None if epoch_index is None else epoch_index + 1


def _read_json(path: str) -> dict[str, Any]:
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


def checkpoint_damage(path: str) -> str | None:
    """Why the checkpoint at `path` cannot be read whole, or None when it can."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError) as error:  # IndexError: cut short
        return (getattr(error, "message", None) or str(error)).strip().splitlines()[0]
    return None


def _saved_checkpoints(directory: str) -> list[str]:
    """The checkpoints a `CheckpointManager` recorded in `directory`, oldest first."""
    state = tf.train.get_checkpoint_state(directory)
    return list(state.all_model_checkpoint_paths) if state else []


def newest_good_checkpoint(paths: Sequence[str]) -> str | None:
    """The newest of `paths` (oldest first) that reads whole; warns about damaged ones.

    None when there are none; a `UserError` when every one is damaged.
    """
    damaged = []
    for path in reversed(list(paths)):
        reason = checkpoint_damage(path)
        if reason is None:
            if damaged:
                logging.warning("using the previous good checkpoint %s", path)
            return path
        logging.warning("checkpoint %s is damaged (%s): skipping it", path, reason)
        damaged.append(os.path.basename(path))
    if damaged:
        raise UserError(
            f"every checkpoint in {os.path.dirname(paths[0])} is damaged "
            f"({', '.join(damaged)}): start the run afresh with --overwrite"
        )
    return None


def _make_evaluator(data: MultiBehaviorData, split: str, settings: RunSettings):
    """The evaluator of `split` with the run's cut-offs and user sample."""
    from mbrec_tf.evaluation import Evaluator

    return Evaluator(
        data,
        split=split,
        ks=tuple(settings.metrics_k),
        sample_users=settings.eval_users,
        seed=settings.seed,
    )


class _Checkpointing:
    """The run's checkpoints of model, optimizer and finished-epoch count.

    `checkpoints/ckpt-N` holds the state after epoch N (the resume points);
    `selected/ckpt-N` the weights the run selected, those of epoch N (the best validation
    epoch; 0 for a model fitted in closed form), which evaluate and export load; it is saved
    whenever an evaluation becomes the best, so a run killed and resumed still selects among
    the evaluations of before the kill.
    Checkpoints are read from `model_dir` and written to `write_dir` (the same, except on
    a multi-worker run's non-chief workers, which write to a temporary folder).
    """

    def __init__(self, model: Recommender, model_dir: str, write_dir: str | None = None):
        self.checkpoint, self.epoch = _checkpoint(model)
        self.model_dir = model_dir
        write_dir = write_dir or model_dir
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(write_dir, CHECKPOINT_SUBDIR), max_to_keep=3
        )
        self.selected = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(write_dir, SELECTED_SUBDIR), max_to_keep=1
        )

    def restore_latest(self) -> int:
        """Restores the latest resume point, if any; returns the epochs the run is done with.

        A run that stopped early is done with all its epochs (its selected checkpoint says
        so), so it is not trained further.
        """
        resume_points = _saved_checkpoints(os.path.join(self.model_dir, CHECKPOINT_SUBDIR))
        latest = newest_good_checkpoint(resume_points)
        if latest:
            self.checkpoint.restore(latest).expect_partial()
            logging.warning("resumed from %s (epoch %d)", latest, self.finished)
        done = self.finished
        if resume_points and latest != resume_points[-1]:  # fell back: train again from there
            return done
        selected = tf.train.latest_checkpoint(os.path.join(self.model_dir, SELECTED_SUBDIR))
        if selected and checkpoint_damage(selected) is None:
            reader = tf.train.load_checkpoint(selected)
            done = max(done, int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")))
        return done

    @property
    def finished(self) -> int:
        return int(self.epoch.numpy())

    def selected_epoch(self) -> int | None:
        """The epoch of the run's selected weights (None: none saved, or damaged)."""
        path = tf.train.latest_checkpoint(os.path.join(self.model_dir, SELECTED_SUBDIR))
        if path is None or checkpoint_damage(path) is not None:
            return None
        return int(path.rsplit("-", 1)[1])

    def restore_selected(self) -> int | None:
        """Restores the selected weights, if any; returns their epoch (None: none saved)."""
        epoch = self.selected_epoch()
        if epoch is None:
            return None
        path = tf.train.latest_checkpoint(os.path.join(self.model_dir, SELECTED_SUBDIR))
        self.checkpoint.restore(path).expect_partial()
        return epoch

    def save_selected(self, selected_epoch: int, done_through: int) -> None:
        """Saves the current (selected) weights as those of `selected_epoch`."""
        self.epoch.assign(done_through)
        self.selected.save(checkpoint_number=selected_epoch)

    def save_best_so_far(self, epoch_number: int) -> None:
        """Saves the current weights, the best evaluated so far, as the selected ones while
        training goes on (a kill keeps them for the resumed run). The epoch count saved
        with them is that of the latest resume point, so resuming trains no epoch less."""
        finished = self.finished
        latest = self.manager.latest_checkpoint
        self.epoch.assign(int(latest.rsplit("-", 1)[1]) if latest else 0)
        self.selected.save(checkpoint_number=epoch_number)
        self.epoch.assign(finished)


class HistoryCallback(tf.keras.callbacks.Callback):
    """Rewrites `history.json` after every epoch, so a crash keeps the curve so far."""

    def __init__(self, model_dir: str, eval_callback: Any, initial_epoch: int):
        super().__init__()
        self.model_dir = model_dir
        self.eval_callback = eval_callback
        self.initial_epoch = initial_epoch

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        update_history(self.model_dir, self.eval_callback, self.initial_epoch)


class SelectedCheckpointCallback(tf.keras.callbacks.Callback):
    """Saves the weights of each evaluation that becomes the best as the run's selected
    checkpoint, so that a run killed and resumed still has them."""

    def __init__(self, checkpointing: _Checkpointing, eval_callback: Any):
        super().__init__()
        self.checkpointing = checkpointing
        self.eval_callback = eval_callback

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        evaluations = self.eval_callback.evaluations
        if evaluations and evaluations[-1][0] == epoch and self.eval_callback.best_epoch == epoch:
            self.checkpointing.save_best_so_far(epoch + 1)


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
    for evaluation in _read_json(path).get("evaluations", []):
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


class EpochTensorBoard(tf.keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback with epochs numbered from 1, as everywhere else."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch + 1, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch + 1, logs)


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
        other_run, allowed = run_config_changes(_read_json(path), run_config)
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


def fit(
    spec: registry.ModelSpec,
    model: Recommender,
    config: Any,
    data: MultiBehaviorData,
    settings: RunSettings,
    checkpointing: _Checkpointing,
    initial_epoch: int,
    valid_evaluator: Any,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[float, Any]:
    """Keras `fit` from `initial_epoch` with validation, TensorBoard and checkpoints.

    The input goes through `strategy` (`distribute.training_inputs`). Selects the best
    evaluated weights (the evaluation callback restores them) and saves them as the run's
    final checkpoint. Returns the training seconds and the callback.
    """
    strategy = strategy or tf.distribute.get_strategy()
    from mbrec_tf.evaluation import EvaluationCallback

    # A resumed run selects among all its evaluations: those before the resume too.
    earlier_best = previous_best(
        settings.model_dir, settings.monitor, initial_epoch, checkpointing.selected_epoch()
    )
    eval_callback = EvaluationCallback(
        valid_evaluator,
        every_n_epochs=settings.eval_every,
        monitor=settings.monitor,
        patience=settings.patience or None,
        restore_best_weights=True,
        log_group_metrics=False,  # keeps the progress bar readable; results.json has them
        verbose=settings.verbose > 0,
        initial_best=earlier_best,
    )
    callbacks = [
        eval_callback,  # first, so TensorBoard and History see its val_ metrics
        EpochTensorBoard(log_dir=os.path.join(settings.model_dir, LOG_SUBDIR), update_freq="epoch"),
        CheckpointCallback(checkpointing.manager, checkpointing.epoch, settings.checkpoint_every),
        SelectedCheckpointCallback(checkpointing, eval_callback),  # after the resume point
    ]
    if distribute.is_chief(strategy):  # only the chief writes the run's history
        callbacks.insert(1, HistoryCallback(settings.model_dir, eval_callback, initial_epoch))
    # A resumed run continues with fresh shuffles and negatives, not epoch 0's again.
    train_inputs, steps_per_epoch = distribute.training_inputs(
        strategy, spec, data, config, settings.seed + initial_epoch
    )
    start = time.perf_counter()
    model.fit(
        train_inputs,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=settings.verbose,
    )
    train_seconds = time.perf_counter() - start
    # The callback restored the best evaluated weights: they are the run's selected model
    # (or, when that is still an evaluation before a resume, the selected checkpoint has
    # them). A run stopped early (patience, divergence) counts as done, so it is not resumed.
    done = config.epochs if model.stop_training else checkpointing.finished
    if eval_callback.best_epoch is not None and eval_callback.best_epoch < initial_epoch:
        checkpointing.restore_selected()
    selected = (
        checkpointing.finished if eval_callback.best_epoch is None else eval_callback.best_epoch + 1
    )
    checkpointing.save_selected(selected, done)
    return train_seconds, eval_callback


def fit_closed_form(
    spec: registry.ModelSpec,
    model: Recommender,
    config: Any,
    data: MultiBehaviorData,
    checkpointing: _Checkpointing,
) -> float:
    """Fits a closed-form model from the data and checkpoints it; returns the seconds."""
    start = time.perf_counter()
    spec.build_task(data, config).fit(model, spec.training_data(data, config))
    checkpointing.save_selected(0, 0)
    return time.perf_counter() - start


def evaluate_splits(
    model: Recommender,
    data: MultiBehaviorData,
    settings: RunSettings,
    valid_evaluator: Any,
    test: bool = True,
) -> tuple[dict[str, Any], dict[str, Any] | None, float]:
    """Validation and (unless `test=False`) test metrics of the selected model, and the
    seconds they took."""
    start = time.perf_counter()
    valid_metrics = valid_evaluator(model)
    test_metrics = _make_evaluator(data, "test", settings)(model) if test else None
    return valid_metrics, test_metrics, time.perf_counter() - start


def update_history(model_dir: str, eval_callback: Any, initial_epoch: int) -> dict[str, list]:
    """Adds this `fit`'s evaluations and epoch times to `<model_dir>/history.json`.

    Entries of epochs after `initial_epoch` replace any earlier record of them (a run killed
    after its last checkpoint repeats those epochs). Per-user-group metrics are left out;
    results.json has them for the selected epoch.
    """
    path = os.path.join(model_dir, HISTORY_FILE)
    history: dict[str, list] = {"evaluations": [], "epoch_seconds": []}
    if tf.io.gfile.exists(path):
        history = _read_json(path)
    history["evaluations"] = [e for e in history["evaluations"] if e["epoch"] <= initial_epoch]
    history["epoch_seconds"] = history["epoch_seconds"][:initial_epoch]
    if eval_callback is not None:
        for epoch, metrics in eval_callback.evaluations:
            kept = {k: v for k, v in metrics.items() if not k.startswith("groups/")}
            history["evaluations"].append({"epoch": epoch + 1, **kept})
        history["epoch_seconds"].extend(float(s) for s in eval_callback.epoch_seconds)
    files.write_json(path, history)
    return history


def train_and_evaluate(
    settings: RunSettings,
    config: Any,
    data: MultiBehaviorData | None = None,
    flags_record: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    export: bool = True,
    strategy: tf.distribute.Strategy | None = None,
    export_again: bool = False,
    test: bool = True,
) -> dict[str, Any]:
    """One run: load, build, restore, fit, select, evaluate, export.

    The run directory must be new, empty, hold this same configuration (then the run
    resumes), or be given up with `overwrite`; one holding other files is refused.
    `export=False` skips the SavedModel and `test=False` the test split (tuning trials:
    results.json then has `"test": null`). The model trains under `strategy`
    (default: none, one device). A finished run (all its epochs trained, results.json
    written) is not evaluated or exported again: its results are returned as written, with
    "finished_before": True (`export_again` exports its selected weights as a new version).
    Returns the results dictionary that is also written to `<model_dir>/results.json`; a
    multi-worker run's other workers train with the chief and return `{"chief": False}`,
    writing nothing.
    """
    spec = registry.get(settings.model)
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    settings = dataclasses.replace(settings, strategy=distribute.strategy_name(strategy))
    if not spec.closed_form and config.epochs < 1:
        raise UserError(
            f"--epochs={config.epochs}: a {settings.model} run trains at least one epoch "
            "(to evaluate a trained run, use pipelines.evaluate)"
        )
    if settings.eval_every == 0 and settings.strategy == distribute.MULTI_WORKER:
        # Every worker evaluates and must select the same epochs: no timing-based interval.
        settings = dataclasses.replace(settings, eval_every=1)
    if chief:
        check_run_directory(settings.model_dir)  # before anything is written there
        check_writable(settings.model_dir, "model_dir")
        if settings.export_dir:
            check_writable(settings.export_dir, "export_dir")
    tf.keras.utils.set_random_seed(settings.seed)
    if data is None:
        data = load_data(settings.dataset, settings.data_dir, settings.manual_dir)
    run_config = make_run_config(settings, config, data)
    if chief:
        prepare_run_directory(settings.model_dir, run_config, overwrite)
    export_dir = settings.export_dir or os.path.join(settings.model_dir, EXPORT_SUBDIR)
    if chief and export and not settings.export_dir:
        check_writable(export_dir, "export_dir")

    model = build(spec, config, data, strategy)
    write_dir = distribute.worker_directory(settings.model_dir, strategy)
    checkpointing = _Checkpointing(model, settings.model_dir, write_dir)
    # A worker must not resume from the checkpoints the chief is deleting (--overwrite).
    initial_epoch = checkpointing.restore_latest() if chief or not overwrite else 0

    results_path = os.path.join(settings.model_dir, RESULTS_FILE)
    done = spec.closed_form or initial_epoch >= config.epochs
    if done and tf.io.gfile.exists(results_path):
        if not chief:
            return {"chief": False}
        export_again = export and export_again
        return _finished_run(
            model, data, checkpointing, results_path, export_again, export_dir, run_config
        )
    valid_evaluator = _make_evaluator(data, "valid", settings)
    train_seconds, eval_callback = 0.0, None
    selected_epoch = None
    if spec.closed_form:
        train_seconds = fit_closed_form(spec, model, config, data, checkpointing)
    elif initial_epoch < config.epochs:
        train_seconds, eval_callback = fit(
            spec,
            model,
            config,
            data,
            settings,
            checkpointing,
            initial_epoch,
            valid_evaluator,
            strategy,
        )
        if eval_callback.diverged_epoch is not None and eval_callback.best_epoch is None:
            raise UserError(
                f"training diverged in epoch {eval_callback.diverged_epoch + 1} (non-finite "
                "loss or weights) before any evaluation: try a smaller --learning_rate"
            )
    else:  # trained to the end before, but stopped before its results: the selected weights
        selected_epoch = checkpointing.restore_selected()
    if not chief:
        distribute.remove_worker_directory(settings.model_dir, strategy)
        return {"chief": False}
    if distribute.is_distributed(strategy):
        # Evaluate and export the selected weights in a plain model of this process.
        model = restore_run(settings.model_dir, data=data)[0]

    history = update_history(settings.model_dir, eval_callback, initial_epoch)
    valid_metrics, test_metrics, eval_seconds = evaluate_splits(
        model, data, settings, valid_evaluator, test=test
    )
    epoch_seconds = history["epoch_seconds"]
    results = {
        "model": settings.model,
        "dataset": settings.dataset,
        "flags": dict(flags_record or dataclasses.asdict(settings)),
        "config": config_lib.to_dict(config),
        "strategy": settings.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "valid": valid_metrics,
        "test": test_metrics,
        "best_epoch": _one_based(getattr(eval_callback, "best_epoch", None)) or selected_epoch,
        "diverged_epoch": _one_based(getattr(eval_callback, "diverged_epoch", None)),
        "epochs_trained": checkpointing.finished,
        "eval_every": getattr(eval_callback, "interval", None),
        "timings": {
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            # The median: the first epoch also traces the step function.
            "epoch_seconds": statistics.median(epoch_seconds) if epoch_seconds else None,
        },
        "history": history["evaluations"],
        "export_path": None,
    }
    if export:
        from mbrec_tf.serving.export import export_model

        results["export_path"] = export_model(
            model, data, export_dir, metadata={"run_config": run_config}
        )
    files.write_json(results_path, results)
    return results


def next_epoch(model_dir: str) -> int:
    """The epoch a rerun of the run in `model_dir` starts with (1 + its last checkpoint's)."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_SUBDIR))
    return 1 + (int(latest.rsplit("-", 1)[1]) if latest else 0)


def _finished_run(
    model: Recommender,
    data: MultiBehaviorData,
    checkpointing: _Checkpointing,
    results_path: str,
    export_again: bool,
    export_dir: str,
    run_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The written results of a finished run; with `export_again`, a new export of it."""
    results = _read_json(results_path)
    if export_again:
        from mbrec_tf.serving.export import export_model

        checkpointing.restore_selected()
        results["export_path"] = export_model(
            model, data, export_dir, metadata={"run_config": run_config}
        )
        files.write_json(results_path, results)
    logging.warning(
        "%s: the run is finished (%s epochs): kept its results%s",
        os.path.dirname(results_path),
        results.get("epochs_trained"),
        "; exported its selected weights again" if export_again else "",
    )
    return {**results, "finished_before": True}


def restore_run(
    model_dir: str,
    *,
    data: MultiBehaviorData | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
) -> tuple[Recommender, MultiBehaviorData, registry.ModelSpec, Any]:
    """Rebuilds the model of a training run from `model_dir` with its latest checkpoint.

    The run's dataset is loaded again unless `data` is given; `data_dir` / `manual_dir`
    override the ones recorded in the run (e.g. on another machine).
    """
    path = os.path.join(model_dir, RUN_CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise RunNotFoundError(
            f"--model_dir={model_dir} is not a training run directory (no {RUN_CONFIG_FILE}): "
            "pass the --model_dir of a pipelines.train run"
        )
    run_config = _read_json(path)
    settings = run_config["settings"]
    spec = registry.get(settings["model"])
    config = config_lib.make_config(spec.config_cls, run_config["config"])
    if data is None:
        data = load_data(
            settings["dataset"],
            data_dir or settings.get("data_dir"),
            manual_dir or settings.get("manual_dir"),
        )
    model = spec.build(data, config)
    checkpoint, _ = _checkpoint(model)
    latest = None
    for subdir in (SELECTED_SUBDIR, CHECKPOINT_SUBDIR):
        state = tf.train.get_checkpoint_state(os.path.join(model_dir, subdir))
        paths = list(state.all_model_checkpoint_paths) if state else []
        try:
            latest = newest_good_checkpoint(paths)
        except UserError:
            if subdir == CHECKPOINT_SUBDIR:
                raise
        if latest:
            break
    if latest is None:
        raise RunNotFoundError(
            f"--model_dir={model_dir} has no checkpoint yet: its training run has not "
            "finished an epoch"
        )
    # Build the variables before restoring, so every value is restored now, not deferred.
    model.score_pairs(tf.constant([0]), tf.constant([0]))
    checkpoint.restore(latest).expect_partial()
    return model, data, spec, config
