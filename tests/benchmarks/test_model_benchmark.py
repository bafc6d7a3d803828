"""The model benchmark on tiny random data: every figure is present and plausible."""

import pytest

from mbrec_tf import registry
from mbrec_tf.benchmarks import model_benchmark, training_timings
from mbrec_tf.data.generated import random_data


def test_run_reports_every_figure():
    data = random_data(num_users=20, num_items=25)
    results = model_benchmark.run(
        registry.experiment("ehcf", "random", {"embedding_dim": 4, "batch_size": 8}),
        data,
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
    assert "dense-loss epoch" in model_benchmark.report(results)


def test_scale_figures_user_samples_profile_and_evaluation_sample():
    data = random_data(num_users=30, num_items=25)
    results = model_benchmark.run(
        registry.experiment("ehcf", "random", {"embedding_dim": 4, "batch_size": 8}),
        data,
        warmup_epochs=1,
        timed_epochs=1,
        dense_timed_epochs=0,
        eval_repeats=1,
        ks=(5,),
        eval_users=9,
        user_fractions=[0.5],
        profile_steps=2,
    )
    assert results["eval"]["num_users"] == 9
    half, whole = results["user_fractions"]
    assert (half["users"], whole["users"]) == (15, 30)
    assert half["items"] == whole["items"] == 25
    assert half["growth"]["users"] == 1.0 and whole["growth"]["users"] == 2.0
    assert whole["interactions"] == training_timings.interactions(data)
    pieces = results["profile"]["seconds_per_epoch"]
    assert {"input_pipeline", "step", "item_gram", "optimizer", "rest"} <= set(pieces)
    assert results["profile"]["steps_per_epoch"] == 4  # 30 users in batches of 8
    text = model_benchmark.report(results)
    assert "0.5 of the users" in text and "step profile" in text


def test_user_sample_is_seeded_and_keeps_each_users_data():
    data = random_data(num_users=30, num_items=25)
    sample = training_timings.user_sample(data, 0.4, seed=1)
    assert sample.num_users == 12 and sample.num_items == 25
    assert list(training_timings.user_sample(data, 0.4, seed=1).user_ids) == list(sample.user_ids)
    index = {user: u for u, user in enumerate(data.user_ids)}
    for row, user in enumerate(sample.user_ids):
        u = index[user]
        for behavior in data.behaviors:
            assert list(sample.train[behavior][row].indices) == list(
                data.train[behavior][u].indices
            )
        assert sample.test_items[row] == data.test_items[u]
        assert list(sample.test_negatives[row]) == list(data.test_negatives[u])
    assert training_timings.user_sample(data, 1.0, seed=1) is data


def test_als_iterations_are_timed_when_implicit_is_installed():
    pytest.importorskip("implicit")
    data = random_data(num_users=20, num_items=25)
    als = training_timings.time_als(data, factors=4, iterations=2, threads=1, seed=0)
    pairs = {
        (u, v) for matrix in data.train.values() for u, v in zip(*matrix.nonzero(), strict=True)
    }
    # One time per iteration (tiny data: an iteration may round to 0.0 s).
    assert len(als["all"]) == 2 and all(s >= 0 for s in als["all"])
    assert (als["interactions"], als["factors"]) == (len(pairs), 4)


def test_allreduced_bytes_are_looked_up_rows_and_small_tensors_not_the_item_table():
    import tensorflow as tf

    from mbrec_tf import distribute, training

    def rows(count: int) -> int:
        return count * (4 * 4 + 4)  # float32 rows of d = 4 and their int32 indices

    for num_items in (25, 250):
        data = random_data(num_users=20, num_items=num_items)
        for name in ("ehcf", "bpr"):
            spec = registry.get(name)
            overrides = {"embedding_dim": 4, "batch_size": 8}
            if name == "ehcf":
                overrides["keep_prob"] = 1.0  # a dropped-out user's items get no gradient
            config = registry.resolve_config(name, "random", overrides)
            model = training.build(spec, config, data)
            batch = next(iter(spec.build_inputs(data, config, 0)))
            users = int(tf.size(batch["user"]))
            got = distribute.allreduced_bytes(model, batch)
            if name == "ehcf":
                # the batch's user rows, the rows of its positives' items, the transfer
                # matrices and vectors, and the [d, d] gradient of the one item Gram (the
                # behaviors share a uniform negative weight): nothing of size |V|
                items = tf.concat([batch["positives"][b].values for b in data.behaviors], 0)
                positives = int(tf.size(tf.unique(items)[0]))
                small = sum(
                    int(tf.size(v)) * 4
                    for v in model.trainable_variables
                    if "embeddings" not in v.name
                )
                assert got == rows(users) + rows(positives) + small + 4 * 4 * 4, num_items
            else:
                # BPR: rows of the batch's users and of its positive and negative items
                items = int(tf.size(batch["positive"])) + int(tf.size(batch["negatives"]))
                assert got == rows(users + items), num_items


def test_allreduced_bytes_by_catalog_do_not_grow_with_the_items_for_ehcf():
    overrides = {"embedding_dim": 4, "batch_size": 8, "keep_prob": 1.0}
    sizes = training_timings.allreduced_bytes_by_catalog(
        registry.experiment("ehcf", "random", overrides), [30, 3000], 0, 20
    )
    assert [size["items"] for size in sizes] == [30, 3000]
    assert all(size["batch_users"] == 8 for size in sizes)
    # a dense item-table gradient alone would be 3000 x 4 floats; the step sends the
    # rows of at most 8 users' positives (random_data: 8 + 6 + 4 items per user) and d x d
    assert sizes[1]["allreduced_bytes_per_step"] < 8 * 18 * (4 * 4 + 4) + 4000
    assert sizes[1]["allreduced_bytes_per_step"] < 3000 * 4 * 4
