"""taobao_ub4: a Taobao UserBehavior subset with pv, fav, cart and buy (MBGCN layout).

Files in the manual directory: `behavior_1` (pv), `behavior_2` (fav), `behavior_3` (cart),
`behavior_4` (buy, the target) folders, each with `train.txt` and `test.txt` of lines
`user<TAB>item<TAB>item...`. For the target, `test.txt` is the held-out purchase (one item
per user); for the other behaviors both files are ordinary interactions and are merged into
training (the report counts each file). Folders 1-3 are optional.
Features and metadata: see `tfds_builders._base`. Validation: one random training purchase
per user with at least two (seeded).
"""

from __future__ import annotations

from tfds_builders import _citations, _given_split


class TaobaoUb4(_given_split.AdjacencyLayoutBuilder):
    """taobao_ub4: pv, fav, cart, buy from per-behavior train/test adjacency folders."""

    name = "taobao_ub4"
    BEHAVIORS = ("pv", "fav", "cart", "buy")
    TRAIN_FILES = {
        "pv": ("behavior_1/train.txt", "behavior_1/test.txt"),
        "fav": ("behavior_2/train.txt", "behavior_2/test.txt"),
        "cart": ("behavior_3/train.txt", "behavior_3/test.txt"),
        "buy": ("behavior_4/train.txt",),
    }
    TEST_FILE = "behavior_4/test.txt"
    OPTIONAL_BEHAVIORS = ("pv", "fav", "cart")
    DESCRIPTION = (
        "A filtered subset of Alibaba's Taobao UserBehavior data with page views, "
        "favourites, add-to-cart and purchases, split per behavior into train and test."
    )
    HOMEPAGE = "https://tianchi.aliyun.com/dataset/649"
    CITATION = _citations.USER_BEHAVIOR
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put the folders behavior_1 (pv), behavior_2 (fav), behavior_3 (cart) and behavior_4
    (buy), each holding train.txt and test.txt (lines `user<TAB>item<TAB>item...`), in the
    manual directory (--manual_dir). Public source of this version:
      https://github.com/devin-ldz/MBGCN-UPA (model/mine/mine_data).
    """
