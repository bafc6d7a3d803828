"""RetailRocket, the small multi-behavior version in the GHCF adjacency layout.

Files in the manual directory, one line per user, `user item item ...` (space-separated):
`pv.txt` (views, optional), `cart.txt` (add-to-cart, optional), `train.txt` (training
purchases), `test.txt` (exactly one held-out purchase per line, one line per test user).
Features and metadata: see `tfds_builders._base`. Behaviors: view, cart, buy (target).
Split: as shipped, plus one random training purchase per user with at least two (seeded)
held out for validation.
"""

from __future__ import annotations

from tfds_builders import _citations, _given_split


class Retailrocket(_given_split.AdjacencyLayoutBuilder):
    """RetailRocket: view, cart, buy from per-user adjacency files."""

    name = "retailrocket"
    BEHAVIORS = ("view", "cart", "buy")
    TRAIN_FILES = {"view": ("pv.txt",), "cart": ("cart.txt",), "buy": ("train.txt",)}
    TEST_FILE = "test.txt"
    OPTIONAL_BEHAVIORS = ("view", "cart")
    DESCRIPTION = (
        "RetailRocket e-commerce events (view, add-to-cart, transaction), the small "
        "multi-behavior subset used with GHCF-style models."
    )
    HOMEPAGE = "https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset"
    CITATION = _citations.RETAILROCKET
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Put pv.txt, cart.txt, train.txt and test.txt (lines `user item item ...`) in the manual
    directory (--manual_dir). Public source of this version:
      https://github.com/ywchen814/Recommender-System-Algorithms (Data/rocket/).
    """
