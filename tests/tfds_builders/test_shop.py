"""The shop-scale generator: deterministic, power-law popularity, skewed activity, a funnel,
and chunked preprocessing equal to preprocessing the whole log at once."""

import dataclasses

import numpy as np

import tfds_builders
from tfds_builders import _preprocessing as prep
from tfds_builders.mbrec_synthetic import shop
from tfds_builders.mbrec_synthetic.mbrec_synthetic import prepare_shop

SPEC = shop.ShopSpec(num_users=3000, num_items=2000, num_categories=40, chunk_users=700, seed=3)


def test_same_spec_same_log_other_seed_other_log():
    first, again = list(shop.generate_chunks(SPEC)), list(shop.generate_chunks(SPEC))
    assert len(first) == SPEC.num_chunks == 5
    for a, b in zip(first, again, strict=True):
        for name in ("users", "items", "behaviors", "timestamps"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    other = next(shop.generate_chunks(dataclasses.replace(SPEC, seed=4)))
    assert len(other.users) != len(first[0].users) or not np.array_equal(
        other.items, first[0].items
    )


def test_popularity_activity_and_funnel_have_the_planted_shape():
    prepared = prepare_shop(SPEC)
    views = np.bincount(prepared.train["view"][1], minlength=prepared.num_items)
    ordered = np.sort(views)[::-1]
    assert ordered[: len(ordered) // 100].sum() > 0.1 * ordered.sum()  # top 1% of items
    activity = np.bincount(prepared.train["view"][0], minlength=prepared.num_users)
    assert np.percentile(activity, 99) > 4 * np.median(activity)

    def keys(behavior):
        users, items = prepared.train[behavior]
        return users * prepared.num_items + items

    assert 0.8 < np.isin(keys("cart"), keys("view")).mean() < 1.0  # most carts were viewed
    assert 0.7 < np.isin(keys("buy"), keys("cart")).mean() < 1.0  # most buys were carted
    assert np.mean(prepared.test_items != prep.NO_ITEM) > 0.99  # >= 2 distinct purchases


def test_chunked_preprocessing_equals_whole_log_preprocessing():
    chunked = prepare_shop(SPEC)
    chunks = list(shop.generate_chunks(SPEC))
    whole = prep.EventLog.from_raw(
        np.concatenate([c.users for c in chunks]),
        np.concatenate([c.items for c in chunks]),
        np.concatenate([c.behaviors for c in chunks]),
        np.concatenate([c.timestamps for c in chunks]),
        shop.BEHAVIORS,
    )
    reference = prep.prepare_event_log(whole, min_user_events=0, min_item_events=0)
    np.testing.assert_array_equal(chunked.user_ids, reference.user_ids)
    np.testing.assert_array_equal(chunked.item_ids, reference.item_ids)
    for behavior in shop.BEHAVIORS:
        for a, b in zip(chunked.train[behavior], reference.train[behavior], strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(chunked.valid_items, reference.valid_items)
    np.testing.assert_array_equal(chunked.test_items, reference.test_items)
    assert dict(chunked.report) == {k: v for k, v in reference.report.items()}


def test_negatives_in_blocks_are_untouched_items(monkeypatch):
    monkeypatch.setattr(prep.negatives, "_NEGATIVES_BLOCK", 256)
    prepared = prepare_shop(SPEC).with_negatives(99, seed=1)
    touched = set(zip(*(a.tolist() for a in prepared.touched()), strict=True))
    for user in range(0, prepared.num_users, 97):
        for item in prepared.test_negatives[user]:
            assert (user, int(item)) not in touched
        assert len(set(prepared.test_negatives[user].tolist())) == 99


def test_xl_config_sizes():
    config = tfds_builders.MbrecSynthetic.config_from_name("xl")
    assert config.num_users >= 1_000_000 and config.num_items >= 200_000
    assert tfds_builders.MbrecSynthetic.config_from_name("xl_seed2").seed == 2
