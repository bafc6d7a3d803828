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
