"""Datasets that ship their own target train/test split: index, check, hold out validation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tfds_builders._formats import DataFormatError
from tfds_builders._preprocessing.pairs import NO_ITEM, Pairs, pair_keys, unique_pairs
from tfds_builders._preprocessing.prepared import Prepared, item_titles_by_index


def prepare_given_split(
    train: Mapping[str, Pairs],
    test: Pairs,
    *,
    seed: int,
    item_titles: Mapping | None = None,
) -> Prepared:
    """Indexes a dataset that ships its own target train/test split (no timestamps).

    Args:
      train: behavior -> training pairs (raw ids), in funnel order, the target last.
      test: the target's held-out pairs: exactly one line per test user, and every test
        user must have target training data.
      seed: seed of the validation hold-out (one random training target item per user
        with at least 2 of them).
      item_titles: optional raw item id -> title.

    Raises:
      DataFormatError: empty target training data, a test user without target training
        data, or a user with two test items (naming the file and line).
    """
    behaviors = tuple(train)
    target = behaviors[-1]
    target_train = train[target]
    if len(target_train) == 0:
        raise DataFormatError(
            target_train.path, None, f"at least one training record of the target {target!r}"
        )
    _check_test(test, target_train, target)

    report: dict[str, int] = {}
    for behavior, pairs in train.items():
        report[f"records/{behavior}"] = len(pairs)
    report[f"records/{target}_test"] = len(test)
    all_users = np.concatenate([p.users for p in train.values()] + [test.users])
    all_items = np.concatenate([p.items for p in train.values()] + [test.items])
    user_ids = np.unique(all_users)
    item_ids = np.unique(all_items)

    indexed = {}
    for behavior, pairs in train.items():
        users = np.searchsorted(user_ids, pairs.users)
        items = np.searchsorted(item_ids, pairs.items)
        indexed[behavior] = unique_pairs(users, items)
        report[f"duplicates_merged/{behavior}"] = len(pairs) - len(indexed[behavior][0])
    test_users = np.searchsorted(user_ids, test.users)
    test_items = np.full(len(user_ids), NO_ITEM, dtype=np.int64)
    test_items[test_users] = np.searchsorted(item_ids, test.items)

    target_users, target_items = indexed[target]
    train_keys = pair_keys(target_users, target_items, len(item_ids))
    test_keys = pair_keys(test_users, test_items[test_users], len(item_ids))
    report[f"test_pairs_also_in_train/{target}"] = int(np.isin(test_keys, train_keys).sum())

    keep, valid_items = random_holdout(target_users, target_items, len(user_ids), seed)
    indexed[target] = (target_users[keep], target_items[keep])
    report[f"valid_holdout/{target}"] = int(np.sum(valid_items != NO_ITEM))
    return Prepared(
        behaviors=behaviors,
        user_ids=user_ids,
        item_ids=item_ids,
        train=indexed,
        valid_items=valid_items,
        test_items=test_items,
        report=report,
        item_titles=item_titles_by_index(item_ids, item_titles),
    )


def _check_test(test: Pairs, target_train: Pairs, target: str) -> None:
    if len(test) == 0:
        raise DataFormatError(test.path, None, f"at least one held-out {target!r} record")
    order = np.argsort(test.users, kind="stable")
    sorted_users = test.users[order]
    repeated = np.flatnonzero(sorted_users[1:] == sorted_users[:-1])
    if len(repeated):
        first, second = order[repeated[0]], order[repeated[0] + 1]
        raise DataFormatError(
            test.path,
            test.line(second),
            f"exactly one held-out item per user; user {test.users[second]} already has one"
            + (f" on line {test.line(first)}" if test.lines is not None else ""),
        )
    absent = np.flatnonzero(~np.isin(test.users, target_train.users))
    if len(absent):
        row = absent[0]
        raise DataFormatError(
            test.path,
            test.line(row),
            f"a test user with {target!r} training records in {target_train.path}; "
            f"user {test.users[row]} has none",
        )


def random_holdout(
    users: np.ndarray, items: np.ndarray, num_users: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Picks one random training pair per user with >= 2 pairs as that user's validation item.

    The pairs must be sorted by (user, item) (as `unique_pairs` returns them), so the draw
    depends only on the data and the seed, not on the file order.

    Returns:
      (mask of the pairs that stay in training, valid_items [num_users] or NO_ITEM).
    """
    rng = np.random.default_rng(seed)
    draws = rng.random(len(users))
    counts = np.bincount(users, minlength=num_users)
    order = np.lexsort((draws, users))
    ends = np.cumsum(counts)
    last_of_user = np.zeros(len(users), dtype=bool)
    last_of_user[ends[counts > 0] - 1] = True
    chosen = order[last_of_user & (counts[users[order]] >= 2)]
    keep = np.ones(len(users), dtype=bool)
    keep[chosen] = False
    valid_items = np.full(num_users, NO_ITEM, dtype=np.int64)
    valid_items[users[chosen]] = items[chosen]
    return keep, valid_items
