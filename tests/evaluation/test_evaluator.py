"""The full-ranking and sampled evaluator on hand-computed cases."""

import dataclasses
import logging
import math

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf.data.dataset import NO_ITEM, MultiBehaviorData, interaction_matrix
from mbrec_tf.data.generated import random_data
from mbrec_tf.evaluation import Evaluator, evaluate
from mbrec_tf.evaluation.evaluator import group_index, group_labels
from mbrec_tf.models.base import Recommender
from mbrec_tf.models.popularity import Popularity


class FixedScores(Recommender):
    """Non-factorised: every score comes from a fixed `[num_users, num_items]` matrix."""

    def __init__(self, scores: np.ndarray):
        super().__init__(num_users=scores.shape[0], num_items=scores.shape[1])
        self.scores = tf.constant(scores)

    def score_users(self, user_ids):
        return tf.gather(self.scores, user_ids)

    def score_pairs(self, user_ids, item_ids):
        return tf.gather(self.score_users(user_ids), item_ids, batch_dims=1)


class Factorised(Recommender):
    """Factorised: scores are user_vectors @ item_vectors.T."""

    def __init__(self, user_vectors: np.ndarray, item_vectors: np.ndarray):
        super().__init__(num_users=len(user_vectors), num_items=len(item_vectors))
        self.user_vectors = tf.constant(user_vectors)
        self.item_vectors = tf.constant(item_vectors)

    def query_embeddings(self, user_ids):
        return tf.gather(self.user_vectors, user_ids)

    def item_embeddings(self):
        return self.item_vectors


# Five users, six items. User 4 has no test item. Hand-computed full-ranking ranks:
#   u0: buy-train {0, 1} masked; cart-only item 2 (7 > 6) stays a candidate   -> rank 1
#   u1: no buy-train; all six scores tie                                      -> rank 5
#   u2: buy-train {4} (score 9) masked; item 1 ties with the held-out item 0  -> rank 1
#   u3: buy-train {0..4} all masked, only item 5 is left                     -> rank 0
SCORES = np.array(
    [
        [9, 8, 7, 6, 5, 4],
        [1, 1, 1, 1, 1, 1],
        [3, 3, 1, 2, 9, 0],
        [5, 5, 5, 5, 5, 1],
        [0, 0, 0, 0, 0, 0],
    ],
    dtype=np.float32,
)
FULL_RANKS = [1, 5, 1, 0]
BUY_TRAIN = {0: [0, 1], 2: [4], 3: [0, 1, 2, 3, 4], 4: [1]}
CART_TRAIN = {0: [2], 1: [0], 4: [1]}
TEST_ITEMS = [3, 5, 0, 5, NO_ITEM]
# Sampled: u0 {7, 5, 4} vs 6 -> 1; u1 all tie -> 3; u2 {3 tie, 1, 2} vs 3 -> 1; u3 all above -> 3
TEST_NEGATIVES = [[2, 4, 5], [0, 1, 2], [1, 2, 3], [0, 1, 2], [NO_ITEM] * 3]
SAMPLED_RANKS = [1, 3, 1, 3]


def _matrix(rows: dict[int, list[int]]):
    users = [u for u, items in rows.items() for _ in items]
    items = [i for items in rows.values() for i in items]
    return interaction_matrix(np.array(users), np.array(items), 5, 6)


def hand_data(with_negatives: bool = True, buy_train: dict | None = None) -> MultiBehaviorData:
    return MultiBehaviorData(
        name="hand",
        behaviors=("cart", "buy"),
        train={"cart": _matrix(CART_TRAIN), "buy": _matrix(buy_train or BUY_TRAIN)},
        valid_items=np.full(5, NO_ITEM, dtype=np.int64),
        test_items=np.array(TEST_ITEMS, dtype=np.int64),
        user_ids=np.arange(5),
        item_ids=np.arange(6),
        test_negatives=np.array(TEST_NEGATIVES, dtype=np.int64) if with_negatives else None,
    )


def test_hand_computed_ranks_and_metrics():
    evaluator = Evaluator(hand_data(), "test", ks=(1, 2), batch_size=3, group_bounds=(4, 8))
    ranks = evaluator.ranks(FixedScores(SCORES))
    np.testing.assert_array_equal(ranks["full"], FULL_RANKS)
    np.testing.assert_array_equal(ranks["sampled"], SAMPLED_RANKS)

    results = evaluator(FixedScores(SCORES))
    assert all(isinstance(value, float) for value in results.values())
    assert results["num_users"] == 4
    assert results["hr@1"] == pytest.approx(1 / 4)
    assert results["hr@2"] == pytest.approx(3 / 4)
    assert results["ndcg@2"] == pytest.approx((2 / math.log2(3) + 1) / 4)
    assert results["mrr"] == pytest.approx((1 / 2 + 1 / 6 + 1 / 2 + 1) / 4)
    # 4 candidates: K=10 is not below 4, so the sampled protocol reports K = 1, 2 only.
    assert results["sampled/hr@1"] == 0.0
    assert results["sampled/hr@2"] == pytest.approx(2 / 4)
    assert results["sampled/mrr"] == pytest.approx((1 / 2 + 1 / 4 + 1 / 2 + 1 / 4) / 4)
    assert "sampled/hr@10" not in results


def test_group_breakdown():
    results = evaluate(FixedScores(SCORES), hand_data(), "test", ks=(1, 2), group_bounds=(4, 8))
    # Target-train counts of the evaluated users 0..3: 2, 0, 1, 5.
    assert results["groups/0/num_users"] == 1
    assert results["groups/1-4/num_users"] == 2
    assert results["groups/5-8/num_users"] == 1
    assert results["groups/>8/num_users"] == 0
    assert "groups/>8/hr@1" not in results
    assert results["groups/0/mrr"] == pytest.approx(1 / 6)
    assert results["groups/1-4/hr@1"] == 0.0
    assert results["groups/1-4/hr@2"] == 1.0
    assert results["groups/5-8/hr@1"] == 1.0


def test_group_labels_and_index():
    assert group_labels((4, 8, 16, 32)) == ["0", "1-4", "5-8", "9-16", "17-32", ">32"]
    assert group_labels((1, 3)) == ["0", "1", "2-3", ">3"]
    np.testing.assert_array_equal(
        group_index(np.array([0, 1, 4, 5, 8, 9, 32, 33, 120]), (4, 8, 16, 32)),
        [0, 1, 1, 2, 2, 3, 4, 5, 5],
    )


def test_held_out_item_is_never_masked():
    # User 0's held-out item 3 also sits in its buy-train data: it must stay a candidate.
    buy_train = {**BUY_TRAIN, 0: [0, 1, 3]}
    ranks = Evaluator(hand_data(buy_train=buy_train), "test").ranks(FixedScores(SCORES))
    np.testing.assert_array_equal(ranks["full"], FULL_RANKS)


def test_batch_size_does_not_change_ranks():
    for batch_size in (1, 2, 4, 512):
        ranks = Evaluator(hand_data(), "test", batch_size=batch_size).ranks(FixedScores(SCORES))
        np.testing.assert_array_equal(ranks["full"], FULL_RANKS)
        np.testing.assert_array_equal(ranks["sampled"], SAMPLED_RANKS)


def test_missing_negatives_skip_the_sampled_protocol_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        results = evaluate(FixedScores(SCORES), hand_data(with_negatives=False), "test")
    assert "no stored sampled negatives" in caplog.text
    assert not any(key.startswith("sampled/") for key in results)
    assert results["hr@10"] == 1.0  # 6 items: every rank is below 10


def test_constant_scores_get_nothing_and_an_oracle_gets_everything():
    data = random_data(num_users=12, num_items=40, num_negatives=20, seed=3)
    ks = (10, 20)
    constant = evaluate(FixedScores(np.ones((12, 40), np.float32)), data, "test", ks=ks)
    assert constant["hr@10"] == 0.0
    assert constant["ndcg@20"] == 0.0
    assert constant["sampled/hr@10"] == 0.0
    assert constant["mrr"] < 1 / 30

    for split in ("valid", "test"):
        users, items = data.held_out(split)
        oracle_scores = np.zeros((12, 40), np.float32)
        oracle_scores[users, items] = 1.0
        oracle = evaluate(FixedScores(oracle_scores), data, split, ks=ks)
        for key in ("hr@10", "hr@20", "ndcg@10", "mrr", "sampled/hr@10", "sampled/ndcg@10"):
            assert oracle[key] == 1.0, (split, key)


def test_factorised_and_scored_paths_agree():
    # Small integer embeddings make every score exact, with many ties.
    rng = np.random.default_rng(7)
    data = random_data(num_users=25, num_items=30, seed=5)
    user_vectors = rng.integers(-2, 3, size=(25, 3)).astype(np.float64)
    item_vectors = rng.integers(-2, 3, size=(30, 3)).astype(np.float64)
    factorised = Factorised(user_vectors, item_vectors)
    assert factorised.is_factorized
    fixed = FixedScores(user_vectors @ item_vectors.T)
    assert not fixed.is_factorized
    evaluator = Evaluator(data, "valid", batch_size=8)
    factorised_ranks, fixed_ranks = evaluator.ranks(factorised), evaluator.ranks(fixed)
    for protocol in ("full", "sampled"):
        np.testing.assert_array_equal(factorised_ranks[protocol], fixed_ranks[protocol])
    assert evaluator(factorised) == evaluator(fixed)


def test_popularity_model_and_default_keys():
    data = random_data(num_users=10, num_items=50, num_negatives=99, seed=1)
    results = evaluate(Popularity(data.item_popularity(), data.num_users), data, "test")
    for k in (10, 50, 100, 200):
        assert f"hr@{k}" in results and f"ndcg@{k}" in results
    assert {"mrr", "sampled/hr@10", "sampled/ndcg@10", "sampled/hr@50", "sampled/mrr"} <= set(
        results
    )
    assert "sampled/hr@100" not in results  # 100 candidates: HR@100 would always be 1
    assert results["hr@50"] == 1.0  # 50 items: every rank is below 50


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="protocols"):
        Evaluator(hand_data(), "test", protocols=("full", "nope"))
    with pytest.raises(ValueError, match="ks"):
        Evaluator(hand_data(), "test", ks=(0,))
    with pytest.raises(ValueError, match="split"):
        Evaluator(hand_data(), "train")
    with pytest.raises(ValueError, match="items"):
        Evaluator(hand_data(), "test")(FixedScores(np.zeros((5, 7), np.float32)))
    bad = dataclasses.replace(hand_data(), test_negatives=np.full((5, 3), NO_ITEM))
    with pytest.raises(ValueError, match="negatives"):
        Evaluator(bad, "test")


def test_a_negative_equal_to_the_held_out_item_is_not_a_candidate():
    negatives = np.array(TEST_NEGATIVES, dtype=np.int64)
    negatives[0] = [3, 4, 5]  # u0's held-out item 3 among its negatives; 4 and 5 score lower
    data = dataclasses.replace(hand_data(), test_negatives=negatives)
    ranks = Evaluator(data, "test").ranks(FixedScores(SCORES))
    np.testing.assert_array_equal(ranks["sampled"], [0, 3, 1, 3])


@pytest.mark.parametrize("factorised", [True, False], ids=["factorised", "score_users"])
def test_a_model_with_nan_scores_scores_zero_inside_tf_function(factorised):
    data = random_data(num_users=12, num_items=40, seed=2)
    if factorised:
        model = Factorised(np.ones((12, 3), np.float32), np.full((40, 3), np.nan, dtype=np.float32))
    else:
        model = FixedScores(np.full((12, 40), np.nan, dtype=np.float32))
    results = Evaluator(data, "test", ks=(10,))(model)
    assert results["hr@10"] == 0.0 and results["ndcg@10"] == 0.0
    assert results["sampled/hr@10"] == 0.0 and results["sampled/ndcg@10"] == 0.0


def test_a_nan_competitor_never_helps_and_a_nan_held_out_item_ranks_last():
    data = random_data(num_users=12, num_items=40, seed=2)
    users, items = data.held_out("test")
    scores = np.zeros((12, 40), np.float32)
    scores[users, items] = 1.0
    scores[users, (items + 1) % 40] = np.nan  # one broken competitor per user
    ranks = Evaluator(data, "test", ks=(10,)).ranks(FixedScores(scores))["full"]
    masked = data.known_target_items("test").toarray()[users, (items + 1) % 40] > 0
    np.testing.assert_array_equal(ranks, np.where(masked, 0, 1))
    scores[users, items] = np.nan
    ranks = Evaluator(data, "test", ks=(10,)).ranks(FixedScores(scores))["full"]
    known = data.known_target_items("test").toarray()[users].sum(axis=1)
    np.testing.assert_array_equal(ranks, 40 - 1 - known)


def test_the_test_split_masks_the_users_validation_item_too():
    data = random_data(num_users=12, num_items=40, seed=2)
    users, test_items = data.held_out("test")
    scores = np.zeros((12, 40), np.float32)
    scores[users, test_items] = 1.0
    has_valid = data.valid_items[users] != NO_ITEM
    assert has_valid.any() and (data.valid_items[users] != test_items).all()
    scores[users[has_valid], data.valid_items[users[has_valid]]] = 2.0  # bought already
    results = Evaluator(data, "test", ks=(1,))(FixedScores(scores))
    assert results["hr@1"] == 1.0
    # The validation split itself only masks training items.
    known = data.known_target_items("valid")
    assert (known != data.target_train).nnz == 0


def test_touched_and_new_groups_by_hand():
    # Three users, five items; cart is supportive. Hand-computed ranks:
    #   u0: held-out 2 was carted (touched); buy-train {0} masked; 3 (7), 4 (6) above -> 2
    #   u1: held-out 4 never touched (new); full: 1 (8), 3 (6) above -> 2; among untouched
    #       items (carted 1 and 3 masked too) -> 0
    #   u2: held-out 0 new; carted 2 is also bought (masked anyway); 1 (3) and 4 (2, a tie)
    #       are above -> 2 in both rankings
    def matrix(pairs):
        users, items = zip(*pairs, strict=True)
        return interaction_matrix(np.array(users), np.array(items), 3, 5)

    data = MultiBehaviorData(
        name="groups",
        behaviors=("cart", "buy"),
        train={
            "cart": matrix([(0, 2), (0, 3), (1, 1), (1, 3), (2, 2)]),
            "buy": matrix([(0, 0), (2, 2)]),
        },
        valid_items=np.array([NO_ITEM] * 3),
        test_items=np.array([2, 4, 0]),
        user_ids=np.array(["a", "b", "c"]),
        item_ids=np.arange(5),
    )
    scores = np.array([[9, 1, 5, 7, 6], [3, 8, 1, 6, 4], [2, 3, 9, 1, 2]], np.float32)
    evaluator = Evaluator(data, "test", ks=(1, 3), protocols=("full",))
    ranks = evaluator.ranks(FixedScores(scores))
    np.testing.assert_array_equal(ranks["full"], [2, 2, 2])
    # u0 is in the touched group: its rank without carted 3 (1) is computed, never reported.
    np.testing.assert_array_equal(ranks["untouched"], [1, 0, 2])
    results = evaluator.summarize(ranks)
    assert results["touched/num_users"] == 1 and results["new/num_users"] == 2
    assert results["touched/hr@3"] == 1.0 and results["touched/hr@1"] == 0.0
    assert results["touched/mrr"] == pytest.approx(1 / 3)
    assert results["new/hr@1"] == 0.5
    assert results["new/mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert results["new/ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 2)
    assert results["hr@1"] == 0.0  # overall: every rank is 2


def test_a_user_sample_is_seeded_and_ranks_as_in_the_full_evaluation():
    data = random_data(num_users=40, num_items=30, num_negatives=20, seed=4)
    model = FixedScores(np.random.default_rng(0).normal(size=(40, 30)).astype(np.float32))
    full = Evaluator(data, "test")
    full_ranks = full.ranks(model)
    sample = Evaluator(data, "test", sample_users=11, seed=3)
    again = Evaluator(data, "test", sample_users=11, seed=3)
    other = Evaluator(data, "test", sample_users=11, seed=4)
    assert sample.num_users == 11 and len(set(sample.users)) == 11
    np.testing.assert_array_equal(sample.users, again.users)
    assert not np.array_equal(sample.users, other.users)
    assert set(sample.users) <= set(full.users)
    # Each sampled user is ranked exactly as in the evaluation of every user.
    position = np.searchsorted(full.users, sample.users)
    sample_ranks = sample.ranks(model)
    for key in ("full", "untouched", "sampled"):
        np.testing.assert_array_equal(sample_ranks[key], full_ranks[key][position])
    np.testing.assert_array_equal(sample.user_touched, full.user_touched[position])
    assert sample(model)["num_users"] == 11
    # A sample at least as large as the split is the whole split.
    np.testing.assert_array_equal(Evaluator(data, "test", sample_users=40).users, full.users)


def test_bounded_batches_and_masks_rebuilt_per_call_rank_the_same():
    data = random_data(num_users=40, num_items=30, num_negatives=20, seed=4)
    model = FixedScores(np.random.default_rng(1).normal(size=(40, 30)).astype(np.float32))
    kept = Evaluator(data, "valid")
    # At most 90 scores per batch: 3 users of 30 items; no masks kept between calls.
    bounded = Evaluator(data, "valid", max_batch_scores=90, max_cached_pairs=0)
    assert bounded.batch_size == 3 and bounded._batches is None
    assert Evaluator(data, "valid", max_batch_scores=1).batch_size == 1
    kept_ranks, bounded_ranks = kept.ranks(model), bounded.ranks(model)
    for key in kept_ranks:
        np.testing.assert_array_equal(bounded_ranks[key], kept_ranks[key])
    np.testing.assert_array_equal(bounded.user_touched, kept.user_touched)
    assert bounded(model) == kept(model)
    with pytest.raises(ValueError, match="sample_users"):
        Evaluator(data, "valid", sample_users=0)
