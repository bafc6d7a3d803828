r"""Evaluates a trained run (its latest checkpoint) on a dataset split, under both protocols.

  python -m pipelines.evaluate --model_dir=runs/ehcf/beibei --split=test
  python -m pipelines.evaluate --export_dir=runs/ehcf/beibei/export/1 --dataset=beibei \
      --manual_dir=../shared/data/beibei

Prints every metric and writes them as JSON to --output_json (default
`<model_dir>/eval_<split>.json` for a run directory).
"""

from __future__ import annotations

import os
import time

from absl import flags

from mbrec_tf import files, training
from mbrec_tf.evaluation import Evaluator
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """All flags of the evaluation pipeline."""
    common.define_data_flags()
    flags.DEFINE_string("model_dir", None, "A training run directory (evaluates its checkpoint).")
    flags.DEFINE_string("export_dir", None, "Or: an exported SavedModel version directory.")
    flags.DEFINE_enum("split", "test", ["valid", "test"], "Split to evaluate.")
    flags.DEFINE_list("metrics_k", ["10", "50", "100", "200"], "Cut-offs K for HR@K and NDCG@K.")
    flags.DEFINE_list("protocols", ["full", "sampled"], "Protocols: full, sampled.")
    flags.DEFINE_string("output_json", None, "Where to write the metrics as JSON.")
    common.define_eval_users_flag()
    flags.DEFINE_integer("seed", 42, "Seed of the --eval_users sample (train's default).")
    flags.register_multi_flags_validator(
        ["model_dir", "export_dir"],
        lambda f: (f["model_dir"] is None) != (f["export_dir"] is None),
        message="give exactly one of --model_dir and --export_dir",
    )


def main(argv: list[str]) -> None:
    del argv
    if FLAGS.model_dir:
        model, data, _, _ = training.restore_run(
            FLAGS.model_dir, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir
        )
        output = FLAGS.output_json or os.path.join(FLAGS.model_dir, f"eval_{FLAGS.split}.json")
    else:
        from mbrec_tf.serving.export import load_exported

        data = training.load_data(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir)
        model = load_exported(FLAGS.export_dir, data)
        output = FLAGS.output_json
    evaluator = Evaluator(
        data,
        split=FLAGS.split,
        ks=tuple(int(k) for k in FLAGS.metrics_k),
        protocols=tuple(FLAGS.protocols),
        sample_users=FLAGS.eval_users,
        seed=FLAGS.seed,
    )
    start = time.perf_counter()
    metrics = evaluator(model)
    seconds = time.perf_counter() - start
    print(headline_table(metrics, evaluator.ks, FLAGS.split))
    print(f"{int(metrics['num_users'])} users evaluated in {seconds:.2f} s")
    if output:
        record = {"split": FLAGS.split, "metrics": metrics, "eval_seconds": seconds}
        files.write_json(output, record, sort_keys=False)
        print(f"every metric (per-group too): {output}")
    else:
        print("pass --output_json=<file> to keep every metric (per-group too)")


def headline_table(metrics: dict[str, float], ks: tuple[int, ...], split: str) -> str:
    """HR@K and NDCG@K per K (full ranking and, where present, sampled), and MRR."""
    rows = [("full ranking", "")]
    if any(key.startswith("sampled/") for key in metrics):
        rows.append(("sampled (1 + 99)", "sampled/"))
    width = max(len(label) for label, _ in rows) + 2
    header = f"{split:<{width}}" + "".join(f"{f'HR@{k}':>9}{f'NDCG@{k}':>10}" for k in ks)
    lines = [header + f"{'MRR':>8}"]
    for label, prefix in rows:
        cells = ""
        for k in ks:
            hr, ndcg = metrics.get(f"{prefix}hr@{k}"), metrics.get(f"{prefix}ndcg@{k}")
            cells += f"{'—' if hr is None else f'{hr:.4f}':>9}"
            cells += f"{'—' if ndcg is None else f'{ndcg:.4f}':>10}"
        lines.append(f"{label:<{width}}{cells}{metrics.get(prefix + 'mrr', float('nan')):>8.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    define_flags()
    common.run(main)
