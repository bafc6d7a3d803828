"""GMF / MLP / NeuMF: scoring paths agree, pre-training, config checks, overfitting."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models import layers, ncf


def _model(mode: str) -> ncf.NCF:
    tf.keras.utils.set_random_seed(1)
    return ncf.NCF(6, 9, mode, mf_dim=3, mlp_dim=4, hidden_layers=(5, 3), init_std=0.5)


@pytest.mark.parametrize("mode", ncf.MODES)
def test_score_users_agrees_with_score_pairs_also_in_chunks(mode, monkeypatch):
    model = _model(mode)
    users = tf.constant([5, 0, 3, 3, 1])
    all_items = tf.tile(tf.range(9)[None, :], [5, 1])
    expected = model.score_pairs(users, all_items).numpy()
    np.testing.assert_allclose(model.score_users(users), expected, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr(layers, "SCORE_BUDGET", 20)  # one user per chunk
    scores = tf.function(model.score_users)(users)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    single = model.score_pairs(users, all_items[:, 4]).numpy()
    np.testing.assert_allclose(single, expected[:, 4], rtol=1e-5, atol=1e-6)


def test_only_gmf_is_factorised_and_its_vectors_reproduce_the_scores():
    assert [_model(m).is_factorized for m in ncf.MODES] == [True, False, False]
    model = _model("gmf")
    users = tf.constant([0, 2])
    product = model.query_embeddings(users) @ tf.transpose(model.item_embeddings())
    expected = model.score_pairs(users, tf.tile(tf.range(9)[None, :], [2, 1]))
    np.testing.assert_allclose(product, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError):
        _model("mlp").query_embeddings(users)


def test_neumf_from_pretrained_runs_averages_their_logits(tmp_path):
    gmf, mlp = _model("gmf"), _model("mlp")
    for name, model in (("gmf_run", gmf), ("mlp_run", mlp)):
        tf.train.Checkpoint(model=model).save(str(tmp_path / name / "checkpoints" / "ckpt"))
    data = random_data(num_users=6, num_items=9, seed=0)
    config = registry.resolve_config(
        "neumf",
        data.name,
        {
            "mf_dim": 3,
            "mlp_dim": 4,
            "hidden_layers": (5, 3),
            "pretrained_gmf": str(tmp_path / "gmf_run"),
            "pretrained_mlp": str(tmp_path / "mlp_run"),
        },
    )
    neumf = registry.get("neumf").build(data, config)
    users, items = tf.constant([0, 1, 5]), tf.constant([[2, 8], [0, 1], [4, 4]])
    expected = 0.5 * gmf.score_pairs(users, items) + 0.5 * mlp.score_pairs(users, items)
    np.testing.assert_allclose(neumf.score_pairs(users, items), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ncf.restore_weights(_model("gmf"), str(tmp_path / "missing"))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="loss must be one of"):
        registry.resolve_config("neumf", "x", {"loss": "dense"})
    with pytest.raises(ValueError, match="negative_sampler"):
        registry.resolve_config("gmf", "x", {"negative_sampler": "popular"})
    with pytest.raises(ValueError, match="hidden_layers"):
        registry.resolve_config("mlp", "x", {"hidden_layers": ()})
    with pytest.raises(ValueError, match="given together"):
        registry.resolve_config("neumf", "x", {"pretrained_gmf": "/tmp/run"})


@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf"])
def test_each_mode_overfits_a_tiny_dataset(name):
    tf.keras.utils.set_random_seed(0)
    data = random_data(num_users=20, num_items=30, seed=2)
    config = registry.resolve_config(
        name,
        data.name,
        {
            "epochs": 40,
            "batch_size": 32,
            "learning_rate": 0.03,
            "mf_dim": 16,
            "mlp_dim": 16,
            "hidden_layers": (32, 16),
        },
    )
    spec = registry.get(name)
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=config.epochs, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert train_hit_rate(model, data) == 1.0
