"""A run's checkpoints: resume points after each epoch, the selected weights, the callbacks
that write them while `fit` runs, and reading them back with damaged files skipped."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from mbrec_tf.errors import RunNotFoundError, UserError
from mbrec_tf.models.base import Recommender
from mbrec_tf.run_directory import CHECKPOINT_SUBDIR, SELECTED_SUBDIR


def _checkpoint(model: Recommender) -> tuple[tf.train.Checkpoint, tf.Variable]:
    """A checkpoint of `model`, its optimizer (if compiled) and the finished-epoch count."""
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


class Checkpointing:
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
        """The epochs the checkpointed state has finished."""
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


class SelectedCheckpointCallback(tf.keras.callbacks.Callback):
    """Saves the weights of each evaluation that becomes the best as the run's selected
    checkpoint, so that a run killed and resumed still has them."""

    def __init__(self, checkpointing: Checkpointing, eval_callback: Any):
        super().__init__()
        self.checkpointing = checkpointing
        self.eval_callback = eval_callback

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        evaluations = self.eval_callback.evaluations
        if evaluations and evaluations[-1][0] == epoch and self.eval_callback.best_epoch == epoch:
            self.checkpointing.save_best_so_far(epoch + 1)


def restore_weights(model: Recommender, model_dir: str) -> None:
    """Restores into `model` the run's selected weights, or else its latest resume point.

    Damaged checkpoints are skipped; a `RunNotFoundError` when there is none to restore.
    """
    checkpoint, _ = _checkpoint(model)
    latest = None
    for subdir in (SELECTED_SUBDIR, CHECKPOINT_SUBDIR):
        try:
            latest = newest_good_checkpoint(_saved_checkpoints(os.path.join(model_dir, subdir)))
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
