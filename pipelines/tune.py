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

import csv
import json
import os
from typing import Any

from absl import flags

from mbrec_tf import registry, run_directory, training, tuning
from mbrec_tf.errors import UserError
from pipelines import flags as common

FLAGS = flags.FLAGS
STUDY_NAME = "tune"
STUDY_DATABASE = "study.db"
TRIALS_SUBDIR = "trials"
#: Everything a study writes in its directory (trial runs aside): `--overwrite` deletes these.
STUDY_ENTRIES = (
    STUDY_DATABASE,
    f"{STUDY_DATABASE}-journal",
    "trials.csv",
    "trials.md",
    "best.json",
)


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


def _study_record(space: tuning.SearchSpace, fixed: dict[str, Any]) -> dict[str, Any]:
    """What makes a study: trials of another record cannot be mixed with these."""
    return {
        "model": FLAGS.model,
        "dataset": FLAGS.dataset,
        "objective": FLAGS.objective,
        "space": {name: param.to_json() for name, param in sorted(space.items())},
        "fixed": json.loads(json.dumps(fixed, default=list)),
        "seed": FLAGS.seed,
    }


def check_study_directory(tune_dir: str) -> None:
    """Refuses (`UserError`) a `tune_dir` that holds files but no study."""
    run_directory.check_not_foreign(tune_dir, "tune_dir", STUDY_DATABASE, "a tuning study")


def delete_study(tune_dir: str) -> list[str]:
    """Deletes what a study wrote in `tune_dir` (its files, its trials' runs); nothing else.

    Returns the names left (files the study did not write, at any depth).
    """
    kept = []
    trials = os.path.join(tune_dir, TRIALS_SUBDIR)
    if os.path.isdir(trials):
        for name in sorted(os.listdir(trials)):
            run_dir = os.path.join(trials, name)
            if not os.path.isdir(run_dir):
                kept.append(os.path.join(TRIALS_SUBDIR, name))
                continue
            left = run_directory.delete_run(run_dir)
            kept += [os.path.join(TRIALS_SUBDIR, name, n) for n in left]
            if not left:
                os.rmdir(run_dir)
        if not os.listdir(trials):
            os.rmdir(trials)
    left = run_directory.delete_entries(tune_dir, STUDY_ENTRIES)
    return kept + [n for n in left if n != TRIALS_SUBDIR]


def open_study(tune_dir: str, record: dict[str, Any], overwrite: bool = False):
    """The study of `tune_dir` (created, resumed, or replaced with `overwrite`)."""
    import optuna

    database = os.path.join(tune_dir, STUDY_DATABASE)
    check_study_directory(tune_dir)
    if overwrite:
        kept = delete_study(tune_dir)
        if kept:
            print(f"--overwrite: kept files the study did not write: {', '.join(kept)}")
    os.makedirs(tune_dir, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=f"sqlite:///{os.path.abspath(database)}",
        direction="maximize",
        sampler=trial_sampler(FLAGS.seed, 0),
        load_if_exists=True,
    )
    previous = study.user_attrs.get("record")
    if previous is None:
        study.set_user_attr("record", record)
    elif previous != record:
        changed = sorted(k for k in record if record[k] != previous.get(k))
        raise UserError(
            f"{tune_dir} holds a study with other {', '.join(changed)}: use another "
            "--tune_dir, or --overwrite to replace it"
        )
    return study


def requeue_interrupted(study) -> int:
    """Marks trials left running by a killed process as failed and queues their parameters
    again, so the next trials continue their run directories. Returns how many."""
    import optuna

    interrupted = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in interrupted:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.set_user_attr(f"interrupted_{trial.number}", True)
        if trial.params:
            study.enqueue_trial(trial.params, skip_if_exists=False)
    return len(interrupted)


def trial_sampler(seed: int, ended: int):
    """The TPE sampler that draws the trial after `ended` ended trials.

    Seeded by the study's seed and that count, not once per process: a study resumed
    after a kill draws exactly what the uninterrupted study draws (the TPE model itself
    is rebuilt from the stored trials at every draw).
    """
    import numpy as np
    import optuna

    trial_seed = int(np.random.SeedSequence([seed, ended]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=trial_seed)


def ended_trials(study) -> list:
    """Trials that count toward the budget: completed, or failed for a reason of their own."""
    import optuna

    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
        or (
            t.state == optuna.trial.TrialState.FAIL
            and not study.user_attrs.get(f"interrupted_{t.number}")
        )
    ]


def run_trial(study, trial, space, fixed, data, tune_dir) -> None:
    """Trains one trial's run on the train split and reports its validation objective."""
    import optuna

    params = tuning.suggest(trial, space, tuning.int_fields(FLAGS.model))
    overrides = {**tuning.overrides_from_params(params), **fixed}
    run_dir = os.path.join(tune_dir, TRIALS_SUBDIR, tuning.trial_key(params))
    trial.set_user_attr("run_dir", run_dir)
    dataset_name = FLAGS.dataset.split("/")[0]
    try:
        config = registry.resolve_config(FLAGS.model, dataset_name, overrides)
    except ValueError as error:
        raise UserError(f"search space gives an invalid configuration: {error}") from None
    settings = run_directory.RunSettings(
        model=FLAGS.model,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        manual_dir=FLAGS.manual_dir,
        model_dir=run_dir,
        eval_every=FLAGS.eval_every,
        monitor=FLAGS.objective,
        patience=FLAGS.patience,
        seed=FLAGS.seed,
        verbose=0,
    )
    print(f"trial {trial.number}: {json.dumps(params, default=str)}", flush=True)
    try:
        results = training.train_and_evaluate(
            settings,
            config,
            data=data,
            flags_record={**settings.__dict__, **overrides},
            export=False,
            strategy=common.run_strategy(),
            test=False,  # the test split stays unread until the final run
        )
    except UserError as error:  # e.g. a learning rate that diverges: a failed trial
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        print(f"trial {trial.number}: failed: {error}", flush=True)
        return
    value = results["valid"].get(FLAGS.objective)
    if value is None:
        raise UserError(
            f"--objective={FLAGS.objective} is not a validation metric; known: "
            f"{', '.join(sorted(k for k in results['valid'] if not k.startswith('groups/')))}"
        )
    trial.set_user_attr("best_epoch", results.get("best_epoch"))
    trial.set_user_attr("epochs_trained", results.get("epochs_trained"))
    trial.set_user_attr("train_seconds", results["timings"]["train_seconds"])
    study.tell(trial, float(value))
    print(f"trial {trial.number}: valid {FLAGS.objective} {value:.4f}", flush=True)


def write_reports(study, space, fixed, tune_dir: str) -> dict[str, Any] | None:
    """trials.csv, trials.md and best.json; returns the best configuration (None yet)."""
    import optuna

    names = list(space)
    header = ["trial", "state", FLAGS.objective, *names, "best_epoch", "train_s", "run_dir"]
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.FAIL and study.user_attrs.get(
            f"interrupted_{t.number}"
        ):
            state = "interrupted"
        else:
            state = t.state.name.lower()
        seconds = t.user_attrs.get("train_seconds")
        rows.append(
            [
                t.number,
                state,
                "" if t.value is None else f"{t.value:.4f}",
                *(tuning._short(t.params[n]) if n in t.params else "" for n in names),
                t.user_attrs.get("best_epoch") or "",
                "" if seconds is None else f"{seconds:.1f}",
                t.user_attrs.get("run_dir", ""),
            ]
        )
    with open(os.path.join(tune_dir, "trials.csv"), "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = max(completed, key=lambda t: t.value) if completed else None
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    for row in rows:
        mark = best is not None and row[0] == best.number
        cells = [f"**{c}**" if mark and c != "" else str(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    with open(os.path.join(tune_dir, "trials.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if best is None:
        return None
    searched = tuning.overrides_from_params(best.params)
    # The trials' length is a budget of the search, not a finding: the final run chooses
    # its own --epochs (and selects its best epoch on validation).
    tuned_with = {k: fixed[k] for k in tuning.NOT_CARRIED if k in fixed and k not in searched}
    overrides = {**searched, **{k: v for k, v in fixed.items() if k not in tuned_with}}
    payload = {
        "model": FLAGS.model,
        "dataset": FLAGS.dataset.split("/")[0],
        "objective": f"valid {FLAGS.objective}",
        "value": best.value,
        "trial": best.number,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "run_dir": best.user_attrs.get("run_dir"),
        "tuned_with": tuned_with,
        "overrides": overrides,
    }
    tuning.write_config_file(os.path.join(tune_dir, "best.json"), payload)
    return payload


def main(argv: list[str]) -> None:
    del argv
    common.run_strategy(refuse=("multi_worker",))  # every trial trains under it
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each trial's new evaluator retraces: expected here
    dataset_name = FLAGS.dataset.split("/")[0]
    fixed = common.model_overrides(FLAGS.model)
    registry.resolve_config(FLAGS.model, dataset_name, fixed)  # flags valid before any work
    tune_dir = FLAGS.tune_dir or os.path.join("tune", FLAGS.model, FLAGS.dataset.replace("/", "_"))
    check_study_directory(tune_dir)  # before any work
    data = training.load_data(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir)
    if FLAGS.search_space:
        space = tuning.read_search_space(FLAGS.search_space)
    else:
        space = tuning.default_search_space(FLAGS.model, data)
    tuning.check_search_space(FLAGS.model, space)
    space = {name: p for name, p in space.items() if p.field not in fixed}
    if FLAGS.show_space:
        print(json.dumps({n: p.to_json() for n, p in space.items()}, indent=2))
        return
    if not space:
        raise UserError("every searched hyper-parameter is fixed by a flag: nothing to tune")
    run_directory.check_writable(tune_dir, "tune_dir")
    study = open_study(tune_dir, _study_record(space, fixed), overwrite=FLAGS.overwrite)
    if requeued := requeue_interrupted(study):
        print(f"resuming {requeued} interrupted trial(s) from their checkpoints")
    done = len(ended_trials(study))
    print(
        f"tuning {FLAGS.model} on {FLAGS.dataset}: {done} of {FLAGS.num_trials} trials done, "
        f"objective valid {FLAGS.objective}, study {tune_dir}"
    )
    while len(ended_trials(study)) < FLAGS.num_trials:
        study.sampler = trial_sampler(FLAGS.seed, len(ended_trials(study)))
        run_trial(study, study.ask(), space, fixed, data, tune_dir)
        write_reports(study, space, fixed, tune_dir)
    best = write_reports(study, space, fixed, tune_dir)
    if best is None:
        raise UserError(f"no trial completed (see {os.path.join(tune_dir, 'trials.md')})")
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
