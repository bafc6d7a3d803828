"""The papers' reproduction: every model × dataset × seed as a normal run directory (reused
when finished with the same configuration, resumed when interrupted), EHCF's λ grid, and the
tables, runtime table and figures written from the runs' results."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import registry, run_directory, training, tuning
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from mbrec_tf.reports import plots, tables

#: Raw-file folders under `data_root` whose name differs from the dataset's.
RAW_FOLDERS = {"movielens_100k": "ml-100k"}
LAMBDA_MODEL = "ehcf"


@dataclasses.dataclass(frozen=True)
class ReproductionPlan:
    """The runs to make and report: models, datasets, seeds, and how each run trains."""

    models: Sequence[str]
    datasets: Sequence[str]
    seeds: Sequence[int]
    output_dir: str = "reproduce"
    data_root: str | None = None
    data_dir: str | None = None
    configs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    hparams: Mapping[str, str] = dataclasses.field(default_factory=dict)
    eval_every: int = 0
    lambda_grid: int = 0
    overwrite: bool = False
    report_only: bool = False


def plan_experiment(plan: ReproductionPlan, model: str, dataset: str) -> registry.Experiment:
    """The model on `dataset` as the plan configures it: its tuned configuration file, then
    the hparams it has (a bad value fails here, before any run)."""
    spec = registry.get(model)
    overrides: dict[str, Any] = {}
    if model in plan.configs:
        overrides, _ = tuning.read_config_file(plan.configs[model], spec)
    fields = config_lib.field_types(spec.config_cls)
    for name, value in plan.hparams.items():
        if name in fields:
            overrides[name] = value
    return registry.experiment(spec, dataset, overrides)


def load(plan: ReproductionPlan, dataset: str) -> MultiBehaviorData:
    """A dataset, built from `<data_root>/<folder>` when needed."""
    manual_dir = None
    if plan.data_root:
        manual_dir = os.path.join(plan.data_root, RAW_FOLDERS.get(dataset, dataset))
        if not os.path.isdir(manual_dir):
            manual_dir = None
    return training.load_data(dataset, plan.data_dir, manual_dir)


def run_dir(plan: ReproductionPlan, dataset: str, model: str, name: str) -> str:
    """`<output_dir>/runs/<dataset>/<model>/<name>`: where one run lives."""
    return os.path.join(plan.output_dir, "runs", dataset.replace("/", "_"), model, name)


def finished_results(
    settings: run_directory.RunSettings, config: Any, data: MultiBehaviorData
) -> dict | None:
    """results.json of a finished run of exactly this configuration, else None."""
    path = os.path.join(settings.model_dir, run_directory.RESULTS_FILE)
    record_path = os.path.join(settings.model_dir, run_directory.RUN_CONFIG_FILE)
    if not (os.path.exists(path) and os.path.exists(record_path)):
        return None
    with open(record_path) as f:
        previous = json.load(f)
    if previous != run_directory.make_run_config(settings, config, data):
        return None
    with open(path) as f:
        return json.load(f)


def run_one(
    plan: ReproductionPlan,
    experiment: registry.Experiment,
    seed: int,
    data: MultiBehaviorData,
    name: str,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Trains one run (or reuses or resumes it) and returns its results."""
    dataset, model, config = experiment.dataset, experiment.model, experiment.config
    settings = run_directory.RunSettings(
        model=model,
        dataset=dataset,
        data_dir=plan.data_dir,
        model_dir=run_dir(plan, dataset, model, name),
        eval_every=plan.eval_every,
        seed=seed,
        verbose=0,
    )
    results = finished_results(settings, config, data)
    if results is not None:
        print(f"{dataset} {model} {name}: reused {settings.model_dir}", flush=True)
        return results
    if plan.report_only:
        raise UserError(f"--report_only: {settings.model_dir} has no finished run of this setup")
    start = time.perf_counter()
    tf.keras.backend.clear_session()
    results = training.train_and_evaluate(
        settings,
        experiment,
        data=data,
        flags_record={**settings.__dict__, **experiment.overrides},
        overwrite=plan.overwrite,
        export=False,
        strategy=strategy,
    )
    test = results["test"]
    print(
        f"{dataset} {model} {name}: test hr@10 {test.get('hr@10', float('nan')):.4f} "
        f"sampled/hr@10 {test.get('sampled/hr@10', float('nan')):.4f} "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return results


def lambda_points(behaviors: tuple[str, ...], steps: int) -> list[tuple[float, ...]]:
    """Loss coefficients in steps of 1/steps over `behaviors` (the target last), summing
    to 1 (the paper's grid, the target's zero included)."""
    if len(behaviors) not in (2, 3):
        raise UserError(
            f"--lambda_grid needs 2 or 3 behaviors (the paper's case), the data has {behaviors}"
        )
    grid = [i / steps for i in range(steps + 1)]
    points = []
    for head in itertools.product(grid, repeat=len(behaviors) - 1):
        rest = 1.0 - sum(head)
        if rest >= -1e-9:
            points.append((*head, max(rest, 0.0)))
    return points


def run_lambda_grid(
    plan: ReproductionPlan,
    base: registry.Experiment,
    data: MultiBehaviorData,
    seed: int,
    strategy: tf.distribute.Strategy | None = None,
) -> dict[tuple[float, ...], float]:
    """Test HR@100 of EHCF (`base`, as the plan configures it) for every point of the λ
    grid."""
    behaviors = tuple(base.training_data(data).behaviors)
    values = {}
    for point in lambda_points(behaviors, plan.lambda_grid):
        coefficients = [f"{b}:{v:.6g}" for b, v in zip(behaviors, point, strict=True)]
        name = "lambda_" + "_".join(f"{v:.3f}" for v in point)
        experiment = base.with_overrides({**base.overrides, "loss_coefficients": coefficients})
        results = run_one(plan, experiment, seed, data, name, strategy)
        values[point] = results["test"].get("hr@100", float("nan"))
    return values


def machine() -> str:
    """The machine and date, for runtime.md."""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, {datetime.date.today().isoformat()}"
    )


def reproduce(plan: ReproductionPlan, strategy: tf.distribute.Strategy | None = None) -> None:
    """Every run of `plan` (each setting checked before the first), then the reports."""
    experiments = {  # every setting checked up front
        (dataset, model): plan_experiment(plan, model, dataset)
        for dataset in plan.datasets
        for model in plan.models
    }
    run_directory.check_writable(plan.output_dir, "output_dir")

    runs: list[tables.Run] = []
    grids: dict[str, tuple[tuple[str, ...], dict]] = {}
    for dataset in plan.datasets:
        data = load(plan, dataset)
        for model in plan.models:
            for seed in plan.seeds:
                name = f"seed_{seed}"
                results = run_one(plan, experiments[dataset, model], seed, data, name, strategy)
                runs.append(tables.Run(dataset, model, seed, results))
        if plan.lambda_grid:
            base = plan_experiment(plan, LAMBDA_MODEL, dataset)
            defaults = base.with_overrides({})  # the figure's behaviors: EHCF's defaults
            behaviors = tuple(defaults.training_data(data).behaviors)
            grid = run_lambda_grid(plan, base, data, plan.seeds[0], strategy)
            grids[dataset] = (behaviors, grid)

    write_reports(plan.output_dir, list(plan.datasets), runs, grids)


def write_reports(output: str, datasets: list[str], runs: list[tables.Run], grids: dict) -> None:
    """table.md, table.csv, runtime.md and the plots."""
    with open(os.path.join(output, "table.md"), "w") as f:
        f.write(
            tables.markdown_table(
                runs, datasets, tables.FULL_RANKING_COLUMNS, "Full ranking (EHCF paper, Table 2)"
            )
        )
        f.write("\n")
        f.write(
            tables.markdown_table(
                runs,
                datasets,
                tables.SAMPLED_COLUMNS,
                "Sampled protocol: held-out item among 100 (multi-feedback paper, Table 4)",
            )
        )
        f.write("\n")
        f.write(
            tables.markdown_table(
                runs,
                datasets,
                tables.ITEM_GROUP_COLUMNS,
                "Touched and new items: all test users, those whose held-out item was in a "
                "supportive behavior (touched), and the others ranked among untouched items (new)",
            )
        )
    with open(os.path.join(output, "table.csv"), "w") as f:
        columns = (
            *tables.FULL_RANKING_COLUMNS,
            *tables.ITEM_GROUP_COLUMNS,
            *tables.SAMPLED_COLUMNS,
        )
        f.write(tables.csv_table(runs, tuple(dict.fromkeys(columns))))
    with open(os.path.join(output, "runtime.md"), "w") as f:
        f.write(tables.runtime_markdown(runs, datasets, machine()))
    written = [os.path.join(output, n) for n in ("table.md", "table.csv", "runtime.md")]
    plot_dir = os.path.join(output, "plots")
    figures: list[str | None] = []
    for dataset in datasets:
        name = dataset.replace("/", "_")
        figures += [
            plots.hr_at_k(runs, dataset, os.path.join(plot_dir, f"hr_at_k_{name}.png")),
            plots.metric_by_epoch(
                runs, dataset, os.path.join(plot_dir, f"hr100_by_epoch_{name}.png")
            ),
            plots.metric_by_user_group(
                runs, dataset, os.path.join(plot_dir, f"hr100_by_group_{name}.png")
            ),
        ]
        if dataset in grids:
            behaviors, values = grids[dataset]
            figures.append(
                plots.lambda_grid(
                    values, behaviors, dataset, os.path.join(plot_dir, f"lambda_{name}.png")
                )
            )
    # The plot folder shows this report only: plots an earlier report wrote for datasets
    # (or figures) left out now are removed; files of anyone else stay.
    for path in plots.record_plots(plot_dir, figures):
        print(f"removed {path} (an earlier report's; not part of this one)")
    for path in written + figures:
        if path:
            print(f"wrote {path}")
