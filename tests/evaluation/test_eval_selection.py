"""Which epochs are evaluated (`EvaluationSchedule`) and which is selected (`BestEpoch`)."""

import math

import pytest

from mbrec_tf.evaluation.schedule import AUTO, EvaluationSchedule
from mbrec_tf.evaluation.selection import BestEpoch


def due_epochs(schedule: EvaluationSchedule, epochs: int, seconds: tuple[float, float]) -> list:
    """The 0-based epochs `schedule` evaluates in a `fit` of `epochs` epochs, each epoch
    taking seconds[0] and each evaluation seconds[1]."""
    due = []
    for epoch in range(epochs):
        if schedule.is_due(epoch, epochs):
            due.append(epoch)
            schedule.evaluated(epoch, seconds[1], [seconds[0]] * (epoch + 1))
    return due


def test_every_n_epochs_and_always_the_last():
    assert due_epochs(EvaluationSchedule(3), 10, (1.0, 1.0)) == [2, 5, 8, 9]
    assert due_epochs(EvaluationSchedule(1), 3, (1.0, 1.0)) == [0, 1, 2]
    with pytest.raises(ValueError, match="every_n_epochs"):
        EvaluationSchedule(-1)


@pytest.mark.parametrize(
    "epoch_seconds, eval_seconds, interval",
    [(2.0, 1.0, 5), (2.0, 0.1, 1), (1.0, 0.25, 5), (1.0, 0.3, 5), (1.0, 0.6, 10), (1.0, 50, 100)],
)
def test_auto_keeps_evaluation_within_a_tenth_of_training(epoch_seconds, eval_seconds, interval):
    """The smallest of 1, 2, 5, 10, ... 100 with eval / (0.1 x epoch) at most that."""
    schedule = EvaluationSchedule(AUTO)
    due = due_epochs(schedule, 40, (epoch_seconds, eval_seconds))
    assert schedule.interval == interval
    assert due == sorted({0, *range(interval, 40, interval), 39})


def test_auto_says_which_interval_once_and_reset_forgets_it():
    schedule = EvaluationSchedule(AUTO)
    line = schedule.evaluated(0, 1.0, [2.0])
    assert line.startswith("[valid] evaluating every 5 epoch(s)")
    assert schedule.evaluated(5, 1.0, [2.0] * 6) is None
    schedule.reset()
    assert schedule.interval == 1 and schedule.is_due(3, 10)
    assert EvaluationSchedule(2).evaluated(1, 100.0, [1.0, 1.0]) is None


def test_best_epoch_improves_only_beyond_min_delta_and_never_with_nan():
    best = BestEpoch("hr@10", min_delta=0.05)
    assert best.update(0, {"hr@10": math.nan}) == (False, True)  # the first is kept
    assert best.update(1, {"hr@10": 0.2}) == (True, True)
    assert best.update(2, {"hr@10": 0.24}) == (False, False)  # within min_delta
    assert best.update(3, {"hr@10": math.nan}) == (False, False)
    assert (best.best_epoch, best.best_metrics, best.evaluations_without_improvement) == (
        1,
        {"hr@10": 0.2},
        2,
    )
    assert best.update(4, {"hr@10": 0.3}) == (True, True)
    assert best.evaluations_without_improvement == 0


def test_best_epoch_of_a_resumed_run_starts_from_the_earlier_best():
    best = BestEpoch("ndcg@10", initial=(3, {"ndcg@10": 0.5}))
    assert best.update(4, {"ndcg@10": 0.4}) == (False, False)
    assert best.best_epoch == 3
    best.reset()
    assert (best.best_epoch, best.best_metrics, best.evaluations_without_improvement) == (
        3,
        {"ndcg@10": 0.5},
        0,
    )
