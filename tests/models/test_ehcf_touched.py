"""EHCF, touched first: training is EHCF's, and the ranking puts touched items first by level,
each level ordered by EHCF's scores plus α of popularity, the untouched ones by EHCF alone."""

import numpy as np
import tensorflow as tf
from test_touched import hand_made_data

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.evaluation import Evaluator
from mbrec_tf.models import ehcf_touched


def _build(data, **overrides):
    config = registry.resolve_config("ehcf_touched", data.name, {"embedding_dim": 4, **overrides})
    tf.keras.utils.set_random_seed(0)
    return registry.get("ehcf_touched").build(data, config), config


def test_scores_are_levels_then_ehcf_then_popularity():
    data = hand_made_data()
    model, config = _build(data, behavior_weights=("view:1", "cart:2"), popularity_weight=0.5)
    rng = np.random.default_rng(1)
    model.user_table.assign(rng.normal(scale=0.5, size=model.user_table.shape))
    model.item_table.assign(rng.normal(scale=0.5, size=model.item_table.shape))
    scores = model.score_users(tf.range(4)).numpy()

    dense = (model.user_table.numpy() * model.prediction_vectors()[-1].numpy()) @ (
        model.item_table.numpy().T
    )
    levels = data.train["view"].toarray() * 1.0 + data.train["cart"].toarray() * 2.0
    counts = np.array([3.0, 1.0, 0.0, 0.0, 1.0])  # buy counts of items 0..4
    popularity = 0.5 * np.log1p(counts) / np.log1p(3.0)
    expected = dense + (levels > 0) * (ehcf_touched.LEVEL_GAP * levels + popularity[None])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-4)
    # u0: item 2 (view + cart) first, then item 1 (view), then the untouched items.
    assert list(np.argsort(-scores[0])[:2]) == [2, 1]
    # u3 touched nothing: EHCF's scores alone (discovery is EHCF's).
    np.testing.assert_allclose(scores[3], dense[3], rtol=1e-5, atol=1e-6)
    assert not model.is_factorized
    assert model.context_behaviors == ("view", "cart")


def test_a_requests_cart_replaces_the_snapshot():
    data = hand_made_data()
    model, _ = _build(data)
    users = tf.constant([0])
    plain = model.score_users(users).numpy()[0]
    context = {"cart": tf.ragged.constant([[0, 3]], dtype=tf.int32)}
    now = model.score_users_with_context(users, context).numpy()[0]
    cart_weight = float(model.level_weights.numpy()[1])
    popularity = model.item_scores.numpy()
    moved = np.zeros(5)
    moved[[0, 3]] += cart_weight + popularity[[0, 3]]  # newly touched: level and popularity
    moved[2] -= cart_weight  # the snapshot's cart (item 2) is replaced; still viewed
    np.testing.assert_allclose(now - plain, moved, atol=1e-3)


def test_training_is_ehcfs():
    data = random_data(num_users=20, num_items=25, behaviors=("view", "cart", "buy"), seed=3)
    tables = {}
    for name in ("ehcf", "ehcf_touched"):
        spec = registry.get(name)
        config = registry.resolve_config(name, data.name, {"embedding_dim": 8, "epochs": 2})
        tf.keras.utils.set_random_seed(0)
        model = spec.build(data, config)
        spec.compile(model, data, config)
        model.fit(spec.build_inputs(data, config, seed=0), epochs=2, verbose=0)
        tables[name] = (model.user_table.numpy(), model.item_table.numpy())
        assert not [v.name for v in model.trainable_variables if "level" in v.name]
    for mine, theirs in zip(tables["ehcf_touched"], tables["ehcf"], strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-7)


def test_the_epoch_is_selected_on_ehcfs_own_ranking():
    data = random_data(num_users=20, num_items=25, behaviors=("view", "cart", "buy"), seed=3)
    model, _ = _build(data)
    ranking = model.selection_scorer()
    assert ranking is model.selection_scorer()
    ehcf_spec = registry.get("ehcf")
    config = registry.resolve_config("ehcf", data.name, {"embedding_dim": 4})
    tf.keras.utils.set_random_seed(0)
    plain = ehcf_spec.build(data, config)
    for mine, theirs in zip(model.trainable_variables, plain.trainable_variables, strict=True):
        theirs.assign(mine)
    evaluator = Evaluator(data, "valid")
    assert evaluator(ranking) == evaluator(plain)
    assert evaluator(model) != evaluator(plain)  # the touched levels change the ranking
