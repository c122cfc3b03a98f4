"""Read image files with Pillow (PNG, JPEG, BMP, TIFF ...) and in-memory arrays into frames.

See :mod:`ragan.data.readers` for how values are mapped to ``[0, 1]``. Imports neither TensorFlow
nor anything from ragan that does.
"""

from __future__ import annotations

import io
import threading
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ragan._common import first_line
from ragan.data.frames import EightBitRead, Frame, ImageReadError, bomb_message

__all__ = ["UnidentifiedImage", "array_to_frame", "read_image"]

_IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}

# Image.MAX_IMAGE_PIXELS is process-global; this lock keeps threads of one process from
# seeing each other's temporary limit.
_PIL_LIMIT_LOCK = threading.RLock()


class UnidentifiedImage(ImageReadError):
    """Pillow does not recognise the bytes (read_file then tries DICOM when the marker is there)."""


def _unidentified(data: bytes) -> UnidentifiedImage:
    for signature, name in _IMAGE_SIGNATURES.items():
        # "BM" is too short a signature to claim that a file was meant to be a BMP.
        if data.startswith(signature) and name != "BMP":
            return UnidentifiedImage(f"truncated image ({name} header cannot be read)")
    return UnidentifiedImage("not an image (unrecognised format)")


def _open_limited(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) with Pillow's bomb check set to ``max_pixels``."""
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # odd metadata (e.g. corrupt EXIF) is not our concern
        # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; both mean "too big" here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            return Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageReadError(bomb_message(*_size_without_limit(data), max_pixels)) from None
        except UnidentifiedImageError:
            raise _unidentified(data) from None
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as error:
            raise _decode_error(error) from None
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _size_without_limit(data: bytes) -> tuple[int, int]:
    """Width and height for the bomb message, read without Pillow's limit."""
    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size
        except Exception:  # noqa: BLE001 - the size is only for the message
            return (0, 0)
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _decode_error(error: BaseException) -> ImageReadError:
    message = str(error)
    if "truncated" in message.lower() or isinstance(error, EOFError):
        return ImageReadError("truncated image")
    return ImageReadError(f"corrupt image ({first_line(error, 120)})")


def read_image(data: bytes, *, max_pixels: int, eight_bit: EightBitRead | None = None) -> list[Frame]:
    """Decode an image file's bytes with Pillow into frames (one per page)."""
    image = _open_limited(data, max_pixels)
    if eight_bit is not None and image.mode in ("L", "RGB") and getattr(image, "n_frames", 1) == 1:
        return [_read_eight_bit(image, eight_bit, max_pixels)]
    frames = []
    with image, warnings.catch_warnings():
        # Pillow warns about odd metadata (corrupt EXIF, unknown chunks); the pixels are what matters.
        warnings.simplefilter("ignore", UserWarning)
        try:
            for page in ImageSequence.Iterator(image):
                width, height = page.size
                if width * height > max_pixels:
                    raise ImageReadError(bomb_message(width, height, max_pixels))
                if width == 0 or height == 0:
                    raise ImageReadError(f"image has no pixels ({width}x{height})")
                page.load()
                oriented = ImageOps.exif_transpose(page) if page.getexif().get(0x0112, 1) != 1 else page
                frames.append(_pil_to_frame(oriented))
        except ImageReadError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error, MemoryError) as error:
            raise _decode_error(error) from None
    return frames


def _read_eight_bit(image: Image.Image, request: EightBitRead, max_pixels: int) -> Frame:
    """Decode a single-frame ``L``/``RGB`` image to ``uint8`` pixels, once, as small as allowed."""
    with image, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageReadError(bomb_message(width, height, max_pixels))
        if width == 0 or height == 0:
            raise ImageReadError(f"image has no pixels ({width}x{height})")
        if image.format == "JPEG":
            # libjpeg decodes straight to greyscale (the Y plane) and/or at 1/2, 1/4, 1/8 scale
            # in the DCT domain: a fraction of the work of a full decode.
            mode = "L" if request.grey and image.mode == "RGB" else None
            size = request.draft_size(width, height) if request.draft_size is not None else None
            if mode is not None or size is not None:
                image.draft(mode, size or (width, height))
        try:
            image.load()
            if image.getexif().get(0x0112, 1) != 1:
                image = ImageOps.exif_transpose(image)
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error, MemoryError) as error:
            raise _decode_error(error) from None
        pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return Frame(pixels, 8)


def _grey_palette(image: Image.Image) -> bool:
    palette = np.asarray(image.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    used = np.unique(np.asarray(image))
    used = used[used < len(palette)]
    colours = palette[used]
    return bool(np.all(colours[:, 0] == colours[:, 1]) and np.all(colours[:, 1] == colours[:, 2]))


def _composite_on_black(array: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, C+1) integers with alpha last -> (H, W, C) float32 in [0, 1], alpha over black."""
    values = array[..., :-1].astype(np.float32)
    alpha = array[..., -1:].astype(np.float32)
    return values * alpha * np.float32(1.0 / (scale * scale))


def _scale_min_max(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) * np.float32(1.0 / (high - low))


def _pil_to_frame(image: Image.Image) -> Frame:
    mode = image.mode
    if mode == "1":
        return Frame(np.asarray(image, dtype=np.float32)[..., None], 8)
    if mode == "L":
        return Frame(np.asarray(image, dtype=np.float32)[..., None] * np.float32(1 / 255), 8)
    if mode == "RGB":
        return Frame(np.asarray(image, dtype=np.float32) * np.float32(1 / 255), 8)
    if mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in image.info):
        if mode in ("PA", "P"):
            grey = _grey_palette(image)
            image = image.convert("RGBA")
            if grey:
                image = image.convert("LA")
        elif mode == "La":
            image = image.convert("LA")
        elif mode == "RGBa":
            image = image.convert("RGBA")
        return Frame(_composite_on_black(np.asarray(image), 255.0), 8)
    if mode == "P":
        converted = image.convert("L" if _grey_palette(image) else "RGB")
        return _pil_to_frame(converted)
    if mode.startswith("I;16"):
        values = np.asarray(image).astype(np.float32)
        return Frame(values[..., None] * np.float32(1 / 65535), 16)
    if mode == "I":
        values = np.asarray(image)
        if values.min() >= 0 and values.max() <= 65535:
            return Frame(values.astype(np.float32)[..., None] * np.float32(1 / 65535), 16)
        return Frame(_scale_min_max(values)[..., None], 16)
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.all(np.isfinite(values)):
            raise ImageReadError("image contains NaN or infinite values")
        if values.min() >= 0.0 and values.max() <= 1.0:
            return Frame(values[..., None].copy(), 16)
        return Frame(_scale_min_max(values)[..., None], 16)
    # CMYK, YCbCr, RGBX, LAB, HSV ...: Pillow's own conversion to RGB.
    try:
        converted = image.convert("RGB")
    except (ValueError, OSError):
        raise ImageReadError(f"unsupported image mode '{mode}'") from None
    return _pil_to_frame(converted)


def array_to_frame(array: np.ndarray) -> Frame:
    """Turn one in-memory image (from an ``.npz`` or TFDS) into a :class:`Frame`.

    Args:
        array: Shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (alpha composited on
            black); dtype ``uint8`` (/255), ``uint16`` (/65535), ``bool``, or float with every value
            in ``[0, 1]``.

    Raises:
        ImageReadError: any other shape, dtype or value range, with the reason.

    Example:
        >>> images = np.zeros((5, 28, 28), np.uint8)   # e.g. an .npz file's "train_images"
        >>> array_to_frame(images[0]).pixels.shape
        (28, 28, 1)
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageReadError(
            f"array of shape {array.shape} is not an image; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(f"array of shape {array.shape} has no pixels")
    if array.dtype == np.uint8:
        scale, bits = 255.0, 8
    elif array.dtype == np.uint16:
        scale, bits = 65535.0, 16
    elif array.dtype == np.bool_:
        scale, bits = 1.0, 8
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageReadError("array contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ImageReadError(f"float array has values in [{low:g}, {high:g}]; expected values in [0, 1]")
        scale, bits = 1.0, 16 if array.dtype.itemsize > 2 else 8
    else:
        raise ImageReadError(f"array dtype {array.dtype} is not supported; use uint8, uint16, bool or float in [0, 1]")
    if array.shape[-1] == 4:
        pixels = _composite_on_black(array.astype(np.float32) * np.float32(255.0 / scale), 255.0)
    else:
        pixels = array.astype(np.float32) * np.float32(1.0 / scale)
    return Frame(np.ascontiguousarray(pixels, dtype=np.float32), bits)
