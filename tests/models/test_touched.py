"""The touched-first heuristic on a hand-made 4-user example."""

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf import registry
from mbrec_tf.data.dataset import MultiBehaviorData, interaction_matrix
from mbrec_tf.models.memory import InteractionMemory

# Four users, five items, behaviors view, cart (supportive) and buy (target).
#   buy counts per item (training): item 0: 3, item 1: 1, item 4: 1  -> popularity order 0, 1=4
#   u0 viewed {1, 2}, carted {2}: item 2 = view + cart, item 1 = view
#   u1 viewed {3}: item 3 = view; the rest by popularity
#   u2 carted {1, 4}: equal weights, the tie broken by popularity (equal: 1 and 4 tie)
#   u3 touched nothing: popularity alone
VIEW = [(0, 1), (0, 2), (1, 3)]
CART = [(0, 2), (2, 1), (2, 4)]
BUY = [(0, 0), (1, 0), (3, 0), (1, 1), (2, 4)]


def hand_made_data() -> MultiBehaviorData:
    def matrix(pairs):
        users, items = zip(*pairs, strict=True)
        return interaction_matrix(np.array(users), np.array(items), 4, 5)

    return MultiBehaviorData(
        name="hand_made",
        behaviors=("view", "cart", "buy"),
        train={"view": matrix(VIEW), "cart": matrix(CART), "buy": matrix(BUY)},
        valid_items=np.array([-1, -1, -1, -1]),
        test_items=np.array([2, 3, 1, 4]),
        user_ids=np.array(["a", "b", "c", "d"]),
        item_ids=np.arange(10, 15),
    )


def fitted(data, **overrides):
    spec = registry.get("touched")
    config = registry.resolve_config("touched", data.name, overrides)
    model = spec.build(data, config)
    spec.build_task(data, config).fit(model, spec.training_data(data, config))
    return model


def test_scores_by_hand():
    data = hand_made_data()
    model = fitted(data, behavior_weights=("view:1", "cart:3"), popularity_weight=0.01)
    top = np.log1p(3.0)
    pop = 0.01 * np.log1p([3.0, 1.0, 0.0, 0.0, 1.0]) / top
    expected = np.tile(pop, (4, 1))
    expected[0, 1] += 1  # viewed
    expected[0, 2] += 1 + 3  # viewed and carted
    expected[1, 3] += 1
    expected[2, 1] += 3
    expected[2, 4] += 3
    scores = model.score_users(tf.range(4)).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    pairs = model.score_pairs(tf.constant([0, 2]), tf.constant([[2, 0], [4, 3]])).numpy()
    np.testing.assert_allclose(pairs, [[expected[0, 2], expected[0, 0]], expected[2, [4, 3]]])
    # Rankings: touched first by weight, then popularity.
    assert list(np.argsort(-scores[0], kind="stable")[:3]) == [2, 1, 0]
    assert list(np.argsort(-scores[3], kind="stable")[:2]) == [0, 1]


def test_default_weights_follow_the_funnel_and_context_replaces_a_behavior():
    data = hand_made_data()
    model = fitted(data)
    np.testing.assert_allclose(model.behavior_weights.numpy(), [1.0, 2.0])
    # u0's cart now holds item 3 instead of item 2: item 3 scores cart, item 2 view only.
    context = {"cart": tf.ragged.constant([[3]], dtype=tf.int32)}
    scores = model.score_users_with_context(tf.constant([0]), context).numpy()[0]
    base = model.item_scores.numpy()
    np.testing.assert_allclose(scores - base, [0, 1, 1, 2, 0], atol=1e-6)


def test_memory_indicators():
    data = hand_made_data()
    memory = InteractionMemory([data.train["view"], data.train["cart"]], ("view", "cart"))
    pairs = memory.pairs(tf.constant([2, 0]))
    got = sorted(
        zip(
            pairs.rows.numpy().tolist(),
            pairs.items.numpy().tolist(),
            map(tuple, pairs.indicators.numpy().tolist()),
            strict=True,
        )
    )
    assert got == [(0, 1, (0.0, 1.0)), (0, 4, (0.0, 1.0)), (1, 1, (1.0, 0.0)), (1, 2, (1.0, 1.0))]


def test_needs_a_supportive_behavior():
    data = hand_made_data().with_behaviors(("buy",))
    with pytest.raises(ValueError, match="supportive"):
        fitted(data)
