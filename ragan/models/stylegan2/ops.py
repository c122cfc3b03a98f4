"""Tensor operations of StyleGAN2, in TensorFlow and channels-last (NHWC) layout.

* :func:`setup_filter` / :func:`upfirdn2d`: pad, upsample (zero insertion), FIR-filter and
  downsample a batch of images (the resampling of Karras et al. 2020: a [1, 3, 3, 1] binomial
  low-pass filter applied whenever the resolution changes, so that the networks do not alias).
* :func:`modulated_conv2d`: the style-modulated convolution with weight demodulation, computed
  as "scale the activations, convolve with the shared weight, scale again": the same maths as
  scaling the weight per sample (the paper's equations 1-3), without a per-sample weight tensor,
  which is what makes it fast on CPUs and GPUs alike.
* :func:`conv2d_resample`: a convolution combined with 2x up- or down-sampling, with the padding
  arithmetic that keeps every resolution's pixel grid aligned with the official networks (so
  their weights can be loaded, :mod:`ragan.models.stylegan2.pickle_import`).
* :func:`bias_act`, :func:`normalize_2nd_moment`, :func:`minibatch_stddev`.

Weights are stored in TensorFlow's layout: convolution kernels ``(kh, kw, in, out)``, dense
kernels ``(in, out)``.

Reference:
    Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
    Quality of StyleGAN", CVPR (arXiv:1912.04958), section 2.2 and appendix B.
"""

from __future__ import annotations

import math

import numpy as np

from ragan._tf import import_tf

tf = import_tf()

__all__ = [
    "SQRT2",
    "bias_act",
    "conv2d_resample",
    "downsample2d",
    "minibatch_stddev",
    "modulated_conv2d",
    "normalize_2nd_moment",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]

SQRT2 = math.sqrt(2.0)
LRELU_SLOPE = 0.2


def setup_filter(taps=(1, 3, 3, 1), gain: float = 1.0) -> np.ndarray:
    """The 2-D FIR filter made from 1-D ``taps`` (outer product), normalised to sum to ``gain``.

    Example:
        >>> setup_filter([1, 1]).tolist()
        [[0.25, 0.25], [0.25, 0.25]]
    """
    taps = np.asarray(taps, dtype=np.float64)
    kernel = np.outer(taps, taps) if taps.ndim == 1 else taps
    return (kernel / kernel.sum() * gain).astype(np.float32)


def _pad_or_crop(x, pad):
    x0, x1, y0, y1 = pad
    x = tf.pad(x, [[0, 0], [max(y0, 0), max(y1, 0)], [max(x0, 0), max(x1, 0)], [0, 0]])
    if min(pad) < 0:
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        x = x[:, max(-y0, 0) : height - max(-y1, 0), max(-x0, 0) : width - max(-x1, 0), :]
    return x


def upfirdn2d(x, kernel, *, up: int = 1, down: int = 1, pad=(0, 0, 0, 0), gain: float = 1.0):
    """Upsample by zero insertion, pad (negative = crop), convolve with ``kernel``, downsample.

    Args:
        x: images or features ``(N, H, W, C)``.
        kernel: 2-D FIR filter (NumPy), applied as a true convolution to every channel.
        up, down: integer factors.
        pad: ``(x_before, x_after, y_before, y_after)`` in pixels of the upsampled image.
        gain: multiplies the filter.

    Returns:
        ``(N, (H*up + y_before + y_after - kh + 1) // down, ..., C)``, the size rounded up.
    """
    channels = x.shape[-1]
    if up > 1:
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], shape[1], 1, shape[2], 1, channels])
        x = tf.pad(x, [[0, 0], [0, 0], [0, up - 1], [0, 0], [0, up - 1], [0, 0]])
        x = tf.reshape(x, [shape[0], shape[1] * up, shape[2] * up, channels])
    x = _pad_or_crop(x, pad)
    # A true convolution is a correlation with the flipped kernel.
    flipped = np.ascontiguousarray(kernel[::-1, ::-1]) * gain
    depthwise = tf.constant(np.tile(flipped[:, :, None, None], [1, 1, channels, 1]), dtype=x.dtype)
    return tf.nn.depthwise_conv2d(x, depthwise, strides=[1, down, down, 1], padding="VALID")


def upsample2d(x, kernel):
    """2x upsampling with the FIR filter (the size doubles exactly)."""
    fh = kernel.shape[0]
    pad = ((fh + 1) // 2, (fh - 2) // 2) * 2
    return upfirdn2d(x, kernel, up=2, pad=(pad[0], pad[1], pad[0], pad[1]), gain=4.0)


def downsample2d(x, kernel):
    """2x downsampling with the FIR filter (the size halves exactly)."""
    fh = kernel.shape[0]
    pad = ((fh - 1) // 2, (fh - 2) // 2) * 2
    return upfirdn2d(x, kernel, down=2, pad=(pad[0], pad[1], pad[0], pad[1]))


def conv2d_resample(x, weight, kernel=None, *, up: int = 1, down: int = 1, padding: int = 0):
    """``weight`` (``(kh, kw, in, out)``, used as a correlation) applied to ``x`` with 2x up- or
    down-sampling through the FIR ``kernel``; ``padding`` counts pixels of the upsampled image.

    Upsampling is a stride-2 transposed convolution followed by the filter; downsampling is the
    filter followed by a stride-2 convolution. Both give exactly 2x / 0.5x the input size.
    """
    kh, kw = int(weight.shape[0]), int(weight.shape[1])
    p = [padding] * 4  # x0, x1, y0, y1
    fh = 1 if kernel is None else kernel.shape[0]
    if up > 1:
        p = [p[0] + (fh + up - 1) // 2, p[1] + (fh - up) // 2, p[2] + (fh + up - 1) // 2, p[3] + (fh - up) // 2]
    if down > 1:
        p = [p[0] + (fh - down + 1) // 2, p[1] + (fh - down) // 2, p[2] + (fh - down + 1) // 2, p[3] + (fh - down) // 2]
    if kh == 1 and kw == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, kernel, down=down, pad=p)
        return tf.nn.conv2d(x, weight, strides=1, padding="VALID")
    if kh == 1 and kw == 1 and up > 1 and down == 1:
        x = tf.nn.conv2d(x, weight, strides=1, padding="VALID")
        return upfirdn2d(x, kernel, up=up, pad=p, gain=up * up)
    if down > 1 and up == 1:
        x = upfirdn2d(x, kernel, pad=p)
        return tf.nn.conv2d(x, weight, strides=down, padding="VALID")
    if up > 1:
        # A stride-2 transposed convolution (each input pixel scatters the kernel onto the
        # upsampled grid); TF's conv2d_transpose takes the kernel as (kh, kw, out, in).
        p = [p[0] - (kw - 1), p[1] - (kw - up), p[2] - (kh - 1), p[3] - (kh - up)]
        transposed = tf.transpose(weight, [0, 1, 3, 2])
        shape = tf.shape(x)
        out_shape = tf.stack([shape[0], (shape[1] - 1) * up + kh, (shape[2] - 1) * up + kw, weight.shape[-1]])
        x = tf.nn.conv2d_transpose(x, transposed, out_shape, strides=up, padding="VALID")
        x = tf.ensure_shape(x, [None, None, None, weight.shape[-1]])
        return upfirdn2d(x, kernel, pad=p, gain=up * up)
    if p[0] == p[1] == p[2] == p[3] and p[0] >= 0:
        if p[0] == kh // 2 and kh == kw and kh % 2 == 1:
            return tf.nn.conv2d(x, weight, strides=1, padding="SAME")
        x = _pad_or_crop(x, p)
        return tf.nn.conv2d(x, weight, strides=1, padding="VALID")
    raise ValueError(f"unsupported resampling up={up} down={down} padding={padding}")


def modulated_conv2d(
    x, weight, styles, *, demodulate: bool = True, up: int = 1, kernel=None, padding: int = 0, noise=None, gain=1.0
):
    """Style-modulated convolution: ``x`` ``(N, H, W, I)``, ``weight`` ``(kh, kw, I, O)``,
    ``styles`` ``(N, I)``.

    Equals convolving each sample with its own weight ``w[n] = weight * styles[n]`` (scaled over
    the input channels), demodulated to unit L2 norm per output channel when ``demodulate``:
    ``w[n] /= sqrt(sum_{kh,kw,I} w[n]^2 + 1e-8)``, then adding ``noise`` (broadcast), all times
    ``gain`` (folded into the demodulation coefficients, which are small, rather than applied to
    the output).
    """
    if x.dtype == tf.float16 and demodulate:
        # Demodulation makes the result independent of the scale of the weight and the styles;
        # bring both to at most 1 first so that x * styles cannot overflow float16 (as the
        # official code does).
        in_channels, kh, kw = weight.shape[2], weight.shape[0], weight.shape[1]
        weight = weight * (
            1 / math.sqrt(in_channels * kh * kw) / tf.reduce_max(tf.abs(weight), axis=[0, 1, 2], keepdims=True)
        )
        styles = styles / tf.reduce_max(tf.abs(styles), axis=1, keepdims=True)
    x = x * tf.cast(styles[:, None, None, :], x.dtype)
    x = conv2d_resample(x, tf.cast(weight, x.dtype), kernel, up=up, padding=padding)
    if demodulate:
        # sum over kh, kw, I of (weight * s)^2 = (s^2) @ (sum over kh, kw of weight^2).
        squared = tf.reduce_sum(tf.square(weight), axis=[0, 1])  # (I, O)
        dcoefs = tf.math.rsqrt(tf.matmul(tf.square(styles), squared) + 1e-8)  # (N, O)
        if gain != 1:
            dcoefs = dcoefs * gain
        x = x * tf.cast(dcoefs[:, None, None, :], x.dtype)
    elif gain != 1:
        x = x * tf.cast(gain, x.dtype)
    if noise is not None:
        x = x + tf.cast(noise * gain if gain != 1 else noise, x.dtype)
    return x


def bias_act(x, bias=None, *, act: str = "linear", gain: float | None = None, clamp: float | None = None):
    """``x + bias``, then the activation (``linear`` or ``lrelu`` with slope 0.2), times ``gain``
    (default: sqrt(2) for lrelu, 1 for linear), clamped to ``[-clamp, clamp]`` when given."""
    if bias is not None:
        # BiasAdd rather than a broadcasting add: one op for its gradient instead of a reduction
        # chain, and a pattern the graph optimiser can fuse into the convolution before it.
        x = tf.nn.bias_add(x, tf.cast(bias, x.dtype))
    if act == "lrelu":
        x = tf.nn.leaky_relu(x, alpha=LRELU_SLOPE)
        default_gain = SQRT2
    elif act == "linear":
        default_gain = 1.0
    else:
        raise ValueError(f"unknown activation {act!r}")
    gain = default_gain if gain is None else gain
    if gain != 1:
        x = x * tf.cast(gain, x.dtype)
    if clamp is not None and clamp >= 0:
        # One ClipByValue op (tf.clip_by_value builds Minimum and Maximum, whose gradients cost
        # two selects over the whole tensor).
        x = tf.raw_ops.ClipByValue(
            t=x, clip_value_min=tf.constant(-clamp, x.dtype), clip_value_max=tf.constant(clamp, x.dtype)
        )
    return x


def normalize_2nd_moment(x, epsilon: float = 1e-8):
    """Scale each row of ``x`` to unit mean square."""
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=1, keepdims=True) + epsilon)


def minibatch_stddev(x, group_size: int, num_channels: int = 1):
    """Append ``num_channels`` feature maps holding the standard deviation of the features over
    groups of ``group_size`` samples (samples ``i``, ``i + n``, ``i + 2n``... form a group, with
    ``n = N / group_size``); lets D see the variety of a batch (Karras et al. 2018)."""
    shape = tf.shape(x)
    n, height, width, channels = shape[0], shape[1], shape[2], x.shape[-1]
    group = tf.minimum(tf.constant(group_size, tf.int32), n) if group_size else n
    features = num_channels
    y = tf.reshape(x, [group, -1, height, width, features, channels // features])
    y = tf.cast(y, tf.float32)
    y = y - tf.reduce_mean(y, axis=0)
    y = tf.reduce_mean(tf.square(y), axis=0)
    y = tf.sqrt(y + 1e-8)
    y = tf.reduce_mean(y, axis=[1, 2, 4])  # (n, F)
    y = tf.cast(tf.reshape(y, [-1, 1, 1, features]), x.dtype)
    y = tf.tile(y, [group, height, width, 1])
    return tf.concat([x, y], axis=-1)
