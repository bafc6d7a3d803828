"""EHCF with memory: the exact whole-data loss with sparse terms, scores and training."""

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf import optimizers, registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.inputs import ragged_rows
from mbrec_tf.models import ehcf_memory
from mbrec_tf.tasks import whole_data_memory

BEHAVIORS = ("view", "cart", "buy")


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=12, num_items=15, behaviors=BEHAVIORS, seed=2)


def _model(data, dtype="float64", **overrides) -> ehcf_memory.EHCFMemory:
    """A float64 model with random β, γ (nonzero), compiled with its task."""
    config = ehcf_memory.EHCFMemoryConfig(embedding_dim=4, keep_prob=1.0, **overrides)
    tf.keras.utils.set_random_seed(0)
    memory = ehcf_memory.InteractionMemory([data.train[b] for b in BEHAVIORS], BEHAVIORS)
    model = ehcf_memory.EHCFMemory(
        memory,
        data.num_users,
        data.num_items,
        BEHAVIORS,
        embedding_dim=config.embedding_dim,
        keep_prob=1.0,
        item_scales=config.item_scales,
        memory_l2=config.memory_l2,
        dtype=dtype,
    )
    rng = np.random.default_rng(0)
    model.behavior_terms.assign(rng.normal(size=model.behavior_terms.shape))
    if model.item_scales is not None:
        model.item_scales.assign(rng.normal(size=model.item_scales.shape))
    model.user_table.assign(rng.normal(scale=0.3, size=model.user_table.shape))
    model.item_table.assign(rng.normal(scale=0.3, size=model.item_table.shape))
    task = whole_data_memory.memory_whole_data_task(data, config)
    model.compile(optimizer=optimizers.make_optimizer(config), task=task)
    return model


def _brute_force(model, data) -> list[float]:
    """Σ_u Σ_v c_uv (R − R̂)² − |R| per behavior, in NumPy straight from the definition."""
    users = model.user_table.numpy()
    items = model.item_table.numpy()
    beta = model.behavior_terms.numpy()
    scales = None if model.item_scales is None else model.item_scales.numpy()
    x = [data.train[b].toarray() for b in BEHAVIORS]
    losses = []
    for k in range(len(BEHAVIORS)):
        h = model.prediction_vectors()[k].numpy()
        scores = (users * h) @ items.T
        for b in range(len(BEHAVIORS) - 1):
            if b == k:
                continue
            scores += x[b] * beta[k, b]
            if k == len(BEHAVIORS) - 1 and scales is not None:
                scores += x[b] * scales[b][None, :]
        labels = x[k]
        negative = model.task.negative_weight(k, tf.float64).numpy()
        weights = np.where(labels > 0, 1.0, np.broadcast_to(negative, labels.shape))
        losses.append(float(np.sum(weights * (labels - scores) ** 2) - labels.sum()))
    return losses


@pytest.mark.parametrize("item_scales", [True, False], ids=["item_scales", "beta_only"])
@pytest.mark.parametrize("alpha", [0.0, 0.8], ids=["uniform", "item_dependent"])
def test_decoupled_loss_is_exact(data, item_scales, alpha):
    model = _model(
        data,
        item_scales=item_scales,
        negative_weight_alpha=alpha,
        negative_weight=("view:0.2", "cart:0.1", "buy:0.3"),
    )
    users = tf.range(data.num_users)
    positives = {b: ragged_rows(data.train[b]) for b in BEHAVIORS}
    with tf.GradientTape(persistent=True) as tape:
        outputs = model({"user": users, "positives": positives})
        fast = model.task.behavior_losses(positives, outputs, loss="decoupled")
        slow = model.task.behavior_losses(positives, outputs, loss="dense")
        fast_total, slow_total = model.task.objective(fast), model.task.objective(slow)
    expected = _brute_force(model, data)
    np.testing.assert_allclose([float(v) for v in fast], expected, rtol=1e-10)
    np.testing.assert_allclose([float(v) for v in slow], expected, rtol=1e-10)
    names = {v.name.split(":")[0] for v in model.trainable_variables}
    assert "memory_beta" in names and ("memory_item_scales" in names) == item_scales
    for variable in model.trainable_variables:
        fast_gradient = tf.convert_to_tensor(tape.gradient(fast_total, variable)).numpy()
        slow_gradient = tf.convert_to_tensor(tape.gradient(slow_total, variable)).numpy()
        assert np.abs(slow_gradient).max() > 0, variable.name
        error = np.abs(fast_gradient - slow_gradient).max() / np.abs(slow_gradient).max()
        assert error < 1e-8, (variable.name, error)


def test_target_scores_add_the_sparse_terms(data):
    model = _model(data)
    users = tf.range(data.num_users)
    scores = model.score_users(users).numpy()
    dense = (model.user_table.numpy() * model.prediction_vectors()[-1].numpy()) @ (
        model.item_table.numpy().T
    )
    beta, scales = model.behavior_terms.numpy(), model.item_scales.numpy()
    expected = dense.copy()
    for b, behavior in enumerate(BEHAVIORS[:-1]):
        x = data.train[behavior].toarray()
        expected += x * (beta[-1, b] + scales[b][None, :])
    np.testing.assert_allclose(scores, expected, rtol=1e-10)
    assert not model.is_factorized
    pairs = model.score_pairs(users[:2], tf.constant([[0, 3], [4, 1]])).numpy()
    np.testing.assert_allclose(pairs, [expected[0, [0, 3]], expected[1, [4, 1]]])
    # A request's cart replaces the snapshot's: only the cart terms of user 0 move.
    context = {"cart": tf.ragged.constant([[7, 8]], dtype=tf.int32)}
    with_context = model.score_users_with_context(users[:1], context).numpy()[0]
    cart = data.train["cart"].toarray()[0]
    now = np.zeros(data.num_items)
    now[[7, 8]] = 1
    np.testing.assert_allclose(
        with_context - expected[0], (now - cart) * (beta[-1, 1] + scales[1]), atol=1e-10
    )


def test_training_through_the_registry_lowers_the_loss():
    data = random_data(num_users=20, num_items=25, behaviors=BEHAVIORS, seed=3)
    spec = registry.get("ehcf_memory")
    config = registry.resolve_config("ehcf_memory", "random", {"embedding_dim": 8, "epochs": 3})
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, seed=0), epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert np.abs(model.behavior_terms.numpy()).max() > 0
