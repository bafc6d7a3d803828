"""MC-BPR: exclusive levels, the level order of every batch, level weights, overfitting."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models import mc_bpr
from mbrec_tf.tasks import SampledTask


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=20, num_items=30, seed=2)


def _brute_force_levels(data, users, items):
    """0 = target, 1 = the next behavior down, ..., len(behaviors) = unobserved."""
    dense = [data.train[b].toarray() > 0 for b in reversed(data.behaviors)]
    level = np.full(np.broadcast(users, items).shape, len(dense))
    for index in reversed(range(len(dense))):
        level = np.where(dense[index][users, items], index, level)
    return level


def test_exclusive_levels_partition_the_touched_pairs(data):
    levels = mc_bpr.exclusive_levels(data)
    matrices = [levels.train[b].toarray() for b in data.behaviors]
    touched = sum(data.train[b].toarray() for b in data.behaviors) > 0
    np.testing.assert_array_equal(sum(matrices), touched.astype(float))
    np.testing.assert_array_equal(levels.target_train.toarray(), data.target_train.toarray())


@pytest.mark.parametrize("level_weights", [(), ("buy:1", "cart:3", "view:0.2", "unobserved:1")])
def test_every_negative_is_below_its_positives_level_for_positives_of_every_level(
    data, level_weights
):
    config = registry.resolve_config(
        "mc_bpr", data.name, {"num_negatives": 4, "batch_size": 64, "level_weights": level_weights}
    )
    batches = list(registry.get("mc_bpr").build_inputs(data, config, seed=3).as_numpy_iterator())
    users = np.concatenate([b["user"] for b in batches])
    positives = np.concatenate([b["positive"] for b in batches])
    negatives = np.concatenate([b["negatives"] for b in batches])
    behavior = np.concatenate([b["positive_behavior"] for b in batches])
    positive_levels = _brute_force_levels(data, users, positives)
    negative_levels = _brute_force_levels(data, users[:, None], negatives)
    # Each touched pair once, at its strongest level; the batch names that level.
    touched = sum(data.train[b].toarray() for b in data.behaviors) > 0
    assert len(users) == touched.sum() == len(set(zip(users, positives, strict=True)))
    strongest_first = len(data.behaviors) - 1 - behavior
    np.testing.assert_array_equal(positive_levels, strongest_first)
    assert set(positive_levels) == set(range(len(data.behaviors)))
    assert (negative_levels > positive_levels[:, None]).all()
    # Positives of the target level draw from every weaker level, not only unobserved items.
    assert set(negative_levels[positive_levels == 0].ravel()) == {1, 2, 3}


def test_level_weights_set_the_sampler_and_weigh_examples_by_level(data):
    config = registry.resolve_config(
        "mc_bpr", data.name, {"level_weights": ("view:0.5", "cart:2", "buy:4", "unobserved:1")}
    )
    sampler = config.make_sampler(mc_bpr.exclusive_levels(data))
    np.testing.assert_array_equal(sampler.level_weights, [4, 2, 0.5, 1])
    task = registry.get("mc_bpr").build_task(data, config)
    assert task.positive_weights == (0.5, 2.0, 4.0)
    scores = tf.constant([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    batch = {"positive_behavior": tf.constant([0, 2, 1])}
    loss, _ = task(batch, {"scores": scores})
    per_example = np.log1p(np.exp([-1.0, 1.0, 0.0]))
    assert float(loss) == pytest.approx(np.average(per_example, weights=[0.5, 4, 2]), rel=1e-6)
    with pytest.raises(ValueError, match="no value for behaviors"):
        registry.resolve_config("mc_bpr", data.name, {"level_weights": ("buy:1",)}).weights(
            data.behaviors
        )
    with pytest.raises(ValueError, match="negative_sampler must be 'level'"):
        registry.resolve_config("mc_bpr", data.name, {"negative_sampler": "uniform"})


def test_mc_bpr_overfits_a_tiny_dataset(data):
    tf.keras.utils.set_random_seed(0)
    overrides = {"epochs": 25, "batch_size": 16, "learning_rate": 0.05, "embedding_dim": 16}
    config = registry.resolve_config("mc_bpr", data.name, {**overrides, "embedding_l2": 0.0})
    spec = registry.get("mc_bpr")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    assert isinstance(model.task, SampledTask)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=config.epochs, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0]
    assert train_hit_rate(model, data) == 1.0
    # The level order is learned: each user's carted items score above its viewed-only ones.
    scores = model.score_users(tf.range(data.num_users)).numpy()
    levels = _brute_force_levels(data, *np.indices(scores.shape))
    ordered = [
        scores[u][levels[u] == 1].min() > scores[u][levels[u] == 2].max()
        for u in range(data.num_users)
        if (levels[u] == 1).any() and (levels[u] == 2).any()
    ]
    assert np.mean(ordered) > 0.9
