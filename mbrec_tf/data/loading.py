"""Loading a dataset: build its TFDS version if needed, then convert it to MultiBehaviorData.

`load_dataset("beibei", manual_dir=...)` builds offline from the raw files in `manual_dir`
(no GCS, no download except where a builder has a public URL and no manual files) and
reuses the build afterwards. The conversion is vectorised: examples are read in large
ragged batches and become CSR matrices in one go (Beibei's 21,716 users load in seconds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

import tfds_builders
from mbrec_tf.data.dataset import MultiBehaviorData, interaction_matrix
from mbrec_tf.errors import UserError
from mbrec_tf.files import write_json

DATASETS: tuple[str, ...] = tuple(tfds_builders.BUILDERS)
DEFAULT_DATASET = "mbrec_synthetic"
NUM_NEGATIVES = tfds_builders.NUM_NEGATIVES

_READ_BATCH = 4096


def split_name(name: str, config: str | None = None) -> tuple[str, str | None]:
    """("beibei/default_seed1", None) -> ("beibei", "default_seed1"); checks the name."""
    if "/" in name:
        name, embedded = name.split("/", 1)
        if config is not None and config != embedded:
            raise ValueError(f"config given twice: {name}/{embedded} and config={config!r}")
        config = embedded
    if name not in tfds_builders.BUILDERS:
        raise UserError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    return name, config or None


def builder_class(name: str) -> type[tfds_builders.MultiBehaviorBuilder]:
    """The builder class of dataset `name` (a config part is ignored)."""
    return tfds_builders.BUILDERS[split_name(name)[0]]


def make_builder(
    name: str, *, data_dir: str | None = None, config: str | None = None
) -> tfds_builders.MultiBehaviorBuilder:
    """The TFDS builder of `name` ("name" or "name/config"), configs and variants resolved."""
    name, config = split_name(name, config)
    builder_cls = tfds_builders.BUILDERS[name]
    return builder_cls(config=builder_cls.config_from_name(config), data_dir=data_dir)


def build(
    builder: tfds.core.DatasetBuilder, manual_dir: str | None = None, *, rebuild: bool = False
) -> None:
    """Builds `builder`'s dataset unless it already exists (or always, with `rebuild`).

    Offline: raw files come from `manual_dir`, never from GCS. A missing or wrong
    `manual_dir` is a `UserError` saying what to pass. An existing build is replaced only
    by a complete new one: the new build is made in a staging folder beside it, so one
    that fails (e.g. on malformed raw files) leaves the existing build as it was.
    """
    check_manual_dir(builder, manual_dir)
    if rebuild and _is_built(builder):
        _build_and_swap(builder, manual_dir)
        return
    _download_and_prepare(builder, manual_dir)


def _download_and_prepare(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> None:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=manual_dir,
            try_download_gcs=False,
            download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS,
        )
    )


_STAGING_PREFIX = ".mbrec-staging-"


def _build_and_swap(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> None:
    """Builds into a staging folder, then puts the new build in place of the old one."""
    root = builder.data_dir_root
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=root)
    try:
        staged = type(builder)(config=builder.builder_config, data_dir=staging)
        _download_and_prepare(staged, manual_dir)
        retired = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=root)
        os.rename(builder.data_dir, os.path.join(retired, "previous"))
        os.rename(staged.data_dir, builder.data_dir)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def reopen(builder: tfds.core.DatasetBuilder) -> tfds.core.DatasetBuilder:
    """A new builder of the same dataset, reading what is built now (after a rebuild)."""
    return type(builder)(config=builder.builder_config, data_dir=builder.data_dir_root)


def _is_built(builder: tfds.core.DatasetBuilder) -> bool:
    """Whether `builder`'s dataset is built (quietly: no TFDS warnings for a new one)."""
    return os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def check_manual_dir(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> None:
    """Raises a `UserError` unless `manual_dir` can serve `builder`'s build."""
    name = builder.name
    if manual_dir is not None:
        if os.path.exists(manual_dir) and not os.path.isdir(manual_dir):
            raise UserError(
                f"--manual_dir={manual_dir} is a file: pass the folder of {name}'s raw files"
            )
        if not os.path.isdir(manual_dir) and builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
            expected = " ".join(builder.MANUAL_DOWNLOAD_INSTRUCTIONS.split())
            raise UserError(f"--manual_dir={manual_dir} does not exist; {name}: {expected}")
        return
    if builder.MANUAL_DOWNLOAD_INSTRUCTIONS and not _is_built(builder):
        raise UserError(
            f"{name} is built from its raw files and is not built yet in "
            f"{builder.data_dir_root}: pass --manual_dir=<folder of {name}'s raw files> "
            f"(e.g. ../shared/data/{name})"
        )


#: File written beside a build: the raw files it was built from (names, sizes, checksums).
RAW_FILES_RECORD = "mbrec_raw_files.json"
_HASH_BLOCK = 1 << 24


def raw_files_fingerprint(
    manual_dir: str, known: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Every file under `manual_dir` (relative name -> size, mtime and SHA-256).

    A file whose size and modification time equal its entry in `known` (an earlier
    fingerprint) keeps that entry's checksum instead of being read again.
    """
    known = known or {}
    fingerprint: dict[str, dict[str, Any]] = {}
    for root, dirs, files in os.walk(manual_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError as error:
                raise UserError(
                    f"--manual_dir: cannot read {path} ({error.strerror}): fix or remove it"
                ) from None
            relative = os.path.relpath(path, manual_dir)
            entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            previous = known.get(relative, {})
            if {k: previous.get(k) for k in entry} == entry and "sha256" in previous:
                entry["sha256"] = previous["sha256"]
            else:
                digest = hashlib.sha256()
                with open(path, "rb") as file:
                    for block in iter(lambda: file.read(_HASH_BLOCK), b""):
                        digest.update(block)
                entry["sha256"] = digest.hexdigest()
            fingerprint[relative] = entry
    return fingerprint


def _same_files(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two fingerprints name the same files with the same sizes and contents."""
    strip = lambda f: {n: (e["size"], e["sha256"]) for n, e in f.items()}  # noqa: E731
    return strip(a) == strip(b)


def _read_record(builder: tfds.core.DatasetBuilder) -> dict[str, Any] | None:
    path = os.path.join(builder.data_dir, RAW_FILES_RECORD)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def build_matching(
    builder: tfds.core.DatasetBuilder, manual_dir: str | None, *, rebuild: bool = False
) -> dict | None:
    """Builds `builder` from `manual_dir`, rebuilding a build made from other raw files.

    TFDS keys a build by dataset, config and version only; the record of the raw files
    beside it makes a build from one folder never serve another folder's data. Returns
    the record of the raw files the build holds (None for generated datasets).
    `rebuild` regenerates the build in any case.
    """
    check_manual_dir(builder, manual_dir)
    if manual_dir is None or not builder.MANUAL_DOWNLOAD_INSTRUCTIONS:
        build(builder, manual_dir, rebuild=rebuild)
        return _read_record(builder) if _is_built(builder) else None
    record = _read_record(builder) if _is_built(builder) else None
    fingerprint = raw_files_fingerprint(manual_dir, (record or {}).get("files"))
    stale = _is_built(builder) and (record is None or not _same_files(record["files"], fingerprint))
    if stale and not rebuild:
        logging.warning(
            "%s: the raw files in %s differ from those the build in %s was made from "
            "(%s): rebuilding it",
            builder.name,
            manual_dir,
            builder.data_dir,
            "unrecorded" if record is None else record.get("manual_dir"),
        )
    build(builder, manual_dir, rebuild=rebuild or stale)
    record = {"manual_dir": os.path.abspath(manual_dir), "files": fingerprint}
    write_json(os.path.join(builder.data_dir, RAW_FILES_RECORD), record)
    return record


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    config: str | None = None,
    num_negatives_check: int | None = NUM_NEGATIVES,
) -> MultiBehaviorData:
    """Builds `name` if needed and returns it as a MultiBehaviorData.

    Args:
      name: a dataset of DATASETS, optionally with its config: "taobao_user_behavior/
        default_users20000".
      data_dir: where TFDS keeps built datasets (default: TFDS's, ~/tensorflow_datasets).
      manual_dir: the raw files, for builders that read them (see each builder).
      config: a builder config name, optionally with variant options ("default_seed1").
      num_negatives_check: the number of stored negatives per held-out item the data must
        have (a stale or foreign build fails loudly); None skips the check.
    """
    builder = make_builder(name, data_dir=data_dir, config=config)
    record = build_matching(builder, manual_dir)
    data = from_builder(reopen(builder), num_negatives_check=num_negatives_check)
    if record is None:
        return data
    files = {n: {"size": e["size"], "sha256": e["sha256"]} for n, e in record["files"].items()}
    return dataclasses.replace(data, raw_files={"manual_dir": record["manual_dir"], "files": files})


def from_builder(
    builder: tfds.core.DatasetBuilder, *, num_negatives_check: int | None = NUM_NEGATIVES
) -> MultiBehaviorData:
    """Converts a built multi-behavior TFDS dataset to MultiBehaviorData."""
    metadata = dict(builder.info.metadata.items())  # items() loads a lazy MetadataDict
    behaviors = tuple(metadata["behaviors"])
    num_users, num_items = int(metadata["num_users"]), int(metadata["num_items"])
    if num_negatives_check is not None and metadata["num_negatives"] != num_negatives_check:
        raise ValueError(
            f"{builder.name}: the build stores {metadata['num_negatives']} negatives per "
            f"held-out item, expected {num_negatives_check} (rebuild it)"
        )
    columns = _read_columns(builder, behaviors, num_users)
    order = np.argsort(columns["user_index"])
    if not np.array_equal(columns["user_index"][order], np.arange(num_users)):
        raise ValueError(f"{builder.name}: examples do not cover users 0..{num_users - 1} once")
    user_ids = columns["user_id"][order]
    if metadata["user_id_type"] == "int":
        user_ids = user_ids.astype(np.int64)
    train = {}
    for behavior in behaviors:
        users, items = columns[f"users/{behavior}"], columns[f"items/{behavior}"]
        train[behavior] = interaction_matrix(users, items, num_users, num_items)
    titles = metadata.get("item_titles")
    return MultiBehaviorData(
        name=builder.name,
        behaviors=behaviors,
        train=train,
        valid_items=columns["valid_item"][order],
        test_items=columns["test_item"][order],
        user_ids=user_ids,
        item_ids=_ids(metadata["item_ids"], metadata["item_id_type"]),
        valid_negatives=columns["valid_negatives"][order],
        test_negatives=columns["test_negatives"][order],
        item_titles=None if titles is None else np.array(titles, dtype=object),
    )


def _read_columns(
    builder: tfds.core.DatasetBuilder, behaviors: tuple[str, ...], num_users: int
) -> dict[str, np.ndarray]:
    """All examples as flat NumPy columns (per-behavior pairs as COO users/items)."""
    dataset = builder.as_dataset(split=tfds_builders.SPLIT, shuffle_files=False)
    dataset = dataset.map(
        lambda ex: {
            "user_index": ex["user_index"],
            "user_id": ex["user_id"],
            "valid_item": ex["valid_item"],
            "test_item": ex["test_item"],
            "valid_negatives": ex["valid_negatives"],
            "test_negatives": ex["test_negatives"],
            **{f"items/{b}": ex["interactions"][b] for b in behaviors},
        }
    ).ragged_batch(_READ_BATCH)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in dataset:
        for key, value in batch.items():
            if key.startswith("items/"):
                behavior = key.split("/", 1)[1]
                lengths = value.row_lengths().numpy()
                users = np.repeat(batch["user_index"].numpy(), lengths)
                parts.setdefault(f"users/{behavior}", []).append(users)
                parts.setdefault(key, []).append(value.flat_values.numpy())
            else:
                parts.setdefault(key, []).append(value.numpy())
    columns = {key: np.concatenate(values) for key, values in parts.items()}
    if "user_id" in columns:
        columns["user_id"] = np.array([u.decode("utf-8") for u in columns["user_id"]])
    if len(columns.get("user_index", ())) != num_users:
        raise ValueError(f"{builder.name}: expected {num_users} examples")
    return columns


def _ids(values: list, id_type: str) -> np.ndarray:
    return np.asarray(values, dtype=np.int64 if id_type == "int" else object)


def from_prepared(prepared: tfds_builders.Prepared, name: str) -> MultiBehaviorData:
    """The library's MultiBehaviorData of the builders' Prepared, without a TFDS round trip.

    Generated data and tests use it to skip the build; `raw_files` stays None.
    """
    return MultiBehaviorData(
        name=name,
        behaviors=tuple(prepared.behaviors),
        train={
            b: interaction_matrix(u, i, prepared.num_users, prepared.num_items)
            for b, (u, i) in prepared.train.items()
        },
        valid_items=np.asarray(prepared.valid_items, dtype=np.int64),
        test_items=np.asarray(prepared.test_items, dtype=np.int64),
        user_ids=prepared.user_ids,
        item_ids=prepared.item_ids,
        valid_negatives=prepared.valid_negatives,
        test_negatives=prepared.test_negatives,
        item_titles=prepared.item_titles,
    )


def build_report(builder: tfds.core.DatasetBuilder) -> dict[str, Any]:
    """The build's config and report: records read, merged, removed and held out."""
    metadata = builder.info.metadata
    return {"config": dict(metadata["config"]), "report": dict(metadata["report"])}
