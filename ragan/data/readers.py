"""Find and read the source images of a dataset: PNG/JPEG/BMP/TIFF via Pillow, DICOM via pydicom.

This module scans folders and chooses the reader for each file; the readers themselves live in
:mod:`ragan.data.image_files` (Pillow, in-memory arrays) and :mod:`ragan.data.dicom_files` (pydicom),
and what they return in :mod:`ragan.data.frames`. Every public name is importable from here.

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

import os
from dataclasses import dataclass
from pathlib import Path

from ragan.data.dicom_files import (
    DICOM_WINDOW_PRESETS,
    DicomWindow,
    parse_dicom_window,
    read_dicom,
    read_dicom_patient_id,
)
from ragan.data.frames import DEFAULT_MAX_PIXELS, EightBitRead, Frame, ImageReadError
from ragan.data.image_files import UnidentifiedImage, array_to_frame, read_image
from ragan.errors import RaganError

# Besides its own scanning and reading, this module re-exports the reader's vocabulary (frames,
# DICOM windows, arrays), so that ``from ragan.data.readers import ...`` keeps working for all of it.
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
    "not_an_image_reason",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
DICOM_EXTENSIONS: frozenset[str] = frozenset({".dcm", ".dicom"})

# Operating-system clutter that is never reported as a skipped file.
_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})

_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"


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
    return None, not_an_image_reason(extension)


def not_an_image_reason(extension: str) -> str:
    """Why a file that is neither an image nor DICOM is skipped; ``extension`` is ``""`` when it has none.

    Example:
        >>> not_an_image_reason(".txt")
        "not an image: unsupported extension '.txt'"
    """
    if extension:
        return f"not an image: unsupported extension '{extension}'"
    return "not an image: no file extension and no DICOM header"


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _is_symlink_loop(root: str, relative_dir: str) -> bool:
    """True when ``root/relative_dir`` is (via symbolic links) the same folder as one of its parents."""
    if relative_dir == ".":
        return False
    parts = Path(relative_dir).parts
    real = os.path.realpath(os.path.join(root, *parts))
    return any(os.path.realpath(os.path.join(root, *parts[:depth])) == real for depth in range(len(parts)))


OUTSIDE_LINK_REASON = (
    "a symbolic link to {what} outside the input folder (not read; pass follow_symlinks=True, "
    "--follow-symlinks, to read it)"
)


def _outside(real_root: str, path: str) -> bool:
    """Whether ``path`` resolves (links followed) outside ``real_root``."""
    return os.path.commonpath([real_root, os.path.realpath(path)]) != real_root


def scan_folder(
    root: str | Path, *, labels_from_folders: bool = True, follow_symlinks: bool = False
) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """List the usable image and DICOM files under ``root``, sorted by relative path.

    A folder whose images all sit in first-level sub-folders is *labelled*: the sub-folder name is
    the class, and deeper folders belong to that class (e.g. one DICOM series per patient). A
    folder with images directly inside it is *unlabelled*. Hidden files and folders (starting
    with ``.``), ``__MACOSX``, ``Thumbs.db`` and ``desktop.ini`` are ignored silently; other files
    that are not images are returned as skipped with a reason. Symbolic links to files and folders
    inside ``root`` are followed; links that lead outside it are skipped with a reason (a folder
    received from someone else must not make ragan read, say, your home folder) unless
    ``follow_symlinks``; a link back to one of its own parent folders is not entered (no endless loop).

    Args:
        root: The input folder.
        labels_from_folders: ``False`` when the labels come from elsewhere (a labels CSV): every
            file is then unlabelled and images may sit at any depth.
        follow_symlinks: Also read files and folders that symbolic links lead to outside ``root``.

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
    real_root = os.path.realpath(root_path)
    for directory, dirnames, filenames in os.walk(root_path, followlinks=True):
        relative_dir = os.path.relpath(directory, root_path)
        if _is_symlink_loop(root_path, relative_dir):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d))
        if not follow_symlinks:
            outside = [d for d in dirnames if _outside(real_root, os.path.join(directory, d))]
            for name in outside:
                relpath = name if relative_dir == "." else Path(relative_dir, name).as_posix()
                skipped.append((relpath + "/", OUTSIDE_LINK_REASON.format(what="a folder")))
            dirnames[:] = [d for d in dirnames if d not in outside]
        for name in sorted(filenames):
            if _is_ignored(name):
                continue
            path = os.path.join(directory, name)
            relpath = name if relative_dir == "." else Path(relative_dir, name).as_posix()
            if not os.path.isfile(path):  # a broken symlink, a socket ...
                skipped.append((relpath, "not a regular file (broken link or special file)"))
                continue
            if not follow_symlinks and _outside(real_root, path):
                skipped.append((relpath, OUTSIDE_LINK_REASON.format(what="a file")))
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
        return read_dicom(data, window=window, max_pixels=max_pixels)
    try:
        return read_image(data, max_pixels=max_pixels, eight_bit=eight_bit)
    except UnidentifiedImage:
        if is_dicom_bytes(data):
            return read_dicom(data, window=window, max_pixels=max_pixels)
        raise


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
    return read_dicom_patient_id(data)
