"""taobao_ub4: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.taobao_ub4 import TaobaoUb4


class TaobaoUb4Test(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = TaobaoUb4
    SPLITS = {SPLIT: 10}
