"""On the real Beibei copy, the exported top-k never holds an item the user bought.

Every purchase in the raw `buy.train.txt` (the training purchases and the one held out for
validation) is excluded for its user; popularity makes this as hard as possible, since
the most bought items are exactly those the users bought.
"""

import types

import numpy as np
import tensorflow as tf
from etils import epath

import tfds_builders
from mbrec_tf.data import loading
from mbrec_tf.models.popularity import Popularity
from mbrec_tf.serving.export import export_model


def test_exported_top_k_never_contains_a_raw_training_purchase(shared_data, tmp_path):
    folder = shared_data / "beibei"
    builder_cls = tfds_builders.Beibei
    builder = builder_cls(config=builder_cls.config_from_name(None), data_dir="/nonexistent")
    prepared = builder._prepare(types.SimpleNamespace(manual_dir=epath.Path(folder)))
    data = loading.from_prepared(prepared, "beibei")
    model = Popularity(data.item_popularity(), data.num_users)
    served = tf.saved_model.load(export_model(model, data, str(tmp_path), default_k=10))

    raw = np.loadtxt(folder / "buy.train.txt", dtype=np.int64, skiprows=1, usecols=(0, 1))
    bought = set(map(tuple, raw.tolist()))
    users = np.asarray(data.user_ids)
    hits = 0
    for start in range(0, len(users), 4096):
        chunk = users[start : start + 4096]
        top = served.signatures["serving_default"](user=tf.constant(chunk))["item_ids"].numpy()
        hits += sum(
            (int(u), int(i)) in bought for u, row in zip(chunk, top, strict=True) for i in row
        )
    assert hits == 0
