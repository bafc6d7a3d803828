"""Negative samplers for sampled training: uniform, supportive, level-aware (MC-BPR), mixed."""

from mbrec_tf.sampling.pools import ComplementPool, RowPool
from mbrec_tf.sampling.samplers import (
    SAMPLERS,
    LevelAwareSampler,
    MixedSampler,
    NegativeSampler,
    SupportiveSampler,
    UniformSampler,
    make_sampler,
)

__all__ = [
    "SAMPLERS",
    "ComplementPool",
    "LevelAwareSampler",
    "MixedSampler",
    "NegativeSampler",
    "RowPool",
    "SupportiveSampler",
    "UniformSampler",
    "make_sampler",
]
