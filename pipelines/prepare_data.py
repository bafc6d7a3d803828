r"""Builds a dataset's TFDS version (if needed) and prints its statistics.

    python -m pipelines.prepare_data --dataset=beibei --manual_dir=../shared/data/beibei
    python -m pipelines.prepare_data --dataset=taobao_user_behavior \
        --manual_dir=/data/taobao --sample_users=20000 --seed=1

Prints users, items, records read per behavior (per source file where a behavior has
several), training pairs per behavior, the validation/test split sizes, and everything the
preprocessing merged, removed or held out by design (duplicates, k-core, leaked events,
sampled-out users).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from absl import flags

from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The flags of this pipeline (into `flag_values`; tests pass a fresh FlagValues)."""
    from mbrec_tf.data import loading

    flags.DEFINE_string(
        "dataset",
        loading.DEFAULT_DATASET,
        f"Dataset, optionally with its config ('name/config'): {', '.join(loading.DATASETS)}.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "config",
        None,
        "Builder config, optionally with variant options, e.g. tiny or default_seed1 "
        "(default: the builder's default).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "manual_dir", None, "Folder holding the dataset's raw files.", flag_values=flag_values
    )
    flags.DEFINE_string(
        "data_dir", None, "TFDS data directory (default: TFDS's own).", flag_values=flag_values
    )
    flags.DEFINE_integer(
        "seed",
        None,
        "Seed of the validation hold-out, stored negatives, generation and user sampling "
        "(default: the config's, 0).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "sample_users",
        None,
        "Keep this many randomly drawn users (taobao_user_behavior).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "min_target_events",
        None,
        "k-core: users and items need this many target events (event-log datasets).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "rebuild",
        False,
        "Regenerate the dataset even if it is already built.",
        flag_values=flag_values,
    )


def format_statistics(
    name: str,
    config: str,
    stats: Mapping[str, int],
    metadata: Mapping[str, Any],
    timings: Mapping[str, float] | None = None,
) -> str:
    """A readable summary of a built dataset (what `main` prints)."""
    behaviors: Sequence[str] = metadata["behaviors"]
    target = behaviors[-1]
    report: Mapping[str, int] = metadata["report"]
    lines = [f"Dataset {name} (config {config})"]
    if timings:
        lines[0] += ": " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    lines += [
        f"  users      {stats['users']:>12,}",
        f"  items      {stats['items']:>12,}",
        f"  behaviors  {', '.join(behaviors)} (target: {target})",
        "records read from the source:",
    ]
    for key, value in report.items():
        if key.startswith("records/"):
            lines.append(f"  {key[len('records/') :]:<32} {value:>12,}")
    lines.append("training pairs (after preprocessing):")
    for behavior in behaviors:
        lines.append(f"  {behavior:<32} {stats[f'train/{behavior}']:>12,}")
    valid, test = stats[f"valid/{target}"], stats[f"test/{target}"]
    if f"valid_holdout/{target}" in report:
        total = stats[f"train/{target}"] + valid
        lines.append(
            f"  {target} train + validation hold-out = {stats[f'train/{target}']:,} + "
            f"{valid:,} = {total:,} (the source's training pairs)"
        )
    lines += ["held-out splits:", f"  valid {valid:>12,}", f"  test  {test:>12,}"]
    by_design = [
        (key, value)
        for key, value in report.items()
        if key.split("/")[0] in ("duplicates_merged", "kcore", "leakage_removed", "sampling")
    ]
    lines.append("merged, removed or sampled by design:")
    lines += [f"  {key:<32} {value:>12,}" for key, value in by_design] or ["  nothing"]
    checks = [(k, v) for k, v in report.items() if k.startswith("test_pairs_also_in_train")]
    lines += [f"check: {key} = {value:,}" for key, value in checks]
    return "\n".join(lines)


def run(flag_values: flags.FlagValues = FLAGS) -> str:
    """Builds (or reuses) the dataset the flags name, loads it back, returns the summary."""
    import tensorflow  # noqa: F401 - imported up front so the timings below exclude it
    import tensorflow_datasets as tfds
    from absl import logging

    from mbrec_tf.data import loading

    logging.set_verbosity(logging.WARNING)
    tfds.disable_progress_bar()
    name, config = loading.split_name(flag_values.dataset, flag_values.config)
    config_obj = loading.builder_class(name).variant(
        config,
        seed=flag_values.seed,
        sample_users=flag_values.sample_users,
        min_target_events=flag_values.min_target_events,
    )
    builder = loading.builder_class(name)(config=config_obj, data_dir=flag_values.data_dir)
    start = time.perf_counter()
    loading.build_matching(builder, flag_values.manual_dir, rebuild=flag_values.rebuild)
    builder = loading.reopen(builder)
    built = time.perf_counter()
    data = loading.from_builder(builder)
    loaded = time.perf_counter()
    summary = format_statistics(
        name,
        config_obj.name,
        data.statistics(),
        builder.info.metadata,
        {"build (or reuse)": built - start, "load": loaded - built},
    )
    return f"{summary}\nbuilt at {builder.data_dir}"


def main(argv: Sequence[str]) -> None:
    del argv
    print(run(FLAGS))


if __name__ == "__main__":
    define_flags()
    common.run(main)
