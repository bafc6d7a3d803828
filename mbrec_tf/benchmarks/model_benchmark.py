"""Every speed and memory figure of one model on loaded data, and their human-readable report."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import distribute, registry
from mbrec_tf.benchmarks.evaluation_timings import time_evaluation
from mbrec_tf.benchmarks.measures import machine_info, peak_rss_bytes, reset_peak_rss
from mbrec_tf.benchmarks.step_profile import profile_step
from mbrec_tf.benchmarks.training_timings import (
    allreduced_bytes_by_catalog,
    size_record,
    time_als,
    time_training,
    time_user_fractions,
    with_growth,
)
from mbrec_tf.data.dataset import MultiBehaviorData


def run(
    experiment: registry.Experiment,
    data: MultiBehaviorData,
    *,
    warmup_epochs: int = 1,
    timed_epochs: int = 5,
    dense_timed_epochs: int = 3,
    eval_repeats: int = 3,
    ks: tuple[int, ...] = (10, 50, 100, 200),
    seed: int = 42,
    eval_users: int | None = None,
    user_fractions: list[float] | None = None,
    als_iterations: int = 0,
    profile_steps: int = 0,
    threads: int = 0,
    strategy: tf.distribute.Strategy | None = None,
    catalog_sizes: list[int] | None = None,
) -> dict[str, Any]:
    """Every figure of the benchmark for one model on already loaded data."""
    strategy = strategy or tf.distribute.get_strategy()
    spec, config = experiment.spec, experiment.config
    if spec.closed_form:
        raise ValueError(f"{experiment.model} has no training loop to time")
    results: dict[str, Any] = {
        "model": experiment.model,
        "dataset": experiment.dataset,
        "config": config_lib.to_dict(config),
        "dataset_statistics": data.statistics(),
        "machine": machine_info(),
        "strategy": distribute.strategy_name(strategy),
        "replicas": int(strategy.num_replicas_in_sync),
    }

    # Smaller user samples first, so each one's peak RSS is its own (where it can be reset).
    smaller = [f for f in user_fractions or [] if f < 1.0]
    sizes = time_user_fractions(spec, config, data, smaller, warmup_epochs, timed_epochs, seed)
    reset_peak_rss()
    model, train = time_training(spec, config, data, warmup_epochs, timed_epochs, seed, strategy)
    results["train_epoch"] = train
    results["train_epoch_seconds"] = train["median"]
    results["peak_rss_bytes_training"] = peak_rss_bytes()
    print(f"training epoch: {train}", flush=True)
    if user_fractions:
        sizes.append(size_record(1.0, data, train, results["peak_rss_bytes_training"]))
        results["user_fractions"] = with_growth(sizes)
    first_batch = next(iter(spec.build_inputs(data, config, seed)))
    results["steps_per_epoch"] = int(spec.build_inputs(data, config, seed).cardinality())
    results["steps_per_second"] = results["steps_per_epoch"] / train["median"]
    results["allreduced_bytes_per_step"] = distribute.allreduced_bytes(model, first_batch)
    if catalog_sizes:
        results["allreduced_bytes_by_catalog"] = allreduced_bytes_by_catalog(
            experiment, catalog_sizes, seed
        )

    metrics, evaluation = time_evaluation(model, data, ks, eval_repeats, eval_users, seed)
    results["eval"] = evaluation | {"num_users": int(metrics["num_users"]), "ks": list(ks)}
    results["eval_seconds"] = evaluation["median"]
    results["peak_rss_bytes_before_dense"] = peak_rss_bytes()
    del model

    print(f"evaluation: {results['eval']}", flush=True)
    if profile_steps:
        results["profile"] = profile_step(spec, config, data, profile_steps, seed)
        print(f"step profile: {results['profile']}", flush=True)
    if als_iterations:
        results["als_iteration"] = time_als(
            data, config.embedding_dim, als_iterations, threads, seed
        )
        results["ehcf_epoch_over_als_iteration"] = (
            train["median"] / results["als_iteration"]["median"]
        )

    # Only whole-data models have the brute-force "dense" form of their decoupled loss.
    if dense_timed_epochs and getattr(config, "loss", None) == "decoupled":
        dense_config = dataclasses.replace(config, loss="dense")
        _, dense = time_training(
            spec, dense_config, data, warmup_epochs, dense_timed_epochs, seed, strategy
        )
        results["dense_epoch"] = dense
        results["dense_epoch_seconds"] = dense["median"]
        results["dense_speedup"] = dense["median"] / train["median"]
    else:
        results["dense_epoch_seconds"] = None
    # The whole run's peak: the last measurement and the user samples' own peaks.
    results["peak_rss_bytes"] = max(
        [peak_rss_bytes(), *(size["peak_rss_bytes"] for size in results.get("user_fractions", []))]
    )
    if hasattr(os, "getloadavg"):
        results["machine"]["load_average_at_end"] = list(os.getloadavg())
    return results


def report(results: dict[str, Any]) -> str:
    """Human-readable lines of the figures."""
    train = results["train_epoch"]
    lines = [
        f"model {results['model']} on {results['dataset']}: {results['dataset_statistics']}",
        f"training epoch: median {train['median']:.3f} s, min {train['min']:.3f} s "
        f"(epochs {train['all']}, warm-up {train['warmup']}; "
        f"median CPU time {train['cpu_median']:.3f} s)",
    ]
    if results.get("dense_epoch_seconds") is not None:
        dense = results["dense_epoch"]
        lines.append(
            f"dense-loss epoch: median {dense['median']:.3f} s, min {dense['min']:.3f} s "
            f"(median CPU time {dense['cpu_median']:.3f} s) "
            f"-> decoupled is {results['dense_speedup']:.1f}x faster (medians)"
        )
    lines.append(
        f"{results['strategy']} on {results['replicas']} replica(s): "
        f"{results['steps_per_second']:.1f} steps/s ({results['steps_per_epoch']} steps of the "
        f"global batch per epoch); bytes all-reduced per step (what one batch's step exchanges): "
        f"{results['allreduced_bytes_per_step']:,}"
    )
    if "allreduced_bytes_by_catalog" in results:
        sizes = results["allreduced_bytes_by_catalog"]
        pieces = "; ".join(
            f"{size['items']:,} items: {size['allreduced_bytes_per_step']:,}" for size in sizes
        )
        lines.append(
            f"bytes all-reduced per step on generated data ({sizes[0]['users']} users, a batch "
            f"of {sizes[0]['batch_users']}): {pieces}"
        )
    evaluation = results["eval"]
    lines += [
        f"full-ranking evaluation of {evaluation['num_users']} test users at K={evaluation['ks']}:"
        f" median {evaluation['median']:.3f} s, min {evaluation['min']:.3f} s",
        f"peak RSS: {results['peak_rss_bytes'] / 2**30:.2f} GiB "
        f"({results['peak_rss_bytes_before_dense'] / 2**30:.2f} GiB before the dense run)",
    ]
    if "profile" in results:
        profile = results["profile"]
        pieces = ", ".join(f"{k} {v:.3f} s" for k, v in profile["seconds_per_epoch"].items())
        lines.append(
            f"step profile, per epoch of {profile['steps_per_epoch']} steps "
            f"(from {profile['steps_timed']}): {pieces}"
        )
    for size in results.get("user_fractions", []):
        growth = size["growth"]
        lines.append(
            f"{size['fraction']:g} of the users ({size['users']} users, {size['items']} items, "
            f"{size['interactions']} interactions): epoch {size['epoch_seconds']:.3f} s; "
            f"x{growth['seconds']:.2f} time for x{growth['users']:.2f} users, "
            f"x{growth['interactions']:.2f} interactions; peak RSS "
            f"{size['peak_rss_bytes'] / 2**30:.2f} GiB"
        )
    if "als_iteration" in results:
        als = results["als_iteration"]
        lines.append(
            f"implicit ALS iteration ({als['interactions']} pairs, {als['factors']} factors): "
            f"median {als['median']:.3f} s, min {als['min']:.3f} s -> "
            f"{results['model']} epoch / ALS iteration = "
            f"{results['ehcf_epoch_over_als_iteration']:.2f}"
        )
    return "\n".join(lines)
