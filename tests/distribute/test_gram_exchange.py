"""A synchronous whole-data step exchanges the item Gram as `[d, d]` matrices, exactly.

A fresh process splits the CPU into two logical devices and takes EHCF's first step (and
its first epoch) on the same global batch with the default strategy and with
MirroredStrategy over both devices. The mirrored step all-reduces the Gram's `[d, d]`
gradients and the rows of the batch's users and positive items, and computes the item
table's dense Gram gradient on each replica from the summed `[d, d]` ones: no tensor with
|V| rows is exchanged, and the updated weights equal the default step's to float32
round-off. Item-dependent negative weights (two distinct Grams) and both optimizer
families (legacy Adagrad, new Adam) are covered.
"""

import textwrap

from .script_report import run_script

#: Stated tolerance: weights after the step(s), relative to the largest weight.
WEIGHT_TOLERANCE = 1e-5

SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from mbrec_tf import distribute, registry, training
    from mbrec_tf.data.generated import random_data

    data = random_data(num_users=23, num_items=300, seed=4)
    mirrored = distribute.make_strategy("mirrored")
    report = {}
    for optimizer in ("adagrad", "adam"):
        config = registry.resolve_config("ehcf", data.name, {
            "embedding_dim": 4, "batch_size": 10, "optimizer": optimizer,
            "learning_rate": 0.1, "keep_prob": 1.0, "epochs": 1,
            "negative_weight": ("view:0.1", "cart:0.2", "buy:0.1"),
            "negative_weight_alpha": 0.5,
        })
        spec = registry.get("ehcf")
        runs, exchanged_sizes = {}, []
        for label, strategy in (("default", tf.distribute.get_strategy()),
                                ("mirrored", mirrored)):
            weights = []
            for epochs, steps in ((1, 1), (2, None)):  # the first step; two whole epochs
                tf.keras.utils.set_random_seed(0)
                model = training.build(spec, config, data, strategy)
                exchanged_gradients = model.exchanged_gradients

                def recording(batch, replicas=1, exchanged_gradients=exchanged_gradients):
                    result = exchanged_gradients(batch, replicas)
                    exchanged_sizes.extend(
                        -1 if isinstance(t, tf.IndexedSlices) else int(t.shape.num_elements())
                        for t in result[0]
                    )
                    return result

                model.exchanged_gradients = recording
                inputs, epoch_steps = distribute.training_inputs(strategy, spec, data, config, 0)
                model.fit(inputs, epochs=epochs, steps_per_epoch=steps or epoch_steps, verbose=0)
                weights.append([v.numpy() for v in model.trainable_variables])
            runs[label] = weights
        errors = [
            max(float(np.abs(a - b).max()) for a, b in zip(single, mirror))
            for single, mirror in zip(runs["default"], runs["mirrored"])
        ]
        scale = max(float(np.abs(a).max()) for a in runs["default"][-1])
        tf.keras.utils.set_random_seed(0)
        initial = [v.numpy() for v in training.build(spec, config, data).trainable_variables]
        moved = max(float(np.abs(a - b).max()) for a, b in zip(initial, runs["default"][0]))
        report[optimizer] = {"errors": errors, "scale": scale, "moved": moved,
                             "exchanged_sizes": exchanged_sizes}
    print(json.dumps(report))
    """
)


def test_mirrored_ehcf_step_exchanges_grams_and_rows_and_equals_the_default_step():
    report = run_script(SCRIPT)
    assert sorted(report) == ["adagrad", "adam"]
    for optimizer, result in report.items():
        assert result["moved"] > 1e-3, optimizer  # the steps changed the weights
        for error in result["errors"]:
            assert error <= WEIGHT_TOLERANCE * max(1.0, result["scale"]), (optimizer, result)
        # traced on the mirrored replicas: IndexedSlices (-1) and tensors of at most d x d
        sizes = result["exchanged_sizes"]
        assert sizes and -1 in sizes and max(sizes) <= 4 * 4, (optimizer, sizes)
