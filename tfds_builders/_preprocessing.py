"""Preprocessing shared by the builders: raw records -> indexed, split, behavior-typed data.

Pure NumPy (no TensorFlow, no mbrec_tf: builders sit left of the library). Two entry points:

- `prepare_event_log` for timestamped logs (UserBehavior.csv, MovieLens, the synthetic
  data): merge duplicate (user, item, behavior) events keeping the earliest, k-core filter
  on the target behavior to a fixed point, leave-one-out by time (test = latest target
  event, validation = second latest), and drop supportive events of a held-out
  (user, item) pair at or after the held-out event (no leakage).
- `prepare_given_split` for datasets that ship their own target train/test split and no
  timestamps (Beibei, Taobao, RetailRocket, taobao_ub4): merge duplicates, check the test
  file against the training file, and hold out one random training target item per user
  (users with >= 2 of them, fixed seed) as the validation split.

Both return a `Prepared` with contiguous 0-based indices, the id maps back to raw ids, and
a `report` that counts everything removed or held out by design. `sample_negatives` draws
the stored negatives of the sampled protocol.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from tfds_builders._formats import DataFormatError

NO_ITEM = -1  # a user without a held-out item in a split
NUM_NEGATIVES = 99  # stored negatives per held-out item (the NCF protocol)
_NEGATIVES_BLOCK = 1 << 16  # users per block of vectorised negative sampling


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


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A fully preprocessed dataset, ready to be written as one example per user.

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
        touched = np.unique(_pair_keys(*self.touched(), self.num_items))
        negatives = {}
        for offset, split in enumerate(("valid", "test")):
            held = self.valid_items if split == "valid" else self.test_items
            negatives[split] = _sample_negatives(
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


# --- timestamped event logs -------------------------------------------------------------------
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


def _pair_keys(users: np.ndarray, items: np.ndarray, num_items: int) -> np.ndarray:
    return users.astype(np.int64) * np.int64(num_items) + items.astype(np.int64)


def leave_one_out(log: EventLog) -> tuple[EventLog, np.ndarray, np.ndarray, dict[str, int]]:
    """Holds out each user's latest target event (test) and second latest (validation).

    A user needs 2 target events for a test item and 3 for a validation item, so the
    target training data is never emptied. Supportive events of a held-out (user, item)
    pair at or after the held-out event are dropped (counted in the report).

    Returns:
      (training events, valid_items [num users], test_items [num users], report), items as
      codes of `log.item_ids`.
    """
    num_users, num_items = len(log.user_ids), len(log.item_ids)
    target_rows = np.flatnonzero(log.behaviors == log.target_code)
    order = target_rows[
        np.lexsort((target_rows, log.timestamps[target_rows], log.users[target_rows]))
    ]
    users = log.users[order]
    counts = np.bincount(users, minlength=num_users)
    ends = np.cumsum(counts)  # one past each user's last (latest) target event
    position_from_end = ends[users] - np.arange(len(order)) - 1  # 0 = latest
    is_test = (position_from_end == 0) & (counts[users] >= 2)
    is_valid = (position_from_end == 1) & (counts[users] >= 3)
    valid_items = np.full(num_users, NO_ITEM, dtype=np.int64)
    test_items = np.full(num_users, NO_ITEM, dtype=np.int64)
    test_items[users[is_test]] = log.items[order[is_test]]
    valid_items[users[is_valid]] = log.items[order[is_valid]]

    held_rows = order[is_test | is_valid]
    held_keys = _pair_keys(log.users[held_rows], log.items[held_rows], num_items)
    key_order = np.argsort(held_keys)
    held_keys, held_times = held_keys[key_order], log.timestamps[held_rows][key_order]
    event_keys = _pair_keys(log.users, log.items, num_items)
    slot = np.clip(np.searchsorted(held_keys, event_keys), 0, max(len(held_keys) - 1, 0))
    matches = (held_keys[slot] == event_keys) if len(held_keys) else np.zeros(len(log), bool)
    leaked = matches & (log.behaviors != log.target_code)
    leaked &= log.timestamps >= (held_times[slot] if len(held_keys) else 0)
    keep = np.ones(len(log), dtype=bool)
    keep[held_rows] = False
    keep &= ~leaked
    report = {f"leakage_removed/{b}": n for b, n in log.count_by_behavior(leaked).items()}
    report = {k: v for k, v in report.items() if not k.endswith("/" + log.behavior_names[-1])}
    return log.select(keep), valid_items, test_items, report


def prepare_event_log(
    log: EventLog,
    *,
    min_user_events: int = 5,
    min_item_events: int = 5,
    item_titles: Mapping | None = None,
    keep_unused_ids: bool = False,
) -> Prepared:
    """Dedup -> k-core on the target -> leave-one-out by time -> compact indices.

    Args:
      log: the raw events (see `EventLog.from_raw`).
      min_user_events / min_item_events: k-core thresholds on target events (0 = off).
      item_titles: optional raw item id -> title.
      keep_unused_ids: keep every id of `log.user_ids` / `log.item_ids` even without events
        (test data with a fixed catalogue); by default only ids with data are indexed.

    Raises:
      DataFormatError: if the log has no target event (before or after filtering).
    """
    target = log.behavior_names[-1]
    report: dict[str, int] = {f"records/{b}": n for b, n in log.count_by_behavior().items()}
    if report[f"records/{target}"] == 0:
        raise DataFormatError("<event log>", None, f"at least one {target!r} event")
    log, duplicates = deduplicate(log)
    report.update({f"duplicates_merged/{b}": n for b, n in duplicates.items()})
    log, kcore_report = kcore(log, min_user_events, min_item_events)
    report.update(kcore_report)
    if not np.any(log.behaviors == log.target_code):
        raise DataFormatError(
            "<event log>",
            None,
            f"{target!r} events left after the k-core filter (users >= {min_user_events}, "
            f"items >= {min_item_events} {target} events); lower the thresholds",
        )
    log, valid_codes, test_codes, leakage = leave_one_out(log)
    report.update(leakage)
    # Compact indices: users and items that still have an event or a held-out item.
    user_alive = np.bincount(log.users, minlength=len(log.user_ids)) > 0
    user_alive |= (valid_codes != NO_ITEM) | (test_codes != NO_ITEM)
    item_alive = np.bincount(log.items, minlength=len(log.item_ids)) > 0
    for held in (valid_codes, test_codes):
        item_alive[held[held != NO_ITEM]] = True
    if keep_unused_ids:
        user_alive[:] = True
        item_alive[:] = True
    user_index = np.cumsum(user_alive) - 1
    item_index = np.cumsum(item_alive) - 1
    train = {}
    for code, behavior in enumerate(log.behavior_names):
        rows = log.behaviors == code
        train[behavior] = _unique_pairs(user_index[log.users[rows]], item_index[log.items[rows]])

    def remap(held: np.ndarray) -> np.ndarray:
        held = held[user_alive]
        return np.where(held == NO_ITEM, NO_ITEM, item_index[np.maximum(held, 0)])

    item_ids = log.item_ids[item_alive]
    return Prepared(
        behaviors=log.behavior_names,
        user_ids=log.user_ids[user_alive],
        item_ids=item_ids,
        train=train,
        valid_items=remap(valid_codes).astype(np.int64),
        test_items=remap(test_codes).astype(np.int64),
        report=report,
        item_titles=_titles(item_ids, item_titles),
    )


def prepare_user_partitioned(logs: Iterable[EventLog]) -> Prepared:
    """`prepare_event_log` without k-core, one part of the users at a time (bounded memory).

    Each log holds every event of its users and no event of another log's users, and all
    logs share one `item_ids` catalog. Without k-core every step (merging duplicates,
    leave-one-out, leakage removal) is per user, so the result equals `prepare_event_log`
    of the whole log with both thresholds 0, while only one part's raw events are held.
    Items without any event are dropped at the end.
    """
    parts: list[Prepared] = []
    item_ids: np.ndarray | None = None
    for log in logs:
        if item_ids is None:
            item_ids = log.item_ids
        elif not np.array_equal(item_ids, log.item_ids):
            raise ValueError("the parts of a user-partitioned log must share their item ids")
        parts.append(
            prepare_event_log(log, min_user_events=0, min_item_events=0, keep_unused_ids=True)
        )
    if not parts:
        raise DataFormatError("<event log>", None, "at least one part of the log")
    behaviors = parts[0].behaviors
    report: dict[str, int] = {}
    for part in parts:
        for key, value in part.report.items():
            report[key] = report.get(key, 0) + int(value)

    user_offsets = np.cumsum([0] + [p.num_users for p in parts])
    train = {}
    for behavior in behaviors:
        users = [
            p.train[behavior][0] + offset for p, offset in zip(parts, user_offsets, strict=False)
        ]
        items = [p.train[behavior][1] for p in parts]
        train[behavior] = (np.concatenate(users), np.concatenate(items))
    valid_items = np.concatenate([p.valid_items for p in parts])
    test_items = np.concatenate([p.test_items for p in parts])
    user_ids = np.concatenate([p.user_ids for p in parts])
    del parts

    user_alive = (valid_items != NO_ITEM) | (test_items != NO_ITEM)
    item_alive = np.zeros(len(item_ids), dtype=bool)
    for users, items in train.values():
        user_alive[users] = True
        item_alive[items] = True
    for held in (valid_items, test_items):
        item_alive[held[held != NO_ITEM]] = True
    user_index = np.cumsum(user_alive) - 1
    item_index = np.cumsum(item_alive) - 1
    for behavior, (users, items) in train.items():
        train[behavior] = (user_index[users], item_index[items])

    def remap(held: np.ndarray) -> np.ndarray:
        held = held[user_alive]
        return np.where(held == NO_ITEM, NO_ITEM, item_index[np.maximum(held, 0)])

    return Prepared(
        behaviors=behaviors,
        user_ids=user_ids[user_alive],
        item_ids=item_ids[item_alive],
        train=train,
        valid_items=remap(valid_items).astype(np.int64),
        test_items=remap(test_items).astype(np.int64),
        report=report,
    )


def _titles(item_ids: np.ndarray, titles: Mapping | None) -> np.ndarray | None:
    if titles is None:
        return None
    return np.array([titles.get(item, "") for item in item_ids.tolist()], dtype=object)


def _unique_pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs sorted by user then item, as int64 arrays."""
    if len(users) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    keep = np.ones(len(users), dtype=bool)
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    return users[keep].astype(np.int64), items[keep].astype(np.int64)


# --- datasets with a given split ----------------------------------------------------------------
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
        indexed[behavior] = _unique_pairs(users, items)
        report[f"duplicates_merged/{behavior}"] = len(pairs) - len(indexed[behavior][0])
    test_users = np.searchsorted(user_ids, test.users)
    test_items = np.full(len(user_ids), NO_ITEM, dtype=np.int64)
    test_items[test_users] = np.searchsorted(item_ids, test.items)

    target_users, target_items = indexed[target]
    train_keys = _pair_keys(target_users, target_items, len(item_ids))
    test_keys = _pair_keys(test_users, test_items[test_users], len(item_ids))
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
        item_titles=_titles(item_ids, item_titles),
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

    The pairs must be sorted by (user, item) (as `_unique_pairs` returns them), so the draw
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


# --- sampled-protocol negatives -----------------------------------------------------------------
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
    touched = np.unique(_pair_keys(touched_users, touched_items, num_items))
    return _sample_negatives(
        touched,
        num_users=num_users,
        num_items=num_items,
        rows=rows,
        num_negatives=num_negatives,
        seed=seed,
    )


def _sample_negatives(
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
        keys = _pair_keys(np.repeat(rows[pending], width), candidates.ravel(), num_items)
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


def with_report(prepared: Prepared, extra: Mapping[str, int]) -> Prepared:
    """`prepared` with more entries in its report."""
    return dataclasses.replace(prepared, report={**prepared.report, **extra})
