"""taobao_user_behavior: Alibaba's raw UserBehavior.csv event log, preprocessed here.

Input (manual directory): `UserBehavior.csv` or `UserBehavior.csv.zip`, lines
`user,item,category,behavior,timestamp` without a header; behavior is one of pv, fav, cart,
buy. Preprocessing (`tfds_builders._preprocessing.prepare_event_log`): optionally sample N
users (seeded; config option `users<N>`, done first so the 100M-line log never has to sit in
memory whole), merge duplicate (user, item, behavior) events keeping the earliest, k-core on
buys (users and items with >= 5 purchases by default, `core<K>`), leave-one-out by time
(test = latest purchase, validation = second latest), and drop pv/fav/cart events of a
held-out pair at or after the held-out purchase. The report counts each step.

Configs: `default` (every user, 5-core). Variants, e.g. `default_users20000_seed0`
(the multi-feedback paper samples about 20k users) or `default_core10`.
Features and metadata: see `tfds_builders._base`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from tfds_builders import _base, _citations
from tfds_builders import _formats as formats
from tfds_builders import _preprocessing as prep

BEHAVIORS = ("pv", "fav", "cart", "buy")
COLUMNS = (
    formats.Column("user"),
    formats.Column("item"),
    formats.Column("category"),
    formats.Column("behavior", formats.TEXT, BEHAVIORS),
    formats.Column("timestamp", formats.SIGNED_INT),
)


STREAM_CHUNK_BYTES = 1 << 25  # 32 MiB of text per chunk: about 0.3 GiB of memory in use


def stream_user_behavior(path, chunk_bytes: int = STREAM_CHUNK_BYTES) -> Iterator[dict]:
    """UserBehavior.csv as a stream of validated chunks, in file order.

    Each chunk has `user`, `item` (raw ids, int64), `behavior` (int8 codes in BEHAVIORS
    order) and `timestamp` (int64), and `first_line`; memory is bounded by one chunk
    (`chunk_bytes` of text) whatever the size of the log, and a `.zip` is decompressed
    as it is read. A bad line stops the stream with a `DataFormatError`.
    """
    for first, chunk in formats.iter_table(path, COLUMNS, sep=",", chunk_bytes=chunk_bytes):
        del chunk["category"]
        chunk["first_line"] = np.int64(first)
        yield chunk


def _compact(values: np.ndarray) -> np.ndarray:
    """`values` as int32 when they fit (raw ids of the full log do), else unchanged."""
    info = np.iinfo(np.int32)
    if len(values) and (values.min() < info.min or values.max() > info.max):
        return values
    return values.astype(np.int32)


def read_user_behavior(path, *, sample_users: int = 0, seed: int = 0) -> tuple[prep.EventLog, dict]:
    """Reads UserBehavior.csv (all users, or `sample_users` drawn with `seed`).

    The file is streamed (see `stream_user_behavior`); only the kept events are held, ids
    as int32 where they fit (about 17 bytes per event). Returns the event log and a report
    of the sampling (users seen and kept, events read and skipped because their user was
    not sampled).
    """
    report: dict[str, int] = {}
    keep_users: np.ndarray | None = None
    if sample_users > 0:
        seen = np.unique(
            np.concatenate([np.unique(c["user"]) for c in stream_user_behavior(path)] or [[]])
        ).astype(np.int64)
        rng = np.random.default_rng(seed)
        count = min(sample_users, len(seen))
        keep_users = np.sort(rng.choice(seen, size=count, replace=False))
        report.update({"sampling/users_seen": len(seen), "sampling/users_kept": count})

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "item", "behavior", "timestamp")}
    rows_read = 0
    for chunk in stream_user_behavior(path):
        rows_read += len(chunk["user"])
        rows = slice(None)
        if keep_users is not None:
            rows = np.flatnonzero(np.isin(chunk["user"], keep_users))
        for name, values in parts.items():
            column = chunk[name][rows]
            values.append(column if name in ("behavior", "timestamp") else _compact(column))
    if rows_read == 0:
        raise formats.DataFormatError(path, None, "at least one event line")
    table = {name: np.concatenate(values) for name, values in parts.items()}
    del parts
    if keep_users is not None:
        report["sampling/events_skipped"] = rows_read - len(table["user"])
    log = prep.EventLog.from_raw(
        table["user"], table["item"], table["behavior"], table["timestamp"], BEHAVIORS
    )
    return log, report


class TaobaoUserBehavior(_base.MultiBehaviorBuilder):
    """Taobao UserBehavior raw log -> pv, fav, cart, buy with leave-one-out by time."""

    name = "taobao_user_behavior"
    BEHAVIORS = BEHAVIORS
    CONFIG_OPTIONS = ("seed", "users", "core")
    BUILDER_CONFIGS = [
        _base.MultiBehaviorConfig(
            name="default",
            description="Every user; 5-core on purchases.",
            min_user_events=5,
            min_item_events=5,
        )
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    DESCRIPTION = (
        "Taobao UserBehavior (Alibaba, Tianchi): about 100M page-view, favourite, add-to-cart "
        "and purchase events of about 1M users, 25 Nov - 3 Dec 2017."
    )
    HOMEPAGE = "https://tianchi.aliyun.com/dataset/649"
    CITATION = _citations.USER_BEHAVIOR
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download UserBehavior.csv.zip from https://tianchi.aliyun.com/dataset/649 (free
    account needed) and put UserBehavior.csv.zip or the extracted UserBehavior.csv in the
    manual directory (--manual_dir). The full log needs about 3 GB of memory to build; a
    users<N> variant (e.g. config default_users20000) reads it in two streaming passes.
    """

    def _prepare(self, dl_manager: tfds.download.DownloadManager) -> prep.Prepared:
        folder = self._manual_dir(dl_manager)
        names = ("UserBehavior.csv", "UserBehavior.csv.zip")
        path = formats.first_existing(folder, names)
        if path is None:
            raise formats.DataFormatError(folder / names[0], None, "UserBehavior.csv (or .zip)")
        config = self.builder_config
        log, sampling = read_user_behavior(path, sample_users=config.sample_users, seed=config.seed)
        prepared = prep.prepare_event_log(
            log, min_user_events=config.min_user_events, min_item_events=config.min_item_events
        )
        return prep.with_report(prepared, sampling)
