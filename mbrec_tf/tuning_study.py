"""A tuning study on the validation split: its directory, creation or resumption, the trial
loop (each trial a normal run under `<tune_dir>/trials/`), and trials.csv, trials.md and
best.json after every trial.

Optuna's TPE sampler is reseeded from the study's seed and the count of ended trials before
every draw, so a study killed and resumed draws what the uninterrupted one draws; a trial
left running by a killed process is queued again and continues its run directory.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from mbrec_tf import registry, run_directory, training, tuning
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from mbrec_tf.search_space import SearchSpace, read_search_space

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


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """What a study tunes, toward which validation metric, and how each trial trains."""

    model: str
    dataset: str
    tune_dir: str
    num_trials: int = 20
    objective: str = "ndcg@10"
    data_dir: str | None = None
    manual_dir: str | None = None
    eval_every: int = 0
    patience: int = 0
    seed: int = 42


def default_tune_dir(model: str, dataset: str) -> str:
    """`tune/<model>/<dataset>`, the study directory when none is given."""
    return os.path.join("tune", model, dataset.replace("/", "_"))


def search_space(
    experiment: registry.Experiment, data: MultiBehaviorData, path: str | None = None
) -> SearchSpace:
    """The space to search: the JSON file at `path` or the model's default, checked, less
    the fields the experiment's overrides fix for every trial."""
    spec = experiment.spec
    space = read_search_space(path) if path else tuning.default_search_space(spec, data)
    tuning.check_search_space(spec, space)
    return {name: p for name, p in space.items() if p.field not in experiment.overrides}


def study_record(
    settings: StudySettings, space: SearchSpace, fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """What makes a study: trials of another record cannot be mixed with these."""
    return {
        "model": settings.model,
        "dataset": settings.dataset,
        "objective": settings.objective,
        "space": {name: param.to_json() for name, param in sorted(space.items())},
        "fixed": json.loads(json.dumps(dict(fixed), default=list)),
        "seed": settings.seed,
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


def open_study(tune_dir: str, record: dict[str, Any], overwrite: bool = False) -> Any:
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
        sampler=trial_sampler(record["seed"], 0),
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


def requeue_interrupted(study: Any) -> int:
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


def trial_sampler(seed: int, ended: int) -> Any:
    """The TPE sampler that draws the trial after `ended` ended trials.

    Seeded by the study's seed and that count, not once per process: a study resumed
    after a kill draws exactly what the uninterrupted study draws (the TPE model itself
    is rebuilt from the stored trials at every draw).
    """
    import numpy as np
    import optuna

    trial_seed = int(np.random.SeedSequence([seed, ended]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=trial_seed)


def ended_trials(study: Any) -> list:
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


def run_trial(
    study: Any,
    trial: Any,
    settings: StudySettings,
    experiment: registry.Experiment,
    space: SearchSpace,
    data: MultiBehaviorData,
    strategy: tf.distribute.Strategy | None = None,
) -> None:
    """Trains one trial's run on the train split and reports its validation objective."""
    import optuna

    params = tuning.suggest(trial, space, tuning.int_fields(experiment.spec))
    overrides = {**tuning.overrides_from_params(params), **experiment.overrides}
    run_dir = os.path.join(settings.tune_dir, TRIALS_SUBDIR, tuning.trial_key(params))
    trial.set_user_attr("run_dir", run_dir)
    try:
        trial_experiment = experiment.with_overrides(overrides)
    except ValueError as error:
        raise UserError(f"search space gives an invalid configuration: {error}") from None
    run_settings = run_directory.RunSettings(
        model=settings.model,
        dataset=settings.dataset,
        data_dir=settings.data_dir,
        manual_dir=settings.manual_dir,
        model_dir=run_dir,
        eval_every=settings.eval_every,
        monitor=settings.objective,
        patience=settings.patience,
        seed=settings.seed,
        verbose=0,
    )
    print(f"trial {trial.number}: {json.dumps(params, default=str)}", flush=True)
    try:
        results = training.train_and_evaluate(
            run_settings,
            trial_experiment,
            data=data,
            flags_record={**run_settings.__dict__, **overrides},
            export=False,
            strategy=strategy,
            test=False,  # the test split stays unread until the final run
        )
    except UserError as error:  # e.g. a learning rate that diverges: a failed trial
        trial.set_user_attr("error", str(error))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        print(f"trial {trial.number}: failed: {error}", flush=True)
        return
    value = results["valid"].get(settings.objective)
    if value is None:
        raise UserError(
            f"--objective={settings.objective} is not a validation metric; known: "
            f"{', '.join(sorted(k for k in results['valid'] if not k.startswith('groups/')))}"
        )
    trial.set_user_attr("best_epoch", results.get("best_epoch"))
    trial.set_user_attr("epochs_trained", results.get("epochs_trained"))
    trial.set_user_attr("train_seconds", results["timings"]["train_seconds"])
    study.tell(trial, float(value))
    print(f"trial {trial.number}: valid {settings.objective} {value:.4f}", flush=True)


def write_reports(
    study: Any, settings: StudySettings, space: SearchSpace, fixed: Mapping[str, Any]
) -> dict[str, Any] | None:
    """trials.csv, trials.md and best.json; returns the best configuration (None yet)."""
    import optuna

    tune_dir = settings.tune_dir
    names = list(space)
    header = ["trial", "state", settings.objective, *names, "best_epoch", "train_s", "run_dir"]
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
        "model": settings.model,
        "dataset": settings.dataset.split("/")[0],
        "objective": f"valid {settings.objective}",
        "value": best.value,
        "trial": best.number,
        "best_epoch": best.user_attrs.get("best_epoch"),
        "run_dir": best.user_attrs.get("run_dir"),
        "tuned_with": tuned_with,
        "overrides": overrides,
    }
    tuning.write_config_file(os.path.join(tune_dir, "best.json"), payload)
    return payload


def tune(
    settings: StudySettings,
    experiment: registry.Experiment,
    space: SearchSpace,
    data: MultiBehaviorData,
    strategy: tf.distribute.Strategy | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Runs the study until `num_trials` trials ended (resuming what is there); returns the
    best configuration written to best.json. The experiment's overrides hold for every
    trial."""
    fixed = experiment.overrides
    tune_dir = settings.tune_dir
    run_directory.check_writable(tune_dir, "tune_dir")
    study = open_study(tune_dir, study_record(settings, space, fixed), overwrite=overwrite)
    if requeued := requeue_interrupted(study):
        print(f"resuming {requeued} interrupted trial(s) from their checkpoints")
    done = len(ended_trials(study))
    print(
        f"tuning {settings.model} on {settings.dataset}: {done} of {settings.num_trials} trials "
        f"done, objective valid {settings.objective}, study {tune_dir}"
    )
    while len(ended_trials(study)) < settings.num_trials:
        study.sampler = trial_sampler(settings.seed, len(ended_trials(study)))
        run_trial(study, study.ask(), settings, experiment, space, data, strategy)
        write_reports(study, settings, space, fixed)
    best = write_reports(study, settings, space, fixed)
    if best is None:
        raise UserError(f"no trial completed (see {os.path.join(tune_dir, 'trials.md')})")
    return best
