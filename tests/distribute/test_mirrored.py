"""Every model trains under the mirrored strategy and ends where the default strategy does.

A fresh process splits the CPU into two logical devices (before TensorFlow initialises
them) and trains each model for two epochs on tiny data with the default strategy and with
MirroredStrategy over both devices, the input going through
`distribute.training_inputs` (`distribute_datasets_from_function`, each replica's share of
every global batch, the uneven last batch included). Same seed, same global batch: the
weights, the logged loss and the test metrics must agree to float32 round-off.
"""

import textwrap

import pytest

from mbrec_tf import registry

from .script_report import run_script

SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from mbrec_tf import distribute, registry, training
    from mbrec_tf.data.generated import random_data
    from mbrec_tf.evaluation import Evaluator

    # 23 training users and batches of 10: the last global batch (3 users) splits 1 / 2.
    data = random_data(num_users=23, num_items=30, behaviors=("view", "cart", "buy"), seed=4)
    evaluator = Evaluator(data, split="test", ks=(5,))
    mirrored = distribute.make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2
    report = {}
    for name in sys.argv[1:]:
        spec = registry.get(name)
        overrides = {"epochs": 2}
        if not spec.closed_form:
            overrides.update(embedding_dim=4, batch_size=10, optimizer="adagrad",
                             learning_rate=0.1)
        if "keep_prob" in {f.name for f in dataclasses.fields(spec.config_cls)}:
            overrides["keep_prob"] = 1.0  # dropout draws differ per device
        config = registry.resolve_config(name, data.name, overrides)
        runs = {}
        for label, strategy in (("default", tf.distribute.get_strategy()),
                                ("mirrored", mirrored)):
            tf.keras.utils.set_random_seed(0)
            model = training.build(spec, config, data, strategy)
            if spec.closed_form:
                with strategy.scope():
                    spec.build_task(data, config).fit(model, spec.training_data(data, config))
                loss = 0.0
            else:
                inputs, steps = distribute.training_inputs(strategy, spec, data, config, 0)
                history = model.fit(inputs, epochs=2, steps_per_epoch=steps, verbose=0)
                loss = history.history["loss"][-1]
            metrics = evaluator(model)
            # model.weights would also hold the loss trackers, summed over replicas
            weights = model.weights if spec.closed_form else model.trainable_variables
            runs[label] = ([v.numpy() for v in weights], loss,
                           [metrics["hr@5"], metrics["ndcg@5"], metrics["sampled/hr@5"]])
        (single, single_loss, single_metrics) = runs["default"]
        (mirror, mirror_loss, mirror_metrics) = runs["mirrored"]
        report[name] = {
            "weights": len(single),
            "error": max([float(np.abs(a - b).max()) for a, b in zip(single, mirror)] or [0]),
            "scale": max([float(np.abs(a).max()) for a in single] or [0]),
            "losses": [single_loss, mirror_loss],
            "metrics": [single_metrics, mirror_metrics],
        }
    print(json.dumps(report))
    """
)

WHOLE_DATA = [n for n, s in registry.REGISTRY.items() if s.inputs is not None and "ehcf" in n]
CLOSED_FORM = [n for n, s in registry.REGISTRY.items() if s.closed_form]
SAMPLED = [n for n in registry.REGISTRY if n not in WHOLE_DATA + CLOSED_FORM]


@pytest.mark.parametrize(
    "models", [WHOLE_DATA + CLOSED_FORM, SAMPLED], ids=["whole_data_and_closed_form", "sampled"]
)
def test_every_model_trains_mirrored_as_on_one_device(models):
    report = run_script(SCRIPT, *models)
    assert sorted(report) == sorted(models)
    for name, result in report.items():
        assert result["weights"] > 0, name
        # float32 round-off of sums taken in another order, after 2 epochs of updates
        assert result["error"] <= 1e-4 * max(1.0, result["scale"]), (name, result)
        single, mirrored = result["losses"]
        assert mirrored == pytest.approx(single, rel=1e-4, abs=1e-6), (name, result)
        assert result["metrics"][1] == pytest.approx(result["metrics"][0], abs=1e-6), name
