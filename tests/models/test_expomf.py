"""ExpoMF: exposure posteriors, monotone EM, blocks, fit and the registry wiring."""

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry, tuning
from mbrec_tf.data.generated import random_data
from mbrec_tf.tasks import exposure_em


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=30, num_items=40, seed=0)


def _fit(data, dtype="float64", track_objective=False, **overrides):
    spec = registry.get("expomf")
    config = registry.resolve_config("expomf", data.name, overrides)
    tf.keras.utils.set_random_seed(0)
    trained = spec.training_data(data, config)
    model = spec.scorer(trained, config, dtype=dtype)
    task = spec.build_task(data, config)
    task.fit(model, trained, track_objective=track_objective)
    return model, task


def test_posteriors_are_probabilities_and_one_on_clicks():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(size=(4, 50)) * 30, np.zeros((1, 50))])
    clicks = (rng.random(scores.shape) < 0.2).astype(np.float64)
    exposure = rng.uniform(1e-9, 1 - 1e-9, 50)
    posteriors = exposure_em.exposure_posteriors(scores, clicks, exposure, precision=2.0)
    assert np.all((posteriors >= 0) & (posteriors <= 1))
    np.testing.assert_array_equal(posteriors[clicks > 0], 1.0)
    # By hand at s = 0: μ N(0|0) / (μ N(0|0) + 1 − μ), N(0|0) = sqrt(λ / 2π).
    density = np.sqrt(2.0 / (2 * np.pi))
    expected = exposure * density / (exposure * density + 1 - exposure)
    unclicked = clicks[-1] == 0
    np.testing.assert_allclose(posteriors[-1][unclicked], expected[unclicked], rtol=1e-12)


def test_fitted_posteriors_stay_in_the_unit_interval(data):
    model, _ = _fit(data, epochs=3, embedding_dim=8)
    users = model.user_table.numpy()
    items = model.item_table.numpy()
    posteriors = exposure_em.exposure_posteriors(
        users @ items.T, data.target_train.toarray(), model.exposure.numpy(), 1.0
    )
    assert np.all((posteriors >= 0) & (posteriors <= 1))
    exposure = model.exposure.numpy()
    assert np.all((exposure > 0) & (exposure < 1))


@pytest.mark.parametrize("prior", [(1.0, 1.0), (2.0, 5.0)], ids=["flat", "beta"])
def test_objective_never_decreases(data, prior):
    _, task = _fit(
        data,
        track_objective=True,
        epochs=8,
        embedding_dim=6,
        exposure_prior_a=prior[0],
        exposure_prior_b=prior[1],
        block_size=7,
    )
    objective = np.array(task.objective)
    assert len(objective) == 9 and np.all(np.isfinite(objective))
    steps = np.diff(objective)
    assert np.all(steps >= -1e-9 * np.abs(objective[1:])), steps
    assert objective[-1] > objective[0]


def test_blocked_equals_unblocked(data):
    blocked, _ = _fit(data, epochs=3, embedding_dim=5, block_size=4)
    whole, _ = _fit(data, epochs=3, embedding_dim=5, block_size=data.num_users)
    for a, b in [
        (blocked.user_table, whole.user_table),
        (blocked.item_table, whole.item_table),
        (blocked.exposure, whole.exposure),
    ]:
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


def test_blocks_never_hold_all_users():
    # Every array an EM step builds is at most block_size x |V| (or |V| x d²).
    clicks = sp.random(10, 6, density=0.4, format="csr", random_state=0)
    assert [(s.start, s.stop) for s in exposure_em.user_blocks(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    mu = exposure_em.popularity_exposure(clicks, 1.0, 1.0)
    counts = np.asarray((clicks > 0).sum(axis=0)).ravel()
    np.testing.assert_allclose(mu, (1 + counts) / 12)


def test_overfits_tiny_data(data):
    model, _ = _fit(data, dtype="float32", epochs=15, embedding_dim=16, user_l2=1e-3, item_l2=1e-3)
    assert train_hit_rate(model, data) > 0.9  # a random ranking: 25%


def test_exposure_scores_and_search_space(data):
    model, _ = _fit(data, epochs=2, embedding_dim=4)
    users = tf.range(data.num_users)
    theta, beta = model.user_table.numpy(), model.item_table.numpy()
    expected = (theta @ beta.T) * model.exposure.numpy()[None]
    np.testing.assert_allclose(model.score_users(users).numpy(), expected, rtol=1e-10)
    model.exposure_scores = False
    np.testing.assert_allclose(model.score_users(users).numpy(), theta @ beta.T, rtol=1e-10)
    space = tuning.default_search_space("expomf", data)
    assert {"user_l2", "item_l2", "embedding_dim"} <= set(space)
    with pytest.raises(ValueError, match="block_size"):
        registry.resolve_config("expomf", "random", {"block_size": 0})
