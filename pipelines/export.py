r"""Exports a trained run as a TensorFlow Serving SavedModel (`<export_dir>/<version>/`).

  python -m pipelines.export --model_dir=runs/ehcf/beibei
  python -m pipelines.export --model_dir=runs/ehcf/beibei --export_dir=/models/ehcf --version=3

Restores the run's latest checkpoint (`mbrec_tf.training.restore_run`), reloads its dataset
(for the raw ids and the target-train items to exclude) and writes a new version next to
any existing ones; see `mbrec_tf.serving.export` for the signatures.
"""

from __future__ import annotations

import json
import os

from absl import flags

from mbrec_tf import run_directory, training
from mbrec_tf.serving import export as export_lib
from pipelines import flags as common

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """All flags of the export pipeline."""
    flags.DEFINE_string(
        "model_dir",
        None,
        "A training run directory (pipelines.train --model_dir).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "export_dir",
        None,
        "SavedModel base directory (default: <model_dir>/export).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "version",
        None,
        "Version number (default: one more than the largest existing one).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "TFDS data directory (default: the one recorded in the run).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "manual_dir",
        None,
        "Raw dataset files (default: the folder recorded in the run).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "default_k",
        10,
        "k of serving_default and the default k of top_k.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "max_k",
        None,
        "Largest k accepted (default: every item a user can still be shown).",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.mark_flag_as_required("model_dir", flag_values=flag_values)


def run(flag_values: flags.FlagValues = FLAGS) -> str:
    """Restores the run, exports it; returns the new version directory."""
    model_dir = flag_values.model_dir
    model, data, spec, _ = training.restore_run(
        model_dir, data_dir=flag_values.data_dir, manual_dir=flag_values.manual_dir
    )
    with open(os.path.join(model_dir, run_directory.RUN_CONFIG_FILE), encoding="utf-8") as file:
        run_config = json.load(file)
    export_dir = flag_values.export_dir or os.path.join(model_dir, "export")
    path = export_lib.export_model(
        model,
        data,
        export_dir,
        version=flag_values.version,
        default_k=flag_values.default_k,
        max_k=flag_values.max_k,
        metadata={"run_config": run_config, "model_dir": os.path.abspath(model_dir)},
    )
    print(f"exported {spec.name} ({data.name}) to {path}")
    return path


def main(argv: list[str]) -> None:
    del argv
    run(FLAGS)


if __name__ == "__main__":
    define_flags()
    common.run(main)
