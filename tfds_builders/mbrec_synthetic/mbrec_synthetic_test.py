"""mbrec_synthetic: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.mbrec_synthetic import MbrecSynthetic


class MbrecSyntheticTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = MbrecSynthetic
    BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
    SPLITS = {SPLIT: 100}
