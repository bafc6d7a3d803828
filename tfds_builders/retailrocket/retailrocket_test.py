"""retailrocket: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.retailrocket import Retailrocket


class RetailrocketTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = Retailrocket
    SPLITS = {SPLIT: 9}
