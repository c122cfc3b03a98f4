"""Regularisers of the discriminator that need gradients with respect to its input."""

from __future__ import annotations

from ragan._tf import import_tf

tf = import_tf()

__all__ = ["gradient_penalty", "path_length_penalty", "r1_penalty"]


def gradient_penalty(critic_fn, real, fake, *, epsilon: float = 1e-10, seed=0, target: float = 1.0):
    """WGAN-GP two-sided gradient penalty ``(||grad_x D(x_hat)||_2 - target)^2`` per example.

    ``x_hat = real + alpha * (fake - real)`` with ``alpha ~ Uniform[0, 1]`` drawn once per example,
    as in the paper (Algorithm 1) and TF-GAN. (keras-io's WGAN-GP tutorial draws ``alpha`` from a
    *normal* distribution, which puts many samples outside the segment between the two images.)

    Args:
        critic_fn: callable mapping a batch of images to scores of shape ``(B,)`` or ``(B, 1)``.
            Call this inside the critic's ``GradientTape``: the penalty is differentiable with
            respect to the critic's weights (double back-propagation).
        real: real images ``(B, H, W, C)``.
        fake: generated images, same shape.
        epsilon: added inside the square root so that its gradient stays finite at a zero
            gradient (TF-GAN's ``epsilon``).
        seed: the randomness of ``alpha``: an int or a shape-``(2,)`` integer tensor (the seed of
            TensorFlow's stateless random ops), so the penalty is deterministic given the seed.
        target: the gradient norm the penalty pulls toward (1 in the paper).

    Returns:
        the penalty per example, float32, shape ``(B,)`` (multiply by ``gp_weight`` yourself).

    Reference:
        Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein
        GANs", Algorithm 1 (lambda = 10).

    Example:
        >>> w = tf.constant([[[[3.0]], [[4.0]]]])            # a linear critic f(x) = <w, x>
        >>> critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])
        >>> real = tf.zeros((2, 2, 1, 1)); fake = tf.ones((2, 2, 1, 1))
        >>> gradient_penalty(critic, real, fake).numpy()   # ||w|| = 5 -> (5 - 1)^2
        array([16., 16.], dtype=float32)
    """
    if isinstance(seed, int):
        seed = tf.constant([seed, 0], dtype=tf.int64)
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    batch = tf.shape(real)[0]
    alpha_shape = tf.concat([[batch], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    alpha = tf.random.stateless_uniform(alpha_shape, seed=seed, dtype=tf.float32)
    interpolated = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolated)
        scores = tf.cast(critic_fn(interpolated), tf.float32)
        scores = tf.reduce_sum(scores)  # per-example scores are independent: d(sum)/dx_i = dD(x_i)/dx_i
    gradients = tape.gradient(scores, interpolated)
    squared = tf.reduce_sum(tf.square(gradients), axis=tf.range(1, tf.rank(gradients)))
    norm = tf.sqrt(squared + epsilon)
    return tf.square(norm - target)


def r1_penalty(discriminator_fn, real):
    """R1 penalty per example: ``||grad_x sum D(x)||^2`` at the real images ``x`` (Mescheder et
    al. 2018), the regulariser of StyleGAN2; multiply it by ``gamma / 2``.

    Differentiable with respect to D's weights (call it inside the tape that trains D).

    Args:
        discriminator_fn: images -> logits (augmentation included, when D sees augmented images).
        real: real images ``(B, H, W, C)``.

    Returns:
        float32 ``(B,)``.

    Example:
        >>> r1_penalty(lambda x: tf.reduce_sum(3.0 * x, axis=[1, 2, 3]), tf.ones([2, 4, 4, 1])).numpy()
        array([144., 144.], dtype=float32)
    """
    real = tf.convert_to_tensor(real)
    with tf.GradientTape() as tape:
        tape.watch(real)
        logits = tf.cast(discriminator_fn(real), tf.float32)
        total = tf.reduce_sum(logits)
    gradients = tf.cast(tape.gradient(total, real), tf.float32)
    return tf.reduce_sum(tf.square(gradients), axis=list(range(1, gradients.shape.rank)))


def path_length_penalty(gradients, pl_mean, *, decay: float = 0.01):
    """StyleGAN2's path-length penalty from the gradients ``J_w^T y`` (Karras et al. 2020, eq. 4).

    ``lengths = sqrt(mean over the ws of ||g||^2)`` per example; the running target is moved
    toward their batch mean, ``target = pl_mean + decay * (mean(lengths) - pl_mean)`` (gradients
    flow through the batch mean, as in the official code), and the penalty is
    ``(lengths - target)^2``.

    Args:
        gradients: ``(B, num_ws, w_dim)``, the gradient of ``sum(G(w) * y)`` with respect to the
            ws for random images ``y ~ N(0, 1/(H*W))``.
        pl_mean: the running mean of path lengths (a scalar).
        decay: how fast the running mean follows.

    Returns:
        ``(penalty (B,), new pl_mean (scalar))``.

    Example:
        >>> penalty, mean = path_length_penalty(tf.ones([2, 3, 4]), 0.0, decay=0.5)
        >>> float(mean), penalty.numpy().tolist()
        (1.0, [1.0, 1.0])
    """
    gradients = tf.cast(gradients, tf.float32)
    lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=2), axis=1))
    pl_mean = tf.cast(pl_mean, tf.float32)
    target = pl_mean + decay * (tf.reduce_mean(lengths) - pl_mean)
    return tf.square(lengths - target), target
