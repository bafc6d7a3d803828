"""taobao_user_behavior: builds from its dummy_data and reads back (TFDS's builder test)."""

import tensorflow_datasets as tfds

from tfds_builders import SPLIT
from tfds_builders.taobao_user_behavior import TaobaoUserBehavior


class TaobaoUserBehaviorTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = TaobaoUserBehavior
    SPLITS = {SPLIT: 12}
