"""beibei: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.beibei import Beibei


class BeibeiTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = Beibei
    SPLITS = {SPLIT: 8}
