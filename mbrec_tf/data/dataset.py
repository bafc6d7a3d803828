"""The one in-memory form of a multi-behavior dataset that every model and metric reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

NO_ITEM = -1  # marks a user without a held-out item in a split


def interaction_matrix(
    users: np.ndarray, items: np.ndarray, num_users: int, num_items: int
) -> sp.csr_matrix:
    """A binary user x item CSR matrix (float32, sorted indices, duplicates merged)."""
    matrix = sp.csr_matrix(
        (np.ones(len(users), dtype=np.float32), (np.asarray(users), np.asarray(items))),
        shape=(num_users, num_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


@dataclasses.dataclass(frozen=True, eq=False)
class MultiBehaviorData:
    """Behaviors, their training interactions, the target's held-out split and the id maps.

    The read side of the TFDS boundary: made from a build (`loading.load_dataset`) or from
    the builders' write-side `tfds_builders.Prepared` (`loading.from_prepared`), which holds
    sorted index pairs and the preprocessing report instead of matrices and stays free of
    mbrec_tf; the two are kept apart so that builders never import the library.

    Users and items are contiguous indices `0..num_users-1`, `0..num_items-1`;
    `user_ids[u]` / `item_ids[v]` give the raw ids of the source files back.

    Attributes:
      name: dataset name (for logs and results).
      behaviors: behavior names in funnel order, the target behavior last.
      train: per behavior, a binary `num_users x num_items` CSR matrix of training
        interactions. For the target this is its training part only.
      valid_items / test_items: `[num_users]` int64, the held-out target item of each user,
        or `NO_ITEM` (-1) where the user has none in that split.
      valid_negatives / test_negatives: `[num_users, n]` int64 stored, seeded negatives for
        the sampled protocol (items the user never interacted with), or None.
      user_ids / item_ids: raw ids, indexed by contiguous index (str or int64 arrays).
      item_titles: optional display names of the items (e.g. MovieLens titles).
      raw_files: where the build's raw files were and their names, sizes and SHA-256
        checksums (for the run record), or None for generated data.
    """

    name: str
    behaviors: tuple[str, ...]
    train: Mapping[str, sp.csr_matrix]
    valid_items: np.ndarray
    test_items: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    valid_negatives: np.ndarray | None = None
    test_negatives: np.ndarray | None = None
    item_titles: np.ndarray | None = None
    raw_files: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.behaviors:
            raise ValueError("a dataset needs at least one behavior")
        if set(self.behaviors) != set(self.train):
            raise ValueError(
                f"behaviors {self.behaviors} and train matrices {sorted(self.train)} differ"
            )
        shape = (len(self.user_ids), len(self.item_ids))
        for behavior, matrix in self.train.items():
            if matrix.shape != shape:
                raise ValueError(f"behavior {behavior!r}: matrix {matrix.shape} != {shape}")
        for split in ("valid", "test"):
            items = getattr(self, f"{split}_items")
            if items.shape != (shape[0],):
                raise ValueError(f"{split}_items has shape {items.shape}, expected ({shape[0]},)")
            if np.any(items >= shape[1]) or np.any(items < NO_ITEM):
                raise ValueError(f"{split}_items holds an item index outside 0..{shape[1] - 1}")

    # --- sizes and names -------------------------------------------------------------------
    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def target(self) -> str:
        """The behavior recommendations are made for (the last one)."""
        return self.behaviors[-1]

    @property
    def supportive_behaviors(self) -> tuple[str, ...]:
        return self.behaviors[:-1]

    @property
    def target_train(self) -> sp.csr_matrix:
        return self.train[self.target]

    # --- splits ------------------------------------------------------------------------------
    def held_out(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of the held-out target pairs of `split` ('valid' or 'test')."""
        items = self._split_items(split)
        users = np.flatnonzero(items != NO_ITEM)
        return users.astype(np.int64), items[users].astype(np.int64)

    def negatives(self, split: str) -> np.ndarray | None:
        """The stored sampled-protocol negatives of `split`, `[num_users, n]`, or None."""
        self._split_items(split)
        return self.valid_negatives if split == "valid" else self.test_negatives

    def _split_items(self, split: str) -> np.ndarray:
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        return self.valid_items if split == "valid" else self.test_items

    def known_target_items(self, before: str | None = None) -> sp.csr_matrix:
        """Binary `num_users x num_items` target pairs known before `before` is held out.

        'valid': the training pairs; 'test' and None (serving, after training): the training
        and validation pairs. These are the items never ranked as candidates (evaluation)
        nor recommended (export) for their user.
        """
        known = self.target_train
        if before == "valid":
            return sp.csr_matrix(known)
        if before not in ("test", None):
            raise ValueError(f"before must be 'valid', 'test' or None, got {before!r}")
        users, items = self.held_out("valid")
        known = known + interaction_matrix(users, items, self.num_users, self.num_items)
        known = sp.csr_matrix(known)
        known.data[:] = 1.0
        known.sort_indices()
        return known

    # --- derived views -----------------------------------------------------------------------
    def all_interactions(self) -> sp.csr_matrix:
        """Binary union of every behavior's training data and both held-out splits."""
        union = sum((m for m in self.train.values()), sp.csr_matrix(self.train[self.target].shape))
        for split in ("valid", "test"):
            users, items = self.held_out(split)
            union = union + interaction_matrix(users, items, self.num_users, self.num_items)
        union = sp.csr_matrix(union)
        union.data[:] = 1.0
        return union

    def item_popularity(self, behavior: str | None = None) -> np.ndarray:
        """Training interaction count per item for `behavior` (default: the target)."""
        matrix = self.train[behavior or self.target]
        return np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)

    def with_behaviors(self, behaviors: Sequence[str]) -> MultiBehaviorData:
        """The same data restricted to `behaviors` (ablation); the target must stay last."""
        behaviors = tuple(behaviors)
        unknown = [b for b in behaviors if b not in self.train]
        if unknown:
            raise ValueError(f"unknown behaviors {unknown}; this dataset has {self.behaviors}")
        if not behaviors or behaviors[-1] != self.target:
            raise ValueError(f"the target behavior {self.target!r} must be last in {behaviors}")
        order = [b for b in self.behaviors if b in behaviors]
        return dataclasses.replace(
            self, behaviors=tuple(order), train={b: self.train[b] for b in order}
        )

    def with_users(self, users: Sequence[int]) -> MultiBehaviorData:
        """The same data restricted to `users` (indices; they become 0..len-1 in that order).

        Every item stays (the catalog does not shrink); the users' interactions, held-out
        items, stored negatives and raw ids come along. For measuring cost against |U|.
        """
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.num_users):
            raise ValueError(f"user indices must be in 0..{self.num_users - 1}")

        def rows(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[users]

        return dataclasses.replace(
            self,
            train={b: sp.csr_matrix(m[users]) for b, m in self.train.items()},
            valid_items=self.valid_items[users],
            test_items=self.test_items[users],
            user_ids=self.user_ids[users],
            valid_negatives=rows(self.valid_negatives),
            test_negatives=rows(self.test_negatives),
        )

    def statistics(self) -> dict[str, int]:
        """Users, items, training pairs per behavior and split sizes (as the READMEs list)."""
        stats: dict[str, int] = {"users": self.num_users, "items": self.num_items}
        for behavior in self.behaviors:
            stats[f"train/{behavior}"] = int(self.train[behavior].nnz)
        for split in ("valid", "test"):
            stats[f"{split}/{self.target}"] = int(len(self.held_out(split)[0]))
        return stats
