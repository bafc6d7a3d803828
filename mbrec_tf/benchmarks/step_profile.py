"""Where a training step's time goes: input pipeline, whole step, item Gram, optimizer, rest."""

from __future__ import annotations

import time
from typing import Any

import tensorflow as tf

from mbrec_tf import registry, training
from mbrec_tf.data.dataset import MultiBehaviorData


def profile_step(
    spec: registry.ModelSpec, config: Any, data: MultiBehaviorData, steps: int, seed: int
) -> dict[str, Any]:
    """Seconds per epoch of the training step's pieces, measured over `steps` batches.

    `input_pipeline`: reading the batches (after the first, whose start-up time is
    `input_start_seconds`); `step`: whole training steps on batches already
    in memory; `item_gram`: the item Grams and their gradient; `optimizer`: the update of
    the item table (dense) and of the batch's user rows; `rest`: step − Gram − optimizer
    (gathers, the positives' scores and gradients, the user Gram, dropout, the loss).
    Each is scaled from `steps` batches to the epoch's number of batches.
    """
    tf.keras.utils.set_random_seed(seed)
    model = training.build(spec, config, data)
    inputs = spec.build_inputs(data, config, seed)
    epoch_steps = int(inputs.cardinality().numpy())
    steps = min(steps, epoch_steps)
    iterator = iter(inputs)
    start = time.perf_counter()
    batches = [next(iterator)]
    input_start_seconds = time.perf_counter() - start  # tables to tensors, shuffle buffer
    start = time.perf_counter()
    batches += [next(iterator) for _ in range(steps - 1)]
    input_seconds = (time.perf_counter() - start) * steps / max(1, steps - 1)
    # Batches differ in their number of positives: one generalised trace, not one each.
    step = tf.function(model.train_step, reduce_retracing=True)
    for batch in batches[:3]:
        step(batch)  # traces the step (and its generalisation), builds optimizer slots

    def timed(function, arguments) -> float:
        start = time.perf_counter()
        for argument in arguments:
            function(argument)
        return time.perf_counter() - start

    step_seconds = timed(step, batches)
    items = model.item_table if hasattr(model, "item_table") else None
    pieces: dict[str, float] = {"input_pipeline": input_seconds, "step": step_seconds}
    task = model.task
    if items is not None and hasattr(task, "item_grams"):
        upstream = tf.random.normal([len(task.behaviors), items.shape[1], items.shape[1]])

        every = max(1, int(getattr(task, "gram_every", 1)))

        @tf.function
        def gram_and_gradient():
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(task.item_grams(tf.convert_to_tensor(items)) * upstream)
            return tape.gradient(value, items)

        gram_and_gradient()
        # With the Gram refreshed every N steps, one step in N pays for it.
        refreshes = [None] * max(1, round(steps / every))
        per_gram = timed(lambda _: gram_and_gradient(), refreshes) / len(refreshes)
        pieces["item_gram"] = per_gram * steps / every
        user_table = model.user_table
        dim = items.shape[1]

        def rows_of(ids: tf.Tensor, table: tf.Variable) -> tf.IndexedSlices:
            return tf.IndexedSlices(
                tf.zeros([tf.size(ids), dim]), ids, tf.shape(table, out_type=tf.int32)
            )

        @tf.function(reduce_retracing=True)
        def update(batch):
            users = tf.cast(batch["user"], tf.int32)
            if every > 1:  # item rows of the batch's positives only (a sparse update)
                positives = [tf.cast(r.values, tf.int32) for r in batch["positives"].values()]
                item_gradient = rows_of(tf.unique(tf.concat(positives, 0))[0], items)
            else:
                item_gradient = tf.zeros_like(items)
            model.optimizer.apply_gradients(
                [(item_gradient, items), (rows_of(users, user_table), user_table)]
            )

        for batch in batches[:3]:
            update(batch)
        pieces["optimizer"] = timed(update, batches)
        pieces["rest"] = step_seconds - pieces["item_gram"] - pieces["optimizer"]
    scale = epoch_steps / steps
    return {
        "input_start_seconds": input_start_seconds,
        "steps_timed": steps,
        "steps_per_epoch": epoch_steps,
        "seconds_per_epoch": {name: value * scale for name, value in pieces.items()},
    }
