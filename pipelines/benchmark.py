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

import datetime
import os
import sys
import time

import tensorflow as tf
from absl import flags

from mbrec_tf import distribute, files, registry, training
from mbrec_tf.benchmarks.measures import peak_rss_bytes
from mbrec_tf.benchmarks.model_benchmark import report, run
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


def main(argv: list[str]) -> None:
    """Loads the data, measures the model, prints the figures and writes them as JSON."""
    del argv
    strategy = common.run_strategy()
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    start = time.perf_counter()
    data = training.load_data(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir)
    load_seconds = time.perf_counter() - start
    peak_rss_after_load = peak_rss_bytes()
    experiment = registry.experiment(
        FLAGS.model, FLAGS.dataset.split("/")[0], common.model_overrides()
    )
    results = run(
        experiment,
        data,
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
