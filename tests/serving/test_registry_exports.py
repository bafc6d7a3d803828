"""Registered models (not just test doubles) export, and serve their own masked ranking."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import expected_top_k

from mbrec_tf import registry
from mbrec_tf.serving import export as export_lib


# Factorised (ehcf, wmf, cmf, expomf, mc_bpr, mfpr) and scored by MLPs (mbncf, nmtr).
@pytest.mark.parametrize(
    "name", ["ehcf", "mbncf", "wmf", "cmf", "expomf", "mc_bpr", "mfpr", "nmtr"]
)
def test_registered_model_exports(name, string_data, tmp_path):
    if name not in registry.REGISTRY:
        pytest.skip(f"{name} is not registered")
    config = registry.resolve_config(name, string_data.name, {"embedding_dim": 8})
    model = registry.get(name).build(string_data, config)
    path = export_lib.export_model(model, string_data, str(tmp_path), default_k=5)
    loaded = tf.saved_model.load(path)
    assert ("user_embedding" in loaded.signatures) == model.is_factorized
    users = np.array([0, 9])
    order, scores = expected_top_k(model, string_data, users, k=5)
    out = loaded.signatures["serving_default"](user=tf.constant(string_data.user_ids[users]))
    np.testing.assert_array_equal(out["item_ids"].numpy(), string_data.item_ids[order])
    np.testing.assert_allclose(out["scores"].numpy(), scores, rtol=1e-5, atol=1e-6)
