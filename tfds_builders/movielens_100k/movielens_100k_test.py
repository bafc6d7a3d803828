"""movielens_100k: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.movielens_100k import Movielens100k


class Movielens100kTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = Movielens100k
    SPLITS = {SPLIT: 6}
