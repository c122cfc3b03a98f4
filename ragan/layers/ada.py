"""Adaptive discriminator augmentation (ADA): the StyleGAN2-ADA pipeline as differentiable TF ops.

ADA (Karras et al. 2020) shows every image the discriminator sees, real or generated, through a
chain of random transforms, each applied to each image independently with probability ``p``. The
transforms are "non-leaking" (the generator cannot learn to produce augmented images) as long as
``p`` stays below about 0.8, and ``p`` is steered by :func:`ada_adjust` so that D's over-fitting
heuristic ``E[sign(D(real))]`` stays near a target (0.6).

The pipeline ``"bgc"`` is the paper's (Appendix B), in its order, with its strengths:

=============  ==========================================================================
``xflip``      mirror x, with probability 1/2 when the transform is applied (as the paper)
``rotate90``   rotation by 0, 90, 180 or 270 degrees, uniformly
``xint``       integer translation, uniform up to 0.125 of the side in x and y
``scale``      isotropic scaling, log2-normal with std 0.2
``rotate``     arbitrary rotation, uniform angle; drawn twice (before and after ``aniso``),
               each time with probability ``1 - sqrt(1 - p)`` so that one of them happens
               with probability ``p``
``aniso``      anisotropic scaling (x by s, y by 1/s), log2-normal with std 0.2
``xfrac``      fractional translation, normal with std 0.125 of the side in x and y
``brightness`` add a normal offset with std 0.2
``contrast``   multiply by a log2-normal factor with std 0.5 (around 0, the mid-grey)
``lumaflip``   invert the luma axis (with probability 1/2 when applied)
``hue``        rotate colours around the luma axis by a uniform angle in [-pi, pi]
``saturation`` scale the colour off the luma axis by a log2-normal factor with std 1
=============  ==========================================================================

(``xflip``/``lumaflip`` drawing 0 or 1 when "applied" means that at ``p`` a fraction ``p / 2`` of the
images is actually mirrored, as in the paper and the official code.) Named pipelines are data:
:data:`ADA_PIPELINES` maps ``"bgc"``, ``"bg"``, ``"b"``, ``"g"`` and ``"c"`` to transform names, and
any tuple of names from :data:`ADA_TRANSFORMS` selects a subset (order is always the paper's).

How it is computed:

* The geometric transforms are 3x3 matrices composed per image, then applied in one resampling of
  the image's reflect-padded extension (``symmetric`` in NumPy's terms: ``d c b a | a b c d``).
  Images whose composite is integer-valued (only ``xflip``/``rotate90``/``xint`` applied, or nothing)
  are copied pixel for pixel, exactly. The others are upsampled 2x with a Lanczos-3 low-pass filter,
  resampled bilinearly on that finer grid, and filtered back down, as the official code does to
  limit aliasing (its filter is a ``sym6`` wavelet; ours is symmetric, so that the mirror padding
  commutes with the upsampling and no wide padding is needed; like any sharp low-pass filter it
  rings a little on sharp edges, so values can leave the input's range slightly). Only the images
  that need it pay for this path. The filters are separable, run on one plane per channel, as
  small banded matrix products up to 128 px and convolutions beyond; the resampling is a gather
  whose gradient is the exact adjoint, itself differentiable (R1 through the augmentation works).
  TF's registered gradient of ``ImageProjectiveTransformV3`` is only an approximation (it warps
  the output gradient back with the inverse matrix, ignoring the Jacobian and the mirroring),
  which is why that op is not used: the generator is trained through these gradients.
* The colour transforms are 4x4 matrices on homogeneous RGB, applied as one matrix product. On
  1-channel images they act on the luminance only: brightness adds, contrast scales, luma flip
  negates around 0, hue and saturation are identities.
* ``p == 0`` returns the input tensor itself (``tf.cond``), and images not picked by any transform
  come out bit for bit unchanged.
* Gradients are reproducible bit for bit (on CPU; exact resume relies on it): the gathers'
  gradient is TensorFlow's segment sum, which adds in a fixed order on CPU (a float ``bincount``
  does not).

Randomness is TensorFlow's stateless ops driven by the seed; each transform draws from a sub-seed
folded from its fixed index in :data:`ADA_TRANSFORMS`, so enabling a subset does not change the
draws of the others, and the same seed gives the same output. Everything works on a dynamic batch
inside ``tf.function`` and under ``tf.distribute``.

Reference:
    Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
    Networks with Limited Data" (Appendix B), and NVlabs/stylegan2-ada-pytorch.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ragan._tf import import_tf
from ragan.errors import RaganError, did_you_mean
from ragan.layers.augment import _seed, ada_update

tf = import_tf()

__all__ = ["ADA_PIPELINES", "ADA_TRANSFORMS", "ada_adjust", "ada_augment", "parse_ada_pipeline"]

_BLIT = ("xflip", "rotate90", "xint")
_GEOM = ("scale", "rotate", "aniso", "xfrac")
_COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")

ADA_TRANSFORMS = _BLIT + _GEOM + _COLOR
"""Every transform of the ADA pipeline, in the order they are applied."""

ADA_PIPELINES = {
    "bgc": _BLIT + _GEOM + _COLOR,
    "bg": _BLIT + _GEOM,
    "b": _BLIT,
    "g": _GEOM,
    "c": _COLOR,
}
"""Named pipelines (the official ``--augpipe`` letters: b = pixel blitting, g = general geometric,
c = colour)."""

# Strengths of the official pipeline (stylegan2-ada ``AugmentPipe`` defaults).
_XINT_MAX = 0.125  # of the side
_SCALE_STD = 0.2  # log2
_ROTATE_MAX = 1.0  # of half a turn: uniform in [-pi, pi]
_ANISO_STD = 0.2  # log2
_XFRAC_STD = 0.125  # of the side
_BRIGHTNESS_STD = 0.2
_CONTRAST_STD = 0.5  # log2
_HUE_MAX = 1.0  # of half a turn
_SATURATION_STD = 1.0  # log2

# Lanczos-3 resampling kernel, in units of the original pixel grid.
_LANCZOS_A = 3


def parse_ada_pipeline(pipeline) -> tuple[str, ...]:
    """The transform names of ``pipeline`` (a name of :data:`ADA_PIPELINES` or names of transforms).

    Args:
        pipeline: ``"bgc"``, ``"bg"``, ``"b"``, ``"g"``, ``"c"``, or an iterable of names from
            :data:`ADA_TRANSFORMS` (a comma-separated string works too).

    Returns:
        the names, in the pipeline's fixed order.

    Example:
        >>> parse_ada_pipeline("c")
        ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')
        >>> parse_ada_pipeline(("rotate90", "xflip"))
        ('xflip', 'rotate90')
    """
    if isinstance(pipeline, str) and pipeline.strip() in ADA_PIPELINES:
        return ADA_PIPELINES[pipeline.strip()]
    names = [n.strip() for n in pipeline.split(",")] if isinstance(pipeline, str) else list(pipeline)
    names = [n for n in names if n]
    for name in names:
        if name not in ADA_TRANSFORMS:
            options = tuple(ADA_PIPELINES) + ADA_TRANSFORMS
            raise RaganError(
                f"pipeline: unknown ADA pipeline or transform {name!r}; use one of "
                f"{', '.join(ADA_PIPELINES)} or names among {', '.join(ADA_TRANSFORMS)}."
                f"{did_you_mean(name, options)}"
            )
    if not names:
        raise RaganError(f"pipeline={pipeline!r} is empty; use e.g. 'bgc'.")
    return tuple(n for n in ADA_TRANSFORMS if n in names)


# Both public functions use Python control flow on static values only: keep autograph from
# rewriting them (and everything they call) inside a tf.function, which costs seconds per trace.
@tf.autograph.experimental.do_not_convert
def ada_adjust(probability, sign_mean, *, target: float = 0.6, images_since_last, ada_kimg: float = 500):
    """The ADA controller: the new ``p`` after ``images_since_last`` real images were seen.

    The official rule (run every 4 discriminator steps, from the mean of ``sign(D(real))`` over
    those steps): ``p`` moves by ``images_since_last / (ada_kimg * 1000)`` up when the mean is above
    ``target`` (D is over-fitting), down when below, and stays when equal; it is clipped to [0, 1].
    So ``p`` can go from 0 to 1 in ``ada_kimg`` thousand images. A pure function of tensors, usable
    inside ``tf.function`` (``probability`` may be a ``tf.Variable``: assign the result to it).

    Args:
        probability: the current ``p`` (float, tensor or variable).
        sign_mean: the mean of ``sign(D(real_images))`` since the last adjustment.
        target: the wanted value of that mean (0.6 in the paper).
        images_since_last: how many real images the mean is over (batch size x 4 officially).
        ada_kimg: thousands of images for ``p`` to move by 1 (500 officially).

    Returns:
        the new ``p``, a float32 scalar tensor.

    Example:
        >>> float(ada_adjust(0.5, 0.9, images_since_last=128, ada_kimg=500))  # 0.5 + 128 / 500000
        0.500256...
    """
    if not ada_kimg > 0:
        raise RaganError(f"ada_kimg={ada_kimg!r} must be positive (thousands of images for p to move by 1).")
    step = tf.cast(images_since_last, tf.float32) / (float(ada_kimg) * 1000.0)
    return ada_update(probability, sign_mean, target=target, step=step)


# ---------------------------------------------------------------------------------------------
# Random parameters


def _uniform(seed, batch, low=0.0, high=1.0):
    return tf.random.stateless_uniform([batch], seed=seed, minval=low, maxval=high)


def _normal(seed, batch, std):
    return tf.random.stateless_normal([batch], seed=seed) * std


def _exp2(values):
    return tf.math.exp(values * math.log(2.0))


def _picked(seed, batch, probability):
    """Which images a transform is applied to: each independently with ``probability``."""
    return _uniform(seed, batch) < probability


def _draw(seed, batch, probability, sample, identity):
    """Per-image parameter: ``sample(seed)`` where picked, ``identity`` elsewhere (and the mask)."""
    pick_seed, value_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    picked = _picked(pick_seed, batch, probability)
    value = sample(value_seed)
    return tf.where(picked, value, tf.cast(identity, value.dtype) * tf.ones_like(value)), picked


# ---------------------------------------------------------------------------------------------
# Geometric transforms: each returns the inverse matrix (output pixel -> input pixel, coordinates
# centred on the image, x to the right, y down) of shape (B, 3, 3), and which images it changes.


def _matrices(rows, batch):
    """Stack per-image matrices from rows of entries (Python numbers or (B,) tensors)."""
    ones = tf.ones([batch], tf.float32)
    entries = [entry * ones if not tf.is_tensor(entry) else tf.cast(entry, tf.float32) for row in rows for entry in row]
    return tf.reshape(tf.stack(entries, axis=-1), [batch, len(rows), len(rows[0])])


def _scale_inverse(sx, sy, batch):
    return _matrices([[1 / sx, 0, 0], [0, 1 / sy, 0], [0, 0, 1]], batch)


def _rotation(cos, sin, batch):
    return _matrices([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], batch)


def _translation_inverse(tx, ty, batch):
    return _matrices([[1, 0, -tx], [0, 1, -ty], [0, 0, 1]], batch)


def _xflip(seed, batch, probability, size):
    flip, picked = _draw(seed, batch, probability, lambda s: tf.floor(_uniform(s, batch, 0.0, 2.0)), 0.0)
    return [_scale_inverse(1 - 2 * flip, 1.0, batch)], [picked]


def _rotate90(seed, batch, probability, size):
    quarter, picked = _draw(
        seed, batch, probability, lambda s: tf.random.stateless_uniform([batch], s, 0, 4, dtype=tf.int32), 0
    )
    # Exact cosines and sines of quarter turns (tf.cos(pi / 2) is not exactly 0 in float32).
    cos = tf.gather(tf.constant([1.0, 0.0, -1.0, 0.0]), quarter)
    sin = tf.gather(tf.constant([0.0, 1.0, 0.0, -1.0]), quarter)
    return [_rotation(cos, sin, batch)], [picked]


def _xint(seed, batch, probability, size):
    pick_seed, x_seed, y_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
    picked = _picked(pick_seed, batch, probability)
    shift = [
        tf.where(picked, tf.round(_uniform(s, batch, -_XINT_MAX, _XINT_MAX) * size), 0.0) for s in (x_seed, y_seed)
    ]
    return [_translation_inverse(shift[0], shift[1], batch)], [picked]


def _scale(seed, batch, probability, size):
    scale, picked = _draw(seed, batch, probability, lambda s: _exp2(_normal(s, batch, _SCALE_STD)), 1.0)
    return [_scale_inverse(scale, scale, batch)], [picked]


def _rotate_once(seed, batch, probability):
    angle, picked = _draw(
        seed, batch, probability, lambda s: _uniform(s, batch, -math.pi * _ROTATE_MAX, math.pi * _ROTATE_MAX), 0.0
    )
    return _rotation(tf.cos(angle), tf.sin(angle), batch), picked


def _rotate(seed, batch, probability, size):
    """Two rotations, before and after ``aniso`` (see :func:`_geometric_inverse`), each with
    probability ``1 - sqrt(1 - p)``, so that at least one happens with probability ``p``."""
    per_rotation = 1 - tf.sqrt(tf.clip_by_value(1 - probability, 0.0, 1.0))
    before, after = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    (m1, p1), (m2, p2) = _rotate_once(before, batch, per_rotation), _rotate_once(after, batch, per_rotation)
    return [m1, m2], [p1, p2]


def _aniso(seed, batch, probability, size):
    scale, picked = _draw(seed, batch, probability, lambda s: _exp2(_normal(s, batch, _ANISO_STD)), 1.0)
    return [_scale_inverse(scale, 1 / scale, batch)], [picked]


def _xfrac(seed, batch, probability, size):
    pick_seed, x_seed, y_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=3))
    picked = _picked(pick_seed, batch, probability)
    shift = [tf.where(picked, _normal(s, batch, _XFRAC_STD) * size, 0.0) for s in (x_seed, y_seed)]
    return [_translation_inverse(shift[0], shift[1], batch)], [picked]


_GEOMETRIC = {
    "xflip": _xflip,
    "rotate90": _rotate90,
    "xint": _xint,
    "scale": _scale,
    "rotate": _rotate,
    "aniso": _aniso,
    "xfrac": _xfrac,
}


def _geometric_inverse(names, seeds, batch, probability, size):
    """Composite inverse matrix (B, 3, 3) and whether it may be non-integer, per image."""
    steps = {}
    for name in names:
        steps[name] = _GEOMETRIC[name](seeds[name], batch, probability, size)
    # The paper's order: xflip, rotate90, xint, scale, rotate, aniso, rotate, xfrac.
    order = [
        ("xflip", 0),
        ("rotate90", 0),
        ("xint", 0),
        ("scale", 0),
        ("rotate", 0),
        ("aniso", 0),
        ("rotate", 1),
        ("xfrac", 0),
    ]
    inverse = None
    general = tf.zeros([batch], tf.bool)
    for name, index in order:
        if name not in steps:
            continue
        matrix, picked = steps[name][0][index], steps[name][1][index]
        inverse = matrix if inverse is None else tf.linalg.matmul(inverse, matrix)
        if name in _GEOM:
            general = general | picked
    return inverse, general


# ---------------------------------------------------------------------------------------------
# Resampling


def _reflect(index, length):
    """Map integer pixel indices into [0, length) by mirroring about the edges (d c b a | a b c d)."""
    period = tf.math.floormod(index, 2 * length)
    return tf.where(period >= length, 2 * length - 1 - period, period)


def _source_coordinates(inverse_pixels, out_size, shift=0.0):
    """Input (x, y) + ``shift`` of every output pixel: ``inverse_pixels @ (column, row, 1)``, each
    (N, out, out); one full-size addition per coordinate, the rest on rows and columns."""
    grid = tf.range(out_size, dtype=tf.float32)
    m = inverse_pixels[:, :2, None, :]  # (N, 2, 1, 3)
    along_columns = m[..., 0] * grid + (m[..., 2] + shift)  # (N, 2, out)
    along_rows = m[..., 1] * grid  # (N, 2, out)
    coords = along_columns[:, :, None, :] + along_rows[:, :, :, None]  # (N, 2, out, out)
    return coords[:, 0], coords[:, 1]


def _gather_sum(values, index, weights):
    """``sum_k weights[k] * values[index[k]]`` for a flat ``values`` (``k`` along the first axis,
    so that slices are contiguous); ``weights`` None means one index per output, copied exactly.

    Plain ``tf.gather``: its gradient (a segment sum, deterministic on CPU) is differentiable
    again, so R1 through the augmentation (a gradient of a gradient, inside the compiled training
    step) works. A hand-written adjoint with ``tf.custom_gradient`` was faster but its second
    derivative fails inside ``tf.function``.
    """
    picked = tf.gather(values, index)
    return picked if weights is None else tf.reduce_sum(picked * weights, axis=0)


def _mirror(shifted, length):
    """Fold a continuous pixel coordinate, given plus 1/2, into [-1/2, length - 1/2] by mirroring
    about the edges: bilinear interpolation of the mirrored extension reads the same values there."""
    return (length - 0.5) - tf.abs(tf.math.floormod(shifted, 2.0 * length) - length)


def _sample(planes, inverse_pixels, out_size, *, exact):
    """Sample single-channel ``planes`` (N, S, S) at ``inverse_pixels @ (x, y, 1)`` over an output
    grid of side ``out_size``, bilinearly or, when ``exact``, at the nearest pixel, reading the
    mirrored extension of each plane.
    """
    size = planes.shape[1]
    plane_index = tf.reshape(tf.range(tf.shape(planes)[0]), [-1, 1, 1])
    if exact:
        x, y = _source_coordinates(inverse_pixels, out_size)
        rows = _reflect(tf.cast(tf.round(y), tf.int32), size)
        cols = _reflect(tf.cast(tf.round(x), tf.int32), size)
        return _gather_sum(tf.reshape(planes, [-1]), (plane_index * size + rows) * size + cols, None)
    # Mirrored coordinates lie in [-1/2, S - 1/2]: with the plane padded by one mirrored pixel, the
    # four neighbours of a sample are always inside the padded plane.
    padded = tf.pad(planes, [[0, 0], [1, 1], [1, 1]], mode="SYMMETRIC")
    side = size + 2
    x, y = _source_coordinates(inverse_pixels, out_size, shift=0.5)
    x, y = _mirror(x, size), _mirror(y, size)
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    first = plane_index * side * side + side + 1  # padded index of pixel (0, 0) of each plane
    top_left = tf.cast(y0, tf.int32) * side + tf.cast(x0, tf.int32) + first
    index = top_left[None] + tf.reshape(tf.constant([0, 1, side, side + 1]), [4, 1, 1, 1])
    weights = tf.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    return _gather_sum(tf.reshape(padded, [-1]), index, weights)


def _to_planes(images):
    """(B, S, S, C) -> (B * C, S, S): one plane per channel, so filters and gathers are 1-channel."""
    if images.shape[3] == 1:
        return images[..., 0]
    size = images.shape[1]
    return tf.reshape(tf.transpose(images, [0, 3, 1, 2]), [-1, size, size])


def _from_planes(planes, channels):
    if channels == 1:
        return planes[..., None]
    size = planes.shape[1]
    return tf.transpose(tf.reshape(planes, [-1, channels, size, size]), [0, 2, 3, 1])


def _centred(inverse, size):
    """Turn a matrix on centred coordinates into one on pixel indices of a ``size`` image."""
    centre = (size - 1) / 2
    shift_in = tf.constant([[1, 0, centre], [0, 1, centre], [0, 0, 1]], tf.float32)
    shift_out = tf.constant([[1, 0, -centre], [0, 1, -centre], [0, 0, 1]], tf.float32)
    return shift_in @ inverse @ shift_out


def _lanczos(offsets):
    offsets = np.asarray(offsets, np.float64)
    return np.where(np.abs(offsets) < _LANCZOS_A, np.sinc(offsets) * np.sinc(offsets / _LANCZOS_A), 0.0)


def _upsample_kernels():
    """Two 1-D phase kernels over a (2a + 1)-pixel window: samples at -1/4 and +1/4 of a pixel."""
    window = np.arange(-_LANCZOS_A, _LANCZOS_A + 1)
    phases = [_lanczos(delta - window) for delta in (-0.25, 0.25)]
    return [k / k.sum() for k in phases]


def _downsample_kernel():
    """1-D kernel over the 4a fine samples around a pixel, at offsets -(a - 1/4) ... a - 1/4."""
    kernel = _lanczos(np.arange(4 * _LANCZOS_A) / 2 - (_LANCZOS_A - 0.25))
    return kernel / kernel.sum()


# Margin (in fine-grid pixels) on each side of the resampled fine grid that the downsampling
# kernel reads: output pixel i needs fine samples 2i - (2a - 1) ... 2i + 2a.
_MARGIN = 2 * _LANCZOS_A - 1


# Up to this side the separable filters run as products with small dense banded matrices (the
# mirror padding folded in): much faster than 1-channel convolutions on CPU, with a matrix-product
# gradient. Larger images use convolutions, whose cost does not grow with the side.
_MATRIX_FILTER_MAX_SIZE = 128


@functools.cache
def _upsample_matrix(size):
    """(2S, S) matrix: fine samples from the mirrored extension of one row of S pixels."""
    even, odd = _upsample_kernels()
    matrix = np.zeros((2 * size, size), np.float64)
    for i in range(size):
        for phase, kernel in enumerate((even, odd)):
            for d, weight in zip(range(-_LANCZOS_A, _LANCZOS_A + 1), kernel):
                source = (i + d) % (2 * size)
                matrix[2 * i + phase, source if source < size else 2 * size - 1 - source] += weight
    return matrix.astype(np.float32)


@functools.cache
def _downsample_matrix(size):
    """(S, 2S + 2 margin) matrix: the anti-aliasing kernel with stride 2."""
    kernel = _downsample_kernel()
    matrix = np.zeros((size, 2 * size + 2 * _MARGIN), np.float64)
    for i in range(size):
        matrix[i, 2 * i : 2 * i + len(kernel)] = kernel
    return matrix.astype(np.float32)


def _filter_rows_and_columns(planes, matrix):
    """``matrix @ plane @ matrix.T`` for each plane (N, A, A) with ``matrix`` (B, A)."""
    n, side = tf.shape(planes)[0], planes.shape[1]
    out_side = matrix.shape[0]
    columns = tf.reshape(
        tf.linalg.matmul(tf.reshape(planes, [-1, side]), matrix, transpose_b=True), [n, side, out_side]
    )
    return tf.linalg.matmul(tf.broadcast_to(matrix, [n, out_side, side]), columns)


def _upsample(planes):
    """(N, S, S) -> (N, 2S, 2S), fine sample j at original coordinate j / 2 - 1/4 (separable)."""
    size = planes.shape[1]
    if size <= _MATRIX_FILTER_MAX_SIZE:
        return _filter_rows_and_columns(planes, _upsample_matrix(size))
    even, odd = _upsample_kernels()
    width = len(even)
    kernel = np.stack([even, odd], axis=-1).astype(np.float32)  # (w, 2): the two phases
    n, pad = tf.shape(planes)[0], _LANCZOS_A
    x = tf.pad(planes, [[0, 0], [pad, pad], [pad, pad]], mode="SYMMETRIC")[..., None]
    # Along x: both phases as two output channels, interleaved by the reshape.
    x = tf.nn.conv2d(x, kernel.reshape(1, width, 1, 2), strides=1, padding="VALID")  # (N, S+2p, S, 2)
    x = tf.reshape(x, [n, size + 2 * pad, 2 * size, 1])
    x = tf.nn.conv2d(x, kernel.reshape(width, 1, 1, 2), strides=1, padding="VALID")  # (N, S, 2S, 2)
    return tf.reshape(tf.transpose(x, [0, 1, 3, 2]), [n, 2 * size, 2 * size])


def _downsample(fine):
    """(N, 2S + 2 margin, same) -> (N, S, S): the anti-aliasing kernel with stride 2 (separable)."""
    size = (fine.shape[1] - 2 * _MARGIN) // 2
    if size <= _MATRIX_FILTER_MAX_SIZE:
        return _filter_rows_and_columns(fine, _downsample_matrix(size))
    kernel = _downsample_kernel().astype(np.float32)
    taps = len(kernel)
    x = tf.nn.conv2d(fine[..., None], kernel.reshape(1, taps, 1, 1), strides=[1, 1, 2, 1], padding="VALID")
    x = tf.nn.conv2d(x, kernel.reshape(taps, 1, 1, 1), strides=[1, 2, 1, 1], padding="VALID")
    return x[..., 0]


def _general_resample(planes, inverse):
    """Resample planes (N, S, S) with arbitrary centred inverse matrices (N, 3, 3) on a 2x grid."""
    size = planes.shape[1]
    centre = (size - 1) / 2
    # Output fine index m (margin included) <-> original coordinate m / 2 - 1/4 - margin / 2; input
    # original coordinate u <-> fine index 2u + 1/2.
    out_to_original = tf.constant(
        [[0.5, 0, -0.25 - _MARGIN / 2 - centre], [0, 0.5, -0.25 - _MARGIN / 2 - centre], [0, 0, 1]], tf.float32
    )
    original_to_fine = tf.constant([[2.0, 0, 2 * centre + 0.5], [0, 2.0, 2 * centre + 0.5], [0, 0, 1]], tf.float32)
    pixels = original_to_fine @ inverse @ out_to_original
    return _downsample(_sample(_upsample(planes), pixels, 2 * size + 2 * _MARGIN, exact=False))


def _apply_geometric(images, names, seeds, probability):
    batch, size, channels = tf.shape(images)[0], images.shape[1], images.shape[3]
    inverse, general = _geometric_inverse(names, seeds, batch, probability, float(size))
    if channels > 1:
        inverse, general = tf.repeat(inverse, channels, axis=0), tf.repeat(general, channels, axis=0)
    planes = _to_planes(images)
    out = _sample(planes, _centred(inverse, size), size, exact=True)
    if any(name in _GEOM for name in names):
        # Only the planes with a non-integer transform pay for the 2x resampling.
        def resample_general():
            # dynamic_partition (not gather) so that both tf.cond branches get dense gradients.
            part = tf.cast(general, tf.int32)
            resampled = _general_resample(
                tf.dynamic_partition(planes, part, 2)[1], tf.dynamic_partition(inverse, part, 2)[1]
            )
            return tf.tensor_scatter_nd_update(out, tf.where(general), resampled)

        out = tf.cond(tf.reduce_any(general), resample_general, lambda: out)
    return _from_planes(out, channels)


# ---------------------------------------------------------------------------------------------
# Colour transforms: 4x4 matrices on homogeneous RGB (out = C @ in), or on luminance only.

_LUMA = np.full(3, 1 / math.sqrt(3))


def _color_parameters(names, seeds, batch, probability, channels):
    """Per-image colour parameters, identity values for the images a transform does not pick."""
    samplers = {
        "brightness": (lambda s: _normal(s, batch, _BRIGHTNESS_STD), 0.0),
        "contrast": (lambda s: _exp2(_normal(s, batch, _CONTRAST_STD)), 1.0),
        "lumaflip": (lambda s: tf.floor(_uniform(s, batch, 0.0, 2.0)), 0.0),
        "hue": (lambda s: _uniform(s, batch, -math.pi * _HUE_MAX, math.pi * _HUE_MAX), 0.0),
        "saturation": (lambda s: _exp2(_normal(s, batch, _SATURATION_STD)), 1.0),
    }
    luminance_only = ("hue", "saturation")  # identities on grey images
    return {
        name: _draw(seeds[name], batch, probability, *samplers[name])[0]
        for name in names
        if channels == 3 or name not in luminance_only
    }


def _color_matrix(params, batch):
    """Composite (B, 4, 4) matrix on homogeneous RGB, in the paper's order."""
    identity = tf.eye(4, batch_shape=[batch])
    luma = tf.constant(np.append(_LUMA, 0.0), tf.float32)
    luma_outer = luma[:, None] * luma[None, :]
    spatial = tf.constant(np.diag([1.0, 1.0, 1.0, 0.0]), tf.float32)
    matrix = identity

    def expand(values):
        return tf.reshape(values, [batch, 1, 1])

    if "brightness" in params:
        offset = params["brightness"]
        matrix = _matrices([[1, 0, 0, offset], [0, 1, 0, offset], [0, 0, 1, offset], [0, 0, 0, 1]], batch) @ matrix
    if "contrast" in params:
        matrix = (identity + expand(params["contrast"] - 1) * spatial) @ matrix
    if "lumaflip" in params:  # Householder reflection of the luma axis
        matrix = (identity - 2 * expand(params["lumaflip"]) * luma_outer) @ matrix
    if "hue" in params:  # Rodrigues: rotation around the luma axis
        cos, sin = expand(tf.cos(params["hue"])), expand(tf.sin(params["hue"]))
        vx, vy, vz = _LUMA
        cross = tf.constant([[0, -vz, vy, 0], [vz, 0, -vx, 0], [-vy, vx, 0, 0], [0, 0, 0, 0]], tf.float32)
        matrix = (identity + (cos - 1) * spatial + sin * cross + (1 - cos) * luma_outer) @ matrix
    if "saturation" in params:  # scale the component off the luma axis
        matrix = (identity + expand(params["saturation"] - 1) * (spatial - luma_outer)) @ matrix
    return matrix


def _apply_color(images, names, seeds, probability):
    batch, channels = tf.shape(images)[0], images.shape[3]
    params = _color_parameters(names, seeds, batch, probability, channels)
    if channels == 3:
        matrix = _color_matrix(params, batch)
        pixels = tf.reshape(images, [batch, -1, 3])
        out = tf.linalg.matmul(pixels, matrix[:, :3, :3], transpose_b=True) + matrix[:, None, :3, 3]
        return tf.reshape(out, tf.shape(images))
    # Luminance only: ((x + brightness) * contrast) * (+1 or -1); computed directly so that the
    # flip is exactly a negation and unpicked images stay exactly unchanged.
    gain = params.get("contrast", tf.ones([batch])) * (1 - 2 * params.get("lumaflip", tf.zeros([batch])))
    offset = params.get("brightness", tf.zeros([batch])) * gain
    return images * tf.reshape(gain, [batch, 1, 1, 1]) + tf.reshape(offset, [batch, 1, 1, 1])


# ---------------------------------------------------------------------------------------------


def _check_images(images):
    shape = images.shape
    if shape.rank != 4 or shape[1] is None or shape[2] is None or shape[3] not in (1, 3):
        raise RaganError(f"ada_augment: images must be (batch, size, size, 1 or 3) with a known size; got {shape}.")
    if not images.dtype.is_floating:
        raise RaganError(f"ada_augment: images must be floating point (in [-1, 1]); got {images.dtype.name}.")
    if shape[1] != shape[2]:
        raise RaganError(f"ada_augment: images must be square; got {shape[1]}x{shape[2]}.")
    if shape[1] < 4:
        raise RaganError(f"ada_augment: images must be at least 4 pixels wide; got {shape[1]}.")


def _augment(images, probability, seed, names):
    seeds = {
        name: tf.random.experimental.stateless_fold_in(seed, index)
        for index, name in enumerate(ADA_TRANSFORMS)
        if name in names
    }
    x = images
    geometric = [n for n in names if n in _GEOMETRIC]
    if geometric:
        x = _apply_geometric(x, geometric, seeds, probability)
    color = [n for n in names if n in _COLOR and (x.shape[3] == 3 or n not in ("hue", "saturation"))]
    if color:
        x = _apply_color(x, color, seeds, probability)
    return x


@tf.autograph.experimental.do_not_convert
def ada_augment(images, probability, seed, *, pipeline="bgc"):
    """Augment each image with the ADA pipeline, each transform applied with probability ``p``.

    Args:
        images: ``(B, S, S, C)`` float images in [-1, 1], square, ``C`` 1 or 3; ``B`` may be
            dynamic (``None``).
        probability: ADA's ``p`` in [0, 1] (Python float, scalar tensor or ``tf.Variable``).
        seed: a shape-``(2,)`` integer tensor (or an int) for TensorFlow's stateless random ops;
            the same seed gives the same output.
        pipeline: a name of :data:`ADA_PIPELINES` (``"bgc"``, the paper's; ``"bg"`` geometric only;
            ``"c"`` colour only; ``"b"``; ``"g"``) or a tuple of names from :data:`ADA_TRANSFORMS`.

    Returns:
        the augmented images, same shape and dtype, differentiable with respect to ``images``
        (exact gradients; the generator is trained through this). At ``p == 0`` the input itself.

    Example:
        >>> images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
        >>> seed = tf.constant([7, 0])
        >>> augmented = ada_augment(images, 0.2, seed)
        >>> augmented.shape
        TensorShape([2, 16, 16, 1])
        >>> flipped = ada_augment(images, 1.0, seed, pipeline=("xflip",))
        >>> bool(np.allclose(flipped, images[:, :, ::-1]))
        True
    """
    names = parse_ada_pipeline(pipeline)
    images = tf.convert_to_tensor(images)
    _check_images(images)
    if isinstance(probability, (int, float)) and probability <= 0:
        return images
    seed = _seed(seed)
    dtype = images.dtype
    p = tf.cast(probability, tf.float32)

    def augment():
        return tf.cast(_augment(tf.cast(images, tf.float32), p, seed, names), dtype)

    return tf.cond(p > 0, augment, lambda: tf.identity(images))
