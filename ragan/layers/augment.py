"""Differentiable augmentation of the discriminator's inputs, for GANs trained on few images.

With a few hundred images a discriminator memorises the training set and the generator stops
learning. DiffAugment (Zhao et al. 2020) applies the same random, *differentiable* transforms to
real and generated images before D sees them, so D cannot memorise and G still receives gradients
through the transforms. ADA (Karras et al. 2020) applies each transform with a probability ``p``
that is raised while D over-fits (``E[sign(D(real))]`` above a target) and lowered otherwise.

Randomness comes only from TensorFlow's stateless ops driven by an explicit seed (the GAN draws
it from its ``keras.random.SeedGenerator``), so a run is deterministic given its seed.

References:
    Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training".
    Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
    Networks with Limited Data".
"""

from __future__ import annotations

from ragan._tf import import_tf
from ragan.errors import RaganError, did_you_mean

tf = import_tf()

__all__ = [
    "AUGMENTATIONS",
    "ada_update",
    "diff_augment",
    "parse_augment_policy",
    "random_color",
    "random_cutout",
    "random_translation",
]

AUGMENTATIONS = ("color", "translation", "cutout")


def parse_augment_policy(policy) -> tuple[str, ...]:
    """Split a policy such as ``"color,translation"`` into its augmentations, checking names.

    Example:
        >>> parse_augment_policy("color, cutout")
        ('color', 'cutout')
    """
    names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else list(policy)
    names = [n for n in names if n]
    for name in names:
        if name not in AUGMENTATIONS:
            raise RaganError(
                f"augment_policy: unknown augmentation {name!r}; choose among "
                f"{', '.join(AUGMENTATIONS)} (comma-separated).{did_you_mean(name, AUGMENTATIONS)}"
            )
    if not names:
        raise RaganError(f"augment_policy={policy!r} is empty; use e.g. 'color,translation,cutout'.")
    return tuple(dict.fromkeys(names))


def as_seed(seed):
    """A stateless-random seed tensor from an int (``[seed, 0]``) or a seed tensor (unchanged)."""
    if isinstance(seed, int):
        return tf.constant([seed, 0], dtype=tf.int64)
    return seed


_seed = as_seed  # the name layers/ada.py imports until it uses as_seed


def _per_image_uniform(images, seed, low=0.0, high=1.0):
    shape = tf.stack([tf.shape(images)[0], 1, 1, 1])
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high, dtype=images.dtype)


def random_color(images, seed):
    """DiffAugment's colour transform: random brightness (+U[-0.5, 0.5)), saturation (x U[0, 2),
    RGB only) and contrast (x U[0.5, 1.5)) per image, for images in [-1, 1].

    Args:
        images: ``(B, H, W, C)`` float images.
        seed: an int or shape-``(2,)`` integer tensor.
    """
    seeds = tf.random.experimental.stateless_split(as_seed(seed), num=3)
    x = images + _per_image_uniform(images, seeds[0], -0.5, 0.5)
    if images.shape[-1] != 1:  # saturation is a no-op on one channel
        mean = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean) * _per_image_uniform(images, seeds[1], 0.0, 2.0) + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * _per_image_uniform(images, seeds[2], 0.5, 1.5) + mean


def _geometry(images, seed, ratio: float):
    """What the geometric augmentations draw with: two seeds, the batch size, the height and width, and
    ``ratio`` of the height and of the width in whole pixels."""
    seeds = tf.random.experimental.stateless_split(as_seed(seed), num=2)
    height, width = images.shape[1], images.shape[2]
    return seeds, tf.shape(images)[0], height, width, int(height * ratio + 0.5), int(width * ratio + 0.5)


def random_translation(images, seed, ratio: float = 0.125):
    """Shift each image by up to ``ratio`` of its size in x and y, filling with zeros.

    Args:
        images: ``(B, H, W, C)`` float images (square or not).
        seed: an int or shape-``(2,)`` integer tensor.
        ratio: the largest shift as a fraction of the side.
    """
    seeds, batch, height, width, shift_y, shift_x = _geometry(images, seed, ratio)
    dy = tf.random.stateless_uniform([batch, 1], seeds[0], -shift_y, shift_y + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([batch, 1], seeds[1], -shift_x, shift_x + 1, dtype=tf.int32)
    # Read pixel (y + dy, x + dx) from the image padded by one zero pixel; out-of-range indices are
    # clamped onto that zero border. Gathers keep the op differentiable with respect to pixels.
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = tf.clip_by_value(tf.range(height)[None, :] + dy + 1, 0, height + 1)
    cols = tf.clip_by_value(tf.range(width)[None, :] + dx + 1, 0, width + 1)
    shifted = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(shifted, cols, axis=2, batch_dims=1)


def random_cutout(images, seed, ratio: float = 0.5):
    """Zero a random square of ``ratio`` times the side in each image.

    Args:
        images: ``(B, H, W, C)`` float images.
        seed: an int or shape-``(2,)`` integer tensor.
        ratio: side of the square relative to the image side.
    """
    seeds, batch, height, width, size_y, size_x = _geometry(images, seed, ratio)
    top = tf.random.stateless_uniform([batch, 1], seeds[0], 0, height, dtype=tf.int32) - size_y // 2
    left = tf.random.stateless_uniform([batch, 1], seeds[1], 0, width, dtype=tf.int32) - size_x // 2
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    inside_rows = (rows >= top) & (rows < top + size_y)  # (B, H)
    inside_cols = (cols >= left) & (cols < left + size_x)  # (B, W)
    inside = inside_rows[:, :, None] & inside_cols[:, None, :]
    keep = tf.cast(tf.logical_not(inside), images.dtype)[..., None]
    return images * keep


_TRANSFORMS = {"color": random_color, "translation": random_translation, "cutout": random_cutout}


def diff_augment(images, *, policy=AUGMENTATIONS, probability=1.0, seed=0):
    """Apply each augmentation of ``policy`` to each image with probability ``probability``.

    Args:
        images: ``(B, H, W, C)`` float images in [-1, 1].
        policy: augmentation names (see :data:`AUGMENTATIONS`) or a comma-separated string.
        probability: a float or scalar tensor in [0, 1]; each transform is applied to each image
            independently with this probability (1 = DiffAugment, a variable ``p`` = ADA).
        seed: an int or shape-``(2,)`` integer tensor; the same seed gives the same transforms.

    Returns:
        the augmented images, same shape and dtype, differentiable with respect to ``images``.

    Example:
        >>> images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
        >>> augmented = diff_augment(images, policy="translation,cutout", seed=3)
        >>> augmented.shape, augmented.dtype.name
        (TensorShape([2, 16, 16, 1]), 'float32')
        >>> bool(np.array_equal(augmented, diff_augment(images, policy="translation,cutout", seed=3)))
        True
    """
    names = parse_augment_policy(policy)
    seeds = tf.random.experimental.stateless_split(as_seed(seed), num=2 * len(names))
    always = isinstance(probability, (int, float)) and probability >= 1
    x = images
    for index, name in enumerate(names):
        transformed = _TRANSFORMS[name](x, seeds[2 * index])
        if always:
            x = transformed
        else:
            chosen = _per_image_uniform(x, seeds[2 * index + 1]) < tf.cast(probability, x.dtype)
            x = tf.where(chosen, transformed, x)
    return x


def ada_update(probability, real_sign_mean, *, target: float, step: float):
    """The ADA controller: move ``p`` by ``step`` toward more augmentation when D over-fits.

    Args:
        probability: the current ``p`` (scalar tensor).
        real_sign_mean: ``E[sign(D(real))]`` over the batch (the over-fitting heuristic r_t).
        target: the wanted ``r_t`` (0.6 in the paper).
        step: how much ``p`` moves per update (batch size / images needed to go from 0 to 1).

    Returns:
        the new ``p``, clipped to [0, 1].

    Example:
        >>> round(float(ada_update(0.5, 0.9, target=0.6, step=0.01)), 6)
        0.51
    """
    direction = tf.sign(tf.cast(real_sign_mean, tf.float32) - target)
    return tf.clip_by_value(tf.cast(probability, tf.float32) + direction * step, 0.0, 1.0)
