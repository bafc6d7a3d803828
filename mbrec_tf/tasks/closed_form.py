"""Objectives solved in closed form from the data: no gradient steps, no input pipeline."""

from __future__ import annotations

from mbrec_tf.data.dataset import MultiBehaviorData
from mbrec_tf.models.touched import popularity_scores
from mbrec_tf.tasks.base import ClosedFormTask


class PopularityFit(ClosedFormTask):
    """Most-popular items: each item's score is log(1 + its target training count)."""

    def fit(self, model, data: MultiBehaviorData) -> None:
        model.item_scores.assign(model.scores_from_counts(data.item_popularity()))


def popularity_fit(data: MultiBehaviorData, config) -> PopularityFit:
    """The registry's task builder for popularity (nothing to configure)."""
    del data, config
    return PopularityFit()


class TouchedFit(ClosedFormTask):
    """Touched first: the popularity tie-break ε · pop(v) from target training counts."""

    def __init__(self, popularity_weight: float):
        self.popularity_weight = float(popularity_weight)

    def fit(self, model, data: MultiBehaviorData) -> None:
        model.item_scores.assign(popularity_scores(data.item_popularity(), self.popularity_weight))


def touched_fit(data: MultiBehaviorData, config) -> TouchedFit:
    """The registry's task builder for the touched-first heuristic."""
    del data
    return TouchedFit(config.popularity_weight)
