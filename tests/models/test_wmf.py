"""WMF: the whole-data task on the target alone, h = 1, confidence from counts."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry, tuning
from mbrec_tf.data.generated import random_data


def _fit(name, data, epochs, **overrides):
    spec = registry.get(name)
    config = registry.resolve_config(name, data.name, overrides)
    tf.keras.utils.set_random_seed(0)
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=epochs, verbose=0)
    return model, history.history["loss"]


def test_wmf_overfits_tiny_data():
    data = random_data(num_users=30, num_items=40, seed=0)
    model, losses = _fit(
        "wmf", data, 40, embedding_dim=16, batch_size=8, keep_prob=1.0, learning_rate=0.1
    )
    assert losses[-1] < 0.5 * losses[0]
    assert train_hit_rate(model, data) > 0.9  # a random ranking: 25%
    assert model.is_factorized and model.num_behaviors == 1


def test_confidence_on_binary_data_is_a_larger_positive_weight():
    # Merged events (0/1 matrices): c⁺ + α·1 for every positive, i.e. positive_weight c⁺ + α.
    data = random_data(num_users=12, num_items=15, seed=1)
    settings = {"embedding_dim": 4, "batch_size": 12, "keep_prob": 1.0}
    with_alpha, _ = _fit("wmf", data, 2, confidence_alpha=0.5, **settings)
    raised, _ = _fit("wmf", data, 2, positive_weight=1.5, **settings)
    users = tf.range(data.num_users)
    np.testing.assert_allclose(
        with_alpha.score_users(users).numpy(), raised.score_users(users).numpy(), rtol=1e-5
    )


def test_counts_change_the_fit():
    data = random_data(num_users=12, num_items=15, seed=1)
    counted = data.target_train.copy()
    counted.data = np.arange(1, counted.nnz + 1, dtype=np.float32) % 5 + 1
    counts = dataclasses.replace(data, train={**data.train, "buy": counted})
    settings = {"embedding_dim": 4, "batch_size": 12, "keep_prob": 1.0, "confidence_alpha": 1.0}
    binary, _ = _fit("wmf", data, 2, **settings)
    weighted, _ = _fit("wmf", counts, 2, **settings)
    users = tf.range(data.num_users)
    assert not np.allclose(binary.score_users(users), weighted.score_users(users))


def test_wmf_flags_and_search_space():
    data = random_data(num_users=12, num_items=15, seed=1)
    with pytest.raises(ValueError, match="confidence_alpha"):
        registry.resolve_config("wmf", "random", {"confidence_alpha": -1})
    model = registry.get("wmf").build(data, registry.resolve_config("wmf", "random", {}))
    assert model.num_behaviors == 1  # the target alone, whatever the data has
    space = tuning.default_search_space("wmf", data)
    assert set(space) == {"negative_weight[buy]", "keep_prob", "learning_rate"}
