"""Gradient and wavelet similarity of image pairs: MS-GMSD, MDSI and HaarPSI.

Computed in NumPy on images rescaled to [0, 255], with the constants of the papers and the
conventions of the `piq` package (zero padding, 2x2 mean-pool downsampling with the odd edge
padded with zeros), so values can be compared with piq's and with work that used it (AIDL21).
Arguments follow :mod:`ragan.evaluation.metrics` (which re-exports these functions): ``(N, H, W, C)``
batches or one ``(H, W, C)`` image, values in ``[min_value, max_value]``.

Example:
    >>> image = np.linspace(0, 1, 32 * 32).reshape(32, 32, 1)
    >>> ms_gmsd(image, image, max_value=1.0), haarpsi(image, image, max_value=1.0)
    (0.0, 1.0)
"""

from __future__ import annotations

import numpy as np

from ragan.errors import RaganError
from ragan.evaluation._metric_inputs import as_image_batch, check_pair, check_value_range

__all__ = ["MS_GMSD_WEIGHTS", "haarpsi", "mdsi", "ms_gmsd"]


def _to_255(name: str, images, min_value: float, max_value: float) -> tuple[np.ndarray, bool]:
    """``(N, C, H, W)`` float64 in [0, 255] and whether a single image was given."""
    check_value_range(min_value, max_value)
    batch, single = as_image_batch(name, images, min_value, max_value)
    if batch.shape[-1] not in (1, 3):
        raise RaganError(f"{name}: expected 1 (greyscale) or 3 (RGB) channels, got {batch.shape[-1]}")
    return np.moveaxis((batch - min_value) * (255.0 / (max_value - min_value)), -1, 1), single


def _correlate(images: np.ndarray, kernel: np.ndarray, before: int, after: int) -> np.ndarray:
    """2-D cross-correlation of ``(..., H, W)`` with ``kernel``, zero padding ``before``/``after`` each side."""
    kh, kw = kernel.shape
    padded = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(before, after), (before, after)])
    height = padded.shape[-2] - kh + 1
    width = padded.shape[-1] - kw + 1
    out = np.zeros(images.shape[:-2] + (height, width))
    for i in range(kh):
        for j in range(kw):
            if kernel[i, j] != 0:
                out += kernel[i, j] * padded[..., i : i + height, j : j + width]
    return out


def _halve(images: np.ndarray) -> np.ndarray:
    """2x2 mean pooling; an odd height or width is first padded with one row/column of zeros."""
    pad = max(images.shape[-2] % 2, images.shape[-1] % 2)
    if pad:
        images = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(0, pad), (0, pad)])
    height, width = images.shape[-2] // 2 * 2, images.shape[-1] // 2 * 2
    images = images[..., :height, :width]
    return 0.25 * (
        images[..., 0::2, 0::2] + images[..., 1::2, 0::2] + images[..., 0::2, 1::2] + images[..., 1::2, 1::2]
    )


_PREWITT = np.array([[-1.0, 0.0, 1.0]] * 3) / 3.0


def _gradient_magnitude(images: np.ndarray) -> np.ndarray:
    horizontal = _correlate(images, _PREWITT, 1, 1)
    vertical = _correlate(images, _PREWITT.T, 1, 1)
    return np.sqrt(horizontal**2 + vertical**2)


def _similarity(a: np.ndarray, b: np.ndarray, constant: float, alpha: float = 0.0) -> np.ndarray:
    """``(2ab - alpha ab + c) / (a² + b² - alpha ab + c)``: 1 where ``a == b``."""
    return (2.0 * a * b - alpha * a * b + constant) / (a**2 + b**2 - alpha * a * b + constant)


def _luma(images: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` luminance: the grey channel, or Y of YIQ for RGB."""
    if images.shape[1] == 1:
        return images[:, 0]
    return 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]


MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)


def ms_gmsd(a, b, *, max_value: float, min_value: float = 0.0) -> float | np.ndarray:
    """Multi-scale gradient magnitude similarity deviation per image pair (0 = identical; lower is better).

    At each of four scales (the image, then 2x2 mean-pooled three times) the gradient magnitudes
    ``m`` (Prewitt filters) of the two images' luminance give the similarity map
    ``(2 m_a m_b - alpha m_a m_b + T) / (m_a² + m_b² - alpha m_a m_b + T)`` (``T = 170`` for
    [0, 255] pixels, ``alpha = 0.5``); the GMSD of a scale is the standard deviation of that map.
    MS-GMSD is ``sqrt(sum_s w_s GMSD_s²)`` with ``w = (0.096, 0.596, 0.289, 0.019)``. Colour
    images use their luminance only (the paper's chromatic term is left out).

    Args:
        a, b: Image batches ``(N, H, W, C)`` (C = 1 or 3, H and W >= 17), or two single images.
        max_value, min_value: The range the images can hold.

    Returns:
        ``(N,)`` float64 values in ``[0, 1)`` (a float for single images).

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1))
        >>> ms_gmsd(x, x, max_value=1.0)
        array([0., 0.])

    Reference:
        Zhang, Mou & Xue, "Gradient magnitude similarity deviation on multiple scales for color
        image quality assessment", ICASSP 2017; Xue, Zhang, Mou & Bovik, "Gradient Magnitude
        Similarity Deviation", IEEE TIP 2014.
    """
    x, single = _to_255("a", a, min_value, max_value)
    y, _ = _to_255("b", b, min_value, max_value)
    check_pair(x, y)
    minimum = 2 ** len(MS_GMSD_WEIGHTS) + 1
    if min(x.shape[-2:]) < minimum:
        raise RaganError(
            f"a: MS-GMSD needs images of at least {minimum}x{minimum} pixels (four scales), "
            f"got {x.shape[-2]}x{x.shape[-1]}"
        )
    x, y = _luma(x), _luma(y)
    total = np.zeros(x.shape[0])
    for scale, weight in enumerate(MS_GMSD_WEIGHTS):
        if scale:
            x, y = _halve(x), _halve(y)
        similarity = _similarity(_gradient_magnitude(x), _gradient_magnitude(y), 170.0, alpha=0.5)
        total += weight * similarity.var(axis=(1, 2))
    values = np.sqrt(total)
    return float(values[0]) if single else values


def mdsi(a, b, *, max_value: float, min_value: float = 0.0) -> float | np.ndarray:
    """Mean deviation similarity index per image pair (0 = identical; lower is better).

    Images are taken to the LHM colour space (a greyscale image as three equal RGB channels, as
    the `piq` package does; MDSI is defined for colour). Gradient similarity
    ``GS = S(g_a, g_b, C1) + S(g_a, g_avg, C2) - S(g_b, g_avg, C2)`` (Prewitt magnitudes of L;
    ``g_avg`` of the mean of both L channels) and chromaticity similarity
    ``CS = (2 (H_a H_b + M_a M_b) + C3) / (H_a² + H_b² + M_a² + M_b² + C3)`` are summed,
    ``GCS = 0.6 GS + 0.4 CS``; MDSI is the mean absolute deviation of ``GCS^0.25`` (complex
    powers, since GS can be negative), to the power 0.25. ``C1 = 140, C2 = 55, C3 = 550`` for
    [0, 255] pixels. Images of 512 px and more are mean-pooled first (factor ``round(min(H, W) / 256)``).

    Args:
        a: The distorted (e.g. synthetic) images ``(N, H, W, C)`` (C = 1 or 3), or one image;
            MDSI is not symmetric.
        b: The reference images, same shape.
        max_value, min_value: The range the images can hold.

    Returns:
        ``(N,)`` float64 values >= 0 (a float for single images).

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1))
        >>> mdsi(x, x, max_value=1.0)
        array([0., 0.])

    Reference:
        Nafchi, Shahkolaei, Hedjam & Cheriet, "Mean Deviation Similarity Index: Efficient and
        Reliable Full-Reference Image Quality Evaluator", IEEE Access 2016.
    """
    x, single = _to_255("a", a, min_value, max_value)
    y, _ = _to_255("b", b, min_value, max_value)
    check_pair(x, y)
    if x.shape[1] == 1:
        x, y = np.repeat(x, 3, axis=1), np.repeat(y, 3, axis=1)
    factor = max(1, round(min(x.shape[-2:]) / 256))
    if factor > 1:
        x, y = _mean_pool(x, factor), _mean_pool(y, factor)
    lhm = np.array([[0.2989, 0.587, 0.114], [0.3, 0.04, -0.35], [0.34, -0.6, 0.17]])
    x, y = np.einsum("kc,nchw->nkhw", lhm, x), np.einsum("kc,nchw->nkhw", lhm, y)
    gradient_x, gradient_y = _gradient_magnitude(x[:, 0]), _gradient_magnitude(y[:, 0])
    gradient_mean = _gradient_magnitude((x[:, 0] + y[:, 0]) / 2.0)
    gradient_similarity = (
        _similarity(gradient_x, gradient_y, 140.0)
        + _similarity(gradient_x, gradient_mean, 55.0)
        - _similarity(gradient_y, gradient_mean, 55.0)
    )
    chroma_similarity = (2.0 * (x[:, 1] * y[:, 1] + x[:, 2] * y[:, 2]) + 550.0) / (
        x[:, 1] ** 2 + y[:, 1] ** 2 + x[:, 2] ** 2 + y[:, 2] ** 2 + 550.0
    )
    combined = (0.6 * gradient_similarity + 0.4 * chroma_similarity).astype(np.complex128) ** 0.25
    deviation = np.abs(combined - combined.mean(axis=(1, 2), keepdims=True))
    values = deviation.mean(axis=(1, 2)) ** 0.25
    return float(values[0]) if single else values


def _mean_pool(images: np.ndarray, factor: int) -> np.ndarray:
    """``factor`` x ``factor`` mean pooling with piq's zero padding ((f-1)//2 before, f//2 after)."""
    before, after = (factor - 1) // 2, factor // 2
    images = np.pad(images, [(0, 0)] * (images.ndim - 2) + [(before, after), (before, after)])
    height, width = images.shape[-2] // factor * factor, images.shape[-1] // factor * factor
    images = images[..., :height, :width]
    shape = images.shape[:-2] + (height // factor, factor, width // factor, factor)
    return images.reshape(shape).mean(axis=(-3, -1))


HAARPSI_C = 30.0
HAARPSI_ALPHA = 4.2


def haarpsi(a, b, *, max_value: float, min_value: float = 0.0) -> float | np.ndarray:
    """Haar wavelet-based perceptual similarity index per image pair (1 = identical; higher is better).

    The images (luminance; 2x2 mean-pooled first, for the viewing distance) are filtered with
    horizontal and vertical Haar wavelets at scales 1-3 (``2^s`` px, zero padding as MATLAB's
    ``conv2(..., 'same')``). Per orientation, the local similarity is the mean over scales 1 and
    2 of ``(2 |c_a| |c_b| + C) / (c_a² + c_b² + C)``, passed through a logistic function
    ``l(x) = 1 / (1 + exp(-alpha x))`` and averaged with the weights ``max(|c_a|, |c_b|)`` of scale
    3; HaarPSI is ``(l^-1(that mean) / alpha)²``. ``C = 30`` for [0, 255] pixels, ``alpha = 4.2``.
    Colour images (Y of YIQ for the wavelets) add the similarity of the 2x2 local means of I and
    Q, weighted by the mean of the two luminance weights. Undefined (NaN)
    for two images without any structure at scale 3 (e.g. two flat images).

    Args:
        a, b: Image batches ``(N, H, W, C)`` (C = 1 or 3, H and W >= 16), or two single images.
        max_value, min_value: The range the images can hold.

    Returns:
        ``(N,)`` float64 values in ``(0, 1]`` (a float for single images).

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1))
        >>> haarpsi(x, x, max_value=1.0).round(12)
        array([1., 1.])

    Reference:
        Reisenhofer, Bosse, Kutyniok & Wiegand, "A Haar wavelet-based perceptual similarity
        index for image quality assessment", Signal Processing: Image Communication 2018.
    """
    x, single = _to_255("a", a, min_value, max_value)
    y, _ = _to_255("b", b, min_value, max_value)
    check_pair(x, y)
    if min(x.shape[-2:]) < 16:
        raise RaganError(
            f"a: HaarPSI needs images of at least 16x16 pixels (its coarsest wavelet), got {x.shape[-2]}x{x.shape[-1]}"
        )
    colour = x.shape[1] == 3
    if colour:
        yiq = np.array([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])
        x, y = np.einsum("kc,nchw->nkhw", yiq, x), np.einsum("kc,nchw->nkhw", yiq, y)
    x, y = _halve(x), _halve(y)
    x_chroma, y_chroma = x[:, 1:], y[:, 1:]
    x, y = x[:, 0], y[:, 0]
    coefficients = []  # per scale: (x horizontal, x vertical, y horizontal, y vertical)
    for scale in (1, 2, 3):
        size = 2**scale
        kernel = np.full((size, size), 1.0 / size)
        kernel[size // 2 :] *= -1.0
        before, after = size // 2 - 1, size // 2
        coefficients.append(
            [np.abs(_correlate(image, k, before, after)) for image in (x, y) for k in (kernel, kernel.T)]
        )
    similarities, weights = [], []
    for orientation in (0, 1):
        similarities.append(
            sum(_similarity(coefficients[s][orientation], coefficients[s][2 + orientation], HAARPSI_C) for s in (0, 1))
            / 2.0
        )
        weights.append(np.maximum(coefficients[2][orientation], coefficients[2][2 + orientation]))
    if colour:
        # Chroma: |2x2 local means| of I and Q, weighted by the mean of the two luminance weights.
        x_chroma, y_chroma = (np.abs(_correlate(c, np.full((2, 2), 0.25), 0, 1)) for c in (x_chroma, y_chroma))
        similarities.append(_similarity(x_chroma, y_chroma, HAARPSI_C).sum(axis=1) / 2.0)
        weights.append((weights[0] + weights[1]) / 2.0)
    numerator = sum((w / (1.0 + np.exp(-HAARPSI_ALPHA * m))).sum(axis=(1, 2)) for m, w in zip(similarities, weights))
    denominator = sum(w.sum(axis=(1, 2)) for w in weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = numerator / denominator
        values = (np.log(mean / (1.0 - mean)) / HAARPSI_ALPHA) ** 2
    return float(values[0]) if single else values
