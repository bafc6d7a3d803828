"""EvaluationCallback: History and TensorBoard logging, early stopping, best weights."""

import pathlib

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf.data.generated import random_data
from mbrec_tf.evaluation import EvaluationCallback, Evaluator
from mbrec_tf.models.base import Recommender

NUM_USERS, NUM_ITEMS = 12, 40


class ScheduledOracle(Recommender):
    """Scores `quality` on each user's validation item and 0 elsewhere.

    Its one "training" step per epoch sets `quality` to `schedule[epoch]`, so HR@10 on the
    validation split is 1 in epochs with quality > 0 and 0 (all ties) otherwise.
    """

    def __init__(self, valid_items: np.ndarray, schedule: list[float]):
        super().__init__(num_users=len(valid_items), num_items=NUM_ITEMS)
        self.oracle = tf.constant(np.eye(NUM_ITEMS, dtype=np.float32)[valid_items])
        self.schedule = tf.constant(schedule, dtype=tf.float32)
        self.quality = tf.Variable(0.0, trainable=False)
        self.steps_done = tf.Variable(0, trainable=False)

    def train_step(self, data):
        self.quality.assign(tf.gather(self.schedule, self.steps_done))
        self.steps_done.assign_add(1)
        return {"loss": 1.0 - self.quality}

    def score_users(self, user_ids):
        return self.quality * tf.gather(self.oracle, user_ids)

    def score_pairs(self, user_ids, item_ids):
        return tf.gather(self.score_users(user_ids), item_ids, batch_dims=1)


def fit(data, schedule: list[float], callbacks: list):
    """Trains a ScheduledOracle for one one-step epoch per schedule entry."""
    model = ScheduledOracle(data.valid_items, schedule)
    model.compile()
    inputs = tf.data.Dataset.from_tensors(0).repeat()
    history = model.fit(
        inputs, steps_per_epoch=1, epochs=len(schedule), callbacks=callbacks, verbose=0
    )
    return model, history


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=NUM_USERS, num_items=NUM_ITEMS, seed=2)


def test_metrics_reach_history_and_early_stopping_restores_the_best(data, capsys):
    callback = EvaluationCallback(data, monitor="val_hr@10", patience=2, ks=(10,))
    model, history = fit(data, [0.0, 1.0, 0.0, 0.0, 0.0, 1.0], [callback])
    # Evaluations: 0 (first, best), 1 (improved), 0, 0 -> two without improvement: stop.
    assert history.history["val_hr@10"] == [0.0, 1.0, 0.0, 0.0]
    assert "val_sampled/hr@10" in history.history and "val_groups/1-4/hr@10" in history.history
    assert callback.stopped_epoch == 3
    assert callback.best_epoch == 1
    assert callback.best_metrics["hr@10"] == 1.0
    assert model.quality.numpy() == 1.0  # the weights of epoch 1 are back
    assert Evaluator(data, "valid", ks=(10,))(model)["hr@10"] == 1.0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[valid]")]
    assert len(lines) == 6  # four evaluations, the early stop and the restore
    assert lines[1].startswith("[valid] epoch 2: hr@10 1.0000") and lines[1].endswith("*")


def test_min_delta_and_no_restore(data):
    callback = EvaluationCallback(
        data, patience=0, min_delta=0.5, restore_best_weights=False, ks=(10,), verbose=False
    )
    model, history = fit(data, [0.0, 1.0, 1.0, 1.0], [callback])
    # 0 -> 1 improves by more than 0.5; 1 -> 1 does not: with patience 0 it stops there.
    assert len(history.history["val_hr@10"]) == 3
    assert callback.best_epoch == 1
    assert model.quality.numpy() == 1.0


def test_every_n_epochs_and_the_last_epoch(data):
    callback = EvaluationCallback(data, every_n_epochs=2, ks=(10,), verbose=False)
    model, history = fit(data, [0.0, 1.0, 0.0, 1.0, 0.0], [callback])
    assert [epoch for epoch, _ in callback.evaluations] == [1, 3, 4]
    assert history.history["val_hr@10"] == [1.0, 1.0, 0.0]
    assert callback.best_epoch == 1
    assert model.quality.numpy() == 1.0
    assert callback.eval_seconds > 0


def _scalar_tags(directory: pathlib.Path) -> set[str]:
    tags = set()
    for path in directory.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.parametrize("tensorboard_last", [True, False])
def test_a_tensorboard_callback_after_it_logs_the_metrics(data, tmp_path, tensorboard_last):
    callbacks = [
        EvaluationCallback(data, ks=(10,), verbose=False, log_group_metrics=False),
        tf.keras.callbacks.TensorBoard(log_dir=str(tmp_path), write_graph=False, profile_batch=0),
    ]
    fit(data, [0.0, 1.0], callbacks if tensorboard_last else callbacks[::-1])
    tags = _scalar_tags(tmp_path / "validation")
    if not tensorboard_last:  # placed before, TensorBoard never sees the val_ entries
        assert "epoch_hr@10" not in tags
        return
    assert {"epoch_hr@10", "epoch_ndcg@10", "epoch_mrr", "epoch_sampled/hr@10"} <= tags
    assert not any(tag.startswith("epoch_groups/") for tag in tags)


def test_its_own_summaries_use_the_same_tags(data, tmp_path):
    fit(data, [0.0, 1.0], [EvaluationCallback(data, ks=(10,), verbose=False, log_dir=tmp_path)])
    tags = _scalar_tags(tmp_path / "validation")
    assert {"epoch_hr@10", "epoch_mrr", "epoch_groups/1-4/hr@10"} <= tags


def test_only_the_validation_split(data):
    with pytest.raises(ValueError, match="validation split"):
        EvaluationCallback(Evaluator(data, "test"))
    callback = EvaluationCallback(data, monitor="nope", verbose=False)
    with pytest.raises(KeyError, match="nope"):
        fit(data, [1.0], [callback])


def test_a_diverged_epoch_is_never_selected_and_stops_training(data, capsys):
    callback = EvaluationCallback(data, monitor="hr@10", ks=(10,))
    model, history = fit(data, [1.0, float("nan"), 1.0], [callback])
    assert callback.diverged_epoch == 1 and callback.stopped_epoch == 1
    assert callback.best_epoch == 0
    assert model.quality.numpy() == 1.0  # the weights of epoch 1 (index 0) are back
    assert len(history.history["loss"]) == 2
    out = capsys.readouterr().out
    assert "[valid] epoch 2 diverged" in out
