"""MFPR: the preference pairs of the behavior order, uniform over weaker items; overfitting."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models import mc_bpr, mfpr


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=20, num_items=30, seed=2)


def _levels(data, users, items):
    """0 = target, 1 = the next behavior down, ..., len(behaviors) = unobserved."""
    dense = [data.train[b].toarray() > 0 for b in reversed(data.behaviors)]
    level = np.full(np.broadcast(users, items).shape, len(dense))
    for index in reversed(range(len(dense))):
        level = np.where(dense[index][users, items], index, level)
    return level


def test_every_pair_is_a_positive_once_over_items_of_weaker_levels_drawn_by_size(data):
    config = registry.resolve_config("mfpr", data.name, {"num_negatives": 50, "batch_size": 64})
    batches = list(registry.get("mfpr").build_inputs(data, config, seed=1).as_numpy_iterator())
    users = np.concatenate([b["user"] for b in batches])
    positives = np.concatenate([b["positive"] for b in batches])
    negatives = np.concatenate([b["negatives"] for b in batches])
    touched = sum(data.train[b].toarray() for b in data.behaviors) > 0
    assert len(users) == touched.sum() == len(set(zip(users, positives, strict=True)))
    positive_levels = _levels(data, users, positives)
    negative_levels = _levels(data, users[:, None], negatives)
    assert (negative_levels > positive_levels[:, None]).all()
    # A target positive's negatives: each weaker level in proportion to its item count.
    all_levels = _levels(data, *np.indices((data.num_users, data.num_items)))
    target = positive_levels == 0
    for level in (1, 2, 3):
        expected = np.mean(
            (all_levels[users[target]] == level).sum(1) / (all_levels[users[target]] > 0).sum(1)
        )
        assert (negative_levels[target] == level).mean() == pytest.approx(expected, abs=0.03)


def test_mfpr_trains_on_exclusive_levels_with_the_plain_pairwise_loss(data):
    config = registry.resolve_config("mfpr", data.name)
    spec = registry.get("mfpr")
    assert spec.training_data is mc_bpr.exclusive_levels
    assert spec.build_task(data, config).positive_weights is None
    assert config.make_sampler(data).by_size
    with pytest.raises(ValueError, match="negative_sampler must be 'level'"):
        mfpr.MFPRConfig(negative_sampler="supportive")


def test_mfpr_overfits_a_tiny_dataset(data):
    tf.keras.utils.set_random_seed(0)
    overrides = {"epochs": 25, "batch_size": 16, "learning_rate": 0.05, "embedding_dim": 16}
    config = registry.resolve_config("mfpr", data.name, {**overrides, "embedding_l2": 0.0})
    spec = registry.get("mfpr")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=config.epochs, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0]
    assert train_hit_rate(model, data) == 1.0
