"""Data layer: the in-memory dataset, loading from TFDS, and pair-key helpers."""

from mbrec_tf.data.dataset import NO_ITEM, MultiBehaviorData, interaction_matrix

__all__ = ["NO_ITEM", "MultiBehaviorData", "interaction_matrix"]
