"""Timestamped logs to a `Prepared`: hold out each user's latest target events, compact ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from tfds_builders._formats import DataFormatError
from tfds_builders._preprocessing.event_log import EventLog, deduplicate, kcore
from tfds_builders._preprocessing.pairs import NO_ITEM, pair_keys, unique_pairs
from tfds_builders._preprocessing.prepared import Prepared, item_titles_by_index


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
    held_keys = pair_keys(log.users[held_rows], log.items[held_rows], num_items)
    key_order = np.argsort(held_keys)
    held_keys, held_times = held_keys[key_order], log.timestamps[held_rows][key_order]
    event_keys = pair_keys(log.users, log.items, num_items)
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
        train[behavior] = unique_pairs(user_index[log.users[rows]], item_index[log.items[rows]])

    item_ids = log.item_ids[item_alive]
    return Prepared(
        behaviors=log.behavior_names,
        user_ids=log.user_ids[user_alive],
        item_ids=item_ids,
        train=train,
        valid_items=_held_by_index(valid_codes, user_alive, item_index),
        test_items=_held_by_index(test_codes, user_alive, item_index),
        report=report,
        item_titles=item_titles_by_index(item_ids, item_titles),
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

    return Prepared(
        behaviors=behaviors,
        user_ids=user_ids[user_alive],
        item_ids=item_ids[item_alive],
        train=train,
        valid_items=_held_by_index(valid_items, user_alive, item_index),
        test_items=_held_by_index(test_items, user_alive, item_index),
        report=report,
    )


def _held_by_index(held: np.ndarray, user_alive: np.ndarray, item_index: np.ndarray) -> np.ndarray:
    """The held-out items of the users kept, as compact item indices (NO_ITEM stays NO_ITEM)."""
    held = held[user_alive]
    return np.where(held == NO_ITEM, NO_ITEM, item_index[np.maximum(held, 0)]).astype(np.int64)
