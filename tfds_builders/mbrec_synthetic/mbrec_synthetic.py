"""mbrec_synthetic: generated multi-behavior data (view -> cart -> buy) with planted taste.

Deterministic for a config (sizes + seed), no files and no network: the default dataset of
the pipelines and the builder the tests build. Events come from `generator.generate`
(latent user/item factors, a popularity bias kept small so popularity does not dominate, and
a funnel whose deeper stages follow taste more closely) and go through the same raw-log
preprocessing as UserBehavior.csv: duplicate merging, k-core on buys, leave-one-out by time
(test = latest buy, validation = second latest) and leakage removal.

Configs: `tiny` (100 users x 500 generated items, for tests), `small` (1k x 1k), `default`
(5k users x 4k generated items, about 1.9k items left after the 5-core). Variants:
`<config>_seed<S>`, `<config>_core<K>`. Features and metadata: see `tfds_builders._base`.

Shop-scale configs come from `shop` instead (power-law item popularity, skewed user
activity, category taste and a view ⊇ cart ⊇ buy funnel with a few off-funnel events),
generated and preprocessed one chunk of users at a time, without k-core, so memory stays
bounded: `xl` (1,000,000 users x 200,000 items, about 55M interactions) and `xs` (the same
generator at 2,000 x 1,000, for tests).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from tfds_builders import _base
from tfds_builders import _preprocessing as prep
from tfds_builders.mbrec_synthetic import generator, shop


@dataclasses.dataclass(eq=False)
class SyntheticConfig(_base.MultiBehaviorConfig):
    """Sizes of the generated data (the other knobs are `generator.SyntheticSpec` defaults)."""

    num_users: int = 5000
    num_items: int = 4000
    generator: str = "latent"  # "latent" (generator.py) or "shop" (shop.py)
    num_categories: int = 1000


class MbrecSynthetic(_base.MultiBehaviorBuilder):
    """Synthetic view/cart/buy data with planted preferences."""

    name = "mbrec_synthetic"
    BEHAVIORS = ("view", "cart", "buy")
    CONFIG_OPTIONS = ("seed", "core")
    BUILDER_CONFIGS = [
        SyntheticConfig(
            name="tiny",
            description="100 users x 500 items, for tests.",
            num_users=100,
            num_items=500,
            min_user_events=5,
            min_item_events=1,
        ),
        SyntheticConfig(
            name="small",
            description="1,000 users x 1,000 items, 3-core.",
            num_users=1000,
            num_items=1000,
            min_user_events=3,
            min_item_events=3,
        ),
        SyntheticConfig(
            name="default",
            description="5,000 users x 4,000 generated items, 5-core (about 1.9k items).",
            num_users=5000,
            num_items=4000,
            min_user_events=5,
            min_item_events=5,
        ),
        SyntheticConfig(
            name="xs",
            description="Shop generator at 2,000 users x 1,000 items, for tests.",
            num_users=2000,
            num_items=1000,
            generator="shop",
            num_categories=20,
        ),
        SyntheticConfig(
            name="xl",
            description="Shop scale: 1,000,000 users x 200,000 items, about 55M interactions.",
            num_users=1_000_000,
            num_items=200_000,
            generator="shop",
            num_categories=1000,
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "default"
    DESCRIPTION = (
        "Synthetic multi-behavior recommendation data: planted latent preferences and a "
        "view -> cart -> buy funnel, generated deterministically from a seed."
    )

    def spec(self) -> generator.SyntheticSpec:
        """The generator settings of this builder's config."""
        config = self.builder_config
        return generator.SyntheticSpec(
            num_users=config.num_users,
            num_items=config.num_items,
            behaviors=self.BEHAVIORS,
            seed=config.seed,
        )

    def shop_spec(self) -> shop.ShopSpec:
        """The shop generator settings of this builder's config."""
        config = self.builder_config
        return shop.ShopSpec(
            num_users=config.num_users,
            num_items=config.num_items,
            num_categories=config.num_categories,
            seed=config.seed,
        )

    def _prepare(self, dl_manager: tfds.download.DownloadManager) -> prep.Prepared:
        del dl_manager  # nothing to download
        if self.builder_config.generator == "shop":
            return prepare_shop(self.shop_spec())
        spec = self.spec()
        log = generator.generate(spec)
        events = prep.EventLog.from_raw(
            log.users, log.items, log.behaviors, log.timestamps, spec.behaviors
        )
        config = self.builder_config
        return prep.prepare_event_log(
            events,
            min_user_events=config.min_user_events,
            min_item_events=config.min_item_events,
        )


def prepare_shop(spec: shop.ShopSpec) -> prep.Prepared:
    """The shop log of `spec`, generated and preprocessed one chunk of users at a time."""
    item_ids = np.arange(spec.num_items, dtype=np.int64)

    def logs():
        for chunk in shop.generate_chunks(spec):
            first, last = chunk.first_user, chunk.first_user + chunk.num_users
            yield prep.EventLog(
                users=chunk.users - first,
                items=chunk.items,
                behaviors=chunk.behaviors,
                timestamps=chunk.timestamps,
                user_ids=np.arange(first, last, dtype=np.int64),
                item_ids=item_ids,
                behavior_names=shop.BEHAVIORS,
            )

    return prep.prepare_user_partitioned(logs())
