"""Mean ± std over seeds of finished runs, in the layouts of the papers' tables."""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mbrec_tf.reports import published

#: The EHCF paper's Table 2 columns (full ranking of every item).
FULL_RANKING_COLUMNS = (
    "hr@10",
    "hr@50",
    "hr@100",
    "hr@200",
    "ndcg@10",
    "ndcg@50",
    "ndcg@100",
    "ndcg@200",
)
#: Full ranking over all test users, of the *touched* users (the held-out item was in a
#: supportive behavior of the training data) and of the *new* ones (ranked among the items
#: they never touched: discovery).
ITEM_GROUP_COLUMNS = (
    "hr@10",
    "ndcg@10",
    "touched/hr@10",
    "touched/ndcg@10",
    "new/hr@10",
    "new/ndcg@10",
)
#: The multi-feedback paper's Table 4 columns (the held-out item among 100 candidates).
SAMPLED_COLUMNS = ("sampled/hr@10", "sampled/ndcg@10")
#: Models trained on the target behavior alone (Table 2's "Single" block), in table order.
SINGLE_BEHAVIOR = ("popularity", "bpr", "wmf", "expomf", "gmf", "mlp", "neumf", "ehcf_sin")
#: Models that learn from several behaviors ("Heterogeneous"), in table order.
MULTI_BEHAVIOR = ("touched", "cmf", "mc_bpr", "nmtr", "mfpr", "mbncf", "ehcf", "ehcf_memory")


@dataclasses.dataclass
class Run:
    """One finished run: which model, dataset and seed, and its results.json."""

    dataset: str
    model: str
    seed: int
    results: Mapping[str, Any]

    @property
    def history(self) -> list[Mapping[str, Any]]:
        return list(self.results.get("history") or [])


@dataclasses.dataclass(frozen=True)
class Summary:
    """A metric over seeds."""

    mean: float
    std: float
    count: int

    def text(self, digits: int = 4) -> str:
        if self.count > 1:
            return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        return f"{self.mean:.{digits}f}"


def summarize(values: Iterable[float]) -> Summary | None:
    """Mean and sample standard deviation (0 for one value) of the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return Summary(float(np.mean(finite)), std, len(finite))


def model_order(models: Iterable[str]) -> list[str]:
    """Single-behavior models first, then multi-behavior ones, each in the papers' order."""
    known = [*SINGLE_BEHAVIOR, *MULTI_BEHAVIOR]
    models = list(dict.fromkeys(models))
    return [m for m in known if m in models] + sorted(m for m in models if m not in known)


def group_runs(runs: Iterable[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs by (dataset, model)."""
    grouped: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.dataset, run.model), []).append(run)
    return grouped


def column_label(metric: str) -> str:
    """'hr@10' -> 'HR@10', 'sampled/ndcg@10' -> 'sampled NDCG@10'."""
    protocol, _, name = metric.rpartition("/")
    return f"{protocol} {name.upper()}" if protocol else name.upper()


def metric_summary(runs: Sequence[Run], metric: str, split: str = "test") -> Summary | None:
    """`metric` of `split` over the runs' seeds."""
    return summarize(run.results.get(split, {}).get(metric) for run in runs)


def _best_by_column(
    grouped: Mapping[tuple[str, str], list[Run]], dataset: str, models: Sequence[str], column: str
) -> str | None:
    """The model with the highest mean in `column` on `dataset`."""
    means = {}
    for model in models:
        summary = metric_summary(grouped.get((dataset, model), []), column)
        if summary is not None:
            means[model] = summary.mean
    return max(means, key=means.get) if means else None


def markdown_table(
    runs: Iterable[Run], datasets: Sequence[str], columns: Sequence[str], title: str
) -> str:
    """One block per dataset: a row per model (mean ± std over seeds, the best mean in bold),
    followed by the published row of that model where one exists."""
    grouped = group_runs(runs)
    lines = [f"## {title}", ""]
    for dataset in datasets:
        models = model_order(m for d, m in grouped if d == dataset)
        if not models:
            continue
        seeds = sorted({r.seed for m in models for r in grouped[(dataset, m)]})
        lines += [
            f"### {dataset} (test split; mean ± std over seeds {', '.join(map(str, seeds))})",
            "",
        ]
        lines.append("| group | model | " + " | ".join(column_label(c) for c in columns) + " |")
        lines.append("|---|---|" + "---|" * len(columns))
        best = {c: _best_by_column(grouped, dataset, models, c) for c in columns}
        paper = published.METRICS.get(dataset, {})
        shown_paper = False
        for model in models:
            group = "single" if model in SINGLE_BEHAVIOR else "multi"
            cells = []
            for column in columns:
                summary = metric_summary(grouped[(dataset, model)], column)
                text = "—" if summary is None else summary.text()
                cells.append(f"**{text}**" if best[column] == model and summary else text)
            lines.append(f"| {group} | {model} | " + " | ".join(cells) + " |")
            reference = paper.get(model, {})
            if any(c in reference for c in columns):
                shown_paper = True
                values = [f"*{reference[c]:.4f}*" if c in reference else "" for c in columns]
                lines.append(f"| | *{model}, published* | " + " | ".join(values) + " |")
        if shown_paper:
            lines += ["", f"Published rows (italic): {published.SOURCES[dataset]}."]
        lines.append("")
    return "\n".join(lines)


def csv_table(runs: Iterable[Run], columns: Sequence[str]) -> str:
    """Long form: one row per dataset, model and metric, with the published value if any."""
    grouped = group_runs(runs)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dataset", "model", "metric", "mean", "std", "seeds", "published"])
    for dataset in sorted({d for d, _ in grouped}):
        for model in model_order(m for d, m in grouped if d == dataset):
            for column in columns:
                summary = metric_summary(grouped[(dataset, model)], column)
                if summary is None:
                    continue
                paper = published.METRICS.get(dataset, {}).get(model, {}).get(column)
                writer.writerow(
                    [
                        dataset,
                        model,
                        column,
                        f"{summary.mean:.6f}",
                        f"{summary.std:.6f}",
                        summary.count,
                        "" if paper is None else paper,
                    ]
                )
    return out.getvalue()


def epochs_to_best(run: Run) -> float | None:
    """The selected (best validation) epoch, or None for closed-form fits."""
    value = run.results.get("best_epoch")
    return None if value is None else float(value)


def total_train_seconds(run: Run) -> float | None:
    """Training seconds of the run across resumes (median epoch × epochs trained)."""
    seconds = run.results.get("timings", {}).get("epoch_seconds")
    trained = run.results.get("epochs_trained")
    if seconds is None or not trained:
        return run.results.get("timings", {}).get("train_seconds")
    return float(seconds) * int(trained)


def runtime_markdown(runs: Iterable[Run], datasets: Sequence[str], machine: str) -> str:
    """The EHCF paper's Table 4: seconds per epoch (S), epochs to the best validation epoch
    (I) and total training time (T), mean over seeds, with its published rows."""
    grouped = group_runs(runs)
    lines = ["## Runtime", "", f"Measured on {machine}.", ""]
    for dataset in datasets:
        models = model_order(m for d, m in grouped if d == dataset)
        if not models:
            continue
        lines += [
            f"### {dataset}",
            "",
            "| model | S: seconds per epoch | I: epochs to the best validation epoch | "
            "T: total training time |",
            "|---|---|---|---|",
        ]
        paper = published.RUNTIME.get(dataset, {})
        for model in models:
            runs_here = grouped[(dataset, model)]
            seconds = summarize(
                r.results.get("timings", {}).get("epoch_seconds") for r in runs_here
            )
            best = summarize(epochs_to_best(r) for r in runs_here)
            total = summarize(total_train_seconds(r) for r in runs_here)
            lines.append(
                f"| {model} | {'—' if seconds is None else seconds.text(3) + ' s'} | "
                f"{'— (closed form)' if best is None else best.text(1)} | "
                f"{'—' if total is None else _duration(total.mean)} |"
            )
            if model in paper:
                row = paper[model]
                lines.append(
                    f"| *{model}, published* | *{row['epoch_seconds']} s* | *{row['epochs']}* | "
                    f"*{row['total_minutes']} min* |"
                )
        if paper:
            lines += ["", f"Published rows (italic): {published.RUNTIME_SOURCE}."]
        lines.append("")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
