"""movielens_100k: GroupLens ml-100k, every rating an implicit interaction ("rating").

Input: `u.data` (`user<TAB>item<TAB>rating<TAB>timestamp`, no header) and optionally
`u.item` (`item|title|...`, Latin-1) for item titles, read from the manual directory (or
its `ml-100k/` folder, as the GroupLens zip extracts). Nothing is downloaded.
Preprocessing: leave-one-out by time (test = latest rating, validation = second latest;
ratings in the same second are ordered by their line in u.data); no k-core by default
(every user has >= 20 ratings; variant `default_core<K>` filters). Features and metadata:
see `tfds_builders._base`; titles are in metadata["item_titles"].
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from tfds_builders import _base, _citations
from tfds_builders import _formats as formats
from tfds_builders import _preprocessing as prep

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
DATA_COLUMNS = (
    formats.Column("user"),
    formats.Column("item"),
    formats.Column("rating"),
    formats.Column("timestamp", formats.SIGNED_INT),
)
GENRES = 19
ITEM_COLUMNS = (
    formats.Column("item"),
    formats.Column("title", formats.TEXT),
    formats.Column("release_date", formats.TEXT),
    formats.Column("video_release_date", formats.TEXT),
    formats.Column("url", formats.TEXT),
    *(formats.Column(f"genre_{g}") for g in range(GENRES)),
)


def read_movielens(folder: epath.Path) -> tuple[prep.EventLog, dict | None]:
    """(events of u.data, item id -> title from u.item or None when u.item is absent)."""
    ratings = formats.read_table(folder / "u.data", DATA_COLUMNS, sep="\t")
    if len(ratings) == 0:
        raise formats.DataFormatError(ratings.path, None, "at least one rating line")
    log = prep.EventLog.from_raw(
        ratings["user"],
        ratings["item"],
        np.zeros(len(ratings), dtype=np.int64),
        ratings["timestamp"],
        ("rating",),
    )
    titles = None
    if (folder / "u.item").is_file():
        items = formats.read_table(folder / "u.item", ITEM_COLUMNS, sep="|", encoding="latin-1")
        titles = dict(zip(items["item"].tolist(), items["title"].tolist(), strict=True))
    return log, titles


class Movielens100k(_base.MultiBehaviorBuilder):
    """MovieLens 100K: one behavior, leave-one-out by timestamp."""

    name = "movielens_100k"
    BEHAVIORS = ("rating",)
    CONFIG_OPTIONS = ("seed", "core")
    DESCRIPTION = (
        "MovieLens 100K (GroupLens): 100,000 ratings of 1,682 movies by 943 users, used as "
        "implicit single-behavior feedback."
    )
    HOMEPAGE = "https://grouplens.org/datasets/movielens/100k/"
    CITATION = _citations.MOVIELENS
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Put u.data (and optionally u.item, for titles) of ml-100k in the manual directory
    (--manual_dir), or the folder the GroupLens zip extracts to. Public source: {URL}
    (download and extract it yourself: the builder never goes online).
    """

    def _prepare(self, dl_manager: tfds.download.DownloadManager) -> prep.Prepared:
        folder = self._raw_folder(dl_manager)
        log, titles = read_movielens(folder)
        config = self.builder_config
        return prep.prepare_event_log(
            log,
            min_user_events=config.min_user_events,
            min_item_events=config.min_item_events,
            item_titles=titles,
        )

    def _raw_folder(self, dl_manager: tfds.download.DownloadManager) -> epath.Path:
        """The manual directory, or its ml-100k folder, whichever has u.data (offline)."""
        manual = self._manual_dir(dl_manager)
        for folder in (manual, manual / "ml-100k"):
            if (folder / "u.data").is_file():
                return folder
        raise formats.DataFormatError(manual / "u.data", None, "u.data of ml-100k")
