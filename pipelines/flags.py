"""Flags shared by the pipelines, and the chosen model's hyper-parameter flags.

Only the model named by `--model` gets flags: every field of its config dataclass becomes an
absl flag of the same name with that field's help text, so `--model=X --help` lists the
common flags and exactly X's own, and a flag of another model is refused with one line.
A model flag's default is None, meaning "the registry's default for this model and dataset".
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging

from mbrec_tf import config as config_lib
from mbrec_tf import registry

FLAGS = flags.FLAGS
DEFAULT_DATASET = "mbrec_synthetic"
#: Exit status of a command-line mistake (flags, files, paths the user named).
USAGE_ERROR = 2


def define_data_flags() -> None:
    """--dataset, --data_dir, --manual_dir."""
    flags.DEFINE_string(
        "dataset",
        DEFAULT_DATASET,
        "TFDS dataset name, optionally with a config: mbrec_synthetic, mbrec_synthetic/tiny, "
        "beibei, taobao, taobao_ub4, retailrocket, taobao_user_behavior, movielens_100k.",
    )
    flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS's own).")
    flags.DEFINE_string("manual_dir", None, "Folder holding the dataset's raw files.")


def define_eval_users_flag() -> None:
    """--eval_users: evaluate a seeded sample of users (large datasets)."""
    flags.DEFINE_integer(
        "eval_users",
        None,
        "Evaluate a seeded sample of this many users of each split (drawn once with --seed; "
        "default: every user). For large datasets: memory stays bounded either way.",
        lower_bound=1,
    )


def define_strategy_flag() -> None:
    """--strategy: the tf.distribute strategy every run of the pipeline trains under."""
    from mbrec_tf import distribute

    flags.DEFINE_enum(
        "strategy",
        distribute.DEFAULT,
        list(distribute.STRATEGIES),
        "tf.distribute strategy: default (one device), mirrored (every local device), "
        "multi_worker (MultiWorkerMirroredStrategy, cluster from TF_CONFIG) or "
        "parameter_server (ParameterServerStrategy, cluster from TF_CONFIG; tables "
        "partitioned over the ps tasks). Start a local cluster with pipelines.launch_local.",
    )


_RUN_STRATEGY: list = []


def run_strategy(refuse: Sequence[str] = ()):
    """The strategy `--strategy` names, built on the first call (make it before any other
    TensorFlow work) and returned by every later one: one strategy per run.

    A parameter-server cluster's `worker` and `ps` tasks never return: they serve the
    chief until they are stopped. Strategies in `refuse` end in one line (exit 2).
    """
    from mbrec_tf import distribute

    if _RUN_STRATEGY:
        return _RUN_STRATEGY[0]
    if FLAGS.strategy in refuse:
        usage_error(
            f"--strategy={FLAGS.strategy} is not available here: this pipeline runs one "
            "process; use mirrored or parameter_server, or pipelines.train on a cluster"
        )
    if FLAGS.strategy == distribute.PARAMETER_SERVER:
        cluster = distribute.cluster_from_environment()
        if cluster and distribute.serves_only(cluster):
            distribute.serve_forever(cluster)
    _RUN_STRATEGY.append(distribute.make_strategy(FLAGS.strategy))
    return _RUN_STRATEGY[0]


def chosen_model(argv: Sequence[str]) -> str | None:
    """The value of `--model` in a command line (before any `--`), or None."""
    args = list(argv[1:])
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
        if arg == "--model" and index + 1 < len(args):
            return args[index + 1]
    return None


def _all_model_fields() -> dict[str, list[str]]:
    """Hyper-parameter name -> the registered models that have it."""
    owners: dict[str, list[str]] = {}
    for spec in registry.REGISTRY.values():
        for field in dataclasses.fields(spec.config_cls):
            owners.setdefault(field.name, []).append(spec.name)
    return owners


#: The hyper-parameter flags `define_model_flags` defined for the chosen model.
_MODEL_FIELDS: list[str] = []


def define_model_flags(argv: Sequence[str] | None = None) -> str | None:
    """--model plus one flag per hyper-parameter of the model `argv` names.

    Returns that model's name (None when `--model` is absent or unknown: absl then reports
    it while parsing).
    """
    argv = sys.argv if argv is None else argv
    flags.DEFINE_enum(
        "model",
        None,
        sorted(registry.REGISTRY),
        "Model to train. `--model=<name> --help` also lists that model's own flags.",
    )
    model = chosen_model(argv)
    spec = registry.REGISTRY.get(model)
    if spec is None:
        if asks_for_help(argv):  # plain --help: the hyper-parameters every model has
            _define_config_flags(config_lib.TrainConfig, None)
        return None
    _define_config_flags(spec.config_cls, spec)
    _MODEL_FIELDS[:] = [field.name for field in dataclasses.fields(spec.config_cls)]
    return model


def _define_config_flags(config_cls: type, spec: registry.ModelSpec | None) -> None:
    """One flag per field of `config_cls`, with the field's help and its default(s)."""
    types = config_lib.field_types(config_cls)
    for field in dataclasses.fields(config_cls):
        hint = types[field.name]
        if spec is None:
            default = "(every model; defaults vary by model: see --model=<name> --help)"
        else:
            default = _default_text(spec, field)
        help_text = f"{field.metadata.get('help', field.name)} {default}"
        if typing.get_origin(hint) is tuple:
            flags.DEFINE_list(field.name, None, help_text)
        elif hint is bool:
            flags.DEFINE_bool(field.name, None, help_text)
        elif hint is int:
            flags.DEFINE_integer(field.name, None, help_text)
        elif hint is float:
            flags.DEFINE_float(field.name, None, help_text)
        else:
            flags.DEFINE_string(field.name, None, help_text)


#: absl's help flags (all of them exit before the program runs).
_HELP_FLAGS = ("help", "?", "helpshort", "helpfull", "helpxml")


def asks_for_help(argv: Sequence[str]) -> bool:
    """Whether a command line (before any `--`) asks for help."""
    for arg in argv[1:]:
        if arg == "--":
            return False
        if arg.startswith("-") and arg.lstrip("-").split("=", 1)[0] in _HELP_FLAGS:
            return True
    return False


def _default_text(spec: registry.ModelSpec, field: dataclasses.Field) -> str:
    """'(default: X; beibei: Y)': the config's default and any per-dataset default."""

    def shown(value: Any) -> str:
        return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    parts = [f"default: {shown(field.default) or '(empty)'}"]
    for dataset, values in sorted(spec.dataset_defaults.items()):
        if field.name in values:
            parts.append(f"{dataset}: {shown(values[field.name])}")
    return f"({'; '.join(parts)})"


def model_overrides() -> dict[str, Any]:
    """The hyper-parameter flags of the `--model` the user chose, those the user set."""
    overrides: dict[str, Any] = {}
    for name in _MODEL_FIELDS:
        value = FLAGS[name].value
        if value is not None:
            overrides[name] = value
    return overrides


def usage_error(message: str) -> typing.NoReturn:
    """One line on stderr, exit status 2: how every command-line mistake ends."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "mbrec_tf"
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def _inapplicable_flag(argv: Sequence[str]) -> str | None:
    """A message for the first flag that belongs to another model than `--model`'s."""
    owners = _all_model_fields()
    model = chosen_model(argv)
    for arg in argv[1:]:
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name = arg.lstrip("-").split("=", 1)[0]
        if name in FLAGS:
            continue
        field = name if name in owners else name[2:] if name.startswith("no") else None
        if field not in owners:
            continue
        if model is None:
            return f"--{name} is a model hyper-parameter: name the model with --model=..."
        return (
            f"--{name} does not apply to --model={model} "
            f"(it is a flag of {', '.join(owners[field])}; see --model={model} --help)"
        )
    return None


def parse_flags(argv: Sequence[str]) -> list[str]:
    """absl flag parsing with one-line errors (exit 2) for every flag mistake."""
    message = _inapplicable_flag(argv)
    if message:
        usage_error(message)
    try:
        return FLAGS(list(argv))
    except flags.Error as error:
        usage_error(str(error))
    except SystemExit as exit_:
        if exit_.code == 1 and asks_for_help(argv):
            sys.exit(0)  # absl exits 1 after printing the help it was asked for
        raise


def user_error_message(error: BaseException) -> str | None:
    """One line for an error the user caused (bad data, path, run directory), else None.

    Looks through exceptions that wrap another (TFDS re-raises errors of a builder).
    """
    from mbrec_tf.errors import UserError
    from tfds_builders import DataFormatError

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (UserError, DataFormatError, *_PATH_ERRORS)):
            text = str(error).strip() or type(error).__name__
            return text.splitlines()[0]
        error = error.__cause__ or error.__context__
    return None


#: OS errors about a path the user named (a missing run, an unwritable directory).
_PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def run(main: Callable[[list[str]], None]) -> None:
    """Runs a pipeline's `main`: flag mistakes and errors the user caused end in one line
    on stderr and exit status 2 (`--traceback` shows the whole trace); any other error is a
    bug and keeps its traceback. A pipeline's own flags must be defined first."""
    flags.DEFINE_bool(
        "traceback", False, "Show the full Python traceback of an error (for bug reports)."
    )
    FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS["traceback"])

    def guarded(argv: list[str]) -> None:
        # TensorFlow's and TFDS's INFO lines are noise in a command's output; a pipeline
        # that wants INFO (serve) asks for it in its main.
        logging.set_verbosity(logging.WARNING)
        try:
            main(argv)
        except Exception as error:  # noqa: BLE001 - classified below, re-raised otherwise
            message = user_error_message(error)
            if message is None or FLAGS.traceback:
                raise
            usage_error(message)

    app.run(guarded, flags_parser=parse_flags)
