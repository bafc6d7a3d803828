"""Negative samplers: exclusion rules, exact uniformity, fill-up, levels, reproducibility."""

import numpy as np
import pytest

from mbrec_tf.data.dataset import NO_ITEM, MultiBehaviorData, interaction_matrix
from mbrec_tf.data.generated import random_data
from mbrec_tf.data.keys import contains
from mbrec_tf.data.keys import pair_keys as pair_keys_of
from mbrec_tf.sampling import (
    ComplementPool,
    LevelAwareSampler,
    MixedSampler,
    RowPool,
    SupportiveSampler,
    UniformSampler,
    make_sampler,
)


def _matrix(rows: dict[int, list[int]], shape: tuple[int, int]):
    users = [u for u, items in rows.items() for _ in items]
    items = [i for items in rows.values() for i in items]
    return interaction_matrix(np.array(users), np.array(items), *shape)


def _hand_data() -> MultiBehaviorData:
    """3 users x 8 items; user 0 has 4 supportive-only items, user 1 one, user 2 none."""
    shape = (3, 8)
    view = _matrix({0: [0, 1, 2, 3, 4, 5], 1: [0, 6], 2: [7]}, shape)
    buy = _matrix({0: [4, 5], 1: [0], 2: [7]}, shape)
    return MultiBehaviorData(
        name="hand",
        behaviors=("view", "buy"),
        train={"view": view, "buy": buy},
        valid_items=np.full(3, NO_ITEM),
        test_items=np.full(3, NO_ITEM),
        user_ids=np.arange(3),
        item_ids=np.arange(8),
    )


def test_complement_pool_draws_every_free_item_uniformly_and_nothing_else():
    pool = ComplementPool(_matrix({0: [1, 3], 1: [], 2: [0, 1, 2, 3, 4]}, (3, 5)))
    np.testing.assert_array_equal(pool.sizes, [3, 5, 0])
    rng = np.random.default_rng(0)
    draws = pool.draw(np.zeros(30_000, dtype=int), 1, rng)[:, 0]
    counts = np.bincount(draws, minlength=5)
    assert counts[1] == counts[3] == 0
    # 10,000 expected per free item; 4 standard deviations is about 330.
    np.testing.assert_allclose(counts[[0, 2, 4]], 10_000, atol=400)
    assert set(pool.draw(np.ones(500, dtype=int), 2, rng).ravel()) == set(range(5))
    with pytest.raises(ValueError, match="excluded from every item"):
        pool.draw(np.array([2]), 1, rng)


def test_row_pool_distinct_draws_fill_the_slots_a_pool_can_fill():
    pool = RowPool(_matrix({0: [2, 5, 7], 1: [4], 2: []}, (3, 9)))
    users = np.repeat([0, 1, 2], 200)
    items, filled = pool.draw_distinct(users, 4, np.random.default_rng(1))
    np.testing.assert_array_equal(filled.sum(axis=1), np.repeat([3, 1, 0], 200))
    for row, mask, user in zip(items, filled, users, strict=True):
        chosen = row[mask]
        assert len(set(chosen)) == len(chosen)
        assert set(chosen) == {0: {2, 5, 7}, 1: {4}, 2: set()}[user]
    # Distinct draws are still uniform over the positions: item 2 first a third of the time.
    first = items[users == 0, 0]
    assert 40 < np.sum(first == 2) < 95


def test_uniform_negatives_are_never_target_positives_but_may_be_supportive_items():
    data = random_data(num_users=25, num_items=30, seed=3)
    users = np.repeat(np.arange(data.num_users), 40)
    negatives = UniformSampler(data.target_train).sample(users, 5, np.random.default_rng(0))
    assert negatives.shape == (len(users), 5)
    assert not contains(data.target_train, users[:, None], negatives).any()
    assert contains(data.train["view"], users[:, None], negatives).any()
    assert negatives.min() >= 0 and negatives.max() < data.num_items


def test_supportive_negatives_use_the_supportive_only_pool_then_untouched_items():
    data = _hand_data()
    sampler = SupportiveSampler(data)
    np.testing.assert_array_equal(sampler.pool_sizes, [4, 1, 0])
    users = np.repeat([0, 1, 2], 300)
    negatives = sampler.sample(users, 3, np.random.default_rng(2))
    assert not contains(data.target_train, users[:, None], negatives).any()
    user0 = negatives[users == 0]
    assert set(user0.ravel()) == {0, 1, 2, 3}  # pool of 4 >= 3 negatives: pool only
    assert all(len(set(row)) == 3 for row in user0)  # distinct within an example
    user1 = negatives[users == 1]
    np.testing.assert_array_equal(user1[:, 0], 6)  # the one supportive-only item first
    assert set(user1[:, 1:].ravel()) == {1, 2, 3, 4, 5, 7}  # never touched by user 1
    assert set(negatives[users == 2].ravel()) == set(range(7))  # all but its item 7


def test_supportive_negatives_on_generated_data_never_hit_target_positives():
    data = random_data(num_users=25, num_items=30, seed=4)
    users = np.repeat(np.arange(data.num_users), 30)
    negatives = make_sampler("supportive", data).sample(users, 4, np.random.default_rng(0))
    assert not contains(data.target_train, users[:, None], negatives).any()


@pytest.mark.parametrize("name", ["uniform", "supportive", "level"])
def test_samplers_are_reproducible_for_a_seed_and_vary_across_seeds(name):
    data = random_data(num_users=20, num_items=30, seed=5)
    sampler = make_sampler(name, data)
    users = np.repeat(np.arange(data.num_users), 5)
    first = sampler.sample(users, 3, np.random.default_rng([7, 0]))
    again = sampler.sample(users, 3, np.random.default_rng([7, 0]))
    other = sampler.sample(users, 3, np.random.default_rng([7, 1]))
    np.testing.assert_array_equal(first, again)
    assert (first != other).mean() > 0.3


def test_level_aware_negatives_come_from_strictly_weaker_levels():
    data = _hand_data()
    sampler = LevelAwareSampler(data)
    users = np.array([0, 0, 1, 1])
    positives = np.array([4, 0, 0, 6])  # buy, view-only, buy, view-only
    np.testing.assert_array_equal(sampler.levels_of(users, positives), [0, 1, 0, 1])
    many_users, many_positives = np.repeat(users, 400), np.repeat(positives, 400)
    negatives = sampler.sample(many_users, 2, np.random.default_rng(0), positives=many_positives)
    levels = sampler.levels_of(many_users[:, None], negatives)
    positive_levels = sampler.levels_of(many_users, many_positives)
    assert (levels > positive_levels[:, None]).all()
    # A buy positive of user 0 draws view-only and unobserved items about equally often.
    buy_rows = (many_users == 0) & (many_positives == 4)
    view_share = (levels[buy_rows] == 1).mean()
    assert 0.4 < view_share < 0.6
    with pytest.raises(ValueError, match="unobserved"):
        sampler.sample(np.array([2]), 1, np.random.default_rng(0), positives=np.array([0]))


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_mixed_negatives_take_a_share_of_supportive_only_items_the_rest_uniform(share):
    data = _hand_data()
    sampler = make_sampler("mixed", data, supportive_share=share)
    assert isinstance(sampler, MixedSampler)
    users = np.repeat([0, 1, 2], 2000)
    negatives = sampler.sample(users, 3, np.random.default_rng(1))
    assert not contains(pair_keys_of(data.target_train), users[:, None], negatives, 8).any()
    pool = {0: {0, 1, 2, 3}, 1: {6}, 2: set()}
    in_pool = np.array(
        [[item in pool[u] for item in row] for u, row in zip(users, negatives, strict=True)]
    )
    # Uniform draws land in user 0's pool 4 times in 6 (items 0-3 of its 6 non-target items).
    expected = {0: share + (1 - share) * 4 / 6, 1: share + (1 - share) / 7, 2: 0.0}
    for user, rate in expected.items():
        assert abs(in_pool[users == user].mean() - rate) < 0.03
    with pytest.raises(ValueError, match="share"):
        MixedSampler(data, share=1.5)


def test_level_aware_negatives_by_size_are_uniform_over_the_weaker_items():
    # User 0: 2 bought items, 4 viewed-only, 2 unobserved; a buy positive's negative is any
    # of the 6 weaker items with probability 1/6 (by level weight alone: view 1/2, unobserved 1/2).
    sampler = LevelAwareSampler(_hand_data(), by_size=True)
    users, positives = np.zeros(30_000, dtype=int), np.full(30_000, 4)
    negatives = sampler.sample(users, 1, np.random.default_rng(2), positives=positives)[:, 0]
    counts = np.bincount(negatives, minlength=8)
    assert counts[4] == counts[5] == 0
    # 5,000 expected per item; 4 standard deviations is about 260.
    np.testing.assert_allclose(counts[[0, 1, 2, 3, 6, 7]], 5_000, atol=300)


def test_make_sampler_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown negative sampler 'popular'"):
        make_sampler("popular", _hand_data())
