"""taobao: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.taobao import Taobao


class TaobaoTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = Taobao
    SPLITS = {SPLIT: 8}
