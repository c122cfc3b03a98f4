"""What every reader gives back: :class:`Frame`, and :class:`ImageReadError` for a file that cannot be used.

Shared by the image-file reader (:mod:`ragan.data.image_files`), the DICOM reader
(:mod:`ragan.data.dicom_files`) and :func:`ragan.data.readers.read_file`, which chooses between them.
Imports neither TensorFlow nor anything from ragan that does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_MAX_PIXELS", "ImageReadError", "EightBitRead", "Frame", "bomb_message"]

# The size at which Pillow itself refuses to open an image (twice its MAX_IMAGE_PIXELS, above which
# it only warns): about 13k x 13k pixels, 0.5 GiB as RGB.
DEFAULT_MAX_PIXELS = 178_956_970


class ImageReadError(Exception):
    """A file that cannot be used; ``str(error)`` is a short reason for the manifest.

    Examples of reasons: ``'empty file (0 bytes)'``, ``'truncated image'``,
    ``'not an image (unrecognised format)'``, ``'permission denied'``,
    ``'DICOM has no pixel data'``.

    Example:
        >>> from pathlib import Path
        >>> from ragan.data.readers import read_file
        >>> _ = Path("broken.png").write_bytes(b"\\x89PNG\\r\\n\\x1a\\n")   # a PNG signature and nothing else
        >>> skipped = []
        >>> try:
        ...     read_file("broken.png")
        ... except ImageReadError as error:
        ...     skipped.append({"path": "broken.png", "reason": str(error)})
        >>> skipped
        [{'path': 'broken.png', 'reason': 'truncated image (PNG header cannot be read)'}]
    """


@dataclass(frozen=True)
class EightBitRead:
    """How :func:`read_file` may read an 8-bit image when the output is 8-bit too.

    Args:
        grey: Only greyscale is wanted: a colour JPEG may be decoded straight to its luma plane.
        draft_size: ``(width, height) -> (width, height) or None``: the smallest size the image may
            be decoded at (JPEG's reduced-size decoding picks 1/2, 1/4 or 1/8 of the full size while
            both sides stay at least this large); ``None`` for the full size.

    Example:
        >>> from PIL import Image
        >>> from ragan.data.readers import read_file
        >>> Image.new("RGB", (4, 4), (200, 10, 10)).save("red.jpg")
        >>> pixels = read_file("red.jpg", eight_bit=EightBitRead(grey=True))[0].pixels
        >>> pixels.shape, pixels.dtype
        ((4, 4, 1), dtype('uint8'))
    """

    grey: bool
    draft_size: object = None


@dataclass
class Frame:
    """One decoded image (one page of a TIFF, one frame of a multi-frame DICOM).

    Args:
        pixels: ``float32`` array in ``[0, 1]`` of shape ``(height, width, channels)``, channels 1 or 3
            (``uint8`` values 0..255 when read with :class:`EightBitRead`).
        source_bits: 8 or 16: the bit depth of the original data (16 for anything above 8 bits).
        patient_id: DICOM PatientID, raw. The caller may hash it as a group key; it must never be
            written out. ``None`` for non-DICOM sources or when the tag is empty.

    Example:
        >>> from PIL import Image
        >>> from ragan.data.readers import read_file
        >>> Image.fromarray(np.full((4, 4), 1000, np.uint16)).save("xray.png")   # a 16-bit greyscale PNG
        >>> frame = read_file("xray.png")[0]
        >>> frame.pixels.shape, frame.source_bits
        ((4, 4, 1), 16)
    """

    pixels: np.ndarray
    source_bits: int
    patient_id: str | None = None


def bomb_message(width: int, height: int, max_pixels: int) -> str:
    """The reason given for an image larger than ``max_pixels``, before its pixels are decoded."""
    return f"decompression bomb: {width}x{height} pixels exceeds the limit of {max_pixels}"
