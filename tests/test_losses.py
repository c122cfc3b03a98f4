"""Loss maths against NumPy formulas and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from ragan._tf import import_tf
from ragan.losses import (
    auxiliary_classifier_loss,
    dcgan_discriminator_loss,
    dcgan_generator_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)

tf = import_tf()

rng = np.random.default_rng(0)
REAL = rng.normal(0, 3, size=(7, 1)).astype(np.float32)
FAKE = rng.normal(0, 3, size=(7, 1)).astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def numpy_bce(logits, target):
    p = sigmoid(logits)
    return -(target * np.log(p) + (1 - target) * np.log(1 - p))


def as_numpy(tensor):
    return np.asarray(tensor)


def test_dcgan_losses_are_binary_cross_entropy_from_logits():
    np.testing.assert_allclose(as_numpy(dcgan_generator_loss(FAKE)), numpy_bce(FAKE, 1).ravel(), rtol=1e-5)
    expected = numpy_bce(REAL, 1) + numpy_bce(FAKE, 0)
    np.testing.assert_allclose(as_numpy(dcgan_discriminator_loss(REAL, FAKE)), expected.ravel(), rtol=1e-5)
    smoothed = numpy_bce(REAL, 0.9) + numpy_bce(FAKE, 0)
    np.testing.assert_allclose(
        as_numpy(dcgan_discriminator_loss(REAL, FAKE, real_label_smoothing=0.1)), smoothed.ravel(), rtol=1e-5
    )


def test_dcgan_losses_stay_finite_for_extreme_logits():
    logits = np.array([-200.0, 200.0], np.float32)
    assert np.all(np.isfinite(as_numpy(dcgan_discriminator_loss(logits, logits))))
    np.testing.assert_allclose(as_numpy(dcgan_generator_loss(logits)), [200.0, 0.0], atol=1e-5)


def test_wasserstein_and_hinge_losses_match_numpy():
    real, fake = REAL.ravel(), FAKE.ravel()
    np.testing.assert_allclose(as_numpy(wasserstein_generator_loss(FAKE)), -fake, rtol=1e-6)
    np.testing.assert_allclose(as_numpy(wasserstein_discriminator_loss(REAL, FAKE)), fake - real, rtol=1e-6)
    np.testing.assert_allclose(as_numpy(hinge_generator_loss(FAKE)), -fake, rtol=1e-6)
    expected = np.maximum(0, 1 - real) + np.maximum(0, 1 + fake)
    np.testing.assert_allclose(as_numpy(hinge_discriminator_loss(REAL, FAKE)), expected, rtol=1e-6)


def test_auxiliary_classifier_loss_is_softmax_cross_entropy():
    logits = rng.normal(size=(5, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(5), labels]
    np.testing.assert_allclose(as_numpy(auxiliary_classifier_loss(logits, labels)), expected, rtol=1e-5)
    np.testing.assert_allclose(as_numpy(auxiliary_classifier_loss(logits, labels[:, None])), expected, rtol=1e-5)


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_losses_are_per_example_float32(shape):
    logits = np.zeros(shape, np.float16)
    for loss in (dcgan_generator_loss, wasserstein_generator_loss, hinge_generator_loss):
        out = loss(logits)
        assert tuple(out.shape) == (6,) and out.dtype == tf.float32
    for loss in (dcgan_discriminator_loss, wasserstein_discriminator_loss, hinge_discriminator_loss):
        out = loss(logits, logits)
        assert tuple(out.shape) == (6,) and out.dtype == tf.float32


def linear_critic(weights):
    w = tf.constant(weights)
    return lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    # f(x) = <w, x> has gradient w everywhere, so the penalty is (|w| - 1)^2 whatever alpha is.
    weights = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    real = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
    fake = rng.normal(size=(5, 4, 4, 2)).astype(np.float32)
    penalty = as_numpy(gradient_penalty(linear_critic(weights), real, fake, seed=3))
    expected = (np.linalg.norm(weights) - 1.0) ** 2
    assert penalty.shape == (5,)
    np.testing.assert_allclose(penalty, np.full(5, expected), rtol=1e-5)


def test_gradient_penalty_interpolates_uniformly_between_real_and_fake():
    # f(x) = |x|^2 / 2 has gradient x. With real = 0 and fake = a vector of norm 1, x_hat = alpha *
    # fake, so penalty = (alpha - 1)^2 reveals each alpha: they must be Uniform[0, 1] (a normal
    # alpha, as in keras-io's tutorial, would fall outside [0, 1] a third of the time).
    n = 4000
    real = np.zeros((n, 2, 2, 1), np.float32)
    fake = np.full((n, 2, 2, 1), 0.5, np.float32)  # norm 1
    penalty = as_numpy(
        gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3]), real, fake, seed=7, epsilon=0.0)
    )
    alpha = 1.0 - np.sqrt(penalty)  # alpha <= 1, so |alpha - 1| = 1 - alpha
    assert alpha.min() >= -1e-6 and alpha.max() <= 1 + 1e-6
    assert abs(alpha.mean() - 0.5) < 0.03
    assert abs(alpha.var() - 1 / 12) < 0.01
    # Deterministic given the seed, different for another seed.
    again = as_numpy(
        gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3]), real, fake, seed=7, epsilon=0.0)
    )
    np.testing.assert_array_equal(penalty, again)
    other = as_numpy(
        gradient_penalty(lambda x: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3]), real, fake, seed=8, epsilon=0.0)
    )
    assert not np.array_equal(penalty, other)


def test_gradient_penalty_epsilon_keeps_the_gradient_finite_at_a_flat_critic():
    scale = tf.Variable(0.0)
    real = np.ones((3, 2, 2, 1), np.float32)
    fake = -real

    def penalty_gradient(epsilon):
        with tf.GradientTape() as tape:
            penalty = gradient_penalty(
                lambda x: scale * tf.reduce_sum(x, axis=[1, 2, 3]), real, fake, epsilon=epsilon, seed=0
            )
            total = tf.reduce_sum(penalty)
        return as_numpy(tape.gradient(total, scale)), as_numpy(penalty)

    gradient, penalty = penalty_gradient(1e-10)
    assert np.isfinite(gradient)
    np.testing.assert_allclose(penalty, 1.0, rtol=1e-4)  # (0 - 1)^2
    unstable, _ = penalty_gradient(0.0)
    assert not np.isfinite(unstable)  # why the epsilon is there


def test_gradient_penalty_is_differentiable_with_respect_to_the_critic():
    # For f(x) = c * sum(x) over d pixels, |grad| = |c| sqrt(d): d/dc (c sqrt(d) - 1)^2 at c=1.
    scale = tf.Variable(1.0)
    real = np.zeros((2, 2, 2, 1), np.float32)
    fake = np.ones((2, 2, 2, 1), np.float32)
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(lambda x: scale * tf.reduce_sum(x, axis=[1, 2, 3]), real, fake, seed=0)
        total = tf.reduce_mean(penalty)
    d = 4
    np.testing.assert_allclose(as_numpy(penalty), (np.sqrt(d) - 1) ** 2, rtol=1e-5)
    np.testing.assert_allclose(as_numpy(tape.gradient(total, scale)), 2 * (np.sqrt(d) - 1) * np.sqrt(d), rtol=1e-5)
