"""Generated multi-behavior datasets in memory (no files, no TFDS build).

`random_data` runs the same synthetic generator and raw-log preprocessing as the
`mbrec_synthetic` TFDS dataset straight into a MultiBehaviorData, at any size: the
benchmark's catalogs of chosen sizes, and the tests' tiny data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

import tfds_builders
from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.data.loading import from_prepared


def random_data(
    num_users: int = 30,
    num_items: int = 40,
    behaviors: Sequence[str] = ("view", "cart", "buy"),
    interactions_per_user: int = 6,
    num_negatives: int = 20,
    seed: int = 0,
) -> MultiBehaviorData:
    """A tiny dataset with planted preferences and a funnel (later behaviors are rarer).

    Each user touches `interactions_per_user + 2` items in the first behavior, drawn by a
    planted taste (latent factors); behavior k keeps the user's favourite 75% of behavior
    k-1's items, and every user has at least 5 target items (capped by the catalogue), so
    every user gets a test and a validation target item (the latest two, by time) outside
    its target training items, and still has target training data. The funnel is nested
    in training (target ⊆ ... ⊆ first behavior). `num_negatives` stored sampled negatives
    per split avoid every item the user touched. User ids are "u0", "u1", ...; item ids are
    100, 101, ...; all `num_items` items exist even if nobody touched some.
    """
    behaviors = tuple(behaviors)
    first_stage = min(interactions_per_user + 2, num_items)
    if first_stage < 3:
        raise ValueError("random_data needs at least 3 items per user (train, valid, test)")
    spec = tfds_builders.SyntheticSpec(
        num_users=num_users,
        num_items=num_items,
        behaviors=behaviors,
        first_stage_min=first_stage,
        first_stage_mean=float(first_stage),
        keep_rate=0.75,
        min_target=min(5, first_stage),
        repeat_rate=0.0,
        late_view_rate=0.0,
        seed=seed,
    )
    log = tfds_builders.generate_synthetic_log(spec)
    events = tfds_builders.EventLog(
        users=log.users,
        items=log.items,
        behaviors=log.behaviors,
        timestamps=log.timestamps,
        user_ids=np.arange(num_users),
        item_ids=np.arange(num_items),
        behavior_names=behaviors,
    )
    prepared = tfds_builders.prepare_event_log(
        events, min_user_events=0, min_item_events=0, keep_unused_ids=True
    )
    prepared = prepared.with_negatives(num_negatives, seed=seed)
    data = from_prepared(prepared, name="random")
    return dataclasses.replace(
        data,
        user_ids=np.array([f"u{u}" for u in range(num_users)]),
        item_ids=np.arange(100, 100 + num_items, dtype=np.int64),
    )
