"""Exports any `Recommender` as a TensorFlow Serving SavedModel (one shared exporter).

Layout: `<export_base_dir>/<version>/` with an integer version, as TensorFlow Serving
expects. Unless given, the version is one more than the largest integer version already in
the base directory (1 for an empty one). The SavedModel is written to a hidden temporary
folder in the same base directory and then renamed into place, so a server polling the
base directory never sees half a model (TF Serving ignores folders whose names are not
integers). Only local file systems are supported (the rename is `os.rename`).

The signatures are `signatures.ServingModule`'s (see there); reading an export back is
`exported`'s (`load_exported`, `read_metadata`, ...), re-exported here for callers.

Besides the SavedModel, `assets.extra/` holds `mbrec_export.json` (dataset, model config
and export settings: see `export_model`), `item_titles.json` when the dataset has item
titles, and `tf_serving_warmup_requests` (see `mbrec_tf.serving.warmup`).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

import mbrec_tf
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.errors import UserError
from mbrec_tf.models.base import Recommender
from mbrec_tf.serving import warmup
from mbrec_tf.serving.exported import (
    ASSETS_EXTRA,
    METADATA_FILE,
    TITLES_FILE,
    ExportedRecommender,
    existing_versions,
    load_exported,
    next_version,
    read_item_titles,
    read_metadata,
    resolve_version_dir,
)
from mbrec_tf.serving.signatures import (
    ServingModule,
    describe_signatures,
    max_excluded,
    warmup_requests,
)

__all__ = [
    "ASSETS_EXTRA",
    "METADATA_FILE",
    "TITLES_FILE",
    "ExportExistsError",
    "ExportedRecommender",
    "existing_versions",
    "export_model",
    "load_exported",
    "next_version",
    "read_item_titles",
    "read_metadata",
    "remove_stale_staging",
    "resolve_version_dir",
]


class ExportExistsError(UserError, FileExistsError):
    """An export version asked for by number exists already (it is never overwritten)."""


_STAGING_PREFIX = ".export-tmp-"
#: A staging folder whose writer left no trace of itself is deleted when this old.
STALE_STAGING_SECONDS = 24 * 3600


def _host_tag() -> str:
    """This host's name as it appears in staging-folder names."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())


def _staging_prefix() -> str:
    """This process's staging-folder prefix: `.export-tmp-<host>-<pid>-`."""
    return f"{_STAGING_PREFIX}{_host_tag()}-{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_staging(export_base_dir: str) -> list[str]:
    """Deletes staging folders of exports that were killed; returns their names.

    Only this exporter's folders (`.export-tmp-<host>-<pid>-*`) whose process on this host
    has ended, and any `.export-tmp-*` folder untouched for `STALE_STAGING_SECONDS`.
    """
    if not os.path.isdir(export_base_dir):
        return []
    mine = re.compile(rf"^{re.escape(_STAGING_PREFIX + _host_tag())}-(\d+)-")
    removed = []
    for name in sorted(os.listdir(export_base_dir)):
        path = os.path.join(export_base_dir, name)
        if not name.startswith(_STAGING_PREFIX) or not os.path.isdir(path):
            continue
        match = mine.match(name)
        ended = match is not None and not _process_alive(int(match.group(1)))
        try:
            stale = time.time() - os.path.getmtime(path) > STALE_STAGING_SECONDS
        except OSError:
            continue
        if ended or stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def _existing_version_error(target: str, version: int) -> ExportExistsError:
    return ExportExistsError(
        f"export version {version} exists ({target}); not overwriting it: choose another "
        "--version, or leave it out for the next free one"
    )


def export_model(
    model: Recommender,
    data: MultiBehaviorData,
    export_base_dir: str,
    *,
    version: int | None = None,
    default_k: int = 10,
    max_k: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Writes `model` as `<export_base_dir>/<version>/` atomically; returns that folder.

    Args:
      model: a (trained) Recommender for `data`.
      data: the dataset it was trained on (raw ids, known target items to exclude).
      export_base_dir: the TF Serving model base path.
      version: integer version; default: one more than the largest existing one. An
        existing version is never overwritten (`ExportExistsError`, checked first).
      default_k: k of `serving_default` and the default k of `top_k`.
      max_k: largest k accepted (default and upper limit: num_items minus the largest
        number of known target items of one user).
      metadata: JSON-serialisable facts to store with the export under "run" (model name,
        resolved config, flags, ...).
    """
    if model.num_items != data.num_items or model.num_users != data.num_users:
        raise ValueError(
            f"model is for {model.num_users} users x {model.num_items} items, "
            f"data has {data.num_users} x {data.num_items}"
        )
    limit = data.num_items - max_excluded(data)
    if limit < 1:
        raise ValueError("some user has every item in its target training data: nothing to rank")
    max_k = limit if max_k is None else int(max_k)
    if not 1 <= max_k <= limit:
        raise ValueError(f"max_k must be in [1, {limit}] for this dataset, got {max_k}")
    if not 1 <= default_k <= max_k:
        raise ValueError(f"default_k must be in [1, max_k={max_k}], got {default_k}")
    if version is not None and (isinstance(version, bool) or int(version) < 0):
        raise ValueError(f"version must be a non-negative integer, got {version!r}")

    if version is not None and os.path.exists(os.path.join(export_base_dir, str(int(version)))):
        raise _existing_version_error(os.path.join(export_base_dir, str(int(version))), version)
    module = ServingModule(model, data, default_k=default_k, max_k=max_k)
    requests = warmup_requests(module, data)
    for request in requests:  # Traces every signature and fails early on a broken model.
        getattr(module, request.signature)(**request.inputs)

    os.makedirs(export_base_dir, exist_ok=True)
    remove_stale_staging(export_base_dir)
    staging = tempfile.mkdtemp(prefix=_staging_prefix(), dir=export_base_dir)
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        extra = os.path.join(staging, ASSETS_EXTRA)
        os.makedirs(extra, exist_ok=True)
        run = dict(metadata or {})
        warmup.write_warmup_requests(os.path.join(extra, warmup.WARMUP_FILE), requests)
        if data.item_titles is not None:
            titles = {str(i): str(t) for i, t in zip(data.item_ids, data.item_titles, strict=True)}
            with open(os.path.join(extra, TITLES_FILE), "w", encoding="utf-8") as file:
                json.dump(titles, file, ensure_ascii=False)
        os.chmod(staging, 0o755)  # mkdtemp makes it private; servers may run as other users.
        return _publish(staging, export_base_dir, version, module, data, run)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _publish(
    staging: str,
    export_base_dir: str,
    version: int | None,
    module: ServingModule,
    data: MultiBehaviorData,
    run: dict[str, Any],
) -> str:
    """Writes the metadata for the chosen version and renames the staging folder to it.

    With an automatic version, a concurrent exporter that took the same number first makes
    the rename fail; the next number is tried then.
    """
    for _ in range(100):
        chosen = next_version(export_base_dir) if version is None else int(version)
        target = os.path.join(export_base_dir, str(chosen))
        if os.path.exists(target):
            if version is not None:
                raise _existing_version_error(target, chosen)
            continue
        description = {
            "format": "mbrec_tf.export/1",
            "mbrec_tf_version": mbrec_tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "version": chosen,
            "dataset": data.name,
            "behaviors": list(data.behaviors),
            "target": data.target,
            "num_users": data.num_users,
            "num_items": data.num_items,
            "user_id_dtype": module.user_dtype.name,
            "item_id_dtype": module.item_dtype.name,
            "model_class": type(module.model).__name__,
            "factorized": module.factorized,
            "default_k": module.default_k,
            "max_k": module.max_k,
            "unknown_ids": "error (InvalidArgument; HTTP 400)",
            "excluded": f"each user's {data.target!r} training and validation items",
            "has_item_titles": data.item_titles is not None,
            "example_users": [_plain(u) for u in data.user_ids[:3]],
            "signatures": describe_signatures(module),
            "run": run,
        }
        with open(os.path.join(staging, ASSETS_EXTRA, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(description, f, indent=2, default=_plain)
        try:
            os.rename(staging, target)
        except OSError:
            if version is not None or not os.path.exists(target):
                raise
            continue
        return target
    raise RuntimeError(f"could not find a free version number in {export_base_dir}")


def _plain(value: Any) -> Any:
    """JSON-friendly form of numpy scalars and other simple objects."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
