"""Training runs in named steps: load, build (inside `strategy.scope()`), restore, fit (or fit
in closed form), select the best epoch, evaluate, export.

What a run writes in its `model_dir` is described in `run_directory`; its checkpoints are
kept by `checkpoints`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import statistics
import time
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from mbrec_tf import checkpoints, distribute, files, registry, run_directory
from mbrec_tf import config as config_lib
from mbrec_tf.checkpoints import Checkpointing
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from mbrec_tf.models.base import Recommender
from mbrec_tf.run_directory import RunSettings


def load_data(
    dataset: str, data_dir: str | None = None, manual_dir: str | None = None
) -> MultiBehaviorData:
    """Loads `dataset` ("name" or "name/config") through its TFDS builder."""
    from mbrec_tf.data import loading  # the TFDS stack is only needed when data is loaded

    return loading.load_dataset(dataset, data_dir=data_dir, manual_dir=manual_dir)


def build(
    spec: registry.ModelSpec,
    config: Any,
    data: MultiBehaviorData,
    strategy: tf.distribute.Strategy | None = None,
) -> Recommender:
    """The model, compiled with its task and optimizer, created inside `strategy.scope()`.

    Closed-form models are built uncompiled: they have no gradient steps. Under a
    distributed strategy the optimizer's slots are created here, in the strategy's scope,
    not inside the first distributed step.
    """
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = spec.build(data, config)
        if not spec.closed_form:
            spec.compile(model, data, config)
            if distribute.is_distributed(strategy):
                distribute.create_optimizer_slots(model)
    return model


def _one_based(epoch_index: int | None) -> int | None:
    """A 0-based Keras epoch index as the epoch number used everywhere else (1 = first)."""
    return None if epoch_index is None else epoch_index + 1


def _make_evaluator(data: MultiBehaviorData, split: str, settings: RunSettings):
    """The evaluator of `split` with the run's cut-offs and user sample."""
    from mbrec_tf.evaluation import Evaluator

    return Evaluator(
        data,
        split=split,
        ks=tuple(settings.metrics_k),
        sample_users=settings.eval_users,
        seed=settings.seed,
    )


class EpochTensorBoard(tf.keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback with epochs numbered from 1, as everywhere else."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch + 1, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch + 1, logs)


def fit(
    spec: registry.ModelSpec,
    model: Recommender,
    config: Any,
    data: MultiBehaviorData,
    settings: RunSettings,
    checkpointing: Checkpointing,
    initial_epoch: int,
    valid_evaluator: Any,
    strategy: tf.distribute.Strategy | None = None,
) -> tuple[float, Any]:
    """Keras `fit` from `initial_epoch` with validation, TensorBoard and checkpoints.

    The input goes through `strategy` (`distribute.training_inputs`). Selects the best
    evaluated weights (the evaluation callback restores them) and saves them as the run's
    final checkpoint. Returns the training seconds and the callback.
    """
    strategy = strategy or tf.distribute.get_strategy()
    from mbrec_tf.evaluation import EvaluationCallback

    # A resumed run selects among all its evaluations: those before the resume too.
    earlier_best = run_directory.previous_best(
        settings.model_dir, settings.monitor, initial_epoch, checkpointing.selected_epoch()
    )
    eval_callback = EvaluationCallback(
        valid_evaluator,
        every_n_epochs=settings.eval_every,
        monitor=settings.monitor,
        patience=settings.patience or None,
        restore_best_weights=True,
        log_group_metrics=False,  # keeps the progress bar readable; results.json has them
        verbose=settings.verbose > 0,
        initial_best=earlier_best,
    )
    callbacks = [
        eval_callback,  # first, so TensorBoard and History see its val_ metrics
        EpochTensorBoard(
            log_dir=os.path.join(settings.model_dir, run_directory.LOG_SUBDIR), update_freq="epoch"
        ),
        checkpoints.CheckpointCallback(
            checkpointing.manager, checkpointing.epoch, settings.checkpoint_every
        ),
        checkpoints.SelectedCheckpointCallback(
            checkpointing, eval_callback
        ),  # after the resume point
    ]
    if distribute.is_chief(strategy):  # only the chief writes the run's history
        callbacks.insert(
            1, run_directory.HistoryCallback(settings.model_dir, eval_callback, initial_epoch)
        )
    # A resumed run continues with fresh shuffles and negatives, not epoch 0's again.
    train_inputs, steps_per_epoch = distribute.training_inputs(
        strategy, spec, data, config, settings.seed + initial_epoch
    )
    start = time.perf_counter()
    model.fit(
        train_inputs,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=settings.verbose,
    )
    train_seconds = time.perf_counter() - start
    # The callback restored the best evaluated weights: they are the run's selected model
    # (or, when that is still an evaluation before a resume, the selected checkpoint has
    # them). A run stopped early (patience, divergence) counts as done, so it is not resumed.
    done = config.epochs if model.stop_training else checkpointing.finished
    if eval_callback.best_epoch is not None and eval_callback.best_epoch < initial_epoch:
        checkpointing.restore_selected()
    selected = (
        checkpointing.finished if eval_callback.best_epoch is None else eval_callback.best_epoch + 1
    )
    checkpointing.save_selected(selected, done)
    return train_seconds, eval_callback


def fit_closed_form(
    spec: registry.ModelSpec,
    model: Recommender,
    config: Any,
    data: MultiBehaviorData,
    checkpointing: Checkpointing,
) -> float:
    """Fits a closed-form model from the data and checkpoints it; returns the seconds."""
    start = time.perf_counter()
    spec.build_task(data, config).fit(model, spec.training_data(data, config))
    checkpointing.save_selected(0, 0)
    return time.perf_counter() - start


def evaluate_splits(
    model: Recommender,
    data: MultiBehaviorData,
    settings: RunSettings,
    valid_evaluator: Any,
    test: bool = True,
) -> tuple[dict[str, Any], dict[str, Any] | None, float]:
    """Validation and (unless `test=False`) test metrics of the selected model, and the
    seconds they took."""
    start = time.perf_counter()
    valid_metrics = valid_evaluator(model)
    test_metrics = _make_evaluator(data, "test", settings)(model) if test else None
    return valid_metrics, test_metrics, time.perf_counter() - start


def train_and_evaluate(
    settings: RunSettings,
    config: registry.Experiment | Any,
    data: MultiBehaviorData | None = None,
    flags_record: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
    export: bool = True,
    strategy: tf.distribute.Strategy | None = None,
    export_again: bool = False,
    test: bool = True,
) -> dict[str, Any]:
    """One run: load, build, restore, fit, select, evaluate, export.

    The run directory must be new, empty, hold this same configuration (then the run
    resumes), or be given up with `overwrite`; one holding other files is refused.
    `export=False` skips the SavedModel and `test=False` the test split (tuning trials:
    results.json then has `"test": null`). The model trains under `strategy`
    (default: none, one device). A finished run (all its epochs trained, results.json
    written) is not evaluated or exported again: its results are returned as written, with
    "finished_before": True (`export_again` exports its selected weights as a new version).
    `config` is the run's `registry.Experiment`, or the bare config of `settings.model`.
    Returns the results dictionary that is also written to `<model_dir>/results.json`; a
    multi-worker run's other workers train with the chief and return `{"chief": False}`,
    writing nothing.
    """
    experiment = _run_experiment(settings, config)
    spec, config = experiment.spec, experiment.config
    strategy = strategy or tf.distribute.get_strategy()
    chief = distribute.is_chief(strategy)
    settings = dataclasses.replace(settings, strategy=distribute.strategy_name(strategy))
    if not spec.closed_form and config.epochs < 1:
        raise UserError(
            f"--epochs={config.epochs}: a {settings.model} run trains at least one epoch "
            "(to evaluate a trained run, use pipelines.evaluate)"
        )
    if settings.eval_every == 0 and settings.strategy == distribute.MULTI_WORKER:
        # Every worker evaluates and must select the same epochs: no timing-based interval.
        settings = dataclasses.replace(settings, eval_every=1)
    if chief:
        run_directory.check_run_directory(settings.model_dir)  # before anything is written there
        run_directory.check_writable(settings.model_dir, "model_dir")
        if settings.export_dir:
            run_directory.check_writable(settings.export_dir, "export_dir")
    tf.keras.utils.set_random_seed(settings.seed)
    if data is None:
        data = load_data(settings.dataset, settings.data_dir, settings.manual_dir)
    run_config = run_directory.make_run_config(settings, config, data)
    if chief:
        run_directory.prepare_run_directory(settings.model_dir, run_config, overwrite)
    export_dir = settings.export_dir or os.path.join(
        settings.model_dir, run_directory.EXPORT_SUBDIR
    )
    if chief and export and not settings.export_dir:
        run_directory.check_writable(export_dir, "export_dir")

    model = build(spec, config, data, strategy)
    write_dir = distribute.worker_directory(settings.model_dir, strategy)
    checkpointing = Checkpointing(model, settings.model_dir, write_dir)
    # A worker must not resume from the checkpoints the chief is deleting (--overwrite).
    initial_epoch = checkpointing.restore_latest() if chief or not overwrite else 0

    results_path = os.path.join(settings.model_dir, run_directory.RESULTS_FILE)
    done = spec.closed_form or initial_epoch >= config.epochs
    if done and tf.io.gfile.exists(results_path):
        if not chief:
            return {"chief": False}
        export_again = export and export_again
        return _finished_run(
            model, data, checkpointing, results_path, export_again, export_dir, run_config
        )
    valid_evaluator = _make_evaluator(data, "valid", settings)
    train_seconds, eval_callback = 0.0, None
    selected_epoch = None
    if spec.closed_form:
        train_seconds = fit_closed_form(spec, model, config, data, checkpointing)
    elif initial_epoch < config.epochs:
        train_seconds, eval_callback = fit(
            spec,
            model,
            config,
            data,
            settings,
            checkpointing,
            initial_epoch,
            valid_evaluator,
            strategy,
        )
        if eval_callback.diverged_epoch is not None and eval_callback.best_epoch is None:
            raise UserError(
                f"training diverged in epoch {eval_callback.diverged_epoch + 1} (non-finite "
                "loss or weights) before any evaluation: try a smaller --learning_rate"
            )
    else:  # trained to the end before, but stopped before its results: the selected weights
        selected_epoch = checkpointing.restore_selected()
    if not chief:
        distribute.remove_worker_directory(settings.model_dir, strategy)
        return {"chief": False}
    if distribute.is_distributed(strategy):
        # Evaluate and export the selected weights in a plain model of this process.
        model = restore_run(settings.model_dir, data=data)[0]

    history = run_directory.update_history(settings.model_dir, eval_callback, initial_epoch)
    valid_metrics, test_metrics, eval_seconds = evaluate_splits(
        model, data, settings, valid_evaluator, test=test
    )
    epoch_seconds = history["epoch_seconds"]
    results = {
        "model": settings.model,
        "dataset": settings.dataset,
        "flags": dict(flags_record or dataclasses.asdict(settings)),
        "config": config_lib.to_dict(config),
        "strategy": settings.strategy,
        "replicas": int(strategy.num_replicas_in_sync),
        "valid": valid_metrics,
        "test": test_metrics,
        "best_epoch": _one_based(getattr(eval_callback, "best_epoch", None)) or selected_epoch,
        "diverged_epoch": _one_based(getattr(eval_callback, "diverged_epoch", None)),
        "epochs_trained": checkpointing.finished,
        "eval_every": getattr(eval_callback, "interval", None),
        "timings": {
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            # The median: the first epoch also traces the step function.
            "epoch_seconds": statistics.median(epoch_seconds) if epoch_seconds else None,
        },
        "history": history["evaluations"],
        "export_path": None,
    }
    if export:
        from mbrec_tf.serving.export import export_model

        results["export_path"] = export_model(
            model, data, export_dir, metadata={"run_config": run_config}
        )
    files.write_json(results_path, results)
    return results


def _run_experiment(
    settings: RunSettings, config: registry.Experiment | Any
) -> registry.Experiment:
    """The experiment a run trains: as given, or `settings.model` with the bare `config`."""
    if not isinstance(config, registry.Experiment):
        return registry.experiment(settings.model, settings.dataset, config=config)
    if config.model != settings.model:
        raise ValueError(f"the run's settings name {settings.model}, its experiment {config.model}")
    return config


def _finished_run(
    model: Recommender,
    data: MultiBehaviorData,
    checkpointing: Checkpointing,
    results_path: str,
    export_again: bool,
    export_dir: str,
    run_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The written results of a finished run; with `export_again`, a new export of it."""
    results = run_directory.read_json(results_path)
    if export_again:
        from mbrec_tf.serving.export import export_model

        checkpointing.restore_selected()
        results["export_path"] = export_model(
            model, data, export_dir, metadata={"run_config": run_config}
        )
        files.write_json(results_path, results)
    logging.warning(
        "%s: the run is finished (%s epochs): kept its results%s",
        os.path.dirname(results_path),
        results.get("epochs_trained"),
        "; exported its selected weights again" if export_again else "",
    )
    return {**results, "finished_before": True}


def restore_run(
    model_dir: str,
    *,
    data: MultiBehaviorData | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
) -> tuple[Recommender, MultiBehaviorData, registry.ModelSpec, Any]:
    """Rebuilds the model of a training run from `model_dir` with its latest checkpoint.

    The run's dataset is loaded again unless `data` is given; `data_dir` / `manual_dir`
    override the ones recorded in the run (e.g. on another machine).
    """
    run_config = run_directory.read_run_config(model_dir)
    settings = run_config["settings"]
    experiment = registry.recorded_experiment(run_config)
    spec, config = experiment.spec, experiment.config
    if data is None:
        data = load_data(
            settings["dataset"],
            data_dir or settings.get("data_dir"),
            manual_dir or settings.get("manual_dir"),
        )
    model = spec.build(data, config)
    checkpoints.restore_weights(model, model_dir)
    return model, data, spec, config
