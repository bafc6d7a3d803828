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
  - peak resident memory of the process (`resource.getrusage`).
Prints a summary and writes it, with machine, date and command, to `--output_json`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import tensorflow as tf  # noqa: E402
from absl import flags, logging  # noqa: E402

from mbrec_tf import config as config_lib  # noqa: E402
from mbrec_tf import distribute, registry, training  # noqa: E402
from mbrec_tf.data.dataset import MultiBehaviorData  # noqa: E402
from pipelines import flags as common  # noqa: E402

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
    """Peak resident set size of this process so far (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


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


def time_evaluation(model: Any, data: MultiBehaviorData, ks: tuple[int, ...], repeats: int):
    """Full-ranking evaluation of every test user: one warm-up call, then timed calls."""
    from mbrec_tf.evaluation import Evaluator

    evaluator = Evaluator(data, split="test", ks=ks, protocols=("full",))
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
    strategy: tf.distribute.Strategy | None = None,
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

    model, train = time_training(spec, config, data, warmup_epochs, timed_epochs, seed, strategy)
    results["train_epoch"] = train
    results["train_epoch_seconds"] = train["median"]
    first_batch = next(iter(spec.build_inputs(data, config, seed)))
    results["steps_per_epoch"] = int(spec.build_inputs(data, config, seed).cardinality())
    results["steps_per_second"] = results["steps_per_epoch"] / train["median"]
    results["allreduced_bytes_per_step"] = distribute.allreduced_bytes(model, first_batch)

    metrics, evaluation = time_evaluation(model, data, ks, eval_repeats)
    results["eval"] = evaluation | {"num_users": int(metrics["num_users"]), "ks": list(ks)}
    results["eval_seconds"] = evaluation["median"]
    results["peak_rss_bytes_before_dense"] = peak_rss_bytes()
    del model

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
    results["peak_rss_bytes"] = peak_rss_bytes()
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
        f"global batch per epoch); bytes all-reduced per step (gradients of one batch): "
        f"{results['allreduced_bytes_per_step']:,}"
    )
    evaluation = results["eval"]
    lines += [
        f"full-ranking evaluation of {evaluation['num_users']} test users at K={evaluation['ks']}:"
        f" median {evaluation['median']:.3f} s, min {evaluation['min']:.3f} s",
        f"peak RSS: {results['peak_rss_bytes'] / 2**30:.2f} GiB "
        f"({results['peak_rss_bytes_before_dense'] / 2**30:.2f} GiB before the dense run)",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)  # keep TFDS/TF INFO lines out of the figures
    strategy = common.run_strategy()
    start = time.perf_counter()
    data = training.load_data(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir)
    load_seconds = time.perf_counter() - start
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
        strategy=strategy,
    )
    results["load_seconds"] = load_seconds
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    results["command"] = " ".join(["python -m pipelines.benchmark", *sys.argv[1:]])
    print(report(results))
    if FLAGS.output_json and distribute.is_chief(strategy):
        tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(FLAGS.output_json)))
        with tf.io.gfile.GFile(FLAGS.output_json, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
        print(f"written: {FLAGS.output_json}")


if __name__ == "__main__":
    define_flags()
    common.run(main)
