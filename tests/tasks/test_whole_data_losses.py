"""Whole-data losses: the decoupled form equals the brute-force regression, value and gradient."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.tasks import decoupled

NUM_USERS, NUM_ITEMS, DIM = 7, 11, 5


def _random_problem(seed: int = 0, item_weights: bool = False):
    """float64 queries/items, distinct positive pairs and a negative weight."""
    rng = np.random.default_rng(seed)
    queries = tf.Variable(rng.normal(size=(NUM_USERS, DIM)))
    items = tf.Variable(rng.normal(size=(NUM_ITEMS, DIM)))
    mask = rng.random((NUM_USERS, NUM_ITEMS)) < 0.3
    rows, columns = np.nonzero(mask)
    weight = rng.uniform(0.05, 0.5, NUM_ITEMS) if item_weights else 0.2
    return queries, items, rows, columns, mask.astype(np.float64), weight


def _numpy_regression(queries, items, labels, weight, positive_weight=1.0) -> float:
    """Σ_u Σ_v c_uv (R − R̂)² written out in NumPy: c⁺ (a scalar or per entry) on positives."""
    scores = np.asarray(queries) @ np.asarray(items).T
    positive = np.broadcast_to(positive_weight, labels.shape)
    weights = np.where(labels > 0, positive, np.broadcast_to(weight, labels.shape))
    return float(np.sum(weights * (labels - scores) ** 2))


def _relative_error(a: tf.Tensor, b: tf.Tensor) -> float:
    a, b = tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy()
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def test_hand_computed_example():
    # One user (query 2), two items (1 and 3), item 0 positive, w = 0.5:
    # full loss = 1·(1 − 2)² + 0.5·(0 − 6)² = 19; decoupled = 19 − c⁺·1 = 18.
    queries = tf.constant([[2.0]], tf.float64)
    items = tf.constant([[1.0], [3.0]], tf.float64)
    rows, columns = tf.constant([0]), tf.constant([0])
    dense = decoupled.dense_loss(queries, items, rows, columns, 0.5)
    exact = decoupled.decoupled_loss(queries, items, rows, columns, 0.5)
    assert float(dense) == pytest.approx(19.0)
    assert float(exact) == pytest.approx(18.0)


@pytest.mark.parametrize("item_weights", [False, True], ids=["uniform", "item_dependent"])
def test_decoupled_equals_brute_force_value_and_gradients(item_weights):
    queries, items, rows, columns, labels, weight = _random_problem(1, item_weights)
    with tf.GradientTape(persistent=True) as tape:
        exact = decoupled.decoupled_loss(queries, items, rows, columns, weight)
        dense = decoupled.dense_loss(queries, items, rows, columns, weight)
    constant = float(decoupled.positive_constant(len(rows), dtype=tf.float64))
    assert constant == len(rows)
    expected = _numpy_regression(queries.numpy(), items.numpy(), labels, weight)
    assert float(dense) == pytest.approx(expected, rel=1e-12)
    assert float(exact) == pytest.approx(expected - constant, rel=1e-12)
    for variable in (queries, items):
        error = _relative_error(tape.gradient(exact, variable), tape.gradient(dense, variable))
        assert error < 1e-8, variable.name


def test_multi_task_losses_equal_single_task_losses():
    rng = np.random.default_rng(2)
    users = tf.constant(rng.normal(size=(NUM_USERS, DIM)))
    items = tf.constant(rng.normal(size=(NUM_ITEMS, DIM)))
    vectors = tf.constant(rng.normal(size=(3, DIM)))
    weights = [0.1, 0.3, rng.uniform(0.1, 0.4, NUM_ITEMS)]
    pairs = [np.nonzero(rng.random((NUM_USERS, NUM_ITEMS)) < 0.25) for _ in range(3)]
    rows = np.concatenate([r for r, _ in pairs])
    columns = np.concatenate([c for _, c in pairs])
    tasks = np.concatenate([np.full(len(r), task) for task, (r, _) in enumerate(pairs)])
    item_weights = np.stack([np.broadcast_to(w, NUM_ITEMS) for w in weights])
    positive_weights = item_weights[tasks, columns]
    grams = tf.stack([decoupled.weighted_item_gram(items, w) for w in weights])
    losses = decoupled.decoupled_losses(
        users, items, vectors, rows, columns, tasks, positive_weights, grams
    )
    for task in range(3):
        select = tasks == task
        single = decoupled.decoupled_loss(
            users * vectors[task], items, rows[select], columns[select], weights[task]
        )
        assert float(losses[task]) == pytest.approx(float(single), rel=1e-12)


def test_gram_and_pair_score_gradients_match_autodiff():
    rng = np.random.default_rng(3)
    matrix = tf.Variable(rng.normal(size=(9, 4)))
    other = tf.Variable(rng.normal(size=(6, 4)))
    weights = tf.constant(rng.uniform(size=9))
    upstream = tf.constant(rng.normal(size=(4, 4)))
    rows, columns = tf.constant([0, 2, 5, 5]), tf.constant([1, 1, 8, 0])
    pair_upstream = tf.constant(rng.normal(size=4))
    with tf.GradientTape(persistent=True) as tape:
        custom = tf.reduce_sum(upstream * decoupled.gram(matrix, weights))
        plain = tf.reduce_sum(upstream * tf.matmul(matrix * weights[:, None], matrix, True))
        scores = decoupled.pair_scores(other, matrix, rows, columns)
        naive = tf.reduce_sum(tf.gather(other, rows) * tf.gather(matrix, columns), -1)
        custom_pairs = tf.reduce_sum(pair_upstream * scores)
        naive_pairs = tf.reduce_sum(pair_upstream * naive)
    np.testing.assert_allclose(scores.numpy(), naive.numpy(), rtol=1e-12)
    assert float(custom) == pytest.approx(float(plain), rel=1e-12)
    assert _relative_error(tape.gradient(custom, matrix), tape.gradient(plain, matrix)) < 1e-12
    for variable in (other, matrix):
        assert (
            _relative_error(
                tape.gradient(custom_pairs, variable), tape.gradient(naive_pairs, variable)
            )
            < 1e-12
        )


def test_pair_product_gradients_match_autodiff():
    rng = np.random.default_rng(4)
    users = tf.Variable(rng.normal(size=(5, 3)))
    items = tf.Variable(rng.normal(size=(7, 3)))
    rows, columns = tf.constant([0, 0, 3, 4, 4]), tf.constant([6, 2, 2, 0, 6])
    upstream = tf.constant(rng.normal(size=(5, 3)))
    with tf.GradientTape(persistent=True) as tape:
        products = decoupled.pair_products(users, items, rows, columns)
        naive = tf.gather(users, rows) * tf.gather(items, columns)
        custom_total = tf.reduce_sum(upstream * products)
        naive_total = tf.reduce_sum(upstream * naive)
    np.testing.assert_allclose(products.numpy(), naive.numpy(), rtol=1e-12)
    for variable in (users, items):
        gradient = tape.gradient(custom_total, variable)
        assert isinstance(gradient, tf.Tensor)  # dense, not IndexedSlices
        assert _relative_error(gradient, tape.gradient(naive_total, variable)) < 1e-12


def test_popularity_negative_weights():
    counts = np.array([1.0, 3.0, 0.0, 4.0])
    # alpha = 1: c0 = w·|V| = 0.5·4 = 2, c_v = 2·f_v / 8.
    np.testing.assert_allclose(
        decoupled.popularity_negative_weights(counts, 0.5, 1.0), [0.25, 0.75, 0.0, 1.0]
    )
    # alpha = 0 is the uniform weight itself; any alpha keeps the mean weight w.
    np.testing.assert_allclose(decoupled.popularity_negative_weights(counts, 0.5, 0.0), 0.5)
    assert decoupled.popularity_negative_weights(counts, 0.5, 0.7).mean() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        decoupled.popularity_negative_weights(np.zeros(3), 0.5, 1.0)


def _with_counts(data, seed: int = 0):
    """`data` whose training matrices hold interaction counts 1..4 instead of 0/1."""
    rng = np.random.default_rng(seed)
    train = {}
    for behavior, matrix in data.train.items():
        counted = matrix.copy()
        counted.data = rng.integers(1, 5, counted.nnz).astype(np.float32)
        train[behavior] = counted
    return dataclasses.replace(data, train=train)


def _registered_losses(name: str, data, **overrides):
    """(decoupled total, dense total, their gradients, the float64 scorer, the task) of
    one full batch of a registered whole-data model."""
    spec = registry.get(name)
    config = registry.resolve_config(
        name, data.name, {"embedding_dim": 4, "batch_size": data.num_users, **overrides}
    )
    trained = spec.training_data(data, config)
    tf.keras.utils.set_random_seed(0)
    model = spec.scorer(trained, config, dtype="float64")
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:  # away from the ~0 initialisation
        variable.assign(rng.normal(size=variable.shape))
    batch = next(iter(spec.build_inputs(data, config, seed=0)))
    assert int(tf.size(batch["user"])) == data.num_users
    totals, gradients = {}, {}
    for loss in ("decoupled", "dense"):
        task = spec.task(trained, dataclasses.replace(config, loss=loss))
        with tf.GradientTape() as tape:
            totals[loss], _ = task(batch, model(batch))
        gradients[loss] = tape.gradient(totals[loss], model.trainable_variables)
    return totals, gradients, model, task, trained, batch


def _check_gradients(gradients, model):
    for fast, slow, variable in zip(
        gradients["decoupled"], gradients["dense"], model.trainable_variables, strict=True
    ):
        fast, slow = tf.convert_to_tensor(fast).numpy(), tf.convert_to_tensor(slow).numpy()
        assert np.abs(slow).max() > 0, variable.name
        assert np.abs(fast - slow).max() / np.abs(slow).max() < 1e-8, variable.name


@pytest.mark.parametrize("alpha", [0.0, 0.7], ids=["plain", "confidence"])
@pytest.mark.parametrize("counts", [False, True], ids=["binary", "counts"])
def test_wmf_loss_equals_brute_force(alpha, counts):
    data = random_data(num_users=9, num_items=13, seed=3)
    data = _with_counts(data) if counts else data
    totals, gradients, model, task, trained, batch = _registered_losses(
        "wmf", data, confidence_alpha=alpha, negative_weight=("0.3",), positive_weight=1.5
    )
    assert trained.behaviors == ("buy",)
    assert ("positive_weights" in batch) == (alpha > 0)
    # users are shuffled in the batch: brute force over the batch's own order
    users = batch["user"].numpy()
    counts_matrix = data.target_train.toarray()[users]
    labels = (counts_matrix > 0).astype(np.float64)
    confidence = 1.5 + alpha * counts_matrix  # c⁺ + α r
    expected = _numpy_regression(
        model.user_table.numpy()[users], model.item_table.numpy(), labels, 0.3, confidence
    )
    assert float(totals["decoupled"]) == pytest.approx(expected, rel=1e-10)
    assert float(totals["dense"]) == pytest.approx(expected, rel=1e-10)
    _check_gradients(gradients, model)


@pytest.mark.parametrize("alpha", [0.0, 0.6], ids=["uniform", "item_dependent"])
def test_cmf_loss_equals_brute_force(alpha):
    data = random_data(num_users=9, num_items=13, seed=4)
    totals, gradients, model, task, trained, batch = _registered_losses(
        "cmf",
        data,
        negative_weight=("view:0.2", "cart:0.1", "buy:0.3"),
        negative_weight_alpha=alpha,
        loss_coefficients=("view:1", "cart:2", "buy:3"),
    )
    assert trained.behaviors == ("view", "cart", "buy")
    np.testing.assert_allclose(task.loss_coefficients, [1 / 6, 2 / 6, 3 / 6])
    users = batch["user"].numpy()
    queries, items = model.user_table.numpy()[users], model.item_table.numpy()
    expected = sum(
        coefficient
        * _numpy_regression(
            queries,
            items,
            (data.train[b].toarray()[users] > 0).astype(np.float64),
            task.negative_weight(k, tf.float64).numpy(),
        )
        for k, (b, coefficient) in enumerate(
            zip(data.behaviors, task.loss_coefficients, strict=True)
        )
    )
    assert float(totals["decoupled"]) == pytest.approx(expected, rel=1e-10)
    assert float(totals["dense"]) == pytest.approx(expected, rel=1e-10)
    _check_gradients(gradients, model)
