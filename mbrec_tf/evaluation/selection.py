"""Which evaluated epoch is the best: the one with the highest value of the monitored metric,
a NaN never better than a number."""

from __future__ import annotations

import math
from collections.abc import Mapping


class BestEpoch:
    """The best evaluation so far of `monitor` (higher is better; an improvement must exceed
    the best by more than `min_delta`) and the evaluations since it last improved.

    `initial` is (0-based epoch, results) of the best evaluation of an earlier `fit` that this
    one continues: later evaluations must beat it.
    """

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        initial: tuple[int, Mapping[str, float]] | None = None,
    ):
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.initial = initial
        self.reset()

    def reset(self) -> None:
        """Starts again from `initial` (or from nothing)."""
        self.best_metrics: dict[str, float] | None = None
        self.best_epoch: int | None = None
        if self.initial is not None:
            self.best_epoch, self.best_metrics = self.initial[0], dict(self.initial[1])
        self.evaluations_without_improvement = 0

    def update(self, epoch: int, results: Mapping[str, float]) -> tuple[bool, bool]:
        """Records the evaluation of `epoch`; returns (whether it improved `monitor`, whether
        it is now the best: an improvement, or the first evaluation)."""
        value = results[self.monitor]
        best = math.nan if self.best_metrics is None else self.best_metrics[self.monitor]
        improved = not math.isnan(value) and (math.isnan(best) or value > best + self.min_delta)
        selected = improved or self.best_metrics is None
        if selected:
            self.best_metrics, self.best_epoch = dict(results), epoch
        if improved:
            self.evaluations_without_improvement = 0
        else:
            self.evaluations_without_improvement += 1
        return improved, selected
