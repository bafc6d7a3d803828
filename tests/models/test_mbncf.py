"""MBNCF: the gradient mask of supportive branches, scoring paths, ablation, overfitting."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models import layers, mbncf
from mbrec_tf.tasks import SampledTask


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=20, num_items=30, seed=2)


def _model(branches=("view", "cart", "buy"), std: float = 0.3) -> mbncf.MBNCF:
    tf.keras.utils.set_random_seed(3)
    return mbncf.MBNCF(6, 9, branches, mf_dim=3, mlp_dim=4, hidden_layers=(5, 3), init_std=std)


def test_mask_gradient_keeps_values_and_masks_gradients():
    values = tf.Variable([[1.0, -2.0], [3.0, 4.0]])
    mask = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    with tf.GradientTape() as tape:
        masked = layers.mask_gradient(values, mask)
        total = tf.reduce_sum(masked * tf.constant([[2.0, 3.0], [5.0, 7.0]]))
    np.testing.assert_array_equal(masked, values)
    np.testing.assert_array_equal(tape.gradient(total, values), [[2.0, 0.0], [0.0, 7.0]])


def _batch(view_mask: float, cart_mask: float) -> dict:
    return {
        "user": tf.constant([0, 3]),
        "positive": tf.constant([1, 2]),
        "negatives": tf.constant([[4, 5], [6, 0]]),
        "behavior_mask": {
            "view": tf.fill([2, 3], view_mask),
            "cart": tf.fill([2, 3], cart_mask),
        },
    }


def _branch_weights(model: mbncf.MBNCF) -> list[list[np.ndarray]]:
    return [[w.copy() for w in branch.get_weights()] for branch in model.branches]


@pytest.mark.parametrize("cart_present", [False, True])
def test_a_supportive_branch_learns_only_from_pairs_with_its_behavior(cart_present):
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5), task=SampledTask("pairwise"))
    before = _branch_weights(model)
    model.train_on_batch(_batch(view_mask=1.0, cart_mask=float(cart_present)))
    after = _branch_weights(model)
    changed = [
        any(not np.array_equal(a, b) for a, b in zip(x, y, strict=True))
        for x, y in zip(before, after, strict=True)
    ]
    assert changed == [True, cart_present, True]  # view, cart, buy (target: always)


def test_the_mask_only_changes_gradients_not_scores():
    model = _model()
    batch = _batch(view_mask=0.0, cart_mask=0.0)
    np.testing.assert_allclose(
        model(batch, training=True)["scores"], model(batch)["scores"], rtol=1e-6
    )
    with pytest.raises(ValueError, match="lack behavior masks"):
        model({**batch, "behavior_mask": {"view": batch["behavior_mask"]["view"]}}, training=True)


@pytest.mark.parametrize("branches", [("view", "cart", "buy"), ("buy",)])
def test_score_users_agrees_with_score_pairs_also_in_chunks(branches, monkeypatch):
    model = _model(branches)
    users = tf.constant([5, 0, 3, 1])
    expected = model.score_pairs(users, tf.tile(tf.range(9)[None, :], [4, 1])).numpy()
    np.testing.assert_allclose(model.score_users(users), expected, rtol=1e-5, atol=1e-7)
    # 4 items per tile (the last one padded), 2 users per block (the last chunk padded).
    monkeypatch.setattr(layers, "ITEM_TILE", 4)
    monkeypatch.setattr(layers, "TILE_BUDGET", 4 * 2 * 15)
    np.testing.assert_allclose(
        tf.function(model.score_users)(users[:3]), expected[:3], rtol=1e-5, atol=1e-7
    )


def test_batched_full_ranking_equals_per_pair_scores_at_scale():
    # Several tiles and user blocks, four branches of a two-layer tower: a sample of
    # (user, item) pairs of the one batched pass equals the per-pair forward pass.
    tf.keras.utils.set_random_seed(5)
    model = mbncf.MBNCF(
        300,
        2500,
        ("pv", "fav", "cart", "buy"),
        mf_dim=4,
        mlp_dim=6,
        hidden_layers=(12, 5),
        init_std=0.5,
    )
    users = tf.range(37, 37 + 70)
    scores = model.score_users_given(users, model.scoring_tables()).numpy()
    assert scores.shape == (70, 2500)
    rng = np.random.default_rng(0)
    rows, items = rng.integers(0, 70, 500), rng.integers(0, 2500, 500)
    expected = model.score_pairs(tf.gather(users, rows), tf.constant(items)).numpy()
    np.testing.assert_allclose(scores[rows, items], expected, rtol=1e-5, atol=1e-6)


def test_stacked_towers_equal_each_tower_on_every_pair():
    tf.keras.utils.set_random_seed(1)
    towers = [layers.MLPTower((7, 3, 2), 4, 5, init_std=0.5, name=f"t{i}") for i in range(3)]
    stack = layers.StackedTowers(towers)
    user_vectors, item_vectors = tf.random.normal([2, 4]), tf.random.normal([6, 5])
    out = stack.cross(
        stack.user_side(user_vectors), stack.item_side(item_vectors), stack.deeper_layers()
    )
    users = tf.repeat(user_vectors, 6, axis=0)
    items = tf.tile(item_vectors, [2, 1])
    expected = tf.concat([tower(users, items) for tower in towers], axis=-1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert (stack.first_width, stack.widest) == (21, 21)


def _branch_model() -> mbncf.MBNCF:
    tf.keras.utils.set_random_seed(3)
    return mbncf.MBNCF(
        6,
        9,
        ("view", "cart", "buy"),
        mf_dim=3,
        mlp_dim=4,
        hidden_layers=(5, 3),
        init_std=0.3,
        branch_objectives=True,
    )


@pytest.mark.parametrize("positive_behavior", [0, 1, 2])  # view, cart, buy examples
def test_branch_objectives_update_a_supportive_branch_only_where_its_behavior_is_observed(
    positive_behavior,
):
    # Masks all 0: the fusion sends no gradient to the supportive branches, so a supportive
    # branch may change only through its own objective, i.e. from examples whose positive
    # pair has its behavior (and the target branch only from target examples here).
    model = _branch_model()
    task = SampledTask("pairwise", behaviors=("view", "cart", "buy"))
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5), task=task)
    batch = {
        **_batch(view_mask=0.0, cart_mask=0.0),
        "positive_behavior": tf.fill([2], positive_behavior),
    }
    before = _branch_weights(model)
    model.train_on_batch(batch)
    after = _branch_weights(model)
    changed = [
        any(not np.array_equal(a, b) for a, b in zip(x, y, strict=True))
        for x, y in zip(before, after, strict=True)
    ]
    assert changed == [positive_behavior == 0, positive_behavior == 1, positive_behavior == 2]


def test_branch_objectives_score_with_the_fusion_and_train_every_behavior(data):
    overrides = {"branch_objectives": True, "negative_sampler": "level", "batch_size": 32}
    config = registry.resolve_config("mbncf", data.name, overrides)
    spec = registry.get("mbncf")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    assert model.task.behaviors == data.behaviors
    batch = next(iter(spec.build_inputs(data, config, 0)))
    outputs = model(batch, training=True)["scores"]
    assert sorted(outputs) == sorted(data.behaviors)
    np.testing.assert_allclose(
        outputs["buy"], model.score_pairs(batch["user"], layers.example_items(batch)), rtol=1e-6
    )
    history = model.fit(spec.build_inputs(data, config, 0), epochs=2, verbose=0).history
    assert {"loss/view", "loss/cart", "loss/buy"} <= set(history)
    with pytest.raises(ValueError, match="uniform or level"):
        registry.resolve_config("mbncf", data.name, {"branch_objectives": True})


def test_level_negatives_of_every_behavior_lie_strictly_below_the_positive_level(data):
    from mbrec_tf.sampling import LevelAwareSampler

    overrides = {"branch_objectives": True, "negative_sampler": "level", "batch_size": 64}
    config = registry.resolve_config("mbncf", data.name, overrides)
    levels = LevelAwareSampler(data)
    seen = set()
    for batch in registry.get("mbncf").build_inputs(data, config, 0):
        users = batch["user"].numpy()
        positive = levels.levels_of(users, batch["positive"].numpy())
        negative = levels.levels_of(users[:, None], batch["negatives"].numpy())
        assert (negative > positive[:, None]).all()
        seen.update(positive.tolist())
    assert seen == {0, 1, 2}  # buy, cart and view positives all occur


def test_the_target_branch_only_ablation_drops_supportive_branches_and_masks(data):
    config = registry.resolve_config("mbncf", data.name, {"target_branch_only": True})
    model = registry.get("mbncf").build(data, config)
    assert model.branch_behaviors == ("buy",) and len(model.branches) == 1
    batch = next(iter(registry.get("mbncf").build_inputs(data, config, 0)))
    assert "behavior_mask" not in batch
    full = registry.resolve_config("mbncf", data.name, {})
    assert (full.num_negatives, full.negative_sampler, full.loss) == (3, "supportive", "pairwise")
    batch = next(iter(registry.get("mbncf").build_inputs(data, full, 0)))
    assert sorted(batch["behavior_mask"]) == ["cart", "view"]


def _fit(data, sampler: str) -> mbncf.MBNCF:
    tf.keras.utils.set_random_seed(0)
    config = registry.resolve_config(
        "mbncf",
        data.name,
        {
            "epochs": 30,
            "batch_size": 16,
            "learning_rate": 0.03,
            "negative_sampler": sampler,
            "mf_dim": 16,
            "mlp_dim": 16,
            "hidden_layers": (32, 16),
        },
    )
    spec = registry.get("mbncf")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=config.epochs, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0]
    return model


def test_mbncf_overfits_a_tiny_dataset_with_uniform_negatives(data):
    assert train_hit_rate(_fit(data, "uniform"), data) == 1.0


def test_with_supportive_negatives_every_target_pair_outranks_supportive_only_items(data):
    # The supportive pool of this data (3 items per user) fills all 3 negatives, so the
    # model never sees an untouched item as a negative: what it must learn is to rank each
    # training purchase above every item the user only viewed or carted.
    model = _fit(data, "supportive")
    scores = model.score_users(tf.range(data.num_users)).numpy()
    train = data.target_train.toarray() > 0
    supportive_only = (data.train["view"] + data.train["cart"]).toarray() > 0
    supportive_only &= ~train
    users, items = np.nonzero(train)
    competitors = np.where(supportive_only, scores, -np.inf)[users]
    assert (competitors < scores[users, items][:, None]).all()
