"""The (user, positive, negatives[, behavior_mask]) pipeline of sampled models."""

import collections

import numpy as np
import pytest

from mbrec_tf.data.generated import random_data
from mbrec_tf.data.keys import contains, matrix_pairs
from mbrec_tf.inputs import SampledExamples
from mbrec_tf.sampling import make_sampler


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=20, num_items=30, seed=1)


def _examples(data, **kwargs) -> SampledExamples:
    options = dict(mask_behaviors=("view", "cart"), seed=3, chunk_batches=2)
    options.update(kwargs)
    return SampledExamples(data, make_sampler("supportive", data), 3, 8, **options)


def test_contains_matches_a_dense_lookup(data):
    dense = data.train["cart"].toarray() > 0
    users = np.repeat(np.arange(data.num_users), data.num_items)
    items = np.tile(np.arange(data.num_items), data.num_users)
    np.testing.assert_array_equal(contains(data.train["cart"], users, items), dense.ravel())


def test_an_epoch_holds_every_target_pair_once_with_masks_of_its_items(data):
    examples = _examples(data)
    batches = list(examples.epoch(0))
    assert len(batches) == examples.steps_per_epoch == -(-data.target_train.nnz // 8)
    seen = collections.Counter()
    for batch in batches:
        assert batch["negatives"].shape == (len(batch["user"]), 3)
        seen.update(zip(batch["user"].tolist(), batch["positive"].tolist(), strict=True))
        items = np.concatenate([batch["positive"][:, None], batch["negatives"]], axis=1)
        for behavior in ("view", "cart"):
            dense = data.train[behavior].toarray() > 0
            expected = dense[batch["user"][:, None], items].astype(np.float32)
            np.testing.assert_array_equal(batch["behavior_mask"][behavior], expected)
    users, items = matrix_pairs(data.target_train)
    assert seen == collections.Counter(zip(users.tolist(), items.tolist(), strict=True))


def test_epochs_are_reproducible_and_differ_from_each_other(data):
    examples = _examples(data)

    def negatives(epoch: int) -> np.ndarray:
        return np.concatenate([b["negatives"] for b in examples.epoch(epoch)])

    np.testing.assert_array_equal(negatives(4), negatives(4))
    assert (negatives(4) != negatives(5)).mean() > 0.3
    np.testing.assert_array_equal(
        negatives(4), np.concatenate([b["negatives"] for b in _examples(data).epoch(4)])
    )


def test_the_dataset_draws_a_new_epoch_per_iteration(data):
    examples = _examples(data, mask_behaviors=())
    dataset = examples.dataset()
    assert int(dataset.cardinality()) == examples.steps_per_epoch
    first = np.concatenate([b["negatives"].numpy() for b in dataset])
    second = np.concatenate([b["negatives"].numpy() for b in dataset])
    expected = [np.concatenate([b["negatives"] for b in examples.epoch(e)]) for e in (0, 1)]
    np.testing.assert_array_equal(first, expected[0])
    np.testing.assert_array_equal(second, expected[1])
    assert "behavior_mask" not in next(iter(dataset))


def test_bad_arguments_are_rejected(data):
    with pytest.raises(ValueError, match="num_negatives"):
        _examples(data, mask_behaviors=()).__class__(data, None, 0, 8)
    with pytest.raises(ValueError, match="unknown mask behaviors"):
        _examples(data, mask_behaviors=("click",))
