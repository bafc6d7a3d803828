"""The one train step under tf.distribute: a step on 2 replicas equals a single-device step.

Runs in a fresh process that splits the CPU into two logical devices (which must happen
before TensorFlow initialises its devices) and compares, after one SGD step on the same
global batch, every variable and the logged loss of a MirroredStrategy run with the
default strategy's: a sum-reduced task (EHCF's whole-data loss) and a mean-reduced one
(BPR's sampled loss), each with regularisers that must be counted once.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from mbrec_tf import registry, training
    from mbrec_tf.data.generated import random_data

    name = sys.argv[1]
    data = random_data(num_users=16, num_items=20, behaviors=("view", "buy"), seed=4)
    overrides = {"embedding_dim": 4, "batch_size": 16, "optimizer": "sgd",
                 "learning_rate": 0.1, "epochs": 1}
    if name == "ehcf":
        overrides.update(keep_prob=1.0, transfer_l2=0.5)
    else:
        overrides.update(embedding_l2=0.1, init_std=0.3)
    config = registry.resolve_config(name, data.name, overrides)
    spec = registry.get(name)

    def one_step(strategy, weights=None):
        tf.keras.utils.set_random_seed(0)
        model = training.build(spec, config, data, strategy)
        if weights is not None:
            for variable, value in zip(model.trainable_variables, weights):
                variable.assign(value)
        before = [v.numpy().copy() for v in model.trainable_variables]

        def inputs(context):
            return spec.build_inputs(data, config, 0, context)

        creator = tf.keras.utils.experimental.DatasetCreator(inputs)
        history = model.fit(creator, epochs=1, steps_per_epoch=1, verbose=0)
        return before, [v.numpy() for v in model.trainable_variables], history.history["loss"][0]

    single_before, single_after, single_loss = one_step(tf.distribute.get_strategy())
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    _, mirrored_after, mirrored_loss = one_step(mirrored, single_before)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(single_after, single_before))
    error = max(float(np.abs(a - b).max()) for a, b in zip(single_after, mirrored_after))
    print(json.dumps({"replicas": mirrored.num_replicas_in_sync, "moved": moved,
                      "error": error, "losses": [single_loss, mirrored_loss]}))
    """
)


@pytest.mark.parametrize("model", ["ehcf", "bpr"])
def test_a_mirrored_step_equals_the_single_device_step(model):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, model],
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3  # the step changed the weights
    assert result["error"] < 1e-5 * max(1.0, result["moved"])
    single, mirrored = result["losses"]
    assert mirrored == pytest.approx(single, rel=1e-5)
