"""Pairwise and pointwise sampled losses against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mbrec_tf.tasks import sampled


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


POSITIVE = tf.constant([0.0, 1.0])
NEGATIVE = tf.constant([[0.0, 1.0], [-1.0, 3.0]])


def test_pairwise_loss_is_the_mean_bpr_loss_over_every_negative():
    expected = np.mean([_softplus(0.0), _softplus(1.0), _softplus(-2.0), _softplus(2.0)])
    assert float(sampled.pairwise_loss(POSITIVE, NEGATIVE)) == pytest.approx(expected, rel=1e-6)
    # softplus(s_neg - s_pos) is -log sigmoid(s_pos - s_neg).
    bpr = -np.log(1 / (1 + np.exp(-(POSITIVE.numpy()[:, None] - NEGATIVE.numpy()))))
    assert float(sampled.pairwise_loss(POSITIVE, NEGATIVE)) == pytest.approx(bpr.mean(), rel=1e-6)


def test_pointwise_loss_is_the_mean_log_loss_of_positives_and_negatives():
    terms = [_softplus(-0.0), _softplus(0.0), _softplus(1.0)]  # example 1: label 1, 0, 0
    terms += [_softplus(-1.0), _softplus(-1.0), _softplus(3.0)]  # example 2
    got = float(sampled.pointwise_loss(POSITIVE, NEGATIVE))
    assert got == pytest.approx(np.mean(terms), rel=1e-6)


def test_sample_weights_give_a_weighted_mean_over_examples():
    first = float(sampled.pairwise_loss(POSITIVE[:1], NEGATIVE[:1]))
    weighted = sampled.pairwise_loss(POSITIVE, NEGATIVE, sample_weight=tf.constant([1.0, 0.0]))
    assert float(weighted) == pytest.approx(first, rel=1e-6)


def test_pairwise_gradient_pushes_positives_up_and_negatives_down():
    positive = tf.Variable([0.5])
    negative = tf.Variable([[0.0, 2.0]])
    with tf.GradientTape() as tape:
        loss = sampled.pairwise_loss(positive, negative)
    grad_positive, grad_negative = tape.gradient(loss, [positive, negative])
    sigmoid = 1 / (1 + np.exp(-np.array([-0.5, 1.5])))  # sigmoid(s_neg - s_pos)
    np.testing.assert_allclose(grad_negative.numpy()[0], sigmoid / 2, rtol=1e-6)
    np.testing.assert_allclose(grad_positive.numpy(), [-sigmoid.sum() / 2], rtol=1e-6)


def test_task_computes_the_named_loss_and_updates_its_metrics():
    metric = tf.keras.metrics.Mean()
    task = sampled.SampledTask("pointwise", loss_metrics=[metric])
    loss, _ = task({}, {"scores": tf.concat([POSITIVE[:, None], NEGATIVE], axis=1)})
    assert float(loss) == pytest.approx(float(sampled.pointwise_loss(POSITIVE, NEGATIVE)))
    assert float(metric.result()) == pytest.approx(float(loss))
    assert task.get_config()["loss"] == "pointwise"
    with pytest.raises(ValueError, match="unknown sampled loss 'dense'"):
        sampled.SampledTask("dense")
