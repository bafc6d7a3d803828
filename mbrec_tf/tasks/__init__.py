"""Objectives: the whole-data task, the sampled task and closed-form fits.

A task receives a batch and the scorer's outputs and returns the loss; models hold
parameters and scoring only (see `mbrec_tf.models.base.Recommender.train_step`).
"""

from mbrec_tf.tasks.base import MEAN, SUM, ClosedFormTask, Reduction, Task
from mbrec_tf.tasks.closed_form import PopularityFit
from mbrec_tf.tasks.sampled import SampledTask
from mbrec_tf.tasks.whole_data import WholeDataTask

__all__ = [
    "MEAN",
    "Reduction",
    "SUM",
    "ClosedFormTask",
    "PopularityFit",
    "SampledTask",
    "Task",
    "WholeDataTask",
]
