r"""Compares training runs: one table of metrics over models and datasets (like Table 2).

  python -m pipelines.compare --runs_dir=runs --metrics=hr@10,ndcg@10,sampled/hr@10

Reads every `results.json` under --runs_dir and prints a Markdown table (or CSV).
"""

from __future__ import annotations

import glob
import json
import os

from absl import flags

from mbrec_tf.errors import UserError
from mbrec_tf.evaluation.evaluator import ITEM_GROUP_PREFIXES
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags() -> None:
    """All flags of the comparison pipeline."""
    flags.DEFINE_string("runs_dir", "runs", "Folder searched recursively for results.json.")
    flags.DEFINE_list(
        "metrics",
        ["hr@10", "ndcg@10", "hr@50", "ndcg@50", "hr@100", "ndcg@100", "hr@200", "ndcg@200"],
        "Metric keys to show (test split).",
    )
    flags.DEFINE_enum("split", "test", ["valid", "test"], "Which split's metrics to show.")
    flags.DEFINE_bool(
        "item_groups",
        True,
        "Also show each full-ranking metric for the touched and the new test users "
        "(touched/<metric>, new/<metric>).",
    )
    flags.DEFINE_enum("format", "markdown", ["markdown", "csv"], "Output format.")


def collect(runs_dir: str) -> list[dict]:
    """All run records under `runs_dir`, sorted by dataset then model."""
    records = []
    pattern = os.path.join(runs_dir, "**", "results.json")
    for path in sorted(glob.glob(pattern, recursive=True)):
        with open(path) as f:
            record = json.load(f)
        record["path"] = os.path.dirname(path)
        records.append(record)
    return sorted(records, key=lambda r: (r.get("dataset", ""), r.get("model", ""), r["path"]))


def with_item_groups(metrics: list[str]) -> list[str]:
    """Each full-ranking metric followed by its touched/ and new/ forms."""
    expanded = []
    for metric in metrics:
        expanded.append(metric)
        if "/" not in metric:
            expanded += [f"{prefix}{metric}" for prefix in ITEM_GROUP_PREFIXES]
    return list(dict.fromkeys(expanded))


def table(records: list[dict], metrics: list[str], split: str, fmt: str) -> str:
    """The records as a Markdown or CSV table, one row per run."""
    header = ["dataset", "model", *metrics, "train s", "run"]
    rows = []
    for record in records:
        values = record.get(split, {})
        rows.append(
            [
                record.get("dataset", "?"),
                record.get("model", "?"),
                *(f"{values[m]:.4f}" if m in values else "-" for m in metrics),
                f"{record.get('timings', {}).get('train_seconds', 0.0):.1f}",
                record["path"],
            ]
        )
    if fmt == "csv":
        return "\n".join(",".join(row) for row in [header, *rows])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    records = collect(FLAGS.runs_dir)
    if not records:
        raise UserError(f"no results.json under --runs_dir={FLAGS.runs_dir}: train a model first")
    metrics = with_item_groups(FLAGS.metrics) if FLAGS.item_groups else list(FLAGS.metrics)
    print(table(records, metrics, FLAGS.split, FLAGS.format))


if __name__ == "__main__":
    define_flags()
    common.run(main)
