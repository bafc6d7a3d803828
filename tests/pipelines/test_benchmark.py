"""pipelines.benchmark on tiny random data: every figure is present and plausible."""

from mbrec_tf.data.testing import random_data
from pipelines import benchmark


def test_run_reports_every_figure():
    data = random_data(num_users=20, num_items=25)
    results = benchmark.run(
        "ehcf",
        "random",
        data,
        {"embedding_dim": 4, "batch_size": 8},
        warmup_epochs=1,
        timed_epochs=2,
        dense_timed_epochs=1,
        eval_repeats=1,
        ks=(5, 10),
    )
    for key in ("train_epoch_seconds", "dense_epoch_seconds", "eval_seconds"):
        assert results[key] > 0, key
    assert len(results["train_epoch"]["all"]) == 2
    assert len(results["dense_epoch"]["all"]) == 1
    assert results["eval"]["num_users"] == 20
    assert results["peak_rss_bytes"] >= results["peak_rss_bytes_before_dense"] > 2**20
    assert results["config"]["loss"] == "decoupled"
    assert "cpu_count" in results["machine"]
    assert "dense-loss epoch" in benchmark.report(results)


def test_allreduced_bytes_count_dense_tables_whole_and_looked_up_rows_only():
    import tensorflow as tf

    from mbrec_tf import distribute, registry, training

    data = random_data(num_users=20, num_items=25)
    for name in ("ehcf", "bpr"):
        spec = registry.get(name)
        config = registry.resolve_config(name, "random", {"embedding_dim": 4, "batch_size": 8})
        model = training.build(spec, config, data)
        batch = next(iter(spec.build_inputs(data, config, 0)))
        users = int(tf.size(batch["user"]))
        got = distribute.allreduced_bytes(model, batch)
        if name == "ehcf":
            # the item table's gradient is dense (its Gram term); the user table's holds
            # the batch's rows; the transfer matrices and vectors are dense
            small = sum(
                int(tf.size(v)) * 4 for v in model.trainable_variables if "embeddings" not in v.name
            )
            assert got == 25 * 4 * 4 + users * (4 * 4 + 4) + small
        else:
            # BPR: rows of the batch's users and of its positive and negative items
            items = int(tf.size(batch["positive"])) + int(tf.size(batch["negatives"]))
            assert got == (users + items) * (4 * 4 + 4)
