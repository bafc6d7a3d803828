"""Stored negatives of the sampled protocol: random items each user never touched."""

from __future__ import annotations

import numpy as np

from tfds_builders._preprocessing.pairs import NO_ITEM, pair_keys

NUM_NEGATIVES = 99  # stored negatives per held-out item (the NCF protocol)
_NEGATIVES_BLOCK = 1 << 16  # users per block of vectorised negative sampling


def sample_negatives(
    touched_users: np.ndarray,
    touched_items: np.ndarray,
    *,
    num_users: int,
    num_items: int,
    rows: np.ndarray,
    num_negatives: int,
    seed: int | tuple[int, ...],
) -> np.ndarray:
    """Distinct random items each user never touched, for the users in `rows`.

    Users who left most items untouched (the usual case) are served by vectorised
    rejection sampling: a few rounds of drawing, dropping touched items and repeats. Users
    who touched half the catalogue or more are drawn exactly from their untouched items.
    A user with fewer than `num_negatives` untouched items gets all of them, then repeats
    drawn from them to fill the row; a user who touched every item gets NO_ITEM. Rows of
    users not in `rows` are NO_ITEM.

    Returns:
      int64 [num_users, num_negatives].
    """
    touched = np.unique(pair_keys(touched_users, touched_items, num_items))
    return sample_negatives_of_keys(
        touched,
        num_users=num_users,
        num_items=num_items,
        rows=rows,
        num_negatives=num_negatives,
        seed=seed,
    )


def sample_negatives_of_keys(
    touched: np.ndarray,
    *,
    num_users: int,
    num_items: int,
    rows: np.ndarray,
    num_negatives: int,
    seed: int | tuple[int, ...],
) -> np.ndarray:
    """`sample_negatives` given the sorted unique pair keys user * num_items + item."""
    rng = np.random.default_rng(seed)
    result = np.full((num_users, num_negatives), NO_ITEM, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0 or num_negatives == 0:
        return result
    # Blocks of rows bound the memory of the vectorised draws (one block up to 64k users).
    for start in range(0, len(rows), _NEGATIVES_BLOCK):
        block = rows[start : start + _NEGATIVES_BLOCK]
        result[block] = _sample_negatives_block(touched, num_items, block, num_negatives, rng)
    return result


def _sample_negatives_block(
    touched: np.ndarray,
    num_items: int,
    rows: np.ndarray,
    num_negatives: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """`[len(rows), num_negatives]` negatives of the users `rows` (see `sample_negatives`)."""
    starts = np.searchsorted(touched, rows * num_items)
    free = num_items - (np.searchsorted(touched, (rows + 1) * num_items) - starts)
    exact = (2 * free < num_items) | (free <= num_negatives)
    accepted = np.full((len(rows), num_negatives), NO_ITEM, dtype=np.int64)

    pending = np.flatnonzero(~exact)
    width = 2 * num_negatives
    while len(pending):
        candidates = rng.integers(0, num_items, size=(len(pending), width), dtype=np.int64)
        keys = pair_keys(np.repeat(rows[pending], width), candidates.ravel(), num_items)
        hit = np.minimum(np.searchsorted(touched, keys), len(touched) - 1)
        candidates[(touched[hit] == keys).reshape(candidates.shape)] = NO_ITEM
        merged = _distinct_left(np.concatenate([accepted[pending], candidates], axis=1))
        accepted[pending] = merged[:, :num_negatives]
        pending = pending[accepted[pending, -1] == NO_ITEM]

    for row in np.flatnonzero(exact & (free > 0)):
        mine = touched[starts[row] : starts[row] + num_items - free[row]] - rows[row] * num_items
        pool = np.setdiff1d(np.arange(num_items, dtype=np.int64), mine, assume_unique=True)
        if len(pool) >= num_negatives:
            accepted[row] = rng.choice(pool, size=num_negatives, replace=False)
        else:
            extra = rng.choice(pool, size=num_negatives - len(pool), replace=True)
            accepted[row] = np.concatenate([rng.permutation(pool), extra])
    return accepted


def _distinct_left(values: np.ndarray) -> np.ndarray:
    """Per row: drops repeats (keeping first occurrences) and NO_ITEM, packs to the left."""
    columns = values.shape[1]
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    repeat = np.zeros_like(ordered, dtype=bool)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    invalid = np.empty_like(repeat)
    np.put_along_axis(invalid, order, repeat | (ordered == NO_ITEM), axis=1)
    packing = np.argsort(invalid, axis=1, kind="stable")
    packed = np.take_along_axis(values, packing, axis=1)
    packed[np.take_along_axis(invalid, packing, axis=1)] = NO_ITEM
    return packed[:, :columns]
