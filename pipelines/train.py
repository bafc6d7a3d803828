r"""Trains a model, evaluates it on the validation and test splits, and exports it.

  python -m pipelines.train --model=ehcf
  python -m pipelines.train --model=ehcf --dataset=beibei --manual_dir=../shared/data/beibei
  python -m pipelines.train --model=ehcf --dataset=beibei --config=tune/ehcf/beibei/best.json

Writes TensorBoard logs, checkpoints (re-running on the same --model_dir resumes),
`<model_dir>/results.json`, and a SavedModel under --export_dir (`<model_dir>/export`).
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags, logging

from mbrec_tf import config as config_lib
from mbrec_tf import registry, run_directory, training, tuning
from pipelines import flags as common

FLAGS = flags.FLAGS
#: Exit status after Ctrl-C: 128 + SIGINT, as shells report a process ended by it.
INTERRUPTED = 130


def define_flags() -> None:
    """All flags of the training pipeline."""
    common.define_data_flags()
    common.define_model_flags()
    common.define_strategy_flag()
    flags.adopt_module_key_flags(common)  # --help lists the shared and the model's flags
    flags.DEFINE_string(
        "config",
        None,
        "Configuration file of hyper-parameters (best.json from pipelines.tune); model flags "
        "given on the command line take precedence over it.",
    )
    flags.DEFINE_string("model_dir", None, "Run directory (default: runs/<model>/<dataset>).")
    flags.DEFINE_string(
        "export_dir", None, "SavedModel base directory (default: <model_dir>/export)."
    )
    flags.DEFINE_integer(
        "eval_every",
        0,
        "Evaluate the validation split every N epochs (and after the last). 0: after the "
        "first epoch, then as often as keeps evaluation under 10% of the training time.",
        lower_bound=0,
    )
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Delete the previous run in --model_dir and start afresh (without it, a directory "
        "holding another configuration is refused).",
    )
    flags.DEFINE_bool(
        "export_again",
        False,
        "Export a finished run's selected weights again as a new version (re-running a "
        "finished run otherwise keeps its results and exports nothing).",
    )
    flags.DEFINE_list("metrics_k", ["10", "50", "100", "200"], "Cut-offs K for HR@K and NDCG@K.")
    common.define_eval_users_flag()
    flags.DEFINE_string(
        "monitor", "ndcg@10", "Validation metric for early stopping and best weights."
    )
    flags.DEFINE_integer(
        "patience",
        0,
        "Stop after this many evaluations without improvement (0: never).",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "checkpoint_every", 1, "Save a checkpoint every N epochs (resume point).", lower_bound=1
    )
    flags.DEFINE_integer("seed", 42, "Random seed for initialisation, shuffling and sampling.")
    flags.DEFINE_integer(
        "verbose",
        None,
        "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: 1 in "
        "a terminal, 2 when the output goes to a file or a pipe).",
        lower_bound=0,
        upper_bound=2,
    )
    flags.mark_flag_as_required("model")
    flags.register_multi_flags_validator(
        ["monitor", "metrics_k"],
        lambda f: _monitored_cutoff_is_computed(f["monitor"], f["metrics_k"]),
        message="--monitor names a cut-off that --metrics_k does not compute",
    )
    flags.register_validator(
        "metrics_k",
        lambda ks: all(k.isdigit() and int(k) > 0 for k in ks),
        message="--metrics_k must be positive integers, e.g. 10,50,100,200",
    )


def _monitored_cutoff_is_computed(monitor: str, metrics_k: list[str]) -> bool:
    """True unless --monitor is e.g. ndcg@10 while --metrics_k lacks 10 (sampled/ has 10)."""
    if monitor.startswith("sampled/") or "@" not in monitor:
        return True
    return monitor.split("@", 1)[1] in metrics_k


def main(argv: list[str]) -> None:
    del argv
    strategy = common.run_strategy()
    dataset_name = FLAGS.dataset.split("/")[0]
    spec = registry.get(FLAGS.model)
    overrides = common.model_overrides()
    if FLAGS.config:
        from_file, tuned_on = tuning.read_config_file(FLAGS.config, spec)
        if tuned_on and tuned_on != dataset_name:
            print(f"note: {FLAGS.config} was tuned on {tuned_on}, training on {dataset_name}")
        overrides = {**from_file, **overrides}
    experiment = registry.experiment(spec, FLAGS.dataset, overrides)
    config = experiment.config
    if FLAGS.config:
        tuned_epochs = tuning.read_tuned_with(FLAGS.config).get("epochs")
        if tuned_epochs is not None and "epochs" not in from_file:
            print(
                f"note: the trials of {FLAGS.config} trained {tuned_epochs} epochs; this run "
                f"trains --epochs={config.epochs}"
            )
    settings = run_directory.RunSettings(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        manual_dir=FLAGS.manual_dir,
        model_dir=FLAGS.model_dir
        or os.path.join("runs", FLAGS.model, FLAGS.dataset.replace("/", "_")),
        export_dir=FLAGS.export_dir,
        eval_every=FLAGS.eval_every,
        metrics_k=tuple(int(k) for k in FLAGS.metrics_k),
        eval_users=FLAGS.eval_users,
        monitor=FLAGS.monitor,
        patience=FLAGS.patience,
        checkpoint_every=FLAGS.checkpoint_every,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose if FLAGS.verbose is not None else (1 if sys.stdout.isatty() else 2),
        strategy=FLAGS.strategy,
    )
    print(f"model {settings.model} on {settings.dataset}: {config_lib.to_dict(config)}")
    flags_record = {**settings.__dict__, **overrides}
    try:
        results = training.train_and_evaluate(
            settings,
            experiment,
            flags_record=flags_record,
            overwrite=FLAGS.overwrite,
            export_again=FLAGS.export_again,
            strategy=strategy,
        )
    except KeyboardInterrupt:
        print(
            "interrupted; rerun the same command to resume from epoch "
            f"{run_directory.next_epoch(settings.model_dir)}",
            file=sys.stderr,
        )
        sys.exit(INTERRUPTED)
    if not results.get("chief", True):
        print("worker done (the chief writes the results and the export)")
        return
    if results.get("finished_before"):
        print(
            f"{settings.model_dir}: this run finished before ({results['epochs_trained']} "
            "epochs): results kept as they were, "
            + (
                "its selected weights exported again"
                if FLAGS.export_again
                else "nothing exported (--export_again exports it again; --epochs=N with more "
                "epochs trains on; --overwrite starts afresh)"
            )
        )
    ks = settings.metrics_k
    for split in ("valid", "test"):
        metrics = results[split]
        line = "  ".join(
            f"{name} {metrics[name]:.4f}"
            for k in ks
            for name in (f"hr@{k}", f"ndcg@{k}")
            if name in metrics
        )
        print(f"{split}: {line}  mrr {metrics.get('mrr', float('nan')):.4f}")
    if results.get("best_epoch"):
        print(
            f"selected: epoch {results['best_epoch']} of {results['epochs_trained']}, the best "
            f"validation {settings.monitor} ('*' marks each [valid] line that improved it)"
        )
    print(f"results: {os.path.join(settings.model_dir, run_directory.RESULTS_FILE)}")
    print(f"export: {results['export_path']}")
    logging.debug(json.dumps(results, default=str))


if __name__ == "__main__":
    define_flags()
    common.run(main)
