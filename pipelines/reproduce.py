r"""Runs every model × dataset × seed and writes the papers' tables and figures.

  python -m pipelines.reproduce --datasets=beibei,taobao_ub4 --seeds=1,2,3 \
      --data_root=../shared/data --output_dir=reproduce

Each run is a normal run directory, `<output_dir>/runs/<dataset>/<model>/seed_<s>`: a finished
run with the same configuration is reused, an interrupted one resumes from its checkpoint, so
the command can be repeated (or killed and repeated) until everything is done. Writes:
  table.md, table.csv  the EHCF paper's Table 2 layout (HR and NDCG at 10, 50, 100, 200, full
                       ranking) and the multi-feedback paper's Table 4 layout (sampled HR@10,
                       NDCG@10): mean ± std over seeds, best mean in bold, published rows
                       beside where the paper's data matches
  runtime.md           the EHCF paper's Table 4 layout (seconds per epoch, epochs to the best
                       validation epoch, total training time)
  plots/               hr_at_k_<dataset>.png, hr100_by_epoch_<dataset>.png (Figure 3),
                       hr100_by_group_<dataset>.png (Figure 4) and, with --lambda_grid,
                       lambda_<dataset>.png (Figure 5); plots.json lists them, and the plots
                       an earlier report listed but this one does not write are removed
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import platform
import time
from typing import Any

from absl import flags

from mbrec_tf import config as config_lib
from mbrec_tf import registry, run_directory, training, tuning
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from mbrec_tf.reports import plots, tables
from pipelines import flags as common

FLAGS = flags.FLAGS
#: Raw-file folders under --data_root whose name differs from the dataset's.
RAW_FOLDERS = {"movielens_100k": "ml-100k"}
LAMBDA_MODEL = "ehcf"


def define_flags() -> None:
    """All flags of the reproduction pipeline."""
    common.define_strategy_flag()
    flags.DEFINE_list(
        "models",
        None,
        "Models to run (default: every registered model, in the papers' table order).",
    )
    flags.DEFINE_list("datasets", ["beibei", "taobao_ub4"], "Datasets to run on.")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds: one run per model, dataset and seed.")
    flags.DEFINE_string("output_dir", "reproduce", "Where runs, tables and plots go.")
    flags.DEFINE_string(
        "data_root",
        None,
        "Folder holding each dataset's raw files in a subfolder named after it (e.g. "
        "../shared/data); not needed for datasets already built.",
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's own).")
    flags.DEFINE_list(
        "configs",
        [],
        "Tuned configurations per model, as model=path (best.json from pipelines.tune).",
    )
    flags.DEFINE_list(
        "hparams",
        [],
        "Hyper-parameters for every model that has them, as name=value (e.g. epochs=20 for a "
        "quick pass); single values only.",
    )
    flags.DEFINE_integer(
        "eval_every",
        0,
        "Evaluate validation every N epochs (0: auto). The learning curves of Figure 3 have "
        "one point per evaluation.",
        lower_bound=0,
    )
    flags.DEFINE_integer(
        "lambda_grid",
        0,
        "Also train EHCF over a grid of loss coefficients in steps of 1/N (the first seed; "
        "Figure 5). 0: no grid.",
        lower_bound=0,
    )
    flags.DEFINE_bool(
        "overwrite", False, "Retrain runs whose directory holds another configuration."
    )
    flags.DEFINE_bool("report_only", False, "Write the tables and plots from finished runs only.")


def parse_pairs(values: list[str], flag: str) -> dict[str, str]:
    """`name=value` items of a list flag."""
    pairs = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UserError(f"--{flag}: expected name=value items, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def model_overrides(model: str, dataset: str) -> dict[str, Any]:
    """The model's overrides: its tuned configuration file, then --hparams it has."""
    overrides: dict[str, Any] = {}
    configs = parse_pairs(FLAGS.configs, "configs")
    if model in configs:
        overrides, _ = tuning.read_config_file(configs[model], model)
    fields = config_lib.field_types(registry.get(model).config_cls)
    for name, value in parse_pairs(FLAGS.hparams, "hparams").items():
        if name in fields:
            overrides[name] = value
    registry.resolve_config(model, dataset, overrides)  # a bad value fails before any run
    return overrides


def load(dataset: str) -> MultiBehaviorData:
    """A dataset, built from `--data_root/<folder>` when needed."""
    manual_dir = None
    if FLAGS.data_root:
        manual_dir = os.path.join(FLAGS.data_root, RAW_FOLDERS.get(dataset, dataset))
        if not os.path.isdir(manual_dir):
            manual_dir = None
    return training.load_data(dataset, FLAGS.data_dir, manual_dir)


def run_dir(dataset: str, model: str, name: str) -> str:
    return os.path.join(FLAGS.output_dir, "runs", dataset.replace("/", "_"), model, name)


def finished_results(settings: run_directory.RunSettings, config: Any, data) -> dict | None:
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


def run_one(dataset: str, model: str, seed: int, data, overrides: dict, name: str) -> dict:
    """Trains one run (or reuses or resumes it) and returns its results."""
    import tensorflow as tf

    config = registry.resolve_config(model, dataset.split("/")[0], overrides)
    settings = run_directory.RunSettings(
        model=model,
        dataset=dataset,
        data_dir=FLAGS.data_dir,
        model_dir=run_dir(dataset, model, name),
        eval_every=FLAGS.eval_every,
        seed=seed,
        verbose=0,
    )
    results = finished_results(settings, config, data)
    if results is not None:
        print(f"{dataset} {model} {name}: reused {settings.model_dir}", flush=True)
        return results
    if FLAGS.report_only:
        raise UserError(f"--report_only: {settings.model_dir} has no finished run of this setup")
    start = time.perf_counter()
    tf.keras.backend.clear_session()
    results = training.train_and_evaluate(
        settings,
        config,
        data=data,
        flags_record={**settings.__dict__, **overrides},
        overwrite=FLAGS.overwrite,
        export=False,
        strategy=common.run_strategy(),
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


def run_lambda_grid(dataset: str, data, seed: int) -> dict[tuple[float, ...], float]:
    """Test HR@100 of EHCF for every point of the λ grid."""
    base = model_overrides(LAMBDA_MODEL, dataset)
    config = registry.resolve_config(LAMBDA_MODEL, dataset.split("/")[0], base)
    spec = registry.get(LAMBDA_MODEL)
    behaviors = tuple(spec.training_data(data, config).behaviors)
    values = {}
    for point in lambda_points(behaviors, FLAGS.lambda_grid):
        coefficients = [f"{b}:{v:.6g}" for b, v in zip(behaviors, point, strict=True)]
        name = "lambda_" + "_".join(f"{v:.3f}" for v in point)
        results = run_one(
            dataset,
            LAMBDA_MODEL,
            seed,
            data,
            {**base, "loss_coefficients": coefficients},
            name,
        )
        values[point] = results["test"].get("hr@100", float("nan"))
    return values


def machine() -> str:
    """The machine and date, for runtime.md."""
    import tensorflow as tf

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"TensorFlow {tf.__version__}, {datetime.date.today().isoformat()}"
    )


def main(argv: list[str]) -> None:
    del argv
    common.run_strategy(refuse=("multi_worker",))  # every run trains under it
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    models = FLAGS.models or tables.model_order(registry.REGISTRY)
    unknown = [m for m in models if m not in registry.REGISTRY]
    if unknown:
        raise UserError(
            f"--models: unknown {', '.join(unknown)}; known: {sorted(registry.REGISTRY)}"
        )
    try:
        seeds = [int(s) for s in FLAGS.seeds]
    except ValueError:
        raise UserError(f"--seeds must be integers, got {','.join(FLAGS.seeds)}") from None
    for dataset in FLAGS.datasets:
        for model in models:
            model_overrides(model, dataset.split("/")[0])  # every setting checked up front
    run_directory.check_writable(FLAGS.output_dir, "output_dir")

    runs: list[tables.Run] = []
    grids: dict[str, tuple[tuple[str, ...], dict]] = {}
    for dataset in FLAGS.datasets:
        data = load(dataset)
        for model in models:
            overrides = model_overrides(model, dataset.split("/")[0])
            for seed in seeds:
                results = run_one(dataset, model, seed, data, overrides, f"seed_{seed}")
                runs.append(tables.Run(dataset, model, seed, results))
        if FLAGS.lambda_grid:
            config = registry.resolve_config(LAMBDA_MODEL, dataset.split("/")[0])
            behaviors = tuple(registry.get(LAMBDA_MODEL).training_data(data, config).behaviors)
            grids[dataset] = (behaviors, run_lambda_grid(dataset, data, seeds[0]))

    write_reports(runs, grids)


def write_reports(runs: list[tables.Run], grids: dict) -> None:
    """table.md, table.csv, runtime.md and the plots."""
    output = FLAGS.output_dir
    datasets = list(FLAGS.datasets)
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


if __name__ == "__main__":
    define_flags()
    common.run(main)
