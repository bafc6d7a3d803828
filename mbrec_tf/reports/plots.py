"""The papers' figures as PNG files (matplotlib, no display needed).

Every figure draws a model in the same colour (`model_colour`), shows ± one standard
deviation over seeds as error bars wherever the tables give mean ± std, and numbers epochs
with integers. `record_plots` keeps a folder of plots to those of the latest report.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mbrec_tf import files
from mbrec_tf.reports.tables import (
    MULTI_BEHAVIOR,
    SINGLE_BEHAVIOR,
    Run,
    group_runs,
    metric_summary,
    model_order,
    summarize,
)

#: Twenty distinct colours: matplotlib's tab10, then the light half of tab20.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
#: The file in a plot folder that lists the plots the latest report wrote there.
PLOTS_RECORD = "plots.json"


def model_colour(model: str) -> str:
    """The model's colour, the same in every figure of every dataset."""
    known = [*SINGLE_BEHAVIOR, *MULTI_BEHAVIOR]
    if model in known:
        return _PALETTE[known.index(model) % len(_PALETTE)]
    spare = _PALETTE[len(known) :] or _PALETTE
    return spare[zlib.crc32(model.encode()) % len(spare)]


def record_plots(plot_dir: str, written: Iterable[str | None]) -> list[str]:
    """Records the plots this report wrote in `plot_dir`, and deletes the ones an earlier
    report recorded there but this one did not write again (e.g. a dataset left out now);
    returns the deleted paths. Files no report recorded are never touched."""
    record = os.path.join(plot_dir, PLOTS_RECORD)
    names = sorted({os.path.basename(p) for p in written if p})
    previous: list[str] = []
    if os.path.exists(record):
        with open(record) as f:
            previous = json.load(f).get("plots", [])
    removed = []
    for name in previous:
        path = os.path.join(plot_dir, os.path.basename(name))
        if name not in names and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    files.write_json(record, {"plots": names})
    return removed


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a screen
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)
    return path


def hr_at_k(runs: Iterable[Run], dataset: str, path: str) -> str | None:
    """Test HR@K against K, one line per model (mean over seeds)."""
    grouped = group_runs(runs)
    models = model_order(m for d, m in grouped if d == dataset)
    if not models:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for model in models:
        keys = sorted(
            (int(k.split("@")[1]), k)
            for k in grouped[(dataset, model)][0].results.get("test", {})
            if re.fullmatch(r"hr@\d+", k)
        )
        points = [(k, metric_summary(grouped[(dataset, model)], key)) for k, key in keys]
        points = [(k, s.mean, s.std) for k, s in points if s is not None]
        if points:
            ks, means, stds = zip(*points, strict=True)
            axes.errorbar(
                ks,
                means,
                yerr=stds if len(grouped[(dataset, model)]) > 1 else None,
                marker="o",
                capsize=3,
                color=model_colour(model),
                label=model,
            )
    axes.set(xlabel="K", ylabel="HR@K (test, full ranking)", title=f"{dataset}: HR@K")
    axes.legend(fontsize="small")
    return _save(figure, path)


def metric_by_epoch(
    runs: Iterable[Run], dataset: str, path: str, metric: str = "hr@100"
) -> str | None:
    """Validation `metric` against the epoch (the EHCF paper's Figure 3): the mean over
    seeds with ± std error bars at the epochs every seed evaluated (the first seed's curve
    when they share fewer than two); models fitted in closed form have no curve."""
    from matplotlib.ticker import MaxNLocator

    grouped = group_runs(runs)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    drawn = False
    for model in model_order(m for d, m in grouped if d == dataset):
        curves = [
            {e["epoch"]: e[metric] for e in run.history if metric in e}
            for run in sorted(grouped[(dataset, model)], key=lambda r: r.seed)
        ]
        curves = [c for c in curves if c]
        if not curves:
            continue
        shared = sorted(set.intersection(*(set(c) for c in curves)))
        if len(curves) > 1 and len(shared) >= 2:
            summaries = [summarize(c[epoch] for c in curves) for epoch in shared]
            means = [s.mean if s else np.nan for s in summaries]
            stds = [s.std if s else 0.0 for s in summaries]
        else:
            shared = sorted(curves[0])
            means, stds = [curves[0][epoch] for epoch in shared], None
        axes.errorbar(
            shared, means, yerr=stds, marker=".", capsize=2, color=model_colour(model), label=model
        )
        drawn = True
    if not drawn:
        _pyplot().close(figure)
        return None
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="epoch", ylabel=f"{metric.upper()} (validation)", title=f"{dataset}")
    axes.legend(fontsize="small")
    return _save(figure, path)


def metric_by_user_group(
    runs: Iterable[Run], dataset: str, path: str, metric: str = "hr@100"
) -> str | None:
    """Test `metric` per group of users by their number of target training interactions
    (the EHCF paper's Figure 4): grouped bars, mean over seeds with ± std error bars; each
    group's label gives its number of test users (a small group's bar may be empty)."""
    grouped = group_runs(runs)
    models = model_order(m for d, m in grouped if d == dataset)
    if not models:
        return None
    pattern = re.compile(rf"groups/([^/]+)/{re.escape(metric)}")
    labels: list[str] = []
    for model in models:
        for key in grouped[(dataset, model)][0].results.get("test", {}):
            match = pattern.fullmatch(key)
            if match and match.group(1) not in labels:
                labels.append(match.group(1))
    if not labels:
        return None
    labels.sort(key=_group_sort_key)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(models)
    positions = np.arange(len(labels))
    for index, model in enumerate(models):
        values, errors = [], []
        for label in labels:
            summary = metric_summary(grouped[(dataset, model)], f"groups/{label}/{metric}")
            values.append(np.nan if summary is None else summary.mean)
            errors.append(0.0 if summary is None else summary.std)
        several_seeds = len(grouped[(dataset, model)]) > 1
        axes.bar(
            positions + index * width,
            values,
            width,
            yerr=errors if several_seeds else None,
            capsize=2,
            color=model_colour(model),
            label=model,
        )
    counts = []
    for label in labels:
        sizes = [
            run.results.get("test", {}).get(f"groups/{label}/num_users")
            for model in models
            for run in grouped[(dataset, model)]
        ]
        sizes = [int(n) for n in sizes if n is not None]
        counts.append(f"{label}\n{max(sizes):,} users" if sizes else label)
    axes.set_xticks(positions + width * (len(models) - 1) / 2, counts)
    axes.set(
        xlabel="target training interactions per user",
        ylabel=f"{metric.upper()} (test)",
        title=f"{dataset}: by user group",
    )
    axes.legend(fontsize="small")
    return _save(figure, path)


def _group_sort_key(label: str) -> float:
    """'0' < '1-4' < '5-8' < ... < '>32'."""
    if label.startswith(">"):
        return float(label[1:]) + 0.5
    return float(label.split("-")[0])


def lambda_grid(
    values: Mapping[tuple[float, ...], float],
    behaviors: Sequence[str],
    dataset: str,
    path: str,
    metric: str = "hr@100",
) -> str | None:
    """EHCF's `metric` over a grid of loss coefficients (the EHCF paper's Figure 5).

    `values` maps the coefficients of `behaviors` (the target last, summing to 1) to the
    metric. Two behaviors give a curve over the first one's coefficient; three give a heat
    map over the first two (the target takes the rest; cells with a negative rest are empty).
    """
    if not values:
        return None
    plt = _pyplot()
    if len(behaviors) == 2:
        points = sorted((key[0], value) for key, value in values.items())
        figure, axes = plt.subplots(figsize=(5, 4))
        axes.plot(*zip(*points, strict=True), marker="o")
        axes.set(
            xlabel=f"λ {behaviors[0]} (λ {behaviors[1]} = 1 − it)",
            ylabel=f"{metric.upper()} (test)",
            title=f"{dataset}: EHCF over λ",
        )
        return _save(figure, path)
    if len(behaviors) != 3:
        raise ValueError(f"a λ grid plot needs 2 or 3 behaviors, got {tuple(behaviors)}")
    firsts = sorted({key[0] for key in values})
    seconds = sorted({key[1] for key in values})
    grid = np.full((len(seconds), len(firsts)), np.nan)
    for key, value in values.items():
        grid[seconds.index(key[1]), firsts.index(key[0])] = value
    figure, axes = plt.subplots(figsize=(5.5, 4.5))
    image = axes.imshow(grid, origin="lower", cmap="Blues", aspect="auto")
    axes.set_xticks(range(len(firsts)), [f"{v:.2f}" for v in firsts])
    axes.set_yticks(range(len(seconds)), [f"{v:.2f}" for v in seconds])
    axes.set(
        xlabel=f"λ {behaviors[0]}",
        ylabel=f"λ {behaviors[1]} (λ {behaviors[2]} = 1 − both)",
        title=f"{dataset}: EHCF {metric.upper()} (test) over λ",
    )
    figure.colorbar(image, ax=axes)
    return _save(figure, path)
