"""The builders' result: one preprocessed dataset as index pairs, ready to be written."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tfds_builders._preprocessing.negatives import NUM_NEGATIVES, sample_negatives_of_keys
from tfds_builders._preprocessing.pairs import NO_ITEM, pair_keys


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A fully preprocessed dataset, ready to be written as one example per user.

    The write side of the TFDS boundary, distinct from the library's `MultiBehaviorData`
    (the read side, what models and metrics use): sorted index pairs per behavior plus the
    preprocessing `report` that goes into the build's metadata, in pure NumPy so builders
    need neither scipy nor mbrec_tf. The library reads a build back as CSR matrices with the
    dataset's name and raw-file record; `mbrec_tf.data.loading.from_prepared` converts one
    directly where no TFDS build is wanted (generated data, tests).

    Attributes:
      behaviors: behaviors present, in funnel order, the target last.
      user_ids / item_ids: raw ids by contiguous index.
      train: behavior -> (user indices, item indices), unique pairs sorted by (user, item).
        For the target, the training part only.
      valid_items / test_items: [num_users] held-out target item, or NO_ITEM.
      report: counts of records read, and of what preprocessing merged, removed or held out.
      item_titles: optional display names by item index.
      valid_negatives / test_negatives: [num_users, n] stored negatives, or None until
        `with_negatives` is called.
    """

    behaviors: tuple[str, ...]
    user_ids: np.ndarray
    item_ids: np.ndarray
    train: Mapping[str, tuple[np.ndarray, np.ndarray]]
    valid_items: np.ndarray
    test_items: np.ndarray
    report: Mapping[str, int]
    item_titles: np.ndarray | None = None
    valid_negatives: np.ndarray | None = None
    test_negatives: np.ndarray | None = None

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def target(self) -> str:
        return self.behaviors[-1]

    def touched(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of every training pair of any behavior and every held-out pair."""
        users = [u for u, _ in self.train.values()]
        items = [i for _, i in self.train.values()]
        for held in (self.valid_items, self.test_items):
            held_users = np.flatnonzero(held != NO_ITEM)
            users.append(held_users)
            items.append(held[held_users])
        return np.concatenate(users), np.concatenate(items)

    def with_negatives(self, num_negatives: int = NUM_NEGATIVES, seed: int = 0) -> Prepared:
        """Adds the seeded sampled-protocol negatives of both splits (distinct seeds)."""
        touched = np.unique(pair_keys(*self.touched(), self.num_items))
        negatives = {}
        for offset, split in enumerate(("valid", "test")):
            held = self.valid_items if split == "valid" else self.test_items
            negatives[split] = sample_negatives_of_keys(
                touched,
                num_users=self.num_users,
                num_items=self.num_items,
                rows=np.flatnonzero(held != NO_ITEM),
                num_negatives=num_negatives,
                seed=(seed, offset),
            )
        return dataclasses.replace(
            self, valid_negatives=negatives["valid"], test_negatives=negatives["test"]
        )

    def statistics(self) -> dict[str, int]:
        """Users, items, training pairs per behavior and held-out split sizes."""
        stats = {"users": self.num_users, "items": self.num_items}
        for behavior in self.behaviors:
            stats[f"train/{behavior}"] = len(self.train[behavior][0])
        stats[f"valid/{self.target}"] = int(np.sum(self.valid_items != NO_ITEM))
        stats[f"test/{self.target}"] = int(np.sum(self.test_items != NO_ITEM))
        return stats


def with_report(prepared: Prepared, extra: Mapping[str, int]) -> Prepared:
    """`prepared` with more entries in its report."""
    return dataclasses.replace(prepared, report={**prepared.report, **extra})


def item_titles_by_index(item_ids: np.ndarray, titles: Mapping | None) -> np.ndarray | None:
    """Display names by item index from raw id -> title ("" where missing), or None."""
    if titles is None:
        return None
    return np.array([titles.get(item, "") for item in item_ids.tolist()], dtype=object)
