"""The papers' figures as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mbrec_tf.reports.tables import Run, group_runs, metric_summary, model_order


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
        points = [(k, s.mean) for k, s in points if s is not None]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=model)
    axes.set(xlabel="K", ylabel="HR@K (test, full ranking)", title=f"{dataset}: HR@K")
    axes.legend(fontsize="small")
    return _save(figure, path)


def metric_by_epoch(
    runs: Iterable[Run], dataset: str, path: str, metric: str = "hr@100"
) -> str | None:
    """Validation `metric` against the epoch (the EHCF paper's Figure 3), first seed of each
    model; models fitted in closed form have no curve."""
    grouped = group_runs(runs)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    drawn = False
    for model in model_order(m for d, m in grouped if d == dataset):
        run = min(grouped[(dataset, model)], key=lambda r: r.seed)
        points = [(e["epoch"], e[metric]) for e in run.history if metric in e]
        if points:
            axes.plot(*zip(*points, strict=True), marker=".", label=model)
            drawn = True
    if not drawn:
        _pyplot().close(figure)
        return None
    axes.set(xlabel="epoch", ylabel=f"{metric.upper()} (validation)", title=f"{dataset}")
    axes.legend(fontsize="small")
    return _save(figure, path)


def metric_by_user_group(
    runs: Iterable[Run], dataset: str, path: str, metric: str = "hr@100"
) -> str | None:
    """Test `metric` per group of users by their number of target training interactions
    (the EHCF paper's Figure 4): grouped bars, mean over seeds."""
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
        values = []
        for label in labels:
            summary = metric_summary(grouped[(dataset, model)], f"groups/{label}/{metric}")
            values.append(np.nan if summary is None else summary.mean)
        axes.bar(positions + index * width, values, width, label=model)
    axes.set_xticks(positions + width * (len(models) - 1) / 2, labels)
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
