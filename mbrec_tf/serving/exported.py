"""Reading exports: TF Serving's version layout, an export's metadata, and reloading one.

Layout: `<export_base_dir>/<version>/` with an integer version, as TensorFlow Serving
expects; `assets.extra/` beside the SavedModel holds `mbrec_export.json` (dataset, model
config and export settings), `item_titles.json` when the dataset has item titles, and
`tf_serving_warmup_requests`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np
import tensorflow as tf

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.base import Recommender
from mbrec_tf.serving.signatures import Hidden, id_dtype, id_tensor

METADATA_FILE = "mbrec_export.json"
TITLES_FILE = "item_titles.json"
ASSETS_EXTRA = "assets.extra"
_VERSION_NAME = re.compile(r"^[0-9]{1,18}$")  # int64, as TF Serving


def existing_versions(export_base_dir: str) -> list[int]:
    """Integer version folders under `export_base_dir`, ascending (others are ignored)."""
    if not os.path.isdir(export_base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(export_base_dir)
        if _VERSION_NAME.match(name) and os.path.isdir(os.path.join(export_base_dir, name))
    )


def next_version(export_base_dir: str) -> int:
    """One more than the largest existing version, or 1 for an empty/missing directory."""
    versions = existing_versions(export_base_dir)
    return versions[-1] + 1 if versions else 1


def resolve_version_dir(export_dir: str) -> str:
    """`export_dir` itself if it holds a SavedModel, else its latest version folder."""
    if tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb")):
        return export_dir
    versions = existing_versions(export_dir)
    if not versions:
        raise FileNotFoundError(f"no SavedModel and no integer version folder in {export_dir}")
    return os.path.join(export_dir, str(versions[-1]))


def _read_extra(version_dir: str, name: str) -> dict[str, Any]:
    """A JSON file of the export's `assets.extra/` ({} when it has none)."""
    path = os.path.join(version_dir, ASSETS_EXTRA, name)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def read_metadata(version_dir: str) -> dict[str, Any]:
    """The export's `assets.extra/mbrec_export.json` ({} when absent: a foreign model)."""
    return _read_extra(version_dir, METADATA_FILE)


def read_item_titles(version_dir: str) -> dict[str, str]:
    """Raw item id (as text) -> title, or {} when the export has no titles."""
    return _read_extra(version_dir, TITLES_FILE)


class ExportedRecommender(Recommender):
    """An exported SavedModel behind the Recommender interface, to evaluate an export.

    User and item indices are those of `data`; they are mapped to raw ids, scored by the
    export's `score_all` function (every item, no exclusions) and put in `data`'s item
    order. The export must know every user and item of `data` that gets scored.
    """

    requires_training = False

    def __init__(self, version_dir: str, data: MultiBehaviorData, **kwargs):
        super().__init__(num_users=data.num_users, num_items=data.num_items, **kwargs)
        loaded = tf.saved_model.load(version_dir)
        if not hasattr(loaded, "score_all"):
            raise ValueError(f"{version_dir} was not written by mbrec_tf's export_model")
        self._loaded = Hidden(loaded)
        user_dtype = loaded.user_ids.dtype
        if user_dtype != id_dtype(data.user_ids) or loaded.item_ids.dtype != id_dtype(
            data.item_ids
        ):
            raise ValueError(
                f"the ids of {version_dir} and of dataset {data.name!r} differ in type"
            )
        self._raw_users = id_tensor(data.user_ids, user_dtype)
        exported_items = loaded.item_ids.numpy()
        if exported_items.dtype == object:
            exported_items = np.array([i.decode("utf-8") for i in exported_items])
        position = {str(item): index for index, item in enumerate(exported_items)}
        missing = [str(i) for i in data.item_ids if str(i) not in position]
        if missing:
            raise ValueError(
                f"{len(missing)} items of {data.name!r} are not in the export, e.g. {missing[:3]}"
            )
        order = np.array([position[str(i)] for i in data.item_ids], dtype=np.int32)
        self._item_order = (
            None if np.array_equal(order, np.arange(len(order))) else tf.constant(order)
        )

    def score_users(self, user_ids: tf.Tensor) -> tf.Tensor:
        scores = self._loaded.value.score_all(tf.gather(self._raw_users, user_ids))
        if self._item_order is not None:
            scores = tf.gather(scores, self._item_order, axis=1)
        return scores

    def score_pairs(self, user_ids: tf.Tensor, item_ids: tf.Tensor) -> tf.Tensor:
        scores = self.score_users(user_ids)
        if item_ids.shape.rank == 1:
            return tf.gather(scores, item_ids[:, None], batch_dims=1)[:, 0]
        return tf.gather(scores, item_ids, batch_dims=1)


def load_exported(export_dir: str, data: MultiBehaviorData) -> ExportedRecommender:
    """The export at `export_dir` (a version folder, or a base folder: its latest version)."""
    return ExportedRecommender(resolve_version_dir(export_dir), data)
