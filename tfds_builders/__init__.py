"""TFDS builders of the multi-behavior datasets; importing this package registers them all.

Each dataset is a folder `tfds_builders/<name>/` as in TFDS (the builder module, its
`<name>_test.py` on `dummy_data/`, a README with the data's source and citation); the raw
file parsers live in `_formats/` (one module per format), preprocessing in `_preprocessing/`
(event logs, given splits, negatives, the `Prepared` result), and the common builder shape
(features, metadata, config variants) in `_base.py`. This module is the
package's public API: the library and the pipelines import nothing else from it.
"""

from tfds_builders._base import SPLIT, MultiBehaviorBuilder, MultiBehaviorConfig
from tfds_builders._formats import DataFormatError
from tfds_builders._preprocessing import (
    NO_ITEM,
    NUM_NEGATIVES,
    EventLog,
    Prepared,
    prepare_event_log,
)
from tfds_builders.beibei import Beibei
from tfds_builders.mbrec_synthetic import MbrecSynthetic
from tfds_builders.mbrec_synthetic.generator import SyntheticSpec
from tfds_builders.mbrec_synthetic.generator import generate as generate_synthetic_log
from tfds_builders.movielens_100k import Movielens100k
from tfds_builders.retailrocket import Retailrocket
from tfds_builders.taobao import Taobao
from tfds_builders.taobao_ub4 import TaobaoUb4
from tfds_builders.taobao_user_behavior import TaobaoUserBehavior
from tfds_builders.taobao_user_behavior.taobao_user_behavior import stream_user_behavior

BUILDERS: dict[str, type[MultiBehaviorBuilder]] = {
    builder.name: builder
    for builder in (
        MbrecSynthetic,
        Beibei,
        Taobao,
        Retailrocket,
        TaobaoUb4,
        TaobaoUserBehavior,
        Movielens100k,
    )
}

__all__ = [
    "BUILDERS",
    "NO_ITEM",
    "NUM_NEGATIVES",
    "SPLIT",
    "DataFormatError",
    "EventLog",
    "MultiBehaviorBuilder",
    "MultiBehaviorConfig",
    "Prepared",
    "SyntheticSpec",
    "generate_synthetic_log",
    "prepare_event_log",
    "stream_user_behavior",
]
