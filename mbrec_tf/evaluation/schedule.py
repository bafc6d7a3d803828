"""Which epochs the validation split is evaluated after: every n-th and the last, or with
`AUTO` at an interval chosen from the measured epoch and evaluation times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: `every_n_epochs` value that picks the interval from measured times.
AUTO = 0
#: With AUTO, the largest share of training time evaluation may take.
AUTO_EVAL_SHARE = 0.1
#: With AUTO, the intervals to choose from (a few round numbers, so runs compare easily).
AUTO_INTERVALS = (1, 2, 5, 10, 20, 50, 100)


class EvaluationSchedule:
    """When to evaluate: after every `every_n_epochs`-th epoch and the last one; with `AUTO`
    after the first epoch, then every `interval` epochs, chosen so that evaluation stays
    within `AUTO_EVAL_SHARE` of the training time."""

    def __init__(self, every_n_epochs: int):
        if every_n_epochs < 0:
            raise ValueError(f"every_n_epochs must be >= 1 or AUTO (0), got {every_n_epochs}")
        self.every_n_epochs = int(every_n_epochs)
        self.reset()

    def reset(self) -> None:
        """Forgets the evaluations of an earlier `fit` (and an interval chosen then)."""
        #: Epochs between evaluations (chosen after the first one with AUTO).
        self.interval = max(1, self.every_n_epochs)
        self._last_evaluated = -1

    def is_due(self, epoch: int, epochs: int | None) -> bool:
        """Whether 0-based `epoch` of a `fit` of `epochs` epochs (None: unknown) is evaluated."""
        if epochs is not None and epoch + 1 >= epochs:
            return True
        if self.every_n_epochs == AUTO:
            return self._last_evaluated < 0 or epoch - self._last_evaluated >= self.interval
        return (epoch + 1) % self.every_n_epochs == 0

    def evaluated(
        self, epoch: int, eval_seconds: float, epoch_seconds: Sequence[float]
    ) -> str | None:
        """Records an evaluation after `epoch`; after the first with AUTO, chooses the interval
        from its seconds and the epochs' and returns a line that says which."""
        first = self._last_evaluated < 0
        self._last_evaluated = epoch
        if self.every_n_epochs != AUTO or not first:
            return None
        mean_epoch_seconds = float(np.mean(epoch_seconds)) or 1e-9
        ratio = eval_seconds / (AUTO_EVAL_SHARE * mean_epoch_seconds)
        self.interval = next((n for n in AUTO_INTERVALS if n >= ratio), AUTO_INTERVALS[-1])
        return (
            f"[valid] evaluating every {self.interval} epoch(s): an evaluation takes "
            f"{eval_seconds:.2f} s, an epoch {mean_epoch_seconds:.2f} s "
            "(--eval_every=N fixes it)"
        )
