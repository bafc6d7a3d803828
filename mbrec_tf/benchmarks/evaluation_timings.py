"""Evaluation timings: seconds of one full-ranking evaluation of a trained model's test users."""

from __future__ import annotations

import time
from typing import Any

from mbrec_tf.benchmarks.measures import summary
from mbrec_tf.data.dataset import MultiBehaviorData


def time_evaluation(
    model: Any,
    data: MultiBehaviorData,
    ks: tuple[int, ...],
    repeats: int,
    eval_users: int | None = None,
    seed: int = 42,
):
    """Full-ranking evaluation of the test users (a seeded sample of `eval_users` of them):
    one warm-up call, then timed calls."""
    from mbrec_tf.evaluation import Evaluator

    evaluator = Evaluator(
        data, split="test", ks=ks, protocols=("full",), sample_users=eval_users, seed=seed
    )
    metrics = evaluator(model)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        evaluator(model)
        seconds.append(time.perf_counter() - start)
    return metrics, summary(seconds)
