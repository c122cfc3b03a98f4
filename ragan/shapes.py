"""Image shapes every ragan GAN supports, checked without importing TensorFlow.

The training stage checks a prepared dataset against these before it writes anything; the GAN
base class checks them again when it is built.
"""

from __future__ import annotations

from ragan.errors import RaganError

__all__ = ["SUPPORTED_IMAGE_SIZES", "check_channels", "check_image_size"]

SUPPORTED_IMAGE_SIZES = (16, 32, 64, 128, 256)


def check_image_size(image_size, sizes=SUPPORTED_IMAGE_SIZES) -> int:
    """Return ``image_size`` as an int, or raise a :class:`RaganError` unless it is one of
    ``sizes`` (by default the powers of two in 16..256, which every ragan GAN supports).

    Example:
        >>> check_image_size(64)
        64
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size not in sizes:
        allowed = ", ".join(str(s) for s in sizes)
        raise RaganError(
            f"image_size={image_size!r} is not supported; GANs need a power of two, one of {allowed} "
            "(prepare the dataset at one of these sizes)."
        )
    return image_size


def check_channels(channels) -> int:
    """Return ``channels`` unless it is not 1 (grey) or 3 (RGB), which raises a RaganError."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise RaganError(f"channels={channels!r} is not supported; use 1 (greyscale) or 3 (RGB).")
    return int(channels)
