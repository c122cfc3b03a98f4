"""Write real image, DICOM and deliberately broken files for tests.

Every function writes one file into ``directory`` (created if needed) and returns its ``Path``.
The pixel content is known, so tests can check values after reading. Use them from any test::

    from tests.filemakers import write_png16, write_truncated
    path = write_png16(tmp_path, "ct.png", np.array([[1000, 1001]], np.uint16))
"""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "gradient",
    "mode_image",
    "write_image",
    "write_mode_image",
    "write_png16",
    "write_tiff16",
    "write_multipage_tiff",
    "write_exif_rotated_jpeg",
    "write_empty",
    "write_truncated",
    "write_text_as_image",
    "write_png_bomb",
    "write_unreadable",
    "write_dicom_copy",
    "write_monochrome1_dicom",
    "write_enhanced_multiframe_dicom",
    "write_image_folder",
    "write_busi_like",
    "write_isic_like",
    "write_chexpert_like",
    "PATIENT_ID",
    "PATIENT_NAME",
]

# Known patient identifiers written into DICOM copies, so tests can check they never leak.
PATIENT_ID = "RAGAN-TEST-PATIENT-0042"
PATIENT_NAME = "Doe^Jane^Ragan"


def _target(directory: str | Path, name: str) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def gradient(height: int = 16, width: int = 24, maximum: int = 255, dtype=np.uint8) -> np.ndarray:
    """A (height, width) ramp from 0 to ``maximum`` along the diagonal: every value is predictable."""
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    ramp = (rows * width + columns) / max(height * width - 1, 1)
    return np.rint(ramp * maximum).astype(dtype)


def mode_image(mode: str, height: int = 16, width: int = 24) -> Image.Image:
    """A small image in Pillow ``mode`` with known pixels (a ramp; alpha 0 in the top-left quarter).

    Supported modes: 1, L, LA, RGB, RGBA, P (grey palette), P-colour, P-transparent, CMYK,
    I;16, I;16B, I, F.
    """
    grey = gradient(height, width)
    alpha = np.full((height, width), 255, np.uint8)
    alpha[: height // 2, : width // 2] = 0
    rgb = np.stack([grey, 255 - grey, np.full_like(grey, 77)], axis=-1)
    if mode == "1":
        return Image.fromarray(grey > 127)
    if mode == "L":
        return Image.fromarray(grey)
    if mode == "LA":
        return Image.fromarray(np.stack([grey, alpha], axis=-1), "LA")
    if mode == "RGB":
        return Image.fromarray(rgb)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, alpha]))
    if mode == "CMYK":
        return Image.fromarray(rgb).convert("CMYK")
    if mode == "P":  # grey palette: 256 grey entries
        image = Image.fromarray(grey).convert("P")
        image.putpalette([v for i in range(256) for v in (i, i, i)])
        return image
    if mode == "P-colour":
        return Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    if mode == "P-transparent":
        image = Image.fromarray((grey // 16).astype(np.uint8), "L").convert("P")
        image.putpalette([v for i in range(16) for v in (i * 17, 0, 255 - i * 17)])
        image.info["transparency"] = 0  # index 0 (the darkest ramp values) is transparent
        return image
    if mode == "I;16":
        return Image.fromarray(gradient(height, width, 65535, np.uint16))
    if mode == "I;16B":
        values = gradient(height, width, 65535, np.uint16)
        return Image.frombytes("I;16B", (width, height), values.astype(">u2").tobytes())
    if mode == "I":
        return Image.fromarray(gradient(height, width, 65535, np.int32))
    if mode == "F":
        return Image.fromarray(gradient(height, width, 1, np.float32))
    raise ValueError(f"unknown test mode {mode!r}")


def write_image(directory, name: str, image: Image.Image | np.ndarray, **save_options) -> Path:
    """Save a Pillow image (or an array) under ``name``; the format follows the extension."""
    path = _target(directory, name)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(path, **save_options)
    return path


def write_mode_image(directory, name: str, mode: str, height: int = 16, width: int = 24) -> Path:
    """Write :func:`mode_image` (``mode``) to ``name`` (PNG, TIFF, JPEG ... by extension)."""
    return write_image(directory, name, mode_image(mode, height, width))


def write_png16(directory, name: str, values: np.ndarray) -> Path:
    """A 16-bit greyscale PNG holding exactly ``values`` (uint16, (H, W))."""
    return write_image(directory, name, Image.fromarray(np.asarray(values, dtype=np.uint16)))


def write_tiff16(directory, name: str, values: np.ndarray, big_endian: bool = False) -> Path:
    """A 16-bit greyscale TIFF holding exactly ``values``."""
    values = np.asarray(values, dtype=np.uint16)
    if big_endian:
        image = Image.frombytes("I;16B", values.shape[::-1], values.astype(">u2").tobytes())
    else:
        image = Image.fromarray(values)
    return write_image(directory, name, image)


def write_multipage_tiff(directory, name: str, pages: list[np.ndarray]) -> Path:
    """A multi-page TIFF, one page per uint8 array."""
    images = [Image.fromarray(np.asarray(page, dtype=np.uint8)) for page in pages]
    path = _target(directory, name)
    images[0].save(path, save_all=True, append_images=images[1:])
    return path


def write_exif_rotated_jpeg(directory, name: str, height: int = 8, width: int = 16) -> Path:
    """A landscape JPEG (``height`` x ``width``, white left half) whose EXIF says "rotate 90° CW".

    Orientation 6 means the stored image must be turned 90° clockwise to display, so a reader that
    honours it returns a portrait image whose *top* half is white.
    """
    pixels = np.zeros((height, width), np.uint8)
    pixels[:, : width // 2] = 255
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6
    return write_image(directory, name, image, exif=exif.tobytes(), quality=95)


def write_empty(directory, name: str = "empty.png") -> Path:
    """A 0-byte file."""
    path = _target(directory, name)
    path.write_bytes(b"")
    return path


def write_truncated(directory, name: str, keep_fraction: float = 0.5, size: int = 48) -> Path:
    """A real image (format by extension) with its tail cut off, keeping ``keep_fraction`` of the bytes."""
    rng = np.random.default_rng(0)  # noise so the compressed data is long enough to cut
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    path = write_image(directory, name, noise)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def write_text_as_image(directory, name: str = "notes.png") -> Path:
    """A text file with an image extension."""
    path = _target(directory, name)
    path.write_text("This is not an image, just some notes saved with the wrong extension.\n" * 4)
    return path


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png_bomb(directory, name: str = "bomb.png", width: int = 30000, height: int = 30000) -> Path:
    """A tiny PNG whose header (with a valid CRC) claims ``width`` x ``height`` 1-bit pixels.

    The pixel data is a single short compressed row: opening is cheap, decoding would need
    ``width * height`` pixels, which is what a decompression-bomb check must refuse.
    """
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    pixel_data = zlib.compress(b"\x00" * (1 + (width + 7) // 8))
    chunks = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixel_data) + _png_chunk(b"IEND", b"")
    data = b"\x89PNG\r\n\x1a\n" + chunks
    path = _target(directory, name)
    path.write_bytes(data)
    return path


def write_unreadable(directory, name: str = "locked.png") -> Path:
    """A valid PNG with permissions 000 (still readable by root: check ``os.geteuid()``)."""
    path = write_mode_image(directory, name, "L")
    os.chmod(path, 0)
    return path


def write_dicom_copy(
    directory,
    name: str,
    testfile: str = "CT_small.dcm",
    patient_id: str | None = PATIENT_ID,
    patient_name: str | None = PATIENT_NAME,
    **attributes,
) -> Path:
    """A copy of one of pydicom's bundled test files with known patient tags and any ``attributes``.

    Example:
        >>> write_dicom_copy(Path("."), "ct.dcm", "CT_small.dcm", WindowCenter=40, WindowWidth=400).name
        'ct.dcm'
    """
    import pydicom
    from pydicom.data import get_testdata_file

    dataset = pydicom.dcmread(get_testdata_file(testfile))
    if patient_id is not None:
        dataset.PatientID = patient_id
    if patient_name is not None:
        dataset.PatientName = patient_name
    for keyword, value in attributes.items():
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    path = _target(directory, name)
    dataset.save_as(path, enforce_file_format=True)
    return path


def write_monochrome1_dicom(directory, name: str = "mono1.dcm", testfile: str = "CT_small.dcm") -> Path:
    """The same pixels as ``testfile`` but marked MONOCHROME1 (low values displayed bright)."""
    return write_dicom_copy(directory, name, testfile, PhotometricInterpretation="MONOCHROME1")


def write_enhanced_multiframe_dicom(
    directory,
    name: str = "enhanced.dcm",
    slopes: tuple[float, float] = (1.0, 2.0),
    intercepts: tuple[float, float] = (-1024.0, -100.0),
) -> Path:
    """A 2-frame file (CT_small's pixels twice) whose rescale lives in per-frame functional groups.

    The top-level RescaleSlope/Intercept are removed, so only a reader that honours the
    Per-frame Functional Groups gets frame-specific values.
    """
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = dataset.pixel_array
    for keyword in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.NumberOfFrames = 2
    dataset.PixelData = np.stack([pixels, pixels]).astype(pixels.dtype).tobytes()
    per_frame = []
    for slope, intercept in zip(slopes, intercepts):
        transformation = Dataset()
        transformation.RescaleSlope = slope
        transformation.RescaleIntercept = intercept
        transformation.RescaleType = "HU"
        item = Dataset()
        item.PixelValueTransformationSequence = Sequence([transformation])
        per_frame.append(item)
    dataset.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    dataset.PatientID = PATIENT_ID
    path = _target(directory, name)
    dataset.save_as(path, enforce_file_format=True)
    return path


def write_image_folder(root, layout: dict[str, str]) -> Path:
    """Create files under ``root`` from ``{relative path: what}``.

    ``what`` is ``"png"``/``"jpg"``/``"tif"``/``"bmp"`` (a small valid image in that format),
    ``"dicom"`` (a CT_small copy), ``"text"`` (a text file), or ``"empty"`` (0 bytes).

    Example:
        >>> root = write_image_folder(Path("folder"), {"a/1.png": "png", "b/x ü.jpg": "jpg", "notes.txt": "text"})
        >>> sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        ['a/1.png', 'b/x ü.jpg', 'notes.txt']
    """
    root = Path(root)
    for relpath, what in layout.items():
        target = root / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if what in ("png", "jpg", "tif", "bmp"):
            image_format = {"jpg": "JPEG", "tif": "TIFF"}.get(what, what.upper())
            Image.fromarray(gradient(12, 10)).save(target, format=image_format)
        elif what == "dicom":
            from pydicom.data import get_testdata_file

            shutil.copyfile(get_testdata_file("CT_small.dcm"), target)
        elif what == "text":
            target.write_text("not an image\n")
        elif what == "empty":
            target.write_bytes(b"")
        else:
            raise ValueError(f"unknown file kind {what!r} for {relpath!r}")
    return root


def _textured(seed: int, size: int = 24) -> np.ndarray:
    """A greyscale image with many distinct values (a real photo's histogram, not a mask's)."""
    rng = np.random.default_rng(seed)
    return (gradient(size, size).astype(int) // 2 + rng.integers(0, 120, (size, size))).astype(np.uint8)


def write_busi_like(root, per_class: int = 4) -> Path:
    """BUSI's layout: class folders holding ``benign (1).png`` and its mask ``benign (1)_mask.png``
    (0/255), some images with a second mask ``_mask_1``."""
    root = Path(root)
    for class_index, name in enumerate(("benign", "malignant", "normal")):
        for index in range(1, per_class + 1):
            seed = class_index * 100 + index
            write_image(root / name, f"{name} ({index}).png", _textured(seed))
            mask = np.zeros((24, 24), np.uint8)
            mask[6 : 6 + index * 3, 8:18] = 255
            write_image(root / name, f"{name} ({index})_mask.png", mask)
            if index == 1:
                write_image(root / name, f"{name} ({index})_mask_1.png", mask[::-1].copy())
    return root


def write_isic_like(root, count: int = 12) -> tuple[Path, Path]:
    """ISIC 2020's layout: a flat ``train/`` of ``ISIC_*.jpg`` and ``train.csv`` with ``image_name``
    (no extension), ``patient_id``, ``diagnosis`` and ``target`` (0/1); one row has no image and
    one image has no row. Returns ``(image folder, csv)``."""
    root = Path(root)
    diagnoses = ["nevus", "melanoma", "seborrheic keratosis", "unknown"]
    lines = ["image_name,patient_id,sex,diagnosis,benign_malignant,target"]
    for index in range(count):
        name = f"ISIC_{1000000 + index:07d}"
        diagnosis = diagnoses[index % 4]
        target = 1 if diagnosis == "melanoma" else 0
        write_image(root / "train", f"{name}.jpg", Image.fromarray(_textured(index)).convert("RGB"), quality=95)
        lines.append(f"{name},IP_{index // 3:07d},female,{diagnosis},{'malignant' if target else 'benign'},{target}")
    lines.append("ISIC_9999999,IP_9999999,male,nevus,benign,0")  # a row without an image
    write_image(root / "train", "ISIC_8888888.jpg", Image.fromarray(_textured(99)).convert("RGB"))  # no row
    csv_path = root / "train.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "train", csv_path


def write_chexpert_like(root, patients: int = 6) -> tuple[Path, Path]:
    """CheXpert's layout: ``CheXpert-v1.0-small/train/patientNNNNN/studyK/view1_frontal.jpg`` and a
    ``train.csv`` whose ``Path`` column starts with ``CheXpert-v1.0-small/``, a ``Pleural Effusion``
    column of 1.0/0.0/-1.0 and the patient in the path (also as a ``Patient`` column). Returns
    ``(the train folder, csv)``."""
    root = Path(root) / "CheXpert-v1.0-small"
    lines = ["Path,Patient,Sex,Age,Frontal/Lateral,Pleural Effusion"]
    for patient in range(1, patients + 1):
        for study in (1, 2):
            relative = f"train/patient{patient:05d}/study{study}/view1_frontal.jpg"
            seed = patient * 10 + study
            write_image(root / Path(relative).parent, Path(relative).name, _textured(seed), quality=95)
            value = ("1.0", "0.0", "-1.0")[(patient + study) % 3]
            lines.append(f"CheXpert-v1.0-small/{relative},patient{patient:05d},Female,{40 + patient},Frontal,{value}")
    csv_path = root / "train.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "train", csv_path
