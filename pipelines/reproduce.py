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

from absl import flags

from mbrec_tf import registry, reproduction
from mbrec_tf.errors import UserError
from mbrec_tf.reports import tables
from pipelines import flags as common

FLAGS = flags.FLAGS


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


def main(argv: list[str]) -> None:
    """Checks the flags and runs the reproduction plan they describe."""
    del argv
    strategy = common.run_strategy(refuse=("multi_worker",))  # every run trains under it
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
    plan = reproduction.ReproductionPlan(
        models=models,
        datasets=FLAGS.datasets,
        seeds=seeds,
        output_dir=FLAGS.output_dir,
        data_root=FLAGS.data_root,
        data_dir=FLAGS.data_dir,
        configs=parse_pairs(FLAGS.configs, "configs"),
        hparams=parse_pairs(FLAGS.hparams, "hparams"),
        eval_every=FLAGS.eval_every,
        lambda_grid=FLAGS.lambda_grid,
        overwrite=FLAGS.overwrite,
        report_only=FLAGS.report_only,
    )
    reproduction.reproduce(plan, strategy)


if __name__ == "__main__":
    define_flags()
    common.run(main)
