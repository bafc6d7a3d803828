"""CMF: every behavior factorised with shared P and Q (h_k = 1), the whole-data task."""

import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry, tuning
from mbrec_tf.data.generated import random_data


def test_cmf_trains_every_behavior_and_overfits_tiny_data():
    data = random_data(num_users=30, num_items=40, seed=0)
    spec = registry.get("cmf")
    config = registry.resolve_config(
        "cmf",
        data.name,
        {
            "embedding_dim": 16,
            "batch_size": 8,
            "keep_prob": 1.0,
            "learning_rate": 0.1,
            "loss_coefficients": ("view:0.1", "cart:0.2", "buy:0.7"),
        },
    )
    tf.keras.utils.set_random_seed(0)
    model = spec.build(data, config)
    spec.compile(model, data, config)
    assert model.num_behaviors == 3 and model.task.behaviors == data.behaviors
    history = model.fit(spec.build_inputs(data, config, 0), epochs=40, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert set(history.history) >= {"loss/view", "loss/cart", "loss/buy"}
    assert train_hit_rate(model, data) > 0.9  # a random ranking: 25%


def test_cmf_search_space_has_weights_and_coefficients_per_behavior():
    data = random_data(num_users=12, num_items=15, seed=1)
    space = tuning.default_search_space("cmf", data)
    for behavior in data.behaviors:
        assert f"negative_weight[{behavior}]" in space
        assert f"loss_coefficients[{behavior}]" in space
