"""The refreshed-Gram step against the exact whole-data step on tiny data."""

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.inputs import ragged_rows
from mbrec_tf.models import ehcf
from mbrec_tf.tasks import whole_data

BEHAVIORS = ("view", "cart", "buy")


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=10, num_items=14, behaviors=BEHAVIORS, seed=2)


def _tasks(data, every):
    # One uniform weight (plain Gram) and two item-dependent ones (weighted Grams).
    popularity = data.item_popularity("view") + 1.0
    weights = [0.2, 0.05 * popularity / popularity.mean(), 0.1 * np.sqrt(popularity)]
    coefficients = [0.2, 0.3, 0.5]
    exact = whole_data.WholeDataTask(BEHAVIORS, data.num_items, weights, coefficients)
    refreshed = whole_data.WholeDataTask(
        BEHAVIORS, data.num_items, weights, coefficients, gram_every=every
    )
    return exact, refreshed


def _gradients(task, data, variables, step):
    users, items, vectors = variables
    positives = {b: ragged_rows(data.train[b]) for b in BEHAVIORS}
    batch = {"user": tf.range(data.num_users), "positives": positives}
    with tf.GradientTape() as tape:
        outputs = {
            "user_vectors": tf.convert_to_tensor(users),
            "item_vectors": tf.convert_to_tensor(items),
            "prediction_vectors": tf.convert_to_tensor(vectors),
        }
        loss, _ = task(batch, outputs, training=True, step=tf.constant(step, tf.int64))
    grads = tape.gradient(loss, [users, items, vectors])
    return float(loss), [tf.convert_to_tensor(g).numpy() for g in grads], grads[1]


def test_refresh_step_is_the_exact_step_and_later_steps_the_documented_approximation(data):
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.normal(size=shape)) for shape in ((10, 4), (14, 4), (3, 4))]
    exact, refreshed = _tasks(data, every=3)
    exact_loss, exact_grads, exact_item = _gradients(exact, data, variables, 0)
    assert not isinstance(exact_item, tf.IndexedSlices)

    # Step 0 refreshes: the same loss and the same gradients as the exact step.
    loss, grads, item_grad = _gradients(refreshed, data, variables, 0)
    assert loss == pytest.approx(exact_loss, rel=1e-12)
    for got, want in zip(grads, exact_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert isinstance(item_grad, tf.IndexedSlices)

    # Steps 1 and 2 use the stored Gram (equal here: the table did not move), so loss and
    # user / h gradients are exact; the item gradient only has the positives' rows.
    positive_items = np.unique(np.concatenate([data.train[b].indices for b in BEHAVIORS]))
    for step in (1, 2):
        loss, grads, item_grad = _gradients(refreshed, data, variables, step)
        assert loss == pytest.approx(exact_loss, rel=1e-12)
        np.testing.assert_allclose(grads[0], exact_grads[0], rtol=1e-10)
        np.testing.assert_allclose(grads[2], exact_grads[2], rtol=1e-10)
        assert sorted(item_grad.indices.numpy()) == sorted(positive_items)
    gram_part = exact_grads[1] - grads[1]  # the Gram's gradient of one step
    assert np.abs(gram_part).max() > 1e-3

    # Step 3 refreshes and applies the Gram gradient of steps 1, 2 and 3 at once.
    loss, grads, _ = _gradients(refreshed, data, variables, 3)
    assert loss == pytest.approx(exact_loss, rel=1e-12)
    np.testing.assert_allclose(grads[1], exact_grads[1] + 2 * gram_part, rtol=1e-9, atol=1e-12)


def test_every_one_is_the_exact_task(data):
    exact, same = _tasks(data, every=1)
    assert same.refreshed_gram is None


def test_first_training_step_matches_the_exact_one_and_training_runs():
    data = random_data(num_users=24, num_items=30, behaviors=BEHAVIORS, seed=3)
    spec = registry.get("ehcf")
    weights = {}
    for every in (1, 4):
        config = ehcf.EHCFConfig(embedding_dim=8, batch_size=24, keep_prob=1.0, gram_every=every)
        tf.keras.utils.set_random_seed(0)
        model = spec.build(data, config)
        spec.compile(model, data, config)
        inputs = spec.build_inputs(data, config, 0)
        model.fit(inputs.take(1), epochs=1, verbose=0)
        weights[every] = [v.numpy().copy() for v in model.trainable_variables]
        history = model.fit(inputs, epochs=6, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        assert history.history["loss"][-1] < history.history["loss"][0]
    for exact, refreshed in zip(weights[1], weights[4], strict=True):
        np.testing.assert_allclose(refreshed, exact, rtol=1e-5, atol=1e-7)
