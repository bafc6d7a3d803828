r"""Speed and memory of a model: training epoch time, dense-loss epoch time, evaluation time.

  python -m pipelines.benchmark --model=ehcf --dataset=beibei \
      --manual_dir=../shared/data/beibei --output_json=/tmp/bench.json

Measures, in one process:
  - seconds per training epoch (Keras `fit` over the model's own training input, input
    pipeline included): median and min over `--timed_epochs` epochs after
    `--warmup_epochs` (the first epoch includes tracing);
  - the same for the brute-force `--loss=dense` form when the model has a `loss`
    hyper-parameter (EHCF and the other whole-data models), so the speed-up is measured;
  - seconds for one full-ranking evaluation of every test user at `--metrics_k` (median and
    min over `--eval_repeats` calls after a warm-up call);
  - peak resident memory of the process (Linux: VmHWM, also after loading the data and
    during the training alone).
Prints a summary and writes it, with machine, date and command, to `--output_json`.

Scale (shop-sized data such as `mbrec_synthetic/xl`):
  - `--user_fractions=0.1,0.3`: the training epoch also on seeded samples of those shares
    of the users (every item kept), smallest first and before the whole data, with the
    growth of the epoch time against the growth of users and interactions, and each
    size's peak RSS (Linux: the peak is reset before each size; the whole data stays
    loaded throughout, so it is counted in every size);
  - `--als_iterations=N`: N iterations of `implicit`'s ALS (conjugate gradient, the
    library's default) on the union of every behavior's training pairs of the largest
    sample, same d and threads: EHCF seconds per epoch / ALS seconds per iteration
    (`pip install -e ".[benchmark]"`);
  - `--profile_steps=N`: where a step's time goes, over N batches: the input pipeline, the
    whole step on batches already in memory, the item Gram with its gradient, the
    optimizer's update, and the rest (gathers, positives, user Gram, dropout);
  - `--eval_users=N`: time the evaluation of a seeded sample of N test users;
  - `--catalog_sizes=2000,20000`: the bytes a synchronous step all-reduces for one batch
    of generated data with each number of items (the same users and interactions per
    user), beside those of the run's own data;
  - `--threads=T`: T threads for TensorFlow's ops (and ALS); default: every core.
The same command runs on a GPU when TensorFlow sees one (nothing here pins a device).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
from absl import flags

from mbrec_tf import config as config_lib
from mbrec_tf import distribute, files, registry, training
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """All flags of the benchmark."""
    common.define_data_flags()
    common.define_model_flags()
    common.define_strategy_flag()
    flags.adopt_module_key_flags(common)
    flags.DEFINE_integer("warmup_epochs", 1, "Untimed epochs first (tracing).", lower_bound=0)
    flags.DEFINE_integer("timed_epochs", 5, "Timed training epochs.", lower_bound=1)
    flags.DEFINE_integer(
        "dense_timed_epochs", 3, "Timed epochs of the dense loss (0: skip it).", lower_bound=0
    )
    flags.DEFINE_integer("eval_repeats", 3, "Timed full-ranking evaluations.", lower_bound=1)
    flags.DEFINE_list("metrics_k", ["10", "50", "100", "200"], "Cut-offs K of the evaluation.")
    flags.DEFINE_integer("seed", 42, "Random seed.")
    flags.DEFINE_string("output_json", None, "Where to write the figures (JSON).")
    common.define_eval_users_flag()
    flags.DEFINE_list(
        "user_fractions",
        [],
        "Also time training epochs on seeded samples of these shares of the users "
        "(e.g. 0.1,0.3,1), and print how the epoch time grows with them.",
    )
    flags.DEFINE_integer(
        "als_iterations",
        0,
        "Also time this many iterations of implicit's ALS on the same data, d and threads "
        "(needs the benchmark extra: pip install -e '.[benchmark]').",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "profile_steps",
        0,
        "Also time the pieces of the training step over this many batches.",
        lower_bound=0,
    )
    flags.DEFINE_list(
        "catalog_sizes",
        [],
        "Also print the bytes a synchronous step all-reduces for one batch of generated data "
        "with each of these numbers of items (e.g. 2000,20000; same users and interactions "
        "per user), to see whether they grow with the catalog.",
    )
    flags.DEFINE_integer(
        "threads", 0, "Threads for TensorFlow's ops and ALS (0: every core).", lower_bound=0
    )
    flags.mark_flag_as_required("model")


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


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since the start or the last
    `reset_peak_rss` (Linux: VmHWM; elsewhere getrusage, since the start)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reset_peak_rss() -> bool:
    """Starts a new peak-RSS measurement where the OS allows it (Linux); True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def summary(seconds: list[float]) -> dict[str, Any]:
    """Median and min of timed runs, with the raw values."""
    return {
        "median": statistics.median(seconds),
        "min": min(seconds),
        "all": [round(s, 4) for s in seconds],
    }


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


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, library versions and load, to qualify the figures."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if "model name" in line), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = list(os.getloadavg())
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_bytes"] = int(pages * page_size)
    except (ValueError, OSError):
        pass
    return info


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


def profile_step(
    spec: registry.ModelSpec, config: Any, data: MultiBehaviorData, steps: int, seed: int
) -> dict[str, Any]:
    """Seconds per epoch of the training step's pieces, measured over `steps` batches.

    `input_pipeline`: reading the batches (after the first, whose start-up time is
    `input_start_seconds`); `step`: whole training steps on batches already
    in memory; `item_gram`: the item Grams and their gradient; `optimizer`: the update of
    the item table (dense) and of the batch's user rows; `rest`: step − Gram − optimizer
    (gathers, the positives' scores and gradients, the user Gram, dropout, the loss).
    Each is scaled from `steps` batches to the epoch's number of batches.
    """
    tf.keras.utils.set_random_seed(seed)
    model = training.build(spec, config, data)
    inputs = spec.build_inputs(data, config, seed)
    epoch_steps = int(inputs.cardinality().numpy())
    steps = min(steps, epoch_steps)
    iterator = iter(inputs)
    start = time.perf_counter()
    batches = [next(iterator)]
    input_start_seconds = time.perf_counter() - start  # tables to tensors, shuffle buffer
    start = time.perf_counter()
    batches += [next(iterator) for _ in range(steps - 1)]
    input_seconds = (time.perf_counter() - start) * steps / max(1, steps - 1)
    # Batches differ in their number of positives: one generalised trace, not one each.
    step = tf.function(model.train_step, reduce_retracing=True)
    for batch in batches[:3]:
        step(batch)  # traces the step (and its generalisation), builds optimizer slots

    def timed(function, arguments) -> float:
        start = time.perf_counter()
        for argument in arguments:
            function(argument)
        return time.perf_counter() - start

    step_seconds = timed(step, batches)
    items = model.item_table if hasattr(model, "item_table") else None
    pieces: dict[str, float] = {"input_pipeline": input_seconds, "step": step_seconds}
    task = model.task
    if items is not None and hasattr(task, "item_grams"):
        upstream = tf.random.normal([len(task.behaviors), items.shape[1], items.shape[1]])

        every = max(1, int(getattr(task, "gram_every", 1)))

        @tf.function
        def gram_and_gradient():
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(task.item_grams(tf.convert_to_tensor(items)) * upstream)
            return tape.gradient(value, items)

        gram_and_gradient()
        # With the Gram refreshed every N steps, one step in N pays for it.
        refreshes = [None] * max(1, round(steps / every))
        per_gram = timed(lambda _: gram_and_gradient(), refreshes) / len(refreshes)
        pieces["item_gram"] = per_gram * steps / every
        user_table = model.user_table
        dim = items.shape[1]

        def rows_of(ids: tf.Tensor, table: tf.Variable) -> tf.IndexedSlices:
            return tf.IndexedSlices(
                tf.zeros([tf.size(ids), dim]), ids, tf.shape(table, out_type=tf.int32)
            )

        @tf.function(reduce_retracing=True)
        def update(batch):
            users = tf.cast(batch["user"], tf.int32)
            if every > 1:  # item rows of the batch's positives only (a sparse update)
                positives = [tf.cast(r.values, tf.int32) for r in batch["positives"].values()]
                item_gradient = rows_of(tf.unique(tf.concat(positives, 0))[0], items)
            else:
                item_gradient = tf.zeros_like(items)
            model.optimizer.apply_gradients(
                [(item_gradient, items), (rows_of(users, user_table), user_table)]
            )

        for batch in batches[:3]:
            update(batch)
        pieces["optimizer"] = timed(update, batches)
        pieces["rest"] = step_seconds - pieces["item_gram"] - pieces["optimizer"]
    scale = epoch_steps / steps
    return {
        "input_start_seconds": input_start_seconds,
        "steps_timed": steps,
        "steps_per_epoch": epoch_steps,
        "seconds_per_epoch": {name: value * scale for name, value in pieces.items()},
    }


def run(
    model_name: str,
    dataset: str,
    data: MultiBehaviorData,
    overrides: dict[str, Any],
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
    spec = registry.get(model_name)
    if spec.closed_form:
        raise ValueError(f"{model_name} has no training loop to time")
    config = registry.resolve_config(model_name, dataset, overrides)
    results: dict[str, Any] = {
        "model": model_name,
        "dataset": dataset,
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
            model_name, dataset, overrides, catalog_sizes, seed
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


def allreduced_bytes_by_catalog(
    model_name: str,
    dataset: str,
    overrides: dict[str, Any],
    catalog_sizes: list[int],
    seed: int,
    num_users: int = 1000,
) -> list[dict[str, int]]:
    """Bytes a synchronous step all-reduces for the first batch of generated data with
    `num_users` users and each number of items (the model configured as for `dataset`)."""
    from mbrec_tf.data.generated import random_data

    spec = registry.get(model_name)
    records = []
    for num_items in catalog_sizes:
        data = random_data(num_users=num_users, num_items=num_items, seed=seed)
        config = registry.resolve_config(model_name, dataset, overrides)
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


def main(argv: list[str]) -> None:
    del argv
    strategy = common.run_strategy()
    start = time.perf_counter()
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    strategy = common.run_strategy()
    start = time.perf_counter()
    data = training.load_data(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir)
    load_seconds = time.perf_counter() - start
    peak_rss_after_load = peak_rss_bytes()
    results = run(
        FLAGS.model,
        FLAGS.dataset.split("/")[0],
        data,
        common.model_overrides(FLAGS.model),
        warmup_epochs=FLAGS.warmup_epochs,
        timed_epochs=FLAGS.timed_epochs,
        dense_timed_epochs=FLAGS.dense_timed_epochs,
        eval_repeats=FLAGS.eval_repeats,
        ks=tuple(int(k) for k in FLAGS.metrics_k),
        seed=FLAGS.seed,
        eval_users=FLAGS.eval_users,
        user_fractions=[float(f) for f in FLAGS.user_fractions],
        als_iterations=FLAGS.als_iterations,
        profile_steps=FLAGS.profile_steps,
        threads=FLAGS.threads or (os.cpu_count() or 1),
        strategy=strategy,
        catalog_sizes=[int(size) for size in FLAGS.catalog_sizes],
    )
    results["load_seconds"] = load_seconds
    results["peak_rss_bytes_after_load"] = peak_rss_after_load
    results["peak_rss_bytes"] = max(results["peak_rss_bytes"], peak_rss_after_load)
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["command"] = " ".join(["python -m pipelines.benchmark", *sys.argv[1:]])
    print(report(results))
    if FLAGS.output_json and distribute.is_chief(strategy):
        files.write_json(FLAGS.output_json, results)
        print(f"written: {FLAGS.output_json}")


if __name__ == "__main__":
    define_flags()
    common.run(main)
