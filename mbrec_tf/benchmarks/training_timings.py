"""Training timings: seconds per epoch (whole data and user samples), implicit's ALS, and
the bytes a synchronous step all-reduces as the catalog grows."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from mbrec_tf import distribute, registry, training
from mbrec_tf.benchmarks.measures import peak_rss_bytes, reset_peak_rss, summary
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError


class EpochTimer(tf.keras.callbacks.Callback):
    """Wall-clock and process CPU seconds of every epoch of a `fit` call.

    CPU seconds (all threads) help to read wall times taken on a shared machine: when other
    processes take cores, wall time grows while CPU time stays roughly put.
    """

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(time.process_time() - self._cpu_start)


def time_training(
    spec: registry.ModelSpec,
    config: Any,
    data: MultiBehaviorData,
    warmup_epochs: int,
    timed_epochs: int,
    seed: int,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Trains a fresh model for warm-up + timed epochs under `strategy` (default: none);
    returns it and the timed epochs."""
    strategy = strategy or tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(seed)
    model = training.build(spec, config, data, strategy)
    timer = EpochTimer()
    inputs, steps = distribute.training_inputs(strategy, spec, data, config, seed)
    model.fit(
        inputs,
        epochs=warmup_epochs + timed_epochs,
        steps_per_epoch=steps,
        callbacks=[timer],
        verbose=0,
    )
    return model, summary(timer.seconds[warmup_epochs:]) | {
        "warmup": [round(s, 4) for s in timer.seconds[:warmup_epochs]],
        "cpu_median": statistics.median(timer.cpu_seconds[warmup_epochs:]),
    }


def user_sample(data: MultiBehaviorData, fraction: float, seed: int) -> MultiBehaviorData:
    """`data` restricted to a seeded sample of `fraction` of its users (in user order)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"user fractions must be in (0, 1], got {fraction}")
    count = max(1, round(fraction * data.num_users))
    if count >= data.num_users:
        return data
    rng = np.random.default_rng(seed)
    return data.with_users(np.sort(rng.choice(data.num_users, count, replace=False)))


def interactions(data: MultiBehaviorData) -> int:
    """Training pairs over every behavior."""
    return int(sum(matrix.nnz for matrix in data.train.values()))


def size_record(
    fraction: float, data: MultiBehaviorData, train: dict[str, Any], peak: int
) -> dict[str, Any]:
    """The figures of one user sample: its sizes, epoch times and peak RSS."""
    return {
        "fraction": fraction,
        "users": data.num_users,
        "items": data.num_items,
        "interactions": interactions(data),
        "epoch": train,
        "epoch_seconds": train["median"],
        "peak_rss_bytes": peak,
    }


def with_growth(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`sizes` (smallest first) with the growth of time, users and interactions from the
    smallest one."""
    first = sizes[0]
    for size in sizes:
        size["growth"] = {
            "seconds": size["epoch_seconds"] / first["epoch_seconds"],
            "users": size["users"] / first["users"],
            "interactions": size["interactions"] / first["interactions"],
        }
    return sizes


def time_user_fractions(
    spec: registry.ModelSpec,
    config: Any,
    data: MultiBehaviorData,
    fractions: list[float],
    warmup_epochs: int,
    timed_epochs: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Training epochs on seeded samples of these shares (< 1) of the users, smallest
    first; each with the peak RSS of its own training (the whole data stays loaded)."""
    sizes = []
    for fraction in sorted(fractions):
        sample = user_sample(data, fraction, seed)
        reset_peak_rss()
        _, train = time_training(spec, config, sample, warmup_epochs, timed_epochs, seed)
        sizes.append(size_record(fraction, sample, train, peak_rss_bytes()))
        print(f"{fraction:g} of the users: {sizes[-1]}", flush=True)
        del sample
    return sizes


def time_als(
    data: MultiBehaviorData, factors: int, iterations: int, threads: int, seed: int
) -> dict[str, Any]:
    """Seconds per iteration of `implicit`'s ALS on every behavior's training pairs."""
    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
    except ImportError as error:
        raise UserError(
            f"--als_iterations needs the benchmark extra ({error}): pip install -e '.[benchmark]'"
        ) from error
    union = sum(data.train.values(), sp.csr_matrix((data.num_users, data.num_items)))
    union = sp.csr_matrix(union, dtype=np.float32)
    union.data[:] = 1.0
    seconds: list[float] = []
    # implicit runs its own threads; one BLAS thread each, as the library recommends.
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=factors, iterations=iterations, num_threads=threads, random_state=seed
        )
        als.fit(union, show_progress=False, callback=lambda _, elapsed, __: seconds.append(elapsed))
    return summary(seconds) | {"interactions": int(union.nnz), "factors": factors}


def allreduced_bytes_by_catalog(
    experiment: registry.Experiment,
    catalog_sizes: list[int],
    seed: int,
    num_users: int = 1000,
) -> list[dict[str, int]]:
    """Bytes a synchronous step all-reduces for the first batch of generated data with
    `num_users` users and each number of items (the model configured as the experiment)."""
    from mbrec_tf.data.generated import random_data

    spec, config = experiment.spec, experiment.config
    records = []
    for num_items in catalog_sizes:
        data = random_data(num_users=num_users, num_items=num_items, seed=seed)
        model = training.build(spec, config, data)
        batch = next(iter(spec.build_inputs(data, config, seed)))
        records.append(
            {
                "items": num_items,
                "users": num_users,
                "batch_users": int(tf.size(batch["user"])),
                "allreduced_bytes_per_step": distribute.allreduced_bytes(model, batch),
            }
        )
    return records
