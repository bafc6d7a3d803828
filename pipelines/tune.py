r"""Tunes a model's hyper-parameters on the validation split.

  python -m pipelines.tune --model=ehcf --dataset=beibei --manual_dir=../shared/data/beibei \
      --num_trials=20
  python -m pipelines.train --model=ehcf --dataset=beibei --manual_dir=../shared/data/beibei \
      --config=tune/ehcf/beibei/best.json

Trials run one after another (Optuna's TPE sampler, seeded by --seed); each is a normal run
directory under `<tune_dir>/trials/`. Model flags given here (e.g. --epochs=50) hold for every
trial. Re-running the same command resumes the study: an interrupted trial continues from its
last checkpoint, and --num_trials counts the trials that ended. Writes `<tune_dir>/trials.csv`,
`trials.md` and `best.json` (the best configuration, for `pipelines.train --config`; the
trials' --epochs is recorded there but not carried) after every trial. Trials evaluate the
validation split only: the test split is left for the final run.
"""

from __future__ import annotations

import dataclasses
import json
import os

from absl import flags

from mbrec_tf import registry, training, tuning_study
from mbrec_tf.errors import UserError
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """All flags of the tuning pipeline."""
    common.define_data_flags()
    common.define_model_flags()
    common.define_strategy_flag()
    flags.adopt_module_key_flags(common)
    flags.DEFINE_string("tune_dir", None, "Study directory (default: tune/<model>/<dataset>).")
    flags.DEFINE_integer("num_trials", 20, "Trials to finish (the budget).", lower_bound=1)
    flags.DEFINE_string(
        "objective", "ndcg@10", "Validation metric to maximise, e.g. hr@10 or sampled/ndcg@10."
    )
    flags.DEFINE_string(
        "search_space",
        None,
        "JSON file of parameter ranges replacing the model's default space, e.g. "
        '{"learning_rate": {"low": 0.01, "high": 0.2, "log": true}, '
        '"negative_weight[view]": {"low": 0.001, "high": 0.5, "log": true}, '
        '"keep_prob": {"choices": [0.5, 0.8]}}.',
    )
    flags.DEFINE_integer(
        "eval_every",
        0,
        "Evaluate validation every N epochs within a trial (0: auto).",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "patience", 0, "Stop a trial after N evaluations without improvement.", lower_bound=0
    )
    flags.DEFINE_integer("seed", 42, "Seed of the sampler and of every trial's training.")
    flags.DEFINE_bool("overwrite", False, "Delete a previous study in --tune_dir and start afresh.")
    flags.DEFINE_bool("show_space", False, "Print the search space as JSON and exit.")
    flags.mark_flag_as_required("model")


def main(argv: list[str]) -> None:
    """Checks the flags, loads the data and runs the study; prints how to train the best."""
    del argv
    strategy = common.run_strategy(refuse=("multi_worker",))  # every trial trains under it
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each trial's new evaluator retraces: expected here
    # The flags hold for every trial; resolving them checks them before any work.
    experiment = registry.experiment(FLAGS.model, FLAGS.dataset, common.model_overrides())
    tune_dir = FLAGS.tune_dir or tuning_study.default_tune_dir(FLAGS.model, FLAGS.dataset)
    tuning_study.check_study_directory(tune_dir)  # before any work
    data = training.load_data(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir)
    space = tuning_study.search_space(experiment, data, FLAGS.search_space)
    if FLAGS.show_space:
        print(json.dumps({n: p.to_json() for n, p in space.items()}, indent=2))
        return
    if not space:
        raise UserError("every searched hyper-parameter is fixed by a flag: nothing to tune")
    # The study's settings are the flags of the same names.
    names = [f.name for f in dataclasses.fields(tuning_study.StudySettings) if f.name != "tune_dir"]
    settings = tuning_study.StudySettings(
        tune_dir=tune_dir, **{name: FLAGS[name].value for name in names}
    )
    best = tuning_study.tune(settings, experiment, space, data, strategy, overwrite=FLAGS.overwrite)
    print(f"best: trial {best['trial']}, valid {FLAGS.objective} {best['value']:.4f}")
    print(f"trials: {os.path.join(tune_dir, 'trials.md')}")
    print(f"best configuration: {os.path.join(tune_dir, 'best.json')}")
    print(
        f"train with it: python -m pipelines.train --model={FLAGS.model} "
        f"--dataset={FLAGS.dataset} --config={os.path.join(tune_dir, 'best.json')} "
        f"--model_dir={os.path.join('runs', FLAGS.model, FLAGS.dataset.replace('/', '_'))}_tuned"
        " (and the final run's --epochs)"
    )


if __name__ == "__main__":
    define_flags()
    common.run(main)
