"""NMTR: the cascade, full ranking against pair scores, the per-behavior loss, overfitting."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models import layers, nmtr
from mbrec_tf.tasks import SampledTask


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=20, num_items=30, seed=2)


def _model() -> nmtr.NMTR:
    tf.keras.utils.set_random_seed(4)
    model = nmtr.NMTR(6, 9, ("view", "cart", "buy"), mf_dim=3, mlp_dim=4, hidden_layers=(5, 3))
    model.cascade_scale.assign([0.5, -2.0])
    model.cascade_bias.assign([0.25, 1.0])
    for table in (model.gmf_user, model.gmf_item, model.mlp_user, model.mlp_item):
        table.embeddings.assign(tf.random.normal(table.embeddings.shape))
    return model


def _own_logit(model, k, users, items):
    """o_k by hand: w_k . [p ⊙ q ; tower_k([p' ; q'])] + b_k."""
    product = model.gmf_user(users) * model.gmf_item(items)
    hidden = model.towers[k](model.mlp_user(users), model.mlp_item(items))
    return np.squeeze(model.predictions[k](tf.concat([product, hidden], -1)).numpy(), -1)


def test_scores_cascade_along_the_behaviors_and_every_path_agrees(monkeypatch):
    monkeypatch.setattr(layers, "SCORE_BUDGET", 9 * 4)  # one user per chunk
    model = _model()
    users, items = tf.constant([0, 5, 3]), tf.constant([[1, 8], [0, 0], [7, 2]])
    flat_users = tf.repeat(users, 2)
    own = [_own_logit(model, k, flat_users, tf.reshape(items, [-1])) for k in range(3)]
    view = own[0]
    cart = own[1] + 0.5 * view + 0.25
    buy = own[2] - 2.0 * cart + 1.0
    scores = model.behavior_scores(users, items)
    for got, expected in zip(scores, (view, cart, buy), strict=True):
        np.testing.assert_allclose(tf.reshape(got, [-1]), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score_pairs(users, items), scores[-1], rtol=1e-6)
    all_scores = model.score_users(users).numpy()
    np.testing.assert_allclose(np.take_along_axis(all_scores, items.numpy(), 1), scores[-1], 1e-4)
    assert not model.is_factorized


def test_each_behavior_loss_uses_its_own_examples_and_cascaded_scores(data):
    config = registry.resolve_config("nmtr", data.name, {"loss_coefficients": ("1", "1", "2")})
    task = registry.get("nmtr").build_task(data, config)
    assert task.behaviors == data.behaviors
    assert task.behavior_weights == pytest.approx((0.25, 0.25, 0.5))
    model = _model()
    batch = {
        "user": tf.constant([0, 1, 2, 3]),
        "positive": tf.constant([1, 2, 3, 4]),
        "negatives": tf.constant([[5], [6], [7], [8]]),
        "positive_behavior": tf.constant([0, 2, 2, 1]),
    }
    outputs = model(batch)
    loss, parts = task(batch, outputs)
    scores = model.behavior_scores(batch["user"], tf.constant([[1, 5], [2, 6], [3, 7], [4, 8]]))

    def log_loss(s, rows):
        s = s.numpy()[rows]
        return np.mean(np.concatenate([np.log1p(np.exp(-s[:, 0])), np.log1p(np.exp(s[:, 1]))]))

    expected = [log_loss(scores[0], [0]), log_loss(scores[1], [3]), log_loss(scores[2], [1, 2])]
    for behavior, value in zip(data.behaviors, expected, strict=True):
        assert float(parts[f"loss/{behavior}"]) == pytest.approx(value, rel=1e-5)
    assert float(loss) == pytest.approx(np.dot([0.25, 0.25, 0.5], expected), rel=1e-5)


def test_a_single_behavior_nmtr_is_neumf_like_with_one_loss(data):
    single = data.with_behaviors((data.target,))
    config = registry.resolve_config("nmtr", data.name)
    spec = registry.get("nmtr")
    assert spec.build_task(single, config).behaviors == ()
    model = spec.build(single, config)
    batch = {
        "user": tf.constant([0]),
        "positive": tf.constant([1]),
        "negatives": tf.constant([[2]]),
    }
    assert model(batch)["scores"].shape == (1, 2)


def test_nmtr_overfits_a_tiny_dataset(data):
    tf.keras.utils.set_random_seed(0)
    overrides = {
        "epochs": 40,
        "batch_size": 32,
        "learning_rate": 0.03,
        "mf_dim": 16,
        "mlp_dim": 16,
        "hidden_layers": (32, 16),
    }
    config = registry.resolve_config("nmtr", data.name, overrides)
    spec = registry.get("nmtr")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    assert isinstance(model.task, SampledTask)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=config.epochs, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0]
    assert set(history.history) >= {f"loss/{b}" for b in data.behaviors}
    assert train_hit_rate(model, data) == 1.0
