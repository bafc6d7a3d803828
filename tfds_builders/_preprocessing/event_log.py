"""Timestamped event logs and the filters applied to them: merging duplicates, k-core."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class EventLog:
    """Timestamped events with compact codes.

    `users`/`items` index `user_ids`/`item_ids` (raw ids, sorted); `behaviors` indexes
    `behavior_names` (target last). Events keep their file order (ties in time are broken
    by it: a later line is a later event).
    """

    users: np.ndarray
    items: np.ndarray
    behaviors: np.ndarray
    timestamps: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    behavior_names: tuple[str, ...]

    @classmethod
    def from_raw(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        behaviors: np.ndarray,
        timestamps: np.ndarray,
        behavior_names: Sequence[str],
    ) -> EventLog:
        """Codes raw user and item ids (sorted id order); `behaviors` are already codes."""
        user_ids, user_codes = np.unique(np.asarray(users), return_inverse=True)
        item_ids, item_codes = np.unique(np.asarray(items), return_inverse=True)
        return cls(
            users=user_codes.astype(np.int64),
            items=item_codes.astype(np.int64),
            behaviors=np.asarray(behaviors, dtype=np.int64),
            timestamps=np.asarray(timestamps, dtype=np.int64),
            user_ids=user_ids,
            item_ids=item_ids,
            behavior_names=tuple(behavior_names),
        )

    def __len__(self) -> int:
        return len(self.users)

    @property
    def target_code(self) -> int:
        return len(self.behavior_names) - 1

    def select(self, mask: np.ndarray) -> EventLog:
        """The events where `mask` holds (codes and id maps unchanged)."""
        return dataclasses.replace(
            self,
            users=self.users[mask],
            items=self.items[mask],
            behaviors=self.behaviors[mask],
            timestamps=self.timestamps[mask],
        )

    def count_by_behavior(self, mask: np.ndarray | None = None) -> dict[str, int]:
        codes = self.behaviors if mask is None else self.behaviors[mask]
        counts = np.bincount(codes, minlength=len(self.behavior_names))
        return {name: int(count) for name, count in zip(self.behavior_names, counts, strict=True)}


def deduplicate(log: EventLog) -> tuple[EventLog, dict[str, int]]:
    """Keeps the earliest event of each (user, item, behavior); counts the merged ones."""
    order = np.lexsort((np.arange(len(log)), log.timestamps, log.behaviors, log.items, log.users))
    users, items, behaviors = log.users[order], log.items[order], log.behaviors[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (
        (users[1:] != users[:-1]) | (items[1:] != items[:-1]) | (behaviors[1:] != behaviors[:-1])
    )
    keep = np.sort(order[first])  # back to file order
    duplicates = log.count_by_behavior(np.isin(np.arange(len(log)), keep, invert=True))
    return log.select(keep), duplicates


def kcore(log: EventLog, min_user_events: int, min_item_events: int) -> tuple[EventLog, dict]:
    """Keeps users and items with enough target events, iterated to a fixed point.

    Counts are of distinct target (user, item) pairs (run `deduplicate` first). Users and
    items that fail are removed with all their events of every behavior. With both
    thresholds 0 nothing is removed (users without any target event stay).
    """
    report: dict[str, int] = {"kcore/users_removed": 0, "kcore/items_removed": 0}
    if min_user_events <= 0 and min_item_events <= 0:
        return log, report
    num_users, num_items = len(log.user_ids), len(log.item_ids)
    is_target = log.behaviors == log.target_code
    user_ok = np.ones(num_users, dtype=bool)
    item_ok = np.ones(num_items, dtype=bool)
    while True:
        live = is_target & user_ok[log.users] & item_ok[log.items]
        user_counts = np.bincount(log.users[live], minlength=num_users)
        item_counts = np.bincount(log.items[live], minlength=num_items)
        new_user_ok = user_ok & (user_counts >= min_user_events)
        new_item_ok = item_ok & (item_counts >= min_item_events)
        if np.array_equal(new_user_ok, user_ok) and np.array_equal(new_item_ok, item_ok):
            break
        user_ok, item_ok = new_user_ok, new_item_ok
    keep = user_ok[log.users] & item_ok[log.items]
    present_users = np.bincount(log.users, minlength=num_users) > 0
    present_items = np.bincount(log.items, minlength=num_items) > 0
    report["kcore/users_removed"] = int(np.sum(present_users & ~user_ok))
    report["kcore/items_removed"] = int(np.sum(present_items & ~item_ok))
    for name, count in log.count_by_behavior(~keep).items():
        report[f"kcore/events_removed/{name}"] = count
    return log.select(keep), report
