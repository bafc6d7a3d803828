"""The one optimizer factory: `config.optimizer` at `config.learning_rate`."""

from __future__ import annotations

import tensorflow as tf

OPTIMIZERS = ("adagrad", "adam", "sgd")


def make_optimizer(config) -> tf.keras.optimizers.Optimizer:
    """Adagrad, Adam or SGD as `config` names it.

    Adagrad is tf-keras' legacy Adagrad with `config.adagrad_initial_accumulator`: the same
    update as the EHCF authors' TF1 optimizer (their accumulator starts at 1e-8), applied
    by TF's fused Adagrad kernels, which on CPU cost about half the time per step of the
    new optimizer's element-wise ops on a dense item-table gradient. The legacy optimizers
    are also the ones `ParameterServerStrategy` with partitioned tables accepts.
    """
    if config.optimizer == "adagrad":
        return tf.keras.optimizers.legacy.Adagrad(
            learning_rate=config.learning_rate,
            initial_accumulator_value=config.adagrad_initial_accumulator,
        )
    if config.optimizer == "adam":
        return tf.keras.optimizers.Adam(learning_rate=config.learning_rate)
    if config.optimizer == "sgd":
        return tf.keras.optimizers.SGD(learning_rate=config.learning_rate)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}")
