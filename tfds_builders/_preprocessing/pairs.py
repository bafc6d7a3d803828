"""Indexed (user, item) pairs: the NO_ITEM marker, one file's raw pairs, pair keys, dedup."""

from __future__ import annotations

import dataclasses

import numpy as np

NO_ITEM = -1  # a user without a held-out item in a split


@dataclasses.dataclass(frozen=True)
class Pairs:
    """(user, item) records of one file with their line numbers, raw ids."""

    users: np.ndarray
    items: np.ndarray
    path: str = ""
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)

    def line(self, row: int) -> int | None:
        return None if self.lines is None else int(self.lines[row])


def pair_keys(users: np.ndarray, items: np.ndarray, num_items: int) -> np.ndarray:
    """One int64 key per (user, item) pair, user * num_items + item, to sort and search pairs."""
    return users.astype(np.int64) * np.int64(num_items) + items.astype(np.int64)


def unique_pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs sorted by user then item, as int64 arrays."""
    if len(users) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    keep = np.ones(len(users), dtype=bool)
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    return users[keep].astype(np.int64), items[keep].astype(np.int64)
