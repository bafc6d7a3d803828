"""BPR (matrix factorisation with the pairwise loss): scoring, penalty, overfitting."""

import numpy as np
import pytest
import tensorflow as tf
from model_helpers import train_hit_rate

from mbrec_tf import registry
from mbrec_tf.data.generated import random_data
from mbrec_tf.models import mf
from mbrec_tf.tasks import SampledTask


def test_bpr_is_factorised_and_its_scores_agree_everywhere():
    model = mf.MatrixFactorization(5, 7, 3, init_std=0.5)
    users = tf.constant([0, 4, 2])
    items = tf.constant([[1, 6], [0, 0], [5, 3]])
    expected = np.einsum(
        "bd,bnd->bn", model.query_embeddings(users), tf.gather(model.item_embeddings(), items)
    )
    np.testing.assert_allclose(model.score_pairs(users, items), expected, rtol=1e-5)
    np.testing.assert_allclose(model.score_pairs(users, items[:, 0]), expected[:, 0], rtol=1e-5)
    all_scores = model.score_users(users).numpy()
    np.testing.assert_allclose(np.take_along_axis(all_scores, items.numpy(), 1), expected, 1e-5)
    assert model.is_factorized


def test_the_l2_penalty_is_added_to_the_pairwise_loss():
    model = mf.MatrixFactorization(3, 4, 2, init_std=0.5, embedding_l2=0.1)
    model.compile(task=SampledTask("pairwise"))
    batch = {
        "user": tf.constant([0, 2]),
        "positive": tf.constant([1, 3]),
        "negatives": tf.constant([[0], [2]]),
    }
    users = model.user_embedding.embeddings.numpy()[[0, 2]]
    items = model.item_embedding.embeddings.numpy()
    positive = (users * items[[1, 3]]).sum(1)
    negative = (users * items[[0, 2]]).sum(1)
    bpr = np.mean(np.log1p(np.exp(negative - positive)))
    penalty = (np.sum(users**2) + np.sum(items[[1, 3]] ** 2) + np.sum(items[[0, 2]] ** 2)) / 2
    task_loss, regularization, _ = model.batch_loss(batch)
    assert float(task_loss + regularization) == pytest.approx(bpr + 0.1 * penalty, rel=1e-5)


def test_bpr_overfits_a_tiny_dataset():
    tf.keras.utils.set_random_seed(0)
    data = random_data(num_users=20, num_items=30, seed=2)
    config = registry.resolve_config(
        "bpr",
        data.name,
        {
            "epochs": 25,
            "batch_size": 16,
            "learning_rate": 0.05,
            "embedding_dim": 16,
            "embedding_l2": 0.0,
        },
    )
    spec = registry.get("bpr")
    model = spec.build(data, config)
    spec.compile(model, data, config)
    history = model.fit(spec.build_inputs(data, config, 0), epochs=config.epochs, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.3 * losses[0]
    assert train_hit_rate(model, data) == 1.0
