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

from tfds_builders._preprocessing.event_log import EventLog, deduplicate, kcore
from tfds_builders._preprocessing.given_split import prepare_given_split, random_holdout
from tfds_builders._preprocessing.leave_one_out import (
    leave_one_out,
    prepare_event_log,
    prepare_user_partitioned,
)
from tfds_builders._preprocessing.negatives import NUM_NEGATIVES, sample_negatives
from tfds_builders._preprocessing.pairs import NO_ITEM, Pairs
from tfds_builders._preprocessing.prepared import Prepared, with_report

__all__ = [
    "NO_ITEM",
    "NUM_NEGATIVES",
    "EventLog",
    "Pairs",
    "Prepared",
    "deduplicate",
    "kcore",
    "leave_one_out",
    "prepare_event_log",
    "prepare_given_split",
    "prepare_user_partitioned",
    "random_holdout",
    "sample_negatives",
    "with_report",
]
