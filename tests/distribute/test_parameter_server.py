"""EHCF and a sampled model (BPR) train under ParameterServerStrategy as in one process.

A fresh process starts an in-process cluster (1 worker, 2 parameter servers: TF's own
test set-up) whose strategy splits every table of at least 64 bytes over both servers,
so the tiny embedding tables are partitioned, unevenly (23 users: 12 + 11 rows). Each
model starts from the single-process model's initial weights (restored from its
checkpoint) and trains 2 epochs on the same batches (one worker applies its steps in
order): the weights must equal the single-process run's to 1e-6 of the largest weight.
Then `training.train_and_evaluate` runs each model under the same strategy: checkpoints,
results and the export are written as under every other strategy.
"""

import textwrap

from .script_report import run_script

#: Stated tolerance: weights after 2 epochs, relative to the largest weight.
WEIGHT_TOLERANCE = 1e-6
MODELS = ("ehcf", "bpr")

SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, os, sys
    import numpy as np
    import tensorflow as tf

    from mbrec_tf import distribute, registry, run_directory, training
    from mbrec_tf.data.generated import random_data

    root = sys.argv[1]
    resolver = distribute.in_process_cluster(workers=1, ps=2)
    strategy = distribute.make_strategy("parameter_server", resolver, min_shard_bytes=64)
    data = random_data(num_users=23, num_items=30, seed=4)

    def saved_weights(model, path):
        tf.train.Checkpoint(model=model).write(path)
        reader = tf.train.load_checkpoint(path)
        names = reader.get_variable_to_shape_map()
        return {n: reader.get_tensor(n) for n in names if n.startswith("model/")}

    report = {}
    for name in sys.argv[2:]:
        spec = registry.get(name)
        overrides = {"embedding_dim": 4, "batch_size": 10, "learning_rate": 0.1,
                     "epochs": 2, "optimizer": "adagrad"}
        if "keep_prob" in {f.name for f in dataclasses.fields(spec.config_cls)}:
            overrides["keep_prob"] = 1.0
        config = registry.resolve_config(name, data.name, overrides)
        tf.keras.utils.set_random_seed(0)
        single = training.build(spec, config, data)
        initial = os.path.join(root, f"{name}_initial")
        tf.train.Checkpoint(model=single).write(initial)
        inputs, _ = distribute.training_inputs(tf.distribute.get_strategy(), spec, data, config, 0)
        single.fit(inputs, epochs=2, verbose=0)
        want = saved_weights(single, os.path.join(root, f"{name}_single"))

        model = training.build(spec, config, data, strategy)
        shard_devices = sorted({v.device for v in model.trainable_variables})
        tf.train.Checkpoint(model=model).read(initial).expect_partial()
        inputs, steps = distribute.training_inputs(strategy, spec, data, config, 0)
        model.fit(inputs, epochs=2, steps_per_epoch=steps, verbose=0)
        got = saved_weights(model, os.path.join(root, f"{name}_ps"))

        run_dir = os.path.join(root, f"{name}_run")
        settings = run_directory.RunSettings(model=name, model_dir=run_dir, metrics_k=(5,),
                                             monitor="ndcg@5", eval_every=1, verbose=0)
        results = training.train_and_evaluate(settings, config, data, strategy=strategy)
        report[name] = {
            "names": [sorted(want), sorted(got)],
            "error": max(float(np.abs(want[n] - got[n]).max()) for n in want),
            "scale": max(float(np.abs(w).max()) for w in want.values()),
            "ps_devices": sorted({d.split("/task:")[1][0] for d in shard_devices
                                  if "/job:ps" in d}),
            "shards": max(len(model.trainable_variables) - len(single.trainable_variables), 0),
            "strategy": results["strategy"],
            "epochs_trained": results["epochs_trained"],
            "hr@5": results["test"]["hr@5"],
            "export": os.path.isfile(os.path.join(results["export_path"], "saved_model.pb")),
            "checkpoints": sorted(os.listdir(os.path.join(run_dir, "checkpoints"))),
        }
    print(json.dumps(report))
    """
)


def test_ehcf_and_bpr_train_under_parameter_servers_as_in_one_process(tmp_path):
    report = run_script(SCRIPT, str(tmp_path), *MODELS)
    assert sorted(report) == sorted(MODELS)
    for name, result in report.items():
        assert result["names"][0] == result["names"][1], name  # one value per whole table
        assert result["error"] <= WEIGHT_TOLERANCE * max(1.0, result["scale"]), (name, result)
        # both tables split in two: two more variables than in one process, on both servers
        assert result["shards"] == 2 and result["ps_devices"] == ["0", "1"], (name, result)
        assert result["strategy"] == "parameter_server" and result["epochs_trained"] == 2
        assert result["export"] and "checkpoint" in result["checkpoints"], (name, result)
        assert 0.0 <= result["hr@5"] <= 1.0
