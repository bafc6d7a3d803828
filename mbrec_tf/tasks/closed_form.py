"""Objectives solved in closed form from the data: no gradient steps, no input pipeline."""

from __future__ import annotations

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.tasks.base import ClosedFormTask


class PopularityFit(ClosedFormTask):
    """Most-popular items: each item's score is log(1 + its target training count)."""

    def fit(self, model, data: MultiBehaviorData) -> None:
        model.item_scores.assign(model.scores_from_counts(data.item_popularity()))


def popularity_fit(data: MultiBehaviorData, config) -> PopularityFit:
    """The registry's task builder for popularity (nothing to configure)."""
    del data, config
    return PopularityFit()
