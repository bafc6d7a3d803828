"""(user, item) pairs of sparse interaction matrices as sorted integer keys, for set lookups.

Samplers and input builders ask "does this user have this item in that behavior?" for
millions of pairs; one `searchsorted` over sorted `user * num_items + item` keys answers
it vectorised, without per-row Python work.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def matrix_pairs(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) int64 arrays of the non-zeros of a CSR matrix, row by row."""
    matrix = sp.csr_matrix(matrix)
    users = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return users, matrix.indices.astype(np.int64)


def pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 keys `user * num_items + item` of the non-zeros (for `contains`)."""
    matrix = sp.csr_matrix(matrix)
    matrix.sort_indices()
    users, items = matrix_pairs(matrix)
    return users * matrix.shape[1] + items


def contains(
    matrix: sp.csr_matrix | np.ndarray, users: np.ndarray, items: np.ndarray, num_items: int = 0
) -> np.ndarray:
    """Whether each (user, item) is a non-zero of `matrix`; `users`/`items` broadcast.

    `matrix` may also be the precomputed `pair_keys(matrix)` (then pass `num_items`).
    """
    if isinstance(matrix, np.ndarray):
        keys = matrix
    else:
        keys, num_items = pair_keys(matrix), matrix.shape[1]
    query = np.asarray(users, dtype=np.int64) * num_items + np.asarray(items, dtype=np.int64)
    if not len(keys):
        return np.zeros(query.shape, dtype=bool)
    position = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[position] == query
