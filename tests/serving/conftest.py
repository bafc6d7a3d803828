"""Session-wide tiny datasets for the serving tests."""

from __future__ import annotations

import pytest
from serving_helpers import int_user_data

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.data.generated import random_data


@pytest.fixture(scope="session")
def string_data() -> MultiBehaviorData:
    return random_data(num_users=24, num_items=32, seed=0)


@pytest.fixture(scope="session")
def int_data() -> MultiBehaviorData:
    return int_user_data()
