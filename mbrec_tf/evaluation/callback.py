"""A Keras callback that evaluates the validation split during `fit`.

After the epochs its `EvaluationSchedule` names it runs an `Evaluator` on the validation
split, writes each metric into the epoch `logs` as `val_<metric>`, prints one line, tracks
the best evaluation of `monitor` (`BestEpoch`), optionally stops early and, at the end of
training, restores the weights of the best evaluation. An epoch whose training loss or
weights are not finite has diverged: it is never selected, and training stops there.

TensorBoard, pick one of:
  * a `tf.keras.callbacks.TensorBoard` placed AFTER this callback in the `callbacks` list:
    tf_keras calls callbacks in list order with one shared `logs` dict, so it sees the
    `val_` entries and writes them to `<log_dir>/validation` as `epoch_<metric>` (History
    is always appended last by tf_keras, so it gets them either way);
  * or `log_dir=...` here (and no TensorBoard callback), which writes the same
    `epoch_<metric>` scalars to `<log_dir>/validation` itself.
Using both writes every scalar twice.

The test split is never evaluated here: the training pipeline evaluates it once at the end.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.evaluation.evaluator import GROUPS_PREFIX, ITEM_GROUP_PREFIXES, Evaluator
from mbrec_tf.evaluation.schedule import EvaluationSchedule
from mbrec_tf.evaluation.selection import BestEpoch

LOGS_PREFIX = "val_"


class EvaluationCallback(tf.keras.callbacks.Callback):
    """Validation-split evaluation with early stopping and best-weight restoring.

    Args:
      evaluator: an `Evaluator` on the "valid" split, or a `MultiBehaviorData` from which
        one is built with `evaluator_kwargs` (ks, protocols, batch_size, group_bounds).
      every_n_epochs: evaluate after every n-th epoch (and always after the last one);
        `schedule.AUTO` (0) evaluates after the first epoch, then picks the smallest of
        `schedule.AUTO_INTERVALS` that keeps evaluation within `schedule.AUTO_EVAL_SHARE`
        of the training time, from the measured epoch and evaluation times (`interval` says
        which).
      monitor: the metric to select on, a key of the evaluator's results ("hr@10",
        "ndcg@50", "sampled/hr@10", ...; a leading "val_" is accepted). Higher is better.
      patience: stop after this many evaluations in a row without improvement; None never
        stops early.
      min_delta: an improvement must exceed the best value so far by more than this.
      restore_best_weights: at the end of training, load the weights of the best evaluation
        (when a later epoch was trained after it).
      log_dir: if given, also write the metrics with tf.summary to `<log_dir>/validation`
        (leave None when a TensorBoard callback follows this one; see the module doc).
      log_group_metrics: also put the per-user-group metrics into the epoch logs (and so in
        History, the progress bar and TensorBoard); they are in `best_metrics` either way.
      verbose: print one line per evaluation (and one when restoring weights).
      initial_best: (0-based epoch, results) of the best evaluation of an earlier `fit` that
        this one continues (a resumed run): later evaluations must beat it to be selected.
        Its weights are not held here; while it stays the best, `best_epoch` is its epoch
        and the caller restores its weights (from the run's selected checkpoint).

    Attributes:
      best_metrics: the results dict of the best evaluation (no "val_" prefix), or None.
      best_epoch: its 0-based epoch index (as in Keras' `logs`/History), or None.
      diverged_epoch: the 0-based index of the epoch that diverged (training stopped), or
        None.
      evaluations: list of (epoch, results) for every evaluation of the last `fit`.
      eval_seconds: total wall time spent evaluating in the last `fit`.
      epoch_seconds: wall time of each training epoch of the last `fit` (evaluation excluded).
    """

    def __init__(
        self,
        evaluator: Evaluator | MultiBehaviorData,
        *,
        every_n_epochs: int = 1,
        monitor: str = "hr@10",
        patience: int | None = None,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        log_dir: str | os.PathLike | None = None,
        log_group_metrics: bool = True,
        verbose: bool = True,
        initial_best: tuple[int, dict[str, float]] | None = None,
        **evaluator_kwargs: Any,
    ):
        super().__init__()
        if isinstance(evaluator, MultiBehaviorData):
            evaluator = Evaluator(evaluator, "valid", **evaluator_kwargs)
        elif evaluator_kwargs:
            raise ValueError("evaluator_kwargs only apply when passing a MultiBehaviorData")
        if evaluator.split != "valid":
            raise ValueError(
                f"EvaluationCallback evaluates the validation split only, got {evaluator.split!r}"
            )
        if evaluator.num_users == 0:
            raise ValueError(f"{evaluator.data.name} has no validation users to evaluate")
        self.schedule = EvaluationSchedule(every_n_epochs)
        if patience is not None and patience < 0:
            raise ValueError(f"patience must be >= 0 or None, got {patience}")
        self.evaluator = evaluator
        monitor = monitor[len(LOGS_PREFIX) :] if monitor.startswith(LOGS_PREFIX) else monitor
        self.selection = BestEpoch(monitor, min_delta, initial_best)
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.log_group_metrics = log_group_metrics
        self.verbose = verbose
        self._writer: tf.summary.SummaryWriter | None = None
        self._reset()

    def _reset(self) -> None:
        """Forgets an earlier `fit`, so that one callback can serve several."""
        self.schedule.reset()
        self.selection.reset()
        self.evaluations: list[tuple[int, dict[str, float]]] = []
        self.eval_seconds = 0.0
        self.stopped_epoch: int | None = None
        self.diverged_epoch: int | None = None
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0
        self._best_weights: list[np.ndarray] | None = None
        self._last_epoch: int | None = None
        self._pending_lines: list[str] = []

    @property
    def monitor(self) -> str:
        """The metric selected on, without the "val_" prefix."""
        return self.selection.monitor

    @property
    def best_metrics(self) -> dict[str, float] | None:
        """The results of the best evaluation so far (None: none yet)."""
        return self.selection.best_metrics

    @property
    def best_epoch(self) -> int | None:
        """The 0-based epoch of the best evaluation so far (None: none yet)."""
        return self.selection.best_epoch

    @property
    def every_n_epochs(self) -> int:
        """The evaluation interval asked for (`schedule.AUTO`: chosen from timings)."""
        return self.schedule.every_n_epochs

    @property
    def interval(self) -> int:
        """Epochs between evaluations (chosen after the first one with `schedule.AUTO`)."""
        return self.schedule.interval

    # --- Keras hooks -------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reset()
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "validation"))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._print_pending()
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._last_epoch = epoch
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        if self._diverged(logs):
            self.diverged_epoch = self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                kept = (
                    "no epoch to fall back to"
                    if self.best_epoch is None
                    else f"keeping epoch {self.best_epoch + 1}"
                )
                self._pending_lines.append(
                    f"[valid] epoch {epoch + 1} diverged (non-finite loss or weights): "
                    f"stopped, {kept}; a smaller --learning_rate may help"
                )
            return
        if not self.schedule.is_due(epoch, (getattr(self, "params", None) or {}).get("epochs")):
            return
        selection = getattr(self.model, "selection_scorer", None)
        results = self.evaluator(selection() if selection else self.model)
        self.eval_seconds += self.evaluator.last_seconds
        self.evaluations.append((epoch, results))
        line = self.schedule.evaluated(epoch, self.evaluator.last_seconds, self.epoch_seconds)
        if line and self.verbose:
            self._pending_lines.append(line)
        if self.monitor not in results:
            raise KeyError(f"monitor {self.monitor!r} is not a metric; known: {sorted(results)}")

        logged = {
            name: value
            for name, value in results.items()
            if not name.endswith("num_users")
            and (self.log_group_metrics or not name.startswith(GROUPS_PREFIX))
        }
        if logs is not None:
            logs.update({LOGS_PREFIX + name: value for name, value in logged.items()})
        if self._writer is not None:
            with self._writer.as_default():
                for name, value in logged.items():
                    tf.summary.scalar("epoch_" + name, value, step=epoch)
            self._writer.flush()

        improved, selected = self.selection.update(epoch, results)
        if selected and self.restore_best_weights:
            self._best_weights = self.model.get_weights()
        if self.verbose:
            self._print_line(epoch, results, improved)
        waited = self.selection.evaluations_without_improvement
        if not improved and self.patience is not None and waited >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                self._pending_lines.append(
                    f"[valid] early stop at epoch {epoch + 1}: no {self.monitor} improvement in "
                    f"{waited} evaluations"
                )

    def on_train_end(self, logs: dict | None = None) -> None:
        self._print_pending()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if (
            self.restore_best_weights
            and self._best_weights is not None
            and self.best_epoch != self._last_epoch
        ):
            self.model.set_weights(self._best_weights)
            if self.verbose:
                print(
                    f"[valid] restored the weights of epoch {self.best_epoch + 1} "
                    f"({self.monitor} {self.best_metrics[self.monitor]:.4f})",
                    flush=True,
                )

    # --- helpers -----------------------------------------------------------------------------
    def _diverged(self, logs: dict | None) -> bool:
        """Whether the epoch's training loss or any of the model's weights is not finite."""
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return True
        return not all(np.isfinite(w).all() for w in self.model.get_weights())

    def _print_line(self, epoch: int, results: dict[str, float], improved: bool) -> None:
        shown = " ".join(
            f"{name} {value:.4f}"
            for name, value in results.items()
            if name != "num_users" and not name.startswith((GROUPS_PREFIX, *ITEM_GROUP_PREFIXES))
        )
        marker = " *" if improved else ""
        self._pending_lines.append(
            f"[valid] epoch {epoch + 1}: {shown} ({self.evaluator.last_seconds:.2f} s){marker}"
        )

    def _print_pending(self) -> None:
        """Prints the lines of the last evaluation.

        They wait for the next epoch (or the end of training) because the progress bar,
        which tf_keras calls after this callback, ends its epoch line only then.
        """
        for line in self._pending_lines:
            print(line, flush=True)
        self._pending_lines.clear()
