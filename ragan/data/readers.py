"""Find and read the source images of a dataset: PNG/JPEG/BMP/TIFF via Pillow, DICOM via pydicom.

Every reader returns :class:`Frame` objects whose pixels are ``float32`` in ``[0, 1]`` with shape
``(height, width, channels)``, ``channels`` being 1 or 3, so the rest of ``prepare`` never cares
where an image came from. 16-bit sources keep their precision (no detour through 8 bits).

A file that cannot be used raises :class:`ImageReadError` with a short reason that ``prepare``
records in the manifest's ``skipped`` list; a problem with the user's arguments (a missing input
folder, an unknown window name) raises :class:`~ragan.errors.RaganError`.

This module runs inside the worker processes of ``prepare`` and therefore imports neither
TensorFlow nor anything from ragan that does.

How values are mapped to ``[0, 1]``:

* 8-bit data is divided by 255; 16-bit data (PNG/TIFF modes ``I;16``, ``I;16B`` ...) by 65535,
  the full range of the stored type, so a 12-bit image stored in a 16-bit PNG stays as dark as it
  is in the file.
* Mode ``I`` (32-bit integers, e.g. a 32-bit TIFF or a 16-bit PNG written by old software) is
  treated as 16-bit data (divided by 65535) when every value fits in ``0..65535``; otherwise there
  is no standard range and the frame is scaled by its own minimum and maximum.
* Mode ``F`` (32-bit floats) is used as it is when every value lies in ``[0, 1]``, otherwise it
  is scaled by the frame's minimum and maximum.
* Alpha is composited on black; palette images become RGB, or greyscale when every palette entry
  they use is grey; CMYK and other colour spaces become RGB. Greyscale content stored as RGB stays
  RGB here (``preprocess_frame`` converts channels).
* JPEG (and any other format carrying it) EXIF orientation is applied.
* Pillow reads 16-bit *colour* PNGs as 8-bit RGB; such frames report ``source_bits=8``.
* DICOM: see :func:`read_file` (modality LUT, window, MONOCHROME1 inversion, colour, frames).
"""

from __future__ import annotations

import io
import os
import threading
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from ragan._common import first_line
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "IMAGE_EXTENSIONS",
    "DICOM_EXTENSIONS",
    "DICOM_WINDOW_PRESETS",
    "DEFAULT_MAX_PIXELS",
    "SourceFile",
    "ImageReadError",
    "DicomWindow",
    "Frame",
    "EightBitRead",
    "scan_folder",
    "read_file",
    "read_patient_id",
    "array_to_frame",
    "parse_dicom_window",
    "is_dicom_bytes",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DICOM_EXTENSIONS: frozenset[str] = frozenset({".dcm", ".dicom"})

# The size at which Pillow itself refuses to open an image (twice its MAX_IMAGE_PIXELS, above which
# it only warns): about 13k x 13k pixels, 0.5 GiB as RGB.
DEFAULT_MAX_PIXELS = 178_956_970

# Names users may give instead of "center,width" (Hounsfield units, common radiology presets).
DICOM_WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "stroke": (32.0, 8.0),
    "soft-tissue": (40.0, 400.0),
    "mediastinum": (50.0, 350.0),
    "liver": (30.0, 150.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
}
# String windows that are not presets: "auto" (file's window, else frame min-max),
# "minmax" (frame min-max, ignoring the file's window), "full" (the whole stored range, like None).
_WINDOW_MODES = ("auto", "minmax", "full")

# Operating-system clutter that is never reported as a skipped file.
_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})

_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"
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


@dataclass(frozen=True)
class SourceFile:
    """One input file found by :func:`scan_folder`.

    Args:
        path: Absolute filesystem path.
        relpath: Path relative to the input folder with ``/`` separators (what the manifest records).
        label: Class name (the first-level sub-folder), or ``None`` for an unlabelled folder.
        kind: ``"image"`` (read with Pillow) or ``"dicom"`` (read with pydicom).

    Example:
        >>> from PIL import Image
        >>> Path("glioma").mkdir()
        >>> Image.new("L", (4, 4)).save("glioma/a.png")
        >>> files, skipped = scan_folder(".")
        >>> files[0].relpath, files[0].label, files[0].kind
        ('glioma/a.png', 'glioma', 'image')
    """

    path: str
    relpath: str
    label: str | None
    kind: str


class ImageReadError(Exception):
    """A file that cannot be used; ``str(error)`` is a short reason for the manifest.

    Examples of reasons: ``'empty file (0 bytes)'``, ``'truncated image'``,
    ``'not an image (unrecognised format)'``, ``'permission denied'``,
    ``'DICOM has no pixel data'``.

    Example:
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
class DicomWindow:
    """A DICOM display window (VOI): values ``center ± width/2`` span black to white.

    Args:
        center: Window centre in modality units (Hounsfield units for CT).
        width: Window width in the same units, greater than 0.

    Example:
        >>> from pydicom.data import get_testdata_file   # a 128x128 CT that ships with pydicom
        >>> lung = DicomWindow(center=-600, width=1500)
        >>> frames = read_file(get_testdata_file("CT_small.dcm"), kind="dicom", window=lung)
        >>> frames[0].pixels.shape
        (128, 128, 1)
    """

    center: float
    width: float

    def __post_init__(self):
        if not np.isfinite(self.center) or not np.isfinite(self.width) or self.width <= 0:
            raise RaganError(
                f"DICOM window center={self.center!r}, width={self.width!r} is not allowed; "
                "the center must be a finite number and the width a number greater than 0"
            )


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
        >>> Image.fromarray(np.full((4, 4), 1000, np.uint16)).save("xray.png")   # a 16-bit greyscale PNG
        >>> frame = read_file("xray.png")[0]
        >>> frame.pixels.shape, frame.source_bits
        ((4, 4, 1), 16)
    """

    pixels: np.ndarray
    source_bits: int
    patient_id: str | None = None


# --------------------------------------------------------------------------- folder scanning


def is_dicom_bytes(header: bytes) -> bool:
    """True when ``header`` (the first 132+ bytes of a file) carries the DICOM ``DICM`` marker."""
    return header[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + 4] == _DICOM_MAGIC


def _file_header(path: str, size: int = 132) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def _classify(path: str, name: str) -> tuple[str | None, str]:
    """Return (kind, reason): kind "image"/"dicom", or None with the reason it is not usable."""
    extension = os.path.splitext(name)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return "image", ""
    if extension in DICOM_EXTENSIONS:
        return "dicom", ""
    # DICOM files are often named by UID ("1.2.840.113619.2.55.3.320") or have no extension:
    # the 'DICM' marker identifies them.
    if is_dicom_bytes(_file_header(path)):
        return "dicom", ""
    if extension:
        return None, f"not an image: unsupported extension '{extension}'"
    return None, "not an image: no file extension and no DICOM header"


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _is_symlink_loop(root: str, relative_dir: str) -> bool:
    """True when ``root/relative_dir`` is (via symbolic links) the same folder as one of its parents."""
    if relative_dir == ".":
        return False
    parts = Path(relative_dir).parts
    real = os.path.realpath(os.path.join(root, *parts))
    return any(os.path.realpath(os.path.join(root, *parts[:depth])) == real for depth in range(len(parts)))


def scan_folder(
    root: str | Path, *, labels_from_folders: bool = True
) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """List the usable image and DICOM files under ``root``, sorted by relative path.

    A folder whose images all sit in first-level sub-folders is *labelled*: the sub-folder name is
    the class, and deeper folders belong to that class (e.g. one DICOM series per patient). A
    folder with images directly inside it is *unlabelled*. Hidden files and folders (starting
    with ``.``), ``__MACOSX``, ``Thumbs.db`` and ``desktop.ini`` are ignored silently; other files
    that are not images are returned as skipped with a reason. Symbolic links to files and folders
    are followed; a link back to one of its own parent folders is not entered (no endless loop).

    Args:
        root: The input folder.
        labels_from_folders: ``False`` when the labels come from elsewhere (a labels CSV): every
            file is then unlabelled and images may sit at any depth.

    Returns:
        ``(files, skipped)``: the :class:`SourceFile` list, and ``(relpath, reason)`` pairs such as
        ``("notes.txt", "not an image: unsupported extension '.txt'")``.

    Raises:
        RaganError: ``root`` does not exist, is not a folder, holds no image files, or holds
            images both directly inside it and in sub-folders.

    Example:
        >>> from PIL import Image
        >>> for name in ("glioma/a.png", "meningioma/b.png"):
        ...     Path(name).parent.mkdir()
        ...     Image.new("L", (4, 4)).save(name)
        >>> _ = Path("notes.txt").write_text("not an image")
        >>> files, skipped = scan_folder(".")
        >>> sorted({f.label for f in files})
        ['glioma', 'meningioma']
        >>> skipped
        [('notes.txt', "not an image: unsupported extension '.txt'")]
    """
    root_path = os.path.abspath(os.fspath(root))
    if not os.path.exists(root_path):
        raise RaganError(f"input folder '{root}' does not exist")
    if not os.path.isdir(root_path):
        raise RaganError(f"input '{root}' is not a folder; give a folder of images (class sub-folders for labels)")

    found: list[tuple[str, str, str]] = []  # (relpath, absolute path, kind)
    skipped: list[tuple[str, str]] = []
    for directory, dirnames, filenames in os.walk(root_path, followlinks=True):
        relative_dir = os.path.relpath(directory, root_path)
        if _is_symlink_loop(root_path, relative_dir):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d))
        for name in sorted(filenames):
            if _is_ignored(name):
                continue
            path = os.path.join(directory, name)
            relpath = name if relative_dir == "." else Path(relative_dir, name).as_posix()
            if not os.path.isfile(path):  # a broken symlink, a socket ...
                skipped.append((relpath, "not a regular file (broken link or special file)"))
                continue
            kind, reason = _classify(path, name)
            if kind is None:
                skipped.append((relpath, reason))
            else:
                found.append((relpath, path, kind))

    found.sort(key=lambda item: item[0])
    skipped.sort(key=lambda item: item[0])
    if not found:
        detail = f" ({len(skipped)} other files, e.g. '{skipped[0][0]}': {skipped[0][1]})" if skipped else ""
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS | DICOM_EXTENSIONS))
        raise RaganError(f"input folder '{root}' contains no image files{detail}; supported: {allowed} and DICOM")

    top_level = [relpath for relpath, _, _ in found if "/" not in relpath]
    nested = [relpath for relpath, _, _ in found if "/" in relpath] if labels_from_folders else []
    if top_level and nested:
        raise RaganError(
            f"input folder '{root}' has image files both directly inside it (e.g. '{top_level[0]}') and in "
            f"sub-folders (e.g. '{nested[0]}'); put every image in a class sub-folder for a labelled dataset, "
            "or every image directly in the folder for an unlabelled one"
        )
    labelled = bool(nested)
    files = [
        SourceFile(path=path, relpath=relpath, label=relpath.split("/", 1)[0] if labelled else None, kind=kind)
        for relpath, path, kind in found
    ]
    return files, skipped


# --------------------------------------------------------------------------- reading: common


def parse_dicom_window(value: str | DicomWindow | None) -> DicomWindow | str | None:
    """Turn a user's window choice into what :func:`read_file` takes.

    Accepts ``"auto"`` (the file's window, else each frame's min-max), ``"minmax"`` (each frame's
    min-max, ignoring the file's window), ``"full"`` or ``"none"`` (the whole stored value range,
    the same for every file), a preset name (``"brain"``, ``"lung"``, ``"bone"`` ... see
    ``DICOM_WINDOW_PRESETS``) or ``"center,width"`` such as ``"40,400"``.

    Raises:
        RaganError: for anything else, naming the allowed values.

    Example:
        >>> parse_dicom_window("40,400")
        DicomWindow(center=40.0, width=400.0)
        >>> parse_dicom_window("lung")
        DicomWindow(center=-600.0, width=1500.0)
    """
    if value is None or isinstance(value, DicomWindow):
        return value
    text = str(value).strip().lower()
    if text in ("full", "none"):
        return None
    if text in _WINDOW_MODES:
        return text
    if text in DICOM_WINDOW_PRESETS:
        return DicomWindow(*DICOM_WINDOW_PRESETS[text])
    parts = text.replace("/", ",").split(",")
    if len(parts) == 2:
        try:
            center, width = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            return DicomWindow(center, width)
    options = [*_WINDOW_MODES, *DICOM_WINDOW_PRESETS]
    raise RaganError(
        f"DICOM window {value!r} is not allowed; use 'center,width' (e.g. '40,400'), 'none', or one of "
        f"{', '.join(repr(o) for o in options)}.{did_you_mean(text, options)}"
    )


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ImageReadError("file not found") from None
    except PermissionError:
        raise ImageReadError("permission denied") from None
    except IsADirectoryError:
        raise ImageReadError("is a folder, not a file") from None
    except OSError as error:
        raise ImageReadError(f"cannot read file ({error.strerror or error})") from None


def _bomb_message(width: int, height: int, max_pixels: int) -> str:
    return f"decompression bomb: {width}x{height} pixels exceeds the limit of {max_pixels}"


def read_file(
    path: str | Path,
    *,
    kind: str = "auto",
    window: DicomWindow | str | None = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
    eight_bit: EightBitRead | None = None,
) -> list[Frame]:
    """Read one image or DICOM file into frames with pixels in ``[0, 1]``.

    Multi-page TIFFs (and other multi-frame images) and multi-frame DICOMs give one frame each.

    DICOM pixels go through the Modality LUT (Rescale Slope/Intercept, with pydicom's
    ``apply_modality_lut``; per-frame values of enhanced multi-frame files are honoured), then a
    window that maps them to ``[0, 1]`` (DICOM's LINEAR formula; SIGMOID and LINEAR_EXACT when the
    file asks for them):

    * ``"auto"``: the file's WindowCenter/WindowWidth (the first pair when several), else the
      frame's own minimum and maximum;
    * a :class:`DicomWindow`, a preset name or ``"center,width"`` string: that window;
    * ``"minmax"``: the frame's minimum and maximum, ignoring the file's window;
    * ``None`` (or ``"full"``): the whole range the stored bits can hold (after rescale), the same
      mapping for every file with the same bits, so relative brightness across files is kept.

    MONOCHROME1 images are inverted so that higher is brighter; RGB, YBR and PALETTE COLOR
    DICOMs give 3 channels. A frame whose values are all equal becomes black under min-max.

    Args:
        path: The file. With ``data``, only used to choose the reader by extension and in messages.
        kind: ``"image"``, ``"dicom"`` or ``"auto"`` (by extension, then by the ``DICM`` marker).
            An "image" that Pillow cannot identify but that has the DICOM marker is read as DICOM.
        window: DICOM window, see above; ignored for images.
        max_pixels: Largest width x height accepted; bigger files raise ``ImageReadError`` before
            their pixels are decoded (protection against decompression bombs).
        data: The file's bytes, when they do not come from ``path`` (e.g. a zip member).
        eight_bit: For an 8-bit output: a single-frame 8-bit greyscale or RGB image then comes
            back as one frame with ``uint8`` pixels (no float conversion), decoded by JPEG at a
            reduced size and/or in greyscale when :class:`EightBitRead` allows it. Other files
            are read as usual.

    Returns:
        A list of :class:`Frame` (at least one).

    Raises:
        ImageReadError: the file cannot be used; ``str(error)`` says why.
        RaganError: ``kind`` or ``window`` is not an allowed value.

    Example:
        >>> from pydicom.data import get_testdata_file   # a 128x128 CT that ships with pydicom
        >>> frames = read_file(get_testdata_file("CT_small.dcm"), window="lung")
        >>> frames[0].pixels.shape, frames[0].pixels.dtype
        ((128, 128, 1), dtype('float32'))
    """
    path = os.fspath(path)
    if kind not in ("auto", "image", "dicom"):
        raise RaganError(f"kind={kind!r} is not allowed; choose one of 'auto', 'image', 'dicom'")
    window = parse_dicom_window(window) if isinstance(window, str) else window
    if data is None:
        data = _read_bytes(path)
    if len(data) == 0:
        raise ImageReadError("empty file (0 bytes)")
    if kind == "auto":
        extension = os.path.splitext(path)[1].lower()
        if extension in DICOM_EXTENSIONS or (extension not in IMAGE_EXTENSIONS and is_dicom_bytes(data)):
            kind = "dicom"
        else:
            kind = "image"
    if kind == "dicom":
        return _read_dicom(data, window=window, max_pixels=max_pixels)
    try:
        return _read_image(data, max_pixels=max_pixels, eight_bit=eight_bit)
    except _UnidentifiedImage:
        if is_dicom_bytes(data):
            return _read_dicom(data, window=window, max_pixels=max_pixels)
        raise


class _UnidentifiedImage(ImageReadError):
    """Pillow does not recognise the bytes (read_file then tries DICOM when the marker is there)."""


def _unidentified(data: bytes) -> _UnidentifiedImage:
    for signature, name in _IMAGE_SIGNATURES.items():
        # "BM" is too short a signature to claim that a file was meant to be a BMP.
        if data.startswith(signature) and name != "BMP":
            return _UnidentifiedImage(f"truncated image ({name} header cannot be read)")
    return _UnidentifiedImage("not an image (unrecognised format)")


# --------------------------------------------------------------------------- reading: Pillow


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
            raise ImageReadError(_bomb_message(*_size_without_limit(data), max_pixels)) from None
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
        except Exception:  # the size is only for the message
            return (0, 0)
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _decode_error(error: BaseException) -> ImageReadError:
    message = str(error)
    if "truncated" in message.lower() or isinstance(error, EOFError):
        return ImageReadError("truncated image")
    return ImageReadError(f"corrupt image ({first_line(error, 120)})")


def _read_image(data: bytes, *, max_pixels: int, eight_bit: EightBitRead | None = None) -> list[Frame]:
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
                    raise ImageReadError(_bomb_message(width, height, max_pixels))
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
            raise ImageReadError(_bomb_message(width, height, max_pixels))
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


# --------------------------------------------------------------------------- reading: DICOM


def _dcmread(data: bytes, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(io.BytesIO(data), **kwargs)
    except InvalidDicomError:
        pass  # no preamble: older files omit it; try once more without insisting on 'DICM'
    except Exception as error:  # pydicom raises many types for malformed headers
        raise ImageReadError(f"corrupt DICOM header ({first_line(error, 120)})") from None
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True, **kwargs)
    except Exception:
        raise ImageReadError("not a DICOM file (no DICM marker and no readable header)") from None
    if "SOPClassUID" not in dataset and "Rows" not in dataset and "PatientID" not in dataset:
        raise ImageReadError("not a DICOM file (no DICM marker and no readable header)")
    return dataset


def read_patient_id(path: str | Path, *, data: bytes | None = None) -> str | None:
    """Return a DICOM file's PatientID from its header only (fast); ``None`` for images.

    The value is raw patient data: use it only as a grouping key and never write it out.

    Args:
        path: The file; non-DICOM files (by extension and ``DICM`` marker) give ``None``.
        data: The file's bytes, when they do not come from ``path``.

    Raises:
        ImageReadError: a DICOM file whose header cannot be read.

    Example:
        >>> from pydicom.data import get_testdata_file   # a CT that ships with pydicom
        >>> read_patient_id(get_testdata_file("CT_small.dcm"))
        '1CT1'
        >>> read_patient_id("photo.png") is None   # images have no patient (the file is not even opened)
        True
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return None
    header = data[:132] if data is not None else _file_header(path)
    if extension not in DICOM_EXTENSIONS and not is_dicom_bytes(header):
        return None
    if data is None:
        data = _read_bytes(path)
    if len(data) == 0:
        raise ImageReadError("empty file (0 bytes)")
    dataset = _dcmread(data, stop_before_pixels=True, specific_tags=["PatientID"])
    return _patient_id(dataset)


def _patient_id(dataset) -> str | None:
    value = dataset.get("PatientID")
    text = str(value).strip() if value is not None else ""
    return text or None


def _functional_item(dataset, frame_index: int, sequence_name: str):
    """The per-frame (else shared) functional-group item of an enhanced multi-frame file."""
    places = (("PerFrameFunctionalGroupsSequence", frame_index), ("SharedFunctionalGroupsSequence", 0))
    for groups_name, index in places:
        groups = dataset.get(groups_name)
        if groups and index < len(groups):
            sequence = groups[index].get(sequence_name)
            if sequence:
                return sequence[0]
    return None


def _frame_view(dataset, frame_index: int):
    """A small dataset with the rescale and window attributes that apply to one frame."""
    from pydicom.dataset import Dataset

    view = Dataset()
    if hasattr(dataset, "file_meta"):  # a Modality LUT stored as OW needs the byte order
        view.file_meta = dataset.file_meta
    for keyword in (
        "BitsStored",
        "PixelRepresentation",
        "PhotometricInterpretation",
        "ModalityLUTSequence",
        "RescaleSlope",
        "RescaleIntercept",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
    ):
        if keyword in dataset:
            setattr(view, keyword, dataset[keyword].value)
    transformation = _functional_item(dataset, frame_index, "PixelValueTransformationSequence")
    if transformation is not None:
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            if keyword in transformation:
                setattr(view, keyword, transformation[keyword].value)
    voi = _functional_item(dataset, frame_index, "FrameVOILUTSequence")
    if voi is not None:
        for keyword in ("WindowCenter", "WindowWidth", "VOILUTFunction"):
            if keyword in voi:
                setattr(view, keyword, voi[keyword].value)
    return view


def _first(value) -> float | None:
    """The first value of a possibly multi-valued numeric tag (WindowCenter "40\\400" -> 40.0)."""
    if not isinstance(value, str) and isinstance(value, Sequence):
        value = value[0] if len(value) else None
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _stored_range(view) -> tuple[float, float]:
    """The values the stored bits can hold, after the modality LUT."""
    from pydicom.pixels import apply_modality_lut

    if view.get("ModalityLUTSequence"):
        bits = int(view.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    bits = int(view.get("BitsStored") or 16)
    if view.get("PixelRepresentation", 0) == 1:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        low, high = 0, 2**bits - 1
    mapped = np.asarray(apply_modality_lut(np.array([low, high], dtype=np.float64), view), dtype=np.float64)
    return float(mapped.min()), float(mapped.max())


def _apply_window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 VOI functions, with output scaled to [0, 1]."""
    if function == "SIGMOID":
        return (1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))).astype(np.float32)
    if function == "LINEAR_EXACT":
        result = (values - center) / width + 0.5
    else:  # LINEAR, the default
        width = max(width, 1.0)  # the standard requires width >= 1
        if width == 1.0:
            return (values > center - 0.5).astype(np.float32)
        result = (values - (center - 0.5)) / (width - 1.0) + 0.5
    return np.clip(result, 0.0, 1.0).astype(np.float32)


def _monochrome_to_unit(stored: np.ndarray, view, window: DicomWindow | str | None) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut

    values = np.asarray(apply_modality_lut(stored, view), dtype=np.float64)
    center = width = None
    function = "LINEAR"
    if isinstance(window, DicomWindow):
        center, width = window.center, window.width
    elif window == "auto":
        center, width = _first(view.get("WindowCenter")), _first(view.get("WindowWidth"))
        if center is None or width is None or width <= 0:
            center = width = None
        else:
            function = str(view.get("VOILUTFunction") or "LINEAR").upper()
    if center is not None:
        return _apply_window(values, center, width, function)
    if window is None:
        low, high = _stored_range(view)
    else:  # "minmax", or "auto" without a window in the file
        low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return np.clip((values - low) / (high - low), 0.0, 1.0).astype(np.float32)


def _compressed_message(dataset) -> str | None:
    transfer_syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if transfer_syntax is not None and transfer_syntax.is_compressed:
        return (
            f"DICOM compressed with {transfer_syntax.name}: install pylibjpeg to read it "
            "(pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg)"
        )
    return None


def _decode_dicom_pixels(dataset) -> np.ndarray:
    if not any(k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise ImageReadError("DICOM has no pixel data")
    try:
        return dataset.pixel_array
    except MemoryError:
        raise ImageReadError("DICOM pixel data too large for memory") from None
    except Exception as error:
        message = str(error)
        if "less than expected" in message or "truncated" in message.lower():
            raise ImageReadError("truncated DICOM pixel data") from None
        compressed = _compressed_message(dataset)
        if compressed and ("plugin" in message or "handler" in message or "decode" in message.lower()):
            raise ImageReadError(compressed) from None
        raise ImageReadError(f"DICOM pixel data cannot be decoded ({first_line(error, 120)})") from None


def _read_dicom(data: bytes, *, window: DicomWindow | str | None, max_pixels: int) -> list[Frame]:
    dataset = _dcmread(data)
    rows, columns = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)
    if rows * columns > max_pixels:
        raise ImageReadError(_bomb_message(columns, rows, max_pixels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about harmless header oddities
        stored = _decode_dicom_pixels(dataset)
    number_of_frames = int(dataset.get("NumberOfFrames") or 1)
    samples = int(dataset.get("SamplesPerPixel") or 1)
    photometric = str(dataset.get("PhotometricInterpretation") or "MONOCHROME2").upper()
    frame_ndim = 2 if samples == 1 else 3
    if stored.ndim == frame_ndim:
        stored = stored[None]
    if stored.ndim != frame_ndim + 1 or (number_of_frames > 1 and stored.shape[0] != number_of_frames):
        raise ImageReadError(f"DICOM pixel data has an unexpected shape {stored.shape}")
    bits_stored = int(dataset.get("BitsStored") or stored.dtype.itemsize * 8)
    source_bits = 8 if bits_stored <= 8 and stored.dtype.kind in "iub" else 16
    patient_id = _patient_id(dataset)

    frames = []
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        for frame in stored:
            rgb = apply_color_lut(frame, dataset)
            bits = 8 if rgb.dtype == np.uint8 else 16
            frames.append(Frame(rgb.astype(np.float32) * np.float32(1 / (2**bits - 1)), bits, patient_id))
        return frames
    if samples == 3:
        # pydicom has already converted YBR to RGB.
        scale = float(2 ** min(bits_stored, stored.dtype.itemsize * 8) - 1)
        for frame in stored:
            pixels = np.clip(frame.astype(np.float32) * np.float32(1 / scale), 0.0, 1.0)
            frames.append(Frame(pixels, source_bits, patient_id))
        return frames
    if samples != 1:
        raise ImageReadError(f"DICOM with {samples} samples per pixel is not supported")
    for index, frame in enumerate(stored):
        unit = _monochrome_to_unit(frame, _frame_view(dataset, index), window)
        if photometric == "MONOCHROME1":
            unit = 1.0 - unit
        frames.append(Frame(np.ascontiguousarray(unit[..., None], dtype=np.float32), source_bits, patient_id))
    return frames
