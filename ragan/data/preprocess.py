"""Turn a decoded frame into a training image: channels, square geometry, size and bit depth.

The input is what :mod:`ragan.data.readers` produces (``float32`` in ``[0, 1]``, shape
``(height, width, channels)``); the output is a square ``uint8`` or ``uint16`` array ready to be
written to a TFRecord. Resizing works on 32-bit float planes (Pillow mode ``F``), so 16-bit
precision survives all the way to a 16-bit output.

This module runs inside the worker processes of ``prepare`` and imports neither TensorFlow nor
anything from ragan that does.
"""

from __future__ import annotations

import numbers

import numpy as np
from PIL import Image

from ragan.errors import RaganError, check_choice

__all__ = [
    "RESIZE_MODES",
    "MIN_IMAGE_SIZE",
    "MAX_IMAGE_SIZE",
    "preprocess_frame",
    "preprocess_eight_bit",
    "draft_size",
    "validate_options",
    "to_luma",
]

RESIZE_MODES = ("crop", "pad", "stretch")
MIN_IMAGE_SIZE = 4
MAX_IMAGE_SIZE = 4096

# ITU-R BT.601 luma weights, the ones Pillow uses for RGB -> "L".
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Pillow first box-reduces by an integer factor while the remaining scale stays >= this gap, then
# applies the filter; at 3 the result is indistinguishable from a full Lanczos pass and several
# times faster for large reductions (512 -> 64).
_REDUCING_GAP = 3.0
# The 8-bit path's reducing gap: Pillow's own default for thumbnail(); within about a grey level of
# the fair Lanczos result and about twice as fast for a 4x reduction (1024 -> 256).
_EIGHT_BIT_REDUCING_GAP = 2.0
# A JPEG may be decoded at 1/2, 1/4 or 1/8 of its size while it stays at least this many times
# the output size (Pillow's thumbnail() uses the same margin): the final Lanczos still antialiases.
_DRAFT_GAP = 2.0


def validate_options(image_size, channels, bit_depth, resize_mode) -> None:
    """Check the preprocessing options and raise :class:`RaganError` naming any bad one.

    Args:
        image_size: Side of the square output in pixels, an integer from 4 to 4096.
        channels: 1 (greyscale) or 3 (RGB).
        bit_depth: 8 (``uint8`` output) or 16 (``uint16``).
        resize_mode: One of ``RESIZE_MODES``.

    Example:
        >>> validate_options(64, 1, 8, "crop")
        >>> validate_options(64, 2, 8, "crop")
        Traceback (most recent call last):
        ragan.errors.RaganError: channels=2 is not allowed; choose one of 1, 3.
    """
    if (
        isinstance(image_size, bool)
        or not isinstance(image_size, numbers.Integral)
        or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise RaganError(
            f"image_size={image_size!r} is not allowed; use a whole number of pixels from "
            f"{MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (e.g. 64)"
        )
    check_choice("channels", channels, (1, 3))
    check_choice("bit_depth", bit_depth, (8, 16))
    check_choice("resize_mode", resize_mode, RESIZE_MODES)


def to_luma(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB -> ``(H, W)`` ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), as ``float32``.

    Example:
        >>> float(to_luma(np.ones((2, 2, 3), np.float32))[0, 0])
        1.0
    """
    return np.asarray(rgb, dtype=np.float32) @ _LUMA_WEIGHTS


def _as_unit_float(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 3) or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ValueError(f"frame_pixels must have shape (height, width, 1 or 3), got {pixels.shape}")
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) * np.float32(1 / 255)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) * np.float32(1 / 65535)
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ValueError(f"frame_pixels must be float in [0, 1], uint8 or uint16, got dtype {pixels.dtype}")
    return pixels.astype(np.float32, copy=False)


def _resample_filter(source: tuple[int, int], target: tuple[int, int]) -> Image.Resampling | None:
    """Lanczos when any axis shrinks (antialiasing), bicubic when only enlarging, None when equal."""
    if source == target:
        return None
    if source[0] > target[0] or source[1] > target[1]:
        return Image.Resampling.LANCZOS
    return Image.Resampling.BICUBIC


def _resize_plane(plane: np.ndarray, image_size: int, resize_mode: str) -> np.ndarray:
    """One (H, W) float32 plane -> (image_size, image_size) float32."""
    height, width = plane.shape
    if resize_mode == "crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        cropped = plane[top : top + side, left : left + side]
        return _resize_to(cropped, (image_size, image_size))
    if resize_mode == "pad":
        # Scale the whole image so its longer side fits, then centre it on black: the same
        # geometry as padding first, without blending the black border into the edge pixels.
        scale = image_size / max(height, width)
        new_width = min(image_size, max(1, round(width * scale)))
        new_height = min(image_size, max(1, round(height * scale)))
        canvas = np.zeros((image_size, image_size), dtype=np.float32)
        top, left = (image_size - new_height) // 2, (image_size - new_width) // 2
        canvas[top : top + new_height, left : left + new_width] = _resize_to(plane, (new_width, new_height))
        return canvas
    return _resize_to(plane, (image_size, image_size))  # stretch


def _resize_to(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) float32 plane to ``size`` = (width, height)."""
    resample = _resample_filter((plane.shape[1], plane.shape[0]), size)
    if resample is None:
        return np.array(plane, dtype=np.float32)
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # float32 -> mode "F"
    gap = _REDUCING_GAP if resample == Image.Resampling.LANCZOS else None
    return np.asarray(image.resize(size, resample, reducing_gap=gap), dtype=np.float32)


def preprocess_frame(
    frame_pixels: np.ndarray,
    *,
    image_size: int,
    channels: int,
    bit_depth: int,
    resize_mode: str = "crop",
) -> np.ndarray:
    """Make one square training image from a decoded frame.

    Steps: channel conversion (RGB -> 1 channel by ITU-R 601 luma, like Pillow's ``"L"``;
    1 -> 3 channels by repeating), geometry, resize, then rounding to the output bit depth.
    Geometry: ``"crop"`` keeps the centred square of side ``min(height, width)``; ``"pad"`` keeps the
    whole image, centred on a black square; ``"stretch"`` ignores the aspect ratio. Shrinking uses
    Lanczos (antialiased), enlarging bicubic, both on 32-bit float planes so 16-bit data keeps its
    precision. Overshoot of the filters is clipped. The result is deterministic.

    Args:
        frame_pixels: ``(H, W, C)`` with C 1 or 3 (or ``(H, W)``), ``float32`` in ``[0, 1]`` as
            :class:`~ragan.data.readers.Frame` holds it; ``uint8`` and ``uint16`` are accepted too.
        image_size: Side of the square output, in pixels.
        channels: 1 or 3 output channels.
        bit_depth: 8 for ``uint8`` output (0..255) or 16 for ``uint16`` (0..65535).
        resize_mode: ``"crop"``, ``"pad"`` or ``"stretch"``.

    Returns:
        Array of shape ``(image_size, image_size, channels)``, dtype ``uint8`` or ``uint16``.

    Raises:
        RaganError: an option is not allowed (see :func:`validate_options`).
        ValueError: ``frame_pixels`` has the wrong shape or dtype, or holds NaN.

    Example:
        >>> rgb = np.random.default_rng(0).random((96, 128, 3), dtype=np.float32)   # a Frame's pixels
        >>> preprocess_frame(rgb, image_size=64, channels=1, bit_depth=8).shape
        (64, 64, 1)
    """
    validate_options(image_size, channels, bit_depth, resize_mode)
    pixels = _as_unit_float(frame_pixels)
    if channels == 1 and pixels.shape[-1] == 3:
        planes = [to_luma(pixels)]
    else:
        planes = [pixels[..., index] for index in range(pixels.shape[-1])]
    resized = np.stack([_resize_plane(plane, image_size, resize_mode) for plane in planes], axis=-1)
    if np.isnan(resized).any():
        raise ValueError("frame_pixels contains NaN values")
    if channels == 3 and resized.shape[-1] == 1:
        resized = np.repeat(resized, 3, axis=-1)
    maximum = 255 if bit_depth == 8 else 65535
    scaled = np.rint(np.clip(resized, 0.0, 1.0) * np.float32(maximum))
    return scaled.astype(np.uint8 if bit_depth == 8 else np.uint16)


def draft_size(width: int, height: int, image_size: int, resize_mode: str) -> tuple[int, int] | None:
    """The smallest decoding size of a ``width`` x ``height`` image that keeps ``_DRAFT_GAP`` x oversampling.

    ``None`` when the image is not large enough for a reduced decode to help.

    Example:
        >>> draft_size(512, 512, 64, "crop")
        (128, 128)
        >>> draft_size(512, 512, 256, "crop") is None
        True
    """
    wanted = _DRAFT_GAP * image_size
    if resize_mode == "stretch":
        if width < 2 * wanted and height < 2 * wanted:
            return None
        return min(width, int(np.ceil(wanted))), min(height, int(np.ceil(wanted)))
    side = min(width, height) if resize_mode == "crop" else max(width, height)
    if side < 2 * wanted:  # not even a 1/2 scale fits
        return None
    factor = side / wanted
    return int(np.ceil(width / factor)), int(np.ceil(height / factor))


def preprocess_eight_bit(
    frame_pixels: np.ndarray, *, image_size: int, channels: int, resize_mode: str = "crop"
) -> np.ndarray:
    """:func:`preprocess_frame` for ``uint8`` pixels and 8-bit output, in Pillow's 8-bit arithmetic.

    The same geometry and filters (centre crop / pad / stretch; Lanczos when shrinking, bicubic
    when enlarging), computed on 8-bit planes as Pillow (and StyleGAN2-ADA's dataset_tool) does,
    with a first integer box reduction while the remaining factor stays >= 2 (Pillow's
    ``reducing_gap=2``): several times faster than the float path, and within a grey level or so of it. RGB becomes
    one channel by Pillow's ITU-R 601 luma (``"L"``). A frame that
    needs no resizing gives the same bytes as :func:`preprocess_frame`.

    Args:
        frame_pixels: ``(H, W, 1 or 3)`` ``uint8``.
        image_size: Side of the square output, in pixels.
        channels: 1 or 3 output channels.
        resize_mode: ``"crop"``, ``"pad"`` or ``"stretch"``.

    Returns:
        ``uint8`` array of shape ``(image_size, image_size, channels)``.

    Example:
        >>> preprocess_eight_bit(np.zeros((40, 30, 3), np.uint8), image_size=16, channels=1).shape
        (16, 16, 1)
    """
    validate_options(image_size, channels, 8, resize_mode)
    pixels = np.asarray(frame_pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[-1] not in (1, 3) or 0 in pixels.shape:
        raise ValueError(
            f"frame_pixels must be uint8 of shape (height, width, 1 or 3), got {pixels.dtype} {pixels.shape}"
        )
    if pixels.shape[-1] == 1:
        image = Image.fromarray(np.ascontiguousarray(pixels[..., 0]), "L")
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
        if channels == 1:
            image = image.convert("L")
    width, height = image.size
    target = (image_size, image_size)
    if resize_mode == "crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        result = _resize_image(image, target, (left, top, left + side, top + side))
    elif resize_mode == "pad":
        scale = image_size / max(height, width)
        new_width = min(image_size, max(1, round(width * scale)))
        new_height = min(image_size, max(1, round(height * scale)))
        result = Image.new(image.mode, target, 0)
        result.paste(
            _resize_image(image, (new_width, new_height), None),
            ((image_size - new_width) // 2, (image_size - new_height) // 2),
        )
    else:
        result = _resize_image(image, target, None)
    array = np.asarray(result)
    if array.ndim == 2:
        array = array[..., None]
    if channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array


def _resize_image(image: Image.Image, size: tuple[int, int], box) -> Image.Image:
    """Resize (a ``box`` of) an 8-bit image to ``size`` = (width, height) with the float path's filters."""
    source = (box[2] - box[0], box[3] - box[1]) if box is not None else image.size
    resample = _resample_filter(source, size)
    if resample is None:
        return image.crop(box) if box is not None else image
    gap = _EIGHT_BIT_REDUCING_GAP if resample == Image.Resampling.LANCZOS else None
    return image.resize(size, resample, box=box, reducing_gap=gap)
