"""Adversarial losses as pure functions of logits.

Every function returns one loss per example (shape ``(B,)``) so that the caller decides how to
reduce it: a GAN's train step divides the per-replica sum by the *global* batch size, which keeps
the gradients right under ``tf.distribute`` (Keras sums replica gradients). Logits may have shape
``(B,)`` or ``(B, 1)``; any trailing axes are averaged. Losses are computed in float32 whatever the
logits' dtype (mixed precision keeps its float16 activations out of the loss maths).

Conventions, with ``D`` the discriminator's (critic's) logit:

========================  ==========================================  ============================
family                    discriminator loss                          generator loss
========================  ==========================================  ============================
``dcgan`` (BCE, [1])      ``softplus(-D(x)) + softplus(D(G(z)))``     ``softplus(-D(G(z)))``
``wasserstein`` ([2])     ``D(G(z)) - D(x)``                          ``-D(G(z))``
``hinge`` ([3])           ``relu(1 - D(x)) + relu(1 + D(G(z)))``      ``-D(G(z))``
========================  ==========================================  ============================

References:
    [1] Goodfellow et al. 2014, "Generative Adversarial Nets" (the non-saturating generator loss);
        Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional GANs".
    [2] Arjovsky et al. 2017, "Wasserstein GAN"; Gulrajani et al. 2017, "Improved Training of
        Wasserstein GANs".
    [3] Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for GANs".
"""

from __future__ import annotations

from ragan._tf import import_keras

keras = import_keras()
ops = keras.ops

__all__ = [
    "auxiliary_classifier_loss",
    "dcgan_discriminator_loss",
    "dcgan_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "per_example",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
]


def per_example(logits):
    """``logits`` as float32 with shape ``(B,)`` (trailing axes averaged)."""
    logits = ops.cast(logits, "float32")
    if len(logits.shape) == 1:
        return logits
    if len(logits.shape) == 2 and logits.shape[-1] == 1:
        return ops.squeeze(logits, axis=-1)
    return ops.mean(ops.reshape(logits, (ops.shape(logits)[0], -1)), axis=-1)


def dcgan_generator_loss(fake_logits):
    """Non-saturating generator loss: binary cross-entropy of ``D(G(z))`` against "real".

    Args:
        fake_logits: the discriminator's logits on generated images, shape ``(B,)`` or ``(B, 1)``.

    Returns:
        ``softplus(-fake_logits)`` = ``-log(sigmoid(D(G(z))))`` per example, shape ``(B,)``.

    Example:
        >>> np.asarray(dcgan_generator_loss(np.array([0.0])))  # -log(0.5)
        array([0.6931472], dtype=float32)
    """
    return ops.softplus(-per_example(fake_logits))


def dcgan_discriminator_loss(real_logits, fake_logits, *, real_label_smoothing: float = 0.0):
    """Binary cross-entropy from logits: real images labelled 1, generated ones 0.

    Args:
        real_logits: logits on real images, shape ``(B,)`` or ``(B, 1)``.
        fake_logits: logits on generated images (same batch size).
        real_label_smoothing: one-sided label smoothing (Salimans et al. 2016): the real target
            becomes ``1 - real_label_smoothing``. 0 is the plain DCGAN loss.

    Returns:
        ``BCE(real, 1 - s) + BCE(fake, 0)`` per example, shape ``(B,)``.

    Example:
        >>> np.asarray(dcgan_discriminator_loss(np.array([0.0]), np.array([0.0])))  # 2 * log 2
        array([1.3862944], dtype=float32)
    """
    real = per_example(real_logits)
    fake = per_example(fake_logits)
    target = 1.0 - real_label_smoothing
    # BCE(x, t) from logits = t * softplus(-x) + (1 - t) * softplus(x), stable for large |x|.
    real_term = target * ops.softplus(-real)
    if real_label_smoothing:
        real_term = real_term + (1.0 - target) * ops.softplus(real)
    return real_term + ops.softplus(fake)


def wasserstein_generator_loss(fake_logits):
    """WGAN generator loss ``-D(G(z))`` per example.

    Args:
        fake_logits: the critic's scores on generated images.

    Example:
        >>> np.asarray(wasserstein_generator_loss(np.array([2.0, -1.0])))
        array([-2.,  1.], dtype=float32)
    """
    return -per_example(fake_logits)


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """WGAN critic loss ``D(G(z)) - D(x)`` per example (minimising it maximises the estimate
    of the Wasserstein-1 distance, ``mean(D(x)) - mean(D(G(z)))``).

    Args:
        real_logits: the critic's scores on real images.
        fake_logits: the critic's scores on generated images (same batch size).

    Example:
        >>> np.asarray(wasserstein_discriminator_loss(np.array([3.0]), np.array([1.0])))
        array([-2.], dtype=float32)
    """
    return per_example(fake_logits) - per_example(real_logits)


def hinge_generator_loss(fake_logits):
    """Hinge-GAN generator loss ``-D(G(z))`` per example (Lim & Ye 2017; Miyato et al. 2018).

    Args:
        fake_logits: the discriminator's logits on generated images.

    Example:
        >>> np.asarray(hinge_generator_loss(np.array([0.5])))
        array([-0.5], dtype=float32)
    """
    return -per_example(fake_logits)


def hinge_discriminator_loss(real_logits, fake_logits):
    """Hinge discriminator loss ``relu(1 - D(x)) + relu(1 + D(G(z)))`` per example.

    Args:
        real_logits: logits on real images.
        fake_logits: logits on generated images (same batch size).

    Example:
        >>> np.asarray(hinge_discriminator_loss(np.array([0.5]), np.array([-2.0])))
        array([0.5], dtype=float32)
    """
    return ops.relu(1.0 - per_example(real_logits)) + ops.relu(1.0 + per_example(fake_logits))


def auxiliary_classifier_loss(class_logits, labels):
    """AC-GAN auxiliary classifier loss: softmax cross-entropy of the class head per example.

    Args:
        class_logits: the auxiliary head's logits, shape ``(B, num_classes)``.
        labels: integer class labels, shape ``(B,)`` or ``(B, 1)``.

    Returns:
        ``-log softmax(class_logits)[label]`` per example, shape ``(B,)``.

    Reference:
        Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs".

    Example:
        >>> np.asarray(auxiliary_classifier_loss(np.array([[0.0, 0.0]]), np.array([1])))  # log 2
        array([0.6931472], dtype=float32)
    """
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    return keras.losses.sparse_categorical_crossentropy(labels, ops.cast(class_logits, "float32"), from_logits=True)
