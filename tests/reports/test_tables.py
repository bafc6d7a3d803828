"""Tables of the reproduction report: mean ± std, best marks, published rows, runtime."""

import csv
import io

import pytest

from mbrec_tf.reports import plots, tables


def _run(model, seed, hr10, dataset="beibei", **extra):
    results = {
        "test": {"hr@10": hr10, "sampled/hr@10": 2 * hr10, "groups/1-4/hr@100": hr10},
        "timings": {"epoch_seconds": 2.0, "train_seconds": 99.0},
        "best_epoch": 3,
        "epochs_trained": 5,
        "history": [{"epoch": 1, "hr@100": 0.1}, {"epoch": 3, "hr@100": 0.2}],
        **extra,
    }
    return tables.Run(dataset, model, seed, results)


def test_summary_is_mean_and_sample_std():
    summary = tables.summarize([0.1, 0.2, 0.3, float("nan"), None])
    assert summary.mean == pytest.approx(0.2) and summary.std == pytest.approx(0.1)
    assert summary.count == 3 and summary.text() == "0.2000 ± 0.1000"
    assert tables.summarize([0.5]).text() == "0.5000"
    assert tables.summarize([]) is None


def test_markdown_marks_the_best_mean_and_adds_published_rows():
    runs = [_run("bpr", 1, 0.10), _run("bpr", 2, 0.20), _run("ehcf", 1, 0.30), _run("mine", 1, 0.0)]
    text = tables.markdown_table(runs, ["beibei"], ("hr@10", "hr@50"), "Full ranking")
    lines = text.splitlines()
    bpr = next(line for line in lines if line.startswith("| single | bpr |"))
    assert "0.1500 ± 0.0707" in bpr and "**" not in bpr
    ehcf = next(line for line in lines if "| ehcf |" in line)
    assert "**0.3000**" in ehcf
    published = next(line for line in lines if "*bpr, published*" in line)
    assert "*0.0437*" in published and "*0.1246*" in published  # EHCF paper, Table 2
    # Single-behavior models first, then multi-behavior ones, then any other model.
    order = [
        line.split("|")[2].strip()
        for line in lines
        if line.startswith("| single") or line.startswith("| multi")
    ]
    assert order == ["bpr", "ehcf", "mine"]
    assert "HR@50" in text and "—" in ehcf  # a metric a run lacks shows as a dash


def test_csv_is_long_form_with_published_values():
    rows = list(csv.DictReader(io.StringIO(tables.csv_table([_run("bpr", 1, 0.1)], ("hr@10",)))))
    assert rows == [
        {
            "dataset": "beibei",
            "model": "bpr",
            "metric": "hr@10",
            "mean": "0.100000",
            "std": "0.000000",
            "seeds": "1",
            "published": "0.0437",
        }
    ]


def test_runtime_table_uses_epoch_seconds_and_the_selected_epoch():
    text = tables.runtime_markdown([_run("ehcf", 1, 0.3), _run("ehcf", 2, 0.3)], ["beibei"], "m")
    row = next(line for line in text.splitlines() if line.startswith("| ehcf |"))
    assert "2.000 ± 0.000 s" in row and "3.0 ± 0.0" in row and "10.0 s" in row
    assert "*ehcf, published* | *7 s* | *200*" in text


def test_plots_are_written(tmp_path):
    runs = [_run("bpr", 1, 0.1), _run("ehcf", 1, 0.3)]
    for function in (plots.hr_at_k, plots.metric_by_epoch, plots.metric_by_user_group):
        path = function(runs, "beibei", str(tmp_path / f"{function.__name__}.png"))
        assert path and (tmp_path / f"{function.__name__}.png").stat().st_size > 1000
    grid = {(0.0, 1.0, 0.0): 0.1, (0.5, 0.0, 0.5): 0.2, (0.5, 0.5, 0.0): 0.3}
    assert plots.lambda_grid(grid, ("view", "cart", "buy"), "x", str(tmp_path / "l3.png"))
    line = {(0.0, 1.0): 0.1, (0.5, 0.5): 0.2}
    assert plots.lambda_grid(line, ("cart", "buy"), "x", str(tmp_path / "l2.png"))


def test_the_published_ehcf_beibei_row_is_the_authors_correction():
    text = tables.markdown_table([_run("ehcf", 1, 0.3)], ["beibei"], ("hr@10", "ndcg@10"), "x")
    published = next(line for line in text.splitlines() if "*ehcf, published*" in line)
    assert "*0.1551*" in published and "*0.0831*" in published
    assert "0.0608" not in text and "0.0325" not in text  # the superseded figures


@pytest.fixture
def figures(monkeypatch) -> list:
    """The matplotlib figures the plot functions make, kept open for inspection."""
    kept: list = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: kept.append(figure) or path)
    yield kept
    import matplotlib.pyplot as plt

    for figure in kept:
        plt.close(figure)


def _seeded_runs():
    runs = []
    for model, base in (("bpr", 0.1), ("ehcf", 0.3)):
        for seed, noise in ((1, -0.02), (2, 0.02)):
            runs.append(
                _run(
                    model,
                    seed,
                    base + noise,
                    history=[{"epoch": 1, "hr@100": base + noise}, {"epoch": 3, "hr@100": base}],
                )
            )
            runs[-1].results["test"].update(
                {"hr@50": base + 2 * noise, "groups/1-4/num_users": 3.0}
            )
    return runs


def test_plots_draw_std_error_bars_one_colour_per_model_and_integer_epochs(figures):
    import matplotlib.container

    runs = _seeded_runs()
    plots.hr_at_k(runs, "beibei", "a.png")
    plots.metric_by_epoch(runs, "beibei", "b.png")
    plots.metric_by_user_group(runs, "beibei", "c.png")
    colours = {}
    for figure in figures:
        (axes,) = figure.axes
        containers = [
            c
            for c in axes.containers
            if isinstance(
                c, (matplotlib.container.ErrorbarContainer, matplotlib.container.BarContainer)
            )
        ]
        assert containers
        for container in containers:
            label = container.get_label()
            if isinstance(container, matplotlib.container.ErrorbarContainer):
                if container.lines[0] is None:
                    continue  # the error bars of a bar chart: checked with the bars
                assert container.has_yerr, label  # two seeds: ± std drawn
                colour = container.lines[0].get_color()
            else:
                assert container.errorbar is not None, label
                colour = matplotlib.colors.to_hex(container.patches[0].get_facecolor())
            colours.setdefault(label, set()).add(matplotlib.colors.to_hex(colour))
    assert set(colours) == {"bpr", "ehcf"}
    assert all(len(c) == 1 for c in colours.values())  # the same colour in every figure
    assert colours["bpr"] != colours["ehcf"]
    assert plots.model_colour("bpr") == plots.model_colour("bpr") != plots.model_colour("ehcf")
    epoch_axes = figures[1].axes[0]
    ticks = [t for t in epoch_axes.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)  # no epoch 1.5
    group_labels = [t.get_text() for t in figures[2].axes[0].get_xticklabels()]
    assert group_labels == ["1-4\n3 users"]


def test_record_plots_removes_only_plots_an_earlier_report_recorded(tmp_path):
    plot_dir = tmp_path / "plots"
    plot_dir.mkdir()
    for name in ("a.png", "b.png", "mine.png"):
        (plot_dir / name).write_bytes(b"x")
    assert (
        plots.record_plots(str(plot_dir), [str(plot_dir / "a.png"), str(plot_dir / "b.png")]) == []
    )
    removed = plots.record_plots(str(plot_dir), [str(plot_dir / "a.png"), None])
    assert removed == [str(plot_dir / "b.png")]
    assert sorted(p.name for p in plot_dir.iterdir()) == ["a.png", "mine.png", "plots.json"]
