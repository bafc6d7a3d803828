"""Negative samplers of the sampled-training models (BPR, NCF/NeuMF, MBNCF, MC-BPR).

Every sampler answers `sample(users, num_negatives, rng, positives=None)` with an int64
array `[len(users), num_negatives]` of item ids, one row per training example. Draws are
vectorised over all examples (see `pools`) and depend only on `rng`, so a pipeline that
seeds `rng` with `(seed, epoch)` gets reproducible draws that differ between epochs.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.data.keys import contains, pair_keys
from mbrec_tf.sampling.pools import ComplementPool, RowPool


def union(matrices: Sequence[sp.spmatrix], shape: tuple[int, int]) -> sp.csr_matrix:
    """Binary union of binary matrices (an all-zero matrix of `shape` for none)."""
    total = sp.csr_matrix(shape, dtype=np.float32)
    for matrix in matrices:
        total = total + sp.csr_matrix(matrix, dtype=np.float32)
    total = sp.csr_matrix(total)
    total.data[:] = 1.0
    total.eliminate_zeros()
    return total


def difference(matrix: sp.spmatrix, remove: sp.spmatrix) -> sp.csr_matrix:
    """Binary set difference `matrix - remove` of two binary matrices."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    result = sp.csr_matrix(matrix - matrix.multiply(sp.csr_matrix(remove, dtype=np.float32)))
    result.eliminate_zeros()
    result.data[:] = 1.0
    return result


def supportive_only(data: MultiBehaviorData) -> sp.csr_matrix:
    """Each user's items of some supportive behavior but not of the target (training data)."""
    shape = (data.num_users, data.num_items)
    supportive = union([data.train[b] for b in data.supportive_behaviors], shape)
    return difference(supportive, data.target_train)


class NegativeSampler(abc.ABC):
    """Draws negative items for training examples of given users."""

    #: The `--negative_sampler` value that selects this sampler.
    name: str = ""

    @abc.abstractmethod
    def sample(
        self,
        users: np.ndarray,
        num_negatives: int,
        rng: np.random.Generator,
        positives: np.ndarray | None = None,
    ) -> np.ndarray:
        """`[len(users), num_negatives]` int64 negatives; `positives` are the examples' items."""


class UniformSampler(NegativeSampler):
    """Items the user never has in the target's training data, uniformly, with replacement.

    This is the BPR/NCF sampler: supportive-only items are possible negatives.
    """

    name = "uniform"

    def __init__(self, target_train: sp.spmatrix):
        self._pool = ComplementPool(target_train)

    def sample(self, users, num_negatives, rng, positives=None) -> np.ndarray:
        del positives
        return self._pool.draw(users, num_negatives, rng)


class SupportiveSampler(NegativeSampler):
    """Items the user touched only through supportive behaviors, filled up uniformly.

    The multi-feedback MF+MLP paper's sampler: a user's negatives are distinct items from
    its supportive-only pool (viewed/carted, never bought in training); when the pool has
    fewer items than `num_negatives`, the remaining slots are items the user never touched
    in any training behavior, drawn uniformly.
    """

    name = "supportive"

    def __init__(self, data: MultiBehaviorData):
        shape = (data.num_users, data.num_items)
        self._supportive_only = RowPool(supportive_only(data))
        self._untouched = ComplementPool(union(list(data.train.values()), shape))

    @property
    def pool_sizes(self) -> np.ndarray:
        """Supportive-only items per user."""
        return self._supportive_only.sizes

    def sample(self, users, num_negatives, rng, positives=None) -> np.ndarray:
        del positives
        items, filled = self._supportive_only.draw_distinct(users, num_negatives, rng)
        if not filled.all():
            fill = self._untouched.draw(users, num_negatives, rng)
            items = np.where(filled, items, fill)
        return items


class MixedSampler(NegativeSampler):
    """Each negative from the user's supportive-only items with probability `share`, else
    uniformly among the items without a target training pair (the uniform sampler).

    A user with no supportive-only item gets uniform negatives only.
    """

    name = "mixed"

    def __init__(self, data: MultiBehaviorData, share: float = 0.5):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"the supportive share must be in [0, 1], got {share}")
        self.share = float(share)
        self._supportive_only = RowPool(supportive_only(data))
        self._uniform = ComplementPool(data.target_train)

    def sample(self, users, num_negatives, rng, positives=None) -> np.ndarray:
        del positives
        users = np.asarray(users, dtype=np.int64)
        negatives = self._uniform.draw(users, num_negatives, rng)
        has_pool = self._supportive_only.sizes[users] > 0
        chosen = (rng.random(negatives.shape) < self.share) & has_pool[:, None]
        rows, slots = np.nonzero(chosen)
        if len(rows):
            negatives[rows, slots] = self._supportive_only.draw(users[rows], 1, rng)[:, 0]
        return negatives


class LevelAwareSampler(NegativeSampler):
    """Negatives from behavior levels below the positive's level (MC-BPR, Loni et al. 2016).

    Levels are the behaviors from the strongest (the target, level 0) to the weakest, plus
    "unobserved" as the last level. An item's level for a user is the strongest behavior
    the user has with it. For a positive at level l, each negative first picks a level
    l' > l among the non-empty ones with probability proportional to `level_weights[l']`
    (default: all equal), then an item of that level uniformly. With `by_size`, a level's
    probability is also proportional to the user's number of items in it, so with equal
    weights a negative is uniform over all the user's items of weaker levels (every
    preference pair of the level order equally likely). Unobserved items always qualify,
    so a positive at the weakest behavior level still gets negatives.

    Also usable as a plain sampler: without `positives`, examples count as level 0
    (target positives), so negatives come from any weaker level.
    """

    name = "level"

    def __init__(
        self,
        data: MultiBehaviorData,
        level_weights: Sequence[float] | None = None,
        by_size: bool = False,
    ):
        shape = (data.num_users, data.num_items)
        levels = list(reversed(data.behaviors))  # strongest first
        self.num_levels = len(levels) + 1
        weights = np.ones(self.num_levels) if level_weights is None else np.asarray(level_weights)
        if weights.shape != (self.num_levels,) or np.any(weights < 0):
            raise ValueError(
                f"level_weights needs {self.num_levels} non-negative values "
                f"(behaviors {levels} then unobserved), got {level_weights}"
            )
        self.level_weights = weights.astype(np.float64)
        self.by_size = bool(by_size)
        self.num_items = data.num_items
        self._pools: list[RowPool | ComplementPool] = []
        self._keys: list[np.ndarray] = []
        stronger = sp.csr_matrix(shape, dtype=np.float32)
        for behavior in levels:
            exclusive = difference(data.train[behavior], stronger)
            self._pools.append(RowPool(exclusive))
            self._keys.append(pair_keys(exclusive))
            stronger = union([stronger, exclusive], shape)
        self._pools.append(ComplementPool(stronger))

    def levels_of(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Level of each (user, item): 0 for the target, ..., `num_levels - 1` unobserved."""
        level = np.full(np.broadcast(users, items).shape, self.num_levels - 1, dtype=np.int64)
        for index in reversed(range(self.num_levels - 1)):
            level[contains(self._keys[index], users, items, self.num_items)] = index
        return level

    def sample(self, users, num_negatives, rng, positives=None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        if positives is None:
            positive_levels = np.zeros(len(users), dtype=np.int64)
        else:
            positive_levels = self.levels_of(users, np.asarray(positives))
            if np.any(positive_levels == self.num_levels - 1):
                raise ValueError("LevelAwareSampler: a positive item is unobserved for its user")
        sizes = np.stack([pool.sizes[users] for pool in self._pools], axis=1)
        lower = np.arange(self.num_levels)[None, :] > positive_levels[:, None]
        weights = np.where(lower & (sizes > 0), self.level_weights[None, :], 0.0)
        if self.by_size:
            weights = weights * sizes
        weights[:, -1] = np.where(weights.sum(axis=1) > 0, weights[:, -1], 1.0)
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        draws = rng.random((len(users), num_negatives))
        chosen = np.minimum(
            (draws[:, :, None] >= cumulative[:, None, :]).sum(axis=2), self.num_levels - 1
        )
        negatives = np.zeros((len(users), num_negatives), dtype=np.int64)
        for level, pool in enumerate(self._pools):
            rows, slots = np.nonzero(chosen == level)
            if len(rows):
                negatives[rows, slots] = pool.draw(users[rows], 1, rng)[:, 0]
        return negatives


SAMPLERS = ("uniform", "supportive", "level", "mixed")


def make_sampler(
    name: str, data: MultiBehaviorData, supportive_share: float = 0.5
) -> NegativeSampler:
    """The sampler called `name` (one of `SAMPLERS`) for `data`; `supportive_share` is the
    mixed sampler's share of supportive-only negatives."""
    if name == "uniform":
        return UniformSampler(data.target_train)
    if name == "supportive":
        return SupportiveSampler(data)
    if name == "level":
        return LevelAwareSampler(data)
    if name == "mixed":
        return MixedSampler(data, supportive_share)
    raise ValueError(f"unknown negative sampler {name!r}; known: {SAMPLERS}")
