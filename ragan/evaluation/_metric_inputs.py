"""Input checks shared by the metric modules (:mod:`~ragan.evaluation.metrics`,
:mod:`~ragan.evaluation.gradient_metrics`): feature matrices and image batches, one-line errors.

A package-internal seam: the module is private (not part of ragan's API), its names are what the
two metric modules import.

Example:
    >>> as_features("real", [[1.0, 2.0], [3.0, 4.0]]).shape
    (2, 2)
"""

from __future__ import annotations

import math

import numpy as np

from ragan.errors import RaganError


def as_features(name: str, features) -> np.ndarray:
    """Return ``features`` as a finite float64 ``(N, D)`` array or raise a RaganError naming it."""
    array = np.asarray(features)
    if array.ndim != 2:
        raise RaganError(f"{name}: expected a 2-D array (num_images, feature_dim), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise RaganError(f"{name}: the feature array is empty (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise RaganError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
        raise RaganError(
            f"{name}: {bad.size} feature rows contain NaN or inf (first at row {bad[0]}); "
            "check the images and the feature extractor"
        )
    return array


def check_same_dim(real: np.ndarray, fake: np.ndarray) -> None:
    if real.shape[1] != fake.shape[1]:
        raise RaganError(
            f"fake: feature dimension {fake.shape[1]} differs from real's {real.shape[1]}; "
            "both sets must come from the same feature extractor"
        )


def as_image_batch(name: str, images, min_value: float, max_value: float) -> tuple[np.ndarray, bool]:
    """Return ``(float64 (N, H, W, C) batch, was_single_image)`` after checking shape and range."""
    array = np.asarray(images)
    if array.ndim == 3:
        array, single = array[None], True
    elif array.ndim == 4:
        single = False
    else:
        raise RaganError(
            f"{name}: expected images of shape (N, H, W, C) or one image (H, W, C), got shape {array.shape}"
        )
    if array.size == 0:
        raise RaganError(f"{name}: the image array is empty (shape {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise RaganError(f"{name}: expected real pixel values, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise RaganError(f"{name}: images contain NaN or inf values")
    check_inside_range(
        name,
        array,
        min_value,
        max_value,
        f"min_value={min_value:g}, max_value={max_value:g}; pass the range the images are stored in "
        "(255 for uint8, 1.0 for [0, 1] floats, min_value=-1 for [-1, 1])",
    )
    return array, single


def check_inside_range(name: str, array: np.ndarray, low: float, high: float, expected: str) -> None:
    """A one-line RaganError when ``array`` leaves ``[low, high]``: ``"NAME: pixel values span [a, b] but EXPECTED"``.

    A little slack (1 % of the range) for generator outputs that overshoot; anything beyond it
    almost always means the stated range does not match the images (e.g. uint8 pixels as [0, 1]).

    Example:
        >>> check_inside_range("images", np.array([0.0, 1.005]), 0.0, 1.0, "...")   # within the slack
        >>> check_inside_range("images", np.array([0.0, 255.0]), 0.0, 1.0, "they are [0, 1] floats")
        Traceback (most recent call last):
        ragan.errors.RaganError: images: pixel values span [0, 255] but they are [0, 1] floats
    """
    slack = 0.01 * (high - low)
    seen_low, seen_high = float(array.min()), float(array.max())
    if seen_low < low - slack or seen_high > high + slack:
        raise RaganError(f"{name}: pixel values span [{seen_low:g}, {seen_high:g}] but {expected}")


def check_value_range(min_value: float, max_value: float) -> None:
    for label, value in (("min_value", min_value), ("max_value", max_value)):
        if not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
            raise RaganError(f"{label}={value!r} must be a finite number")
    if max_value <= min_value:
        raise RaganError(f"max_value={max_value!r} must be greater than min_value={min_value!r}")


def check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise RaganError(f"b: image shape {b.shape} differs from a's {a.shape}; compare images pairwise")
