"""Read DICOM files with pydicom: modality LUT, display window, MONOCHROME1, colour and multi-frame.

See :func:`ragan.data.readers.read_file` for how values are mapped to ``[0, 1]``; this module is
what it calls for DICOM data. Imports neither TensorFlow nor anything from ragan that does
(pydicom itself is imported when a DICOM file is read).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ragan._common import first_line
from ragan.data.frames import Frame, ImageReadError, bomb_message
from ragan.errors import RaganError, did_you_mean

__all__ = ["DICOM_WINDOW_PRESETS", "DicomWindow", "parse_dicom_window", "read_dicom", "read_dicom_patient_id"]

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


@dataclass(frozen=True)
class DicomWindow:
    """A DICOM display window (VOI): values ``center ± width/2`` span black to white.

    Args:
        center: Window centre in modality units (Hounsfield units for CT).
        width: Window width in the same units, greater than 0.

    Example:
        >>> from pydicom.data import get_testdata_file   # a 128x128 CT that ships with pydicom
        >>> from ragan.data.readers import read_file
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


def _dcmread(data: bytes, **kwargs):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(io.BytesIO(data), **kwargs)
    except InvalidDicomError:
        pass  # no preamble: older files omit it; try once more without insisting on 'DICM'
    except Exception as error:  # noqa: BLE001 - pydicom raises many types for malformed headers
        raise ImageReadError(f"corrupt DICOM header ({first_line(error, 120)})") from None
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True, **kwargs)
    except Exception:  # noqa: BLE001 - whatever pydicom raises, the file is not DICOM
        raise ImageReadError("not a DICOM file (no DICM marker and no readable header)") from None
    if "SOPClassUID" not in dataset and "Rows" not in dataset and "PatientID" not in dataset:
        raise ImageReadError("not a DICOM file (no DICM marker and no readable header)")
    return dataset


def read_dicom_patient_id(data: bytes) -> str | None:
    """The PatientID in a DICOM file's header (the pixels are not read); ``None`` when it is empty."""
    return _patient_id(_dcmread(data, stop_before_pixels=True, specific_tags=["PatientID"]))


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
    except Exception as error:  # noqa: BLE001 - pixel data of a stranger's file: one line, not a traceback
        message = str(error)
        if "less than expected" in message or "truncated" in message.lower():
            raise ImageReadError("truncated DICOM pixel data") from None
        compressed = _compressed_message(dataset)
        if compressed and ("plugin" in message or "handler" in message or "decode" in message.lower()):
            raise ImageReadError(compressed) from None
        raise ImageReadError(f"DICOM pixel data cannot be decoded ({first_line(error, 120)})") from None


def read_dicom(data: bytes, *, window: DicomWindow | str | None, max_pixels: int) -> list[Frame]:
    """Decode a DICOM file's bytes into frames (see :func:`ragan.data.readers.read_file`)."""
    dataset = _dcmread(data)
    rows, columns = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)
    if rows * columns > max_pixels:
        raise ImageReadError(bomb_message(columns, rows, max_pixels))
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
