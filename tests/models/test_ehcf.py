"""EHCF: exactness of its whole-data task, transfer, ablations and training."""

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf import config as config_lib
from mbrec_tf import optimizers, registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.inputs import ragged_rows, user_batches
from mbrec_tf.models import ehcf
from mbrec_tf.tasks import whole_data

BEHAVIORS = ("view", "cart", "buy")


@pytest.fixture(scope="module")
def data():
    return random_data(num_users=12, num_items=15, behaviors=BEHAVIORS, seed=1)


def _full_batch(data, behaviors=BEHAVIORS):
    """Every user once, positives of `behaviors` as ragged rows (no shuffling)."""
    users = np.arange(data.num_users, dtype=np.int32)
    return tf.constant(users), {b: ragged_rows(data.train[b]) for b in behaviors}


def _model(data, dtype="float32", **overrides) -> ehcf.EHCF:
    """An EHCF scorer compiled with its whole-data task (`model.task`)."""
    config = ehcf.EHCFConfig(embedding_dim=4, **overrides)
    tf.keras.utils.set_random_seed(0)
    model = ehcf.build(data, config)
    _compile(model, config, data)
    return model if dtype == "float32" else _float64_model(data, config, model)


def _compile(model: ehcf.EHCF, config: ehcf.EHCFConfig, data, task=None) -> None:
    task = task or whole_data.whole_data_task(data, config)
    model.compile(optimizer=optimizers.make_optimizer(config), task=task)


def _float64_model(data, config, reference: ehcf.EHCF) -> ehcf.EHCF:
    """A float64 copy of `reference`'s structure and task (new random values)."""
    model = ehcf.EHCF(
        data.num_users,
        data.num_items,
        data.behaviors,
        embedding_dim=config.embedding_dim,
        predecessors=reference.predecessors,
        keep_prob=config.keep_prob,
        dtype="float64",
    )
    weights = [reference.task.negative_weight(k).numpy() for k in range(len(data.behaviors))]
    task = whole_data.WholeDataTask(
        data.behaviors, data.num_items, weights, reference.task.loss_coefficients
    )
    _compile(model, config, data, task)
    return model


def _losses(model: ehcf.EHCF, users, positives, loss=None) -> list[tf.Tensor]:
    """L̃_k of every behavior (no dropout): one scorer call, then the task."""
    outputs = model({"user": users, "positives": positives})
    return model.task.behavior_losses(positives, outputs, loss=loss)


def _objective(model: ehcf.EHCF, losses) -> tf.Tensor:
    """Σ λ_k L̃_k plus the model's regularisers (ℓ2 on the transfer matrices)."""
    total = model.task.objective(losses)
    return total + tf.add_n(model.losses) if model.losses else total


def _brute_force_losses(model: ehcf.EHCF, data) -> list[float]:
    """Σ_u Σ_v c_uv (R − R̂)² − |R| per behavior, in NumPy from the model's variables."""
    users = model.user_table.numpy()
    items = model.item_table.numpy()
    losses = []
    for k, behavior in enumerate(model.behaviors):
        h = model.prediction_vectors()[k].numpy()
        scores = (users * h) @ items.T
        labels = data.train[behavior].toarray()
        weight = model.task.negative_weight(k, model.item_table.dtype).numpy()
        negative = np.broadcast_to(weight, labels.shape)
        weights = np.where(labels > 0, 1.0, negative)
        losses.append(float(np.sum(weights * (labels - scores) ** 2) - labels.sum()))
    return losses


@pytest.mark.parametrize("alpha", [0.0, 0.8], ids=["uniform", "item_dependent"])
@pytest.mark.parametrize("no_transfer", [False, True], ids=["transfer", "no_transfer"])
def test_decoupled_loss_is_exact(data, alpha, no_transfer):
    model = _model(
        data,
        "float64",
        negative_weight_alpha=alpha,
        no_transfer=no_transfer,
        negative_weight=("view:0.2", "cart:0.1", "buy:0.3"),
    )
    assert model.user_table.dtype == tf.float64
    users, positives = _full_batch(data)
    with tf.GradientTape(persistent=True) as tape:
        decoupled = _losses(model, users, positives, loss="decoupled")
        dense = _losses(model, users, positives, loss="dense")
        decoupled_total, dense_total = _objective(model, decoupled), _objective(model, dense)
    expected = _brute_force_losses(model, data)
    np.testing.assert_allclose([float(x) for x in decoupled], expected, rtol=1e-10)
    np.testing.assert_allclose([float(x) for x in dense], expected, rtol=1e-10)
    names = {v.name.split(":")[0] for v in model.trainable_variables}
    if no_transfer:
        assert names == {"user_embeddings", "item_embeddings", "h_view", "h_cart", "h_buy"}
    else:
        assert {"transfer_cart_to_buy", "transfer_bias_view_to_buy"} <= names
    for variable in model.trainable_variables:
        fast = tf.convert_to_tensor(tape.gradient(decoupled_total, variable)).numpy()
        slow = tf.convert_to_tensor(tape.gradient(dense_total, variable)).numpy()
        assert np.abs(slow).max() > 0, variable.name
        error = np.abs(fast - slow).max() / np.abs(slow).max()
        assert error < 1e-8, (variable.name, error)


def test_item_dependent_weights_follow_popularity(data):
    model = _model(data, negative_weight=("0.1",), negative_weight_alpha=1.0)
    for k, behavior in enumerate(BEHAVIORS):
        counts = data.item_popularity(behavior)
        expected = 0.1 * data.num_items * counts / counts.sum()
        np.testing.assert_allclose(model.task.negative_weight(k).numpy(), expected, rtol=1e-5)


def test_transfer_and_scores(data):
    model = _model(data)
    vectors = model.prediction_vectors()
    h_view = model.free_vectors["view"].numpy()
    transfers = {v.name.split(":")[0]: v.numpy() for v in model.trainable_variables}
    h_cart = transfers["transfer_view_to_cart"] @ h_view + transfers["transfer_bias_view_to_cart"]
    h_buy = (
        transfers["transfer_view_to_buy"] @ h_view
        + transfers["transfer_bias_view_to_buy"]
        + transfers["transfer_cart_to_buy"] @ h_cart
        + transfers["transfer_bias_cart_to_buy"]
    )
    np.testing.assert_allclose(vectors[1].numpy(), h_cart, rtol=1e-5)
    np.testing.assert_allclose(vectors[2].numpy(), h_buy, rtol=1e-5)
    users = tf.constant([0, 3, 5])
    expected = (model.user_table.numpy()[[0, 3, 5]] * h_buy) @ model.item_table.numpy().T
    np.testing.assert_allclose(model.score_users(users).numpy(), expected, rtol=1e-4, atol=1e-9)
    assert model.is_factorized
    pairs = model.score_pairs(users, tf.constant([[1, 2], [0, 4], [7, 7]]))
    np.testing.assert_allclose(
        pairs.numpy(), expected[[[0], [1], [2]], [[1, 2], [0, 4], [7, 7]]], rtol=1e-4, atol=1e-9
    )


def test_transfer_dag_and_parsing():
    assert ehcf.transfer_predecessors(BEHAVIORS) == [[], [0], [0, 1]]
    assert ehcf.transfer_predecessors(BEHAVIORS, ("view>buy",)) == [[], [], [0]]
    assert ehcf.transfer_predecessors(("cart", "buy"), ("view>cart", "cart>buy")) == [[], [0]]
    assert ehcf.transfer_predecessors(BEHAVIORS, no_transfer=True) == [[], [], []]
    with pytest.raises(ValueError, match="earlier"):
        ehcf.transfer_predecessors(BEHAVIORS, ("buy>view",))
    per_behavior = config_lib.per_behavior
    assert per_behavior(("0.1",), BEHAVIORS, "w", 1.0) == [0.1, 0.1, 0.1]
    assert per_behavior((), BEHAVIORS, "w", 1.0) == [1.0, 1.0, 1.0]
    assert per_behavior(("view:0.05", "cart:0.8", "buy:0.15"), ("cart", "buy"), "l", 1) == [
        0.8,
        0.15,
    ]
    with pytest.raises(ValueError, match="no value"):
        per_behavior(("cart:0.8",), ("cart", "buy"), "l", 1.0)
    with pytest.raises(ValueError, match="2 values for 3"):
        per_behavior(("1", "2"), BEHAVIORS, "l", 1.0)


def test_registry_defaults_give_the_authors_cart_buy_coefficients():
    config = registry.resolve_config("ehcf", "beibei")
    assert (config.embedding_dim, config.learning_rate, config.optimizer) == (64, 0.05, "adagrad")
    assert (config.batch_size, config.keep_prob, config.epochs) == (256, 0.8, 200)
    cart_buy = random_data(num_users=6, num_items=9, behaviors=("cart", "buy"))
    task = registry.get("ehcf").build_task(cart_buy, config)
    np.testing.assert_allclose(task.loss_coefficients, [0.8 / 0.95, 0.15 / 0.95])
    assert [float(task.negative_weight(k)) for k in range(2)] == pytest.approx([0.1, 0.1])
    assert registry.resolve_config("ehcf", "taobao").negative_weight == ("0.01",)


def test_ehcf_sin_and_behavior_ablation(data):
    config = ehcf.EHCFConfig(embedding_dim=4, batch_size=5)
    single = registry.get("ehcf_sin").build(data, config)
    assert single.behaviors == ("buy",)
    assert [v.name.split(":")[0] for v in single.trainable_variables] == [
        "h_buy",
        "user_embeddings",
        "item_embeddings",
    ]
    batch = next(iter(registry.get("ehcf_sin").build_inputs(data, config, 0)))
    assert set(batch["positives"]) == {"buy"}

    ablation = ehcf.EHCFConfig(embedding_dim=4, batch_size=5, behaviors=("cart", "buy"))
    model = registry.get("ehcf").build(data, ablation)
    assert model.behaviors == ("cart", "buy")
    batch = next(iter(registry.get("ehcf").build_inputs(data, ablation, 0)))
    assert set(batch["positives"]) == {"cart", "buy"}


def test_train_step_lowers_the_loss_and_logs_each_behavior(data):
    model = _model(data, keep_prob=1.0)
    _compile(model, ehcf.EHCFConfig(optimizer="sgd", learning_rate=0.01), data)
    users, positives = _full_batch(data)
    batch = {"user": users, "positives": positives}

    def logged_objective() -> float:
        outputs = model(batch)
        losses = model.task.behavior_losses(positives, outputs, with_constant=True)
        return float(_objective(model, losses))

    before = logged_objective()
    logs = model.train_step(batch)
    after = logged_objective()
    assert after < before
    assert set(logs) == {"loss", "loss/view", "loss/cart", "loss/buy"}
    assert float(logs["loss"]) == pytest.approx(before, rel=1e-5)


def test_alternate_tasks_trains_one_behavior_per_step(data):
    # No l2 on the transfer matrices here: it would move them at every step.
    model = _model(data, keep_prob=1.0, alternate_tasks=True, transfer_l2=0.0)
    users, positives = _full_batch(data)
    batch = {"user": users, "positives": positives}

    def changed_by_one_step() -> set[str]:
        before = {v.name.split(":")[0]: v.numpy().copy() for v in model.trainable_variables}
        model.train_step(batch)
        return {
            v.name.split(":")[0]
            for v in model.trainable_variables
            if not np.array_equal(before[v.name.split(":")[0]], v.numpy())
        }

    # Step 0 trains view (h_view, P, Q only); step 1 cart; step 2 buy (every transfer).
    assert changed_by_one_step() == {"h_view", "user_embeddings", "item_embeddings"}
    assert changed_by_one_step() == {
        "h_view",
        "user_embeddings",
        "item_embeddings",
        "transfer_view_to_cart",
        "transfer_bias_view_to_cart",
    }
    assert {"transfer_cart_to_buy", "transfer_view_to_buy"} <= changed_by_one_step()


def test_fit_overfits_the_training_data():
    data = random_data(num_users=30, num_items=40, seed=0)
    config = ehcf.EHCFConfig(embedding_dim=16, batch_size=8, keep_prob=1.0, learning_rate=0.1)
    tf.keras.utils.set_random_seed(0)
    spec = registry.get("ehcf")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=40, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    # Training purchases should now rank in each user's top 10 of 40 items; a random
    # ranking puts 25% there.
    scores = model.score_users(tf.range(data.num_users)).numpy()
    top10 = np.argsort(-scores, axis=1)[:, :10]
    target = data.target_train.tolil().rows
    hits = [np.isin(items, top10[u]).mean() for u, items in enumerate(target) if items]
    assert np.mean(hits) > 0.9


def test_dense_loss_trains_through_fit(data):
    config = ehcf.EHCFConfig(embedding_dim=4, batch_size=6, loss="dense")
    model = ehcf.build(data, config)
    _compile(model, config, data)
    history = model.fit(user_batches(data, config), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_checkpoint_restore_and_export_serve_the_same_ranking(data, tmp_path):
    from mbrec_tf.serving.export import export_model

    config = ehcf.EHCFConfig(embedding_dim=4, batch_size=6, keep_prob=1.0)
    model = ehcf.build(data, config)
    _compile(model, config, data)
    model.fit(user_batches(data, config), epochs=2, verbose=0)
    path = tf.train.Checkpoint(model=model, optimizer=model.optimizer).save(str(tmp_path / "ck"))

    restored = ehcf.build(data, config)
    _compile(restored, config, data)
    tf.train.Checkpoint(model=restored, optimizer=restored.optimizer).restore(path)
    # One more step on both: equal only if the Adagrad accumulators were restored too.
    users, positives = _full_batch(data)
    for copy in (model, restored):
        copy.train_step({"user": users, "positives": positives})
    scores = model.score_users(users).numpy()
    np.testing.assert_allclose(restored.score_users(users).numpy(), scores, rtol=1e-6)

    # The exported top-k is the ranking by (p_u ⊙ h_K)·q_v without target-train items.
    served = tf.saved_model.load(export_model(restored, data, str(tmp_path / "export")))
    top = served.signatures["serving_default"](user=tf.constant(data.user_ids))
    masked = np.where(data.known_target_items().toarray() > 0, -np.inf, scores)
    expected = data.item_ids[np.argsort(-masked, axis=1, kind="stable")[:, :10]]
    np.testing.assert_array_equal(top["item_ids"].numpy(), expected)


def test_the_logged_loss_is_the_weighted_squared_error(data):
    model = _model(data, keep_prob=1.0, loss_coefficients=("view:1", "cart:2", "buy:3"))
    users, positives = _full_batch(data)
    logs = model.test_step({"user": users, "positives": positives})
    labels = {b: data.train[b].toarray() for b in BEHAVIORS}
    errors = [
        loss + labels[b].sum()
        for loss, b in zip(_brute_force_losses(model, data), BEHAVIORS, strict=True)
    ]
    expected = np.dot(model.task.loss_coefficients, errors) + float(tf.add_n(model.losses))
    assert float(logs["loss"]) > 0
    assert float(logs["loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(logs["loss/cart"]) == pytest.approx(errors[1], rel=1e-4)
