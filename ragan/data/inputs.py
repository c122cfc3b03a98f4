"""The inputs ``prepare`` accepts, turned into one list of :class:`Source` items.

Input kinds (``input`` argument of :func:`ragan.prepare_dataset`):

==============================  ==============================================================
``path/to/folder``              images and/or DICOM files; one sub-folder per class, or flat
                                (unlabelled); see :func:`ragan.data.readers.scan_folder`
``data.zip``                    the same inside a zip (a single top folder wrapping everything
                                is ignored, so a zipped class-folder tree works either way)
``data.npz``                    MedMNIST layout (``train_images``/``train_labels``, ``val_*``,
                                ``test_*``) or ``images`` (+ optional ``labels``)
``sample:pneumoniamnist``       the small sample bundled with ragan
``medmnist:pneumoniamnist``     a MedMNIST v2 dataset from the cache (downloaded when online)
``tfds:colorectal_histology``   a TensorFlow Datasets dataset from the local TFDS data folder
                                (downloaded and prepared there when it is missing and online)
==============================  ==============================================================

Scanning reads every source once, in the main process: it hashes the bytes (SHA-256, used for
duplicate detection, the resume plan and the manifest), reads DICOM headers when needed (the
patient key for grouping, the frame count for sizing shards) and, for in-memory inputs (npz,
MedMNIST, TFDS), streams the arrays into a cache file so that worker processes can read any
image by offset without the main process holding them all.

Decoding and resizing run in worker processes (:func:`ragan.data.decoding.decode_chunk`, also
importable from here); the workers import this module, so it must never import TensorFlow at
module level.

Example:
    >>> from PIL import Image
    >>> for name in ("glioma/a.png", "meningioma/b.png"):
    ...     Path(name).parent.mkdir()
    ...     Image.new("L", (4, 4)).save(name)
    >>> scanned = scan_input(".", cache_dir="cache")
    >>> scanned.sources[0].path, scanned.sources[0].label, scanned.class_names
    ('glioma/a.png', 'glioma', ['glioma', 'meningioma'])
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from ragan._common import first_line

# The worker side (decoding) lives in ragan.data.decoding; its public names stay importable from here.
from ragan.data.decoding import (
    PILLOW_CACHED_BLOCKS,
    DecodeOptions,
    close_cached_files,
    decode_chunk,
    decode_source,
    error_summary,
    iter_chunks,
    pillow_block_cache,
    start_worker,
    watch_parent,
)
from ragan.data.readers import (
    DICOM_EXTENSIONS,
    IMAGE_EXTENSIONS,
    ImageReadError,
    SourceFile,
    is_dicom_bytes,
    read_patient_id,
    scan_folder,
)
from ragan.data.selection import Selection
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "INPUT_PREFIXES",
    "Source",
    "ScannedInput",
    "DecodeOptions",
    "input_kind",
    "scan_input",
    "decode_chunk",
    "decode_source",
    "close_cached_files",
    "iter_chunks",
    "pillow_block_cache",
    "start_worker",
    "watch_parent",
    "PILLOW_CACHED_BLOCKS",
]

INPUT_PREFIXES = ("sample:", "medmnist:", "tfds:")
# A zip member larger than this is refused before it is decompressed (zip bombs).
MAX_ZIP_MEMBER_BYTES = 1 << 30
# Keyed BLAKE2b of the content: the per-dataset salt for hashing patient keys. Outsiders see
# only SHA-256 hashes in the manifest, so they cannot derive it without the source files.
_SALT_KEY = b"ragan-patient-key-salt-v1"
# Sources are hashed in chunks of this size; DICOM headers are parsed from this much of the start.
_CHUNK_BYTES = 1 << 20
_HEADER_BYTES = 1 << 20
_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass
class Source:
    """One input image (or multi-frame file) and how to get its pixels.

    Args:
        path: Its name in the manifest: path relative to the input with ``/``, a zip member
            name, ``"<key>[<index>]"`` for an npz, ``"<split>[<index>]"`` for TFDS.
        sha256: Hex SHA-256 of the content (file bytes; dtype, shape and bytes for arrays).
        label: Class name, or ``None`` when the input is unlabelled.
        locator: What a worker needs to read it (see :func:`decode_source`).
        given_split: The split the input assigns (npz keys, TFDS splits), else ``None``.
        patient_key: Raw DICOM PatientID when asked for; never written anywhere.
        salt_digest: Keyed BLAKE2b of the content when asked for (salt of the group hashes).
        frames_hint: Expected number of frames (DICOM NumberOfFrames), to size shards.

    Example:
        >>> Source("a/1.png", "0" * 64, "a", ("file", "/data/a/1.png", "image")).frames_hint
        1
    """

    path: str
    sha256: str
    label: str | None
    locator: tuple
    given_split: str | None = None
    patient_key: str | None = None
    salt_digest: bytes | None = None
    frames_hint: int = 1


@dataclass
class ScannedInput:
    """The result of :func:`scan_input`.

    Args:
        kind: ``"folder"``, ``"zip"``, ``"npz"``, ``"sample"``, ``"medmnist"`` or ``"tfds"``.
        description: What the manifest records under ``"source"`` (no absolute paths).
        sources: Usable sources in input order (sorted paths for folders and zips).
        skipped: ``(path, reason)`` for files that are not usable images.
        class_names: Class names in label-index order; empty when unlabelled.
        has_splits: Whether the input defines its own train/val/test splits.

    Example:
        >>> scanned = scan_input("sample:pneumoniamnist", cache_dir="cache")   # bundled with ragan
        >>> scanned.class_names, scanned.has_splits
        (['normal', 'pneumonia'], True)
    """

    kind: str
    description: dict
    sources: list[Source]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    has_splits: bool = False


# --------------------------------------------------------------------------- input kinds


def input_kind(input) -> str:
    """Return the kind of ``input`` without reading it (see the module docstring).

    Raises:
        RaganError: the path does not exist or is a file of an unsupported type.

    Example:
        >>> input_kind("tfds:mnist"), input_kind("sample:pneumoniamnist")
        ('tfds', 'sample')
    """
    text = os.fspath(input) if isinstance(input, os.PathLike) else input
    if not isinstance(text, str) or not text.strip():
        raise RaganError(
            f"input={input!r} is not allowed; give a folder, a .zip or .npz file, or "
            f"one of {', '.join(p + 'NAME' for p in INPUT_PREFIXES)}"
        )
    for prefix in INPUT_PREFIXES:
        if text.startswith(prefix):
            if not text[len(prefix) :].strip():
                raise RaganError(f"input={text!r} names no dataset; write e.g. '{prefix}pneumoniamnist'")
            return prefix[:-1]
    path = Path(text)
    if path.is_dir():
        return "folder"
    if path.is_file():
        extension = path.suffix.lower()
        if extension in (".zip", ".npz"):
            return extension[1:]
        raise RaganError(
            f"input='{text}' is a single file; give a folder of images (one sub-folder per class), "
            "a .zip of images, a .npz file, or one of "
            f"{', '.join(p + 'NAME' for p in INPUT_PREFIXES)}"
        )
    if ":" in text.split("/")[0] and not path.parent.exists():
        prefix = text.split(":", 1)[0] + ":"
        raise RaganError(
            f"input='{text}' does not exist; dataset prefixes are "
            f"{', '.join(repr(p) for p in INPUT_PREFIXES)}.{did_you_mean(prefix, INPUT_PREFIXES)}"
        )
    raise RaganError(f"input='{text}' does not exist")


def _display_path(path: Path) -> str:
    """The last two components of a path: enough to recognise it, no home folder or user name."""
    parts = path.resolve().parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else path.name


def scan_input(
    input,
    *,
    cache_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    with_patient_keys: bool = False,
    with_salt: bool = False,
    io_threads: int = 4,
    progress: bool = False,
    selection: Selection | None = None,
) -> ScannedInput:
    """Find every source of ``input``, hash it and resolve its class name.

    Args:
        input: See the module docstring.
        cache_dir: A folder for the array cache of npz/MedMNIST/TFDS inputs (created if needed).
        class_names: Names replacing (integer labels) or ordering (folder labels) the classes.
        with_patient_keys: Read each DICOM file's PatientID (for ``group_by="dicom"``).
        with_salt: Compute :attr:`Source.salt_digest` (for any grouping).
        io_threads: Threads reading and hashing files.
        progress: Show a progress bar on stderr.
        selection: Include/exclude globs, the mask check and a labels CSV for a folder or zip
            (see :mod:`ragan.data.selection`), applied after listing and before hashing.

    Returns:
        A :class:`ScannedInput`.

    Raises:
        RaganError: a missing or empty input, an unreadable container, bad ``class_names``.

    Example:
        >>> images = np.zeros((2, 8, 8), np.uint8)
        >>> np.savez("data.npz", train_images=images, train_labels=[0, 1], test_images=images, test_labels=[1, 0])
        >>> scan_input("data.npz", cache_dir="cache").has_splits
        True
    """
    kind = input_kind(input)
    text = os.fspath(input)
    hasher = _Hasher(with_salt=with_salt)
    cache = Path(cache_dir)
    if selection is not None and kind not in ("folder", "zip"):
        raise RaganError(
            f"labels_csv, include, exclude and allow_masks apply to a folder or .zip input; "
            f"input='{text}' is a {kind} input"
        )
    if kind == "folder":
        scanned = _scan_folder(Path(text), hasher, with_patient_keys, io_threads, progress, selection)
    elif kind == "zip":
        scanned = _scan_zip(Path(text), hasher, with_patient_keys, progress, selection)
    elif kind == "npz":
        scanned = _scan_arrays(
            "npz", {"kind": "npz", "path": _display_path(Path(text))}, _npz_arrays(Path(text)), cache, hasher, None
        )
    elif kind == "sample":
        from ragan.datasets import medmnist_info, sample_path

        name = text.split(":", 1)[1].strip().lower()
        path = sample_path(name)
        known = medmnist_info(name)["class_names"]
        scanned = _scan_arrays("sample", {"kind": "sample", "name": name}, _npz_arrays(path), cache, hasher, known)
    elif kind == "medmnist":
        from ragan.datasets import load_medmnist, medmnist_info

        name = text.split(":", 1)[1].strip().lower()
        known = medmnist_info(name)["class_names"]
        arrays = load_medmnist(name, download=True)
        scanned = _scan_arrays(
            "medmnist",
            {"kind": "medmnist", "name": name},
            _split_arrays(arrays, f"medmnist:{name}"),
            cache,
            hasher,
            known,
        )
    else:
        scanned = _scan_tfds(text.split(":", 1)[1].strip(), cache, hasher, progress)
    if not scanned.sources:
        detail = (
            f"; {len(scanned.skipped)} files skipped, e.g. '{scanned.skipped[0][0]}': {scanned.skipped[0][1]}"
            if scanned.skipped
            else ""
        )
        raise RaganError(f"input='{text}' holds no usable images{detail}")
    _apply_class_names(scanned, class_names)
    return scanned


# --------------------------------------------------------------------------- hashing


class _Hasher:
    def __init__(self, with_salt: bool):
        self.with_salt = with_salt

    def digests(self, chunks: Iterable[bytes]) -> tuple[str, bytes | None]:
        sha = hashlib.sha256()
        salt = hashlib.blake2b(key=_SALT_KEY, digest_size=32) if self.with_salt else None
        for chunk in chunks:
            sha.update(chunk)
            if salt is not None:
                salt.update(chunk)
        return sha.hexdigest(), (salt.digest() if salt is not None else None)

    def array_digests(self, array: np.ndarray) -> tuple[str, bytes | None]:
        array = np.ascontiguousarray(array)
        header = f"{array.dtype.str}{tuple(array.shape)}".encode()
        return self.digests([header, memoryview(array).cast("B")])


def _dicom_frame_count(data: bytes) -> int:
    """NumberOfFrames from the header (1 when absent or unreadable); only used to size shards."""
    import pydicom

    try:
        dataset = pydicom.dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=["NumberOfFrames"], force=True
        )
        return max(1, int(dataset.get("NumberOfFrames") or 1))
    except Exception:  # any header problem surfaces later, when the pixels are decoded
        return 1


def _inspect(
    open_stream: Callable,
    name: str,
    kind: str,
    hasher: _Hasher,
    with_patient_keys: bool,
    describe_error: Callable[[BaseException], str],
) -> dict:
    """Hashes and DICOM facts of one source, read in chunks; raises ImageReadError for a file to skip.

    Only the first ``_HEADER_BYTES`` are kept in memory (DICOM headers precede the pixel data), so
    a multi-gigabyte file costs no more memory than a small one.
    """
    sha = hashlib.sha256()
    salt = hashlib.blake2b(key=_SALT_KEY, digest_size=32) if hasher.with_salt else None
    prefix = bytearray()
    size = 0
    try:
        with open_stream() as stream:
            for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
                sha.update(chunk)
                if salt is not None:
                    salt.update(chunk)
                if len(prefix) < _HEADER_BYTES:
                    prefix += chunk[: _HEADER_BYTES - len(prefix)]
                size += len(chunk)
    except ImageReadError:
        raise
    except Exception as error:  # OSError, zip CRC/zlib errors ...
        raise ImageReadError(describe_error(error)) from None
    if size == 0:
        raise ImageReadError("empty file (0 bytes)")
    facts = {
        "sha256": sha.hexdigest(),
        "salt_digest": salt.digest() if salt is not None else None,
        "patient_key": None,
        "frames_hint": 1,
    }
    if kind == "dicom":
        header = bytes(prefix)
        facts["frames_hint"] = _dicom_frame_count(header)
        if with_patient_keys:
            try:
                facts["patient_key"] = read_patient_id(name, data=header)
            except ImageReadError:
                if size <= _HEADER_BYTES:
                    raise
                with open_stream() as stream:  # a header longer than the prefix: read it all, once
                    facts["patient_key"] = read_patient_id(name, data=stream.read())
    return facts


def _file_error(error: BaseException) -> str:
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, OSError):
        return f"cannot read file ({error.strerror or error})"
    return f"cannot read file ({type(error).__name__})"


def _progress_bar(total: int | None, description: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="file", disable=not enabled, leave=False)


# --------------------------------------------------------------------------- folder


def _scan_folder(
    root: Path,
    hasher: _Hasher,
    with_patient_keys: bool,
    io_threads: int,
    progress: bool,
    selection: Selection | None = None,
) -> ScannedInput:
    csv_labels = selection is not None and selection.labels is not None
    files, skipped = scan_folder(root, labels_from_folders=not csv_labels)
    if selection is not None:
        by_path = {source_file.relpath: source_file for source_file in files}
        kept = selection.apply(list(by_path), lambda relpath: Path(by_path[relpath].path).read_bytes(), str(root))
        files = [by_path[relpath] for relpath in kept]
        if csv_labels:
            files = [SourceFile(f.path, f.relpath, selection.label_of[f.relpath], f.kind) for f in files]
            skipped = list(skipped) + [
                (path, f"no row in labels_csv '{selection.labels.path.name}'") for path in selection.without_row
            ]

    def inspect(source_file):
        try:
            return _inspect(
                lambda: open(source_file.path, "rb"),
                source_file.path,
                source_file.kind,
                hasher,
                with_patient_keys,
                _file_error,
            )
        except ImageReadError as error:
            return str(error)

    sources = []
    skipped = list(skipped)
    with (
        ThreadPoolExecutor(max_workers=max(1, io_threads)) as threads,
        _progress_bar(len(files), "scan", progress) as bar,
    ):
        for source_file, facts in zip(files, threads.map(inspect, files)):
            bar.update(1)
            if isinstance(facts, str):
                skipped.append((source_file.relpath, facts))
                continue
            sources.append(
                Source(
                    path=source_file.relpath,
                    label=source_file.label,
                    locator=("file", source_file.path, source_file.kind),
                    **facts,
                )
            )
    return _listed_input("folder", root, sources, skipped, selection)


def _listed_input(kind: str, path: Path, sources: list[Source], skipped, selection: Selection | None) -> ScannedInput:
    """The :class:`ScannedInput` of a folder or zip: its path and selection options, and its class names."""
    return ScannedInput(
        kind=kind,
        description={"kind": kind, "path": _display_path(path), **(selection.record() if selection else {})},
        sources=sources,
        skipped=sorted(skipped),
        class_names=_class_names_of(sources, selection),
    )


def _class_names_of(sources: list[Source], selection: Selection | None) -> list[str]:
    """Folder names in sorted order, or the labels CSV's classes in its order (those still present)."""
    present = {source.label for source in sources if source.label is not None}
    if not present:
        return []
    if selection is not None and selection.labels is not None:
        return [name for name in selection.class_names if name in present]
    return sorted(present)


# --------------------------------------------------------------------------- zip


def _is_ignored_member(name: str) -> bool:
    return any(part.startswith(".") or part in _IGNORED_NAMES for part in PurePosixPath(name).parts)


def _member_kind(name: str, head: bytes) -> str | None:
    extension = PurePosixPath(name).suffix.lower()
    if extension in IMAGE_EXTENSIONS:
        return "image"
    if extension in DICOM_EXTENSIONS or is_dicom_bytes(head):
        return "dicom"
    return None


def _strip_wrapping_folders(names: list[str]) -> int:
    """How many leading folders all members share (a zip of one folder wraps its contents)."""
    parts = [PurePosixPath(name).parts for name in names]
    depth = 0
    while parts and all(len(p) > depth + 1 for p in parts) and len({p[depth] for p in parts}) == 1:
        depth += 1
    return depth


def _scan_zip(
    path: Path, hasher: _Hasher, with_patient_keys: bool, progress: bool, selection: Selection | None = None
) -> ScannedInput:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise RaganError(f"input='{path}' is not a readable zip file ({error})") from None
    skipped: list[tuple[str, str]] = []
    sources: list[Source] = []
    with archive:
        # First pass: which members are images (by name, or by the DICOM marker), without
        # decompressing whole members; the second pass hashes them one at a time.
        found: list[tuple[zipfile.ZipInfo, str]] = []
        for member in sorted((m for m in archive.infolist() if not m.is_dir()), key=lambda m: m.filename):
            name = member.filename
            if _is_ignored_member(name):
                continue
            if member.flag_bits & 0x1:
                skipped.append((name, "encrypted zip member"))
                continue
            if member.file_size > MAX_ZIP_MEMBER_BYTES:
                skipped.append((name, f"zip member too large ({member.file_size} bytes, limit {MAX_ZIP_MEMBER_BYTES})"))
                continue
            kind = _member_kind(name, b"")
            if kind is None:
                try:
                    with archive.open(member) as handle:
                        kind = _member_kind(name, handle.read(132))
                except Exception as error:  # zlib.error, BadZipFile ...: this member is unusable
                    skipped.append((name, _zip_error_reason(error)))
                    continue
            if kind is None:
                extension = PurePosixPath(name).suffix.lower()
                skipped.append(
                    (
                        name,
                        f"not an image: unsupported extension '{extension}'"
                        if extension
                        else "not an image: no file extension and no DICOM header",
                    )
                )
                continue
            found.append((member, kind))

        depth = _strip_wrapping_folders([member.filename for member, _ in found])
        relative = [PurePosixPath(member.filename).parts[depth:] for member, _ in found]
        csv_labels = selection is not None and selection.labels is not None
        if selection is not None and found:
            by_path = {"/".join(parts): (item, parts) for item, parts in zip(found, relative)}
            kept = selection.apply(list(by_path), lambda name: archive.read(by_path[name][0][0]), str(path))
            found = [by_path[name][0] for name in kept]
            relative = [by_path[name][1] for name in kept]
            if csv_labels:
                skipped += [
                    (by_path[name][0][0].filename, f"no row in labels_csv '{selection.labels.path.name}'")
                    for name in selection.without_row
                ]
        top = [member.filename for (member, _), parts in zip(found, relative) if len(parts) == 1]
        nested = [member.filename for (member, _), parts in zip(found, relative) if len(parts) > 1]
        if top and nested and not csv_labels:
            raise RaganError(
                f"input='{path}' has images both at its top level (e.g. '{top[0]}') and in sub-folders "
                f"(e.g. '{nested[0]}'); put every image in a class folder for a labelled dataset, "
                "or none in folders for an unlabelled one"
            )
        zip_path = os.fspath(path.resolve())
        with _progress_bar(len(found), "scan", progress) as bar:
            for (member, kind), parts in zip(found, relative):
                bar.update(1)
                try:
                    facts = _inspect(
                        lambda member=member: archive.open(member),
                        member.filename,
                        kind,
                        hasher,
                        with_patient_keys,
                        _zip_error_reason,
                    )
                except ImageReadError as error:
                    skipped.append((member.filename, str(error)))
                    continue
                if csv_labels:
                    label = selection.label_of["/".join(parts)]
                else:
                    label = parts[0] if nested else None
                sources.append(
                    Source(path=member.filename, label=label, locator=("zip", zip_path, member.filename, kind), **facts)
                )
    return _listed_input("zip", path, sources, skipped, selection)


def _zip_error_reason(error: BaseException) -> str:
    return f"corrupt zip member ({error_summary(error)})"


# --------------------------------------------------------------------------- arrays (npz, MedMNIST, TFDS)


class _ArraySet(NamedTuple):
    """Lazily loaded image/label arrays of one split of an in-memory input."""

    split: str | None  # given split, or None for an unsplit input
    key: str  # name of the images in source paths ("train_images", "train" for TFDS)
    load: Callable[[], tuple[np.ndarray, np.ndarray | None]]


def _npz_arrays(path: Path) -> tuple[list[_ArraySet], bool]:
    """The image/label arrays of an npz, one split at a time (each loaded only when needed)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise RaganError(f"input='{path}' is not a readable .npz file ({error})") from None

    def loader(image_key, label_key):
        def load():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    return npz[image_key], (npz[label_key] if label_key else None)
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
                raise RaganError(f"input='{path}': cannot read '{image_key}' ({error})") from None

        return load

    split_sets = []
    for split in ("train", "val", "test"):
        if f"{split}_images" in keys:
            label_key = f"{split}_labels" if f"{split}_labels" in keys else None
            split_sets.append(_ArraySet(split, f"{split}_images", loader(f"{split}_images", label_key)))
    if split_sets:
        return split_sets, True
    for image_key, label_key in (("images", "labels"), ("x", "y")):
        if image_key in keys:
            return [_ArraySet(None, image_key, loader(image_key, label_key if label_key in keys else None))], False
    raise RaganError(
        f"input='{path}' has keys {', '.join(keys) or 'none'}; expected MedMNIST-style "
        "'train_images'/'train_labels' (and 'val_*', 'test_*'), or 'images' with optional 'labels'"
    )


def _split_arrays(arrays: dict, name: str) -> tuple[list[_ArraySet], bool]:
    sets = [
        _ArraySet(
            split, f"{split}_images", (lambda s=split: (arrays.pop(f"{s}_images"), arrays.pop(f"{s}_labels", None)))
        )
        for split in ("train", "val", "test")
        if f"{split}_images" in arrays
    ]
    if not sets:
        raise RaganError(f"input='{name}' returned no train/val/test images")
    return sets, True


class _ArrayCache:
    """Append-only file of raw arrays; workers read an array back by offset."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "arrays.bin"
        self._handle = open(self.path, "wb")
        self._offset = 0

    def append(self, array: np.ndarray) -> tuple:
        array = np.ascontiguousarray(array)
        data = memoryview(array).cast("B")
        self._handle.write(data)
        locator = ("array", os.fspath(self.path), self._offset, tuple(array.shape), array.dtype.str)
        self._offset += len(data)
        return locator

    def close(self) -> None:
        self._handle.close()


def _label_values(labels: np.ndarray | None, count: int, where: str) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != count:
        raise RaganError(
            f"{where}: labels of shape {labels.shape} do not fit {count} images; expected one class index "
            "per image (multi-label datasets are not supported)"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise RaganError(f"{where}: labels must be class indices (integers >= 0), got dtype {labels.dtype}")
    return labels.astype(np.int64)


def _scan_arrays(kind, description, array_sets, cache_dir: Path, hasher: _Hasher, known_names) -> ScannedInput:
    sets, has_splits = array_sets
    cache = _ArrayCache(cache_dir)
    sources: list[Source] = []
    label_indices: list[int | None] = []
    try:
        for array_set in sets:
            images, labels = array_set.load()
            labels = _label_values(
                labels, len(images), f"input {description.get('path') or description.get('name')} ({array_set.key})"
            )
            for index in range(len(images)):
                sources.append(
                    _array_source(f"{array_set.key}[{index}]", images[index], array_set.split, hasher, cache)
                )
                label_indices.append(None if labels is None else int(labels[index]))
            del images, labels  # one split in memory at a time
    finally:
        cache.close()
    names = _integer_class_names(label_indices, known_names)
    for source, index in zip(sources, label_indices):
        source.label = None if index is None else names[index]
    return ScannedInput(
        kind=kind,
        description=description,
        sources=sources,
        class_names=names if any(i is not None for i in label_indices) else [],
        has_splits=has_splits,
    )


def _array_source(path: str, image: np.ndarray, given_split, hasher: _Hasher, cache: _ArrayCache) -> Source:
    """One in-memory image as a :class:`Source`: hashed, and appended to the cache file the workers read."""
    sha256, salt = hasher.array_digests(image)
    return Source(
        path=path, sha256=sha256, label=None, locator=cache.append(image), given_split=given_split, salt_digest=salt
    )


def _integer_class_names(label_indices: list[int | None], known_names) -> list[str]:
    present = [i for i in label_indices if i is not None]
    if not present:
        return []
    count = max(present) + 1
    if known_names is not None:
        if count > len(known_names):
            raise RaganError(f"the input has label {count - 1} but only {len(known_names)} known class names")
        return list(known_names)
    return [str(i) for i in range(count)]


def _scan_tfds(name: str, cache_dir: Path, hasher: _Hasher, progress: bool) -> ScannedInput:
    from ragan._tf import import_tf

    import_tf()  # quietly, before tensorflow_datasets imports it noisily
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except Exception as error:  # DatasetNotFoundError, bad config names ...
        raise RaganError(f"input='tfds:{name}' is not a TensorFlow Datasets dataset ({first_line(error)})") from None
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as error:  # offline, manual download required, ...
            raise RaganError(
                f"input='tfds:{name}' is not in the local TFDS data folder ('{builder.data_dir}') and could "
                f"not be downloaded ({first_line(error)}); download it where you are online "
                "(tfds build) and copy the folder, or set TFDS_DATA_DIR"
            ) from None
    info = builder.info
    image_key, label_key = _tfds_keys(info, name)
    split_names = list(info.splits.keys())
    if not split_names:
        raise RaganError(f"input='tfds:{name}' lists no splits in its dataset_info; prepare it with 'tfds build'")
    mapped = {split: _SPLIT_ALIASES.get(split) for split in split_names}
    kept = [split for split in split_names if mapped[split]]
    if not kept:  # e.g. only "extra": use everything and split by ratio
        kept, has_splits = split_names, False
    else:
        has_splits = len(kept) > 1
    ignored = sorted(set(split_names) - set(kept))
    known_names = list(info.features[label_key].names) if label_key else None

    cache = _ArrayCache(cache_dir)
    sources: list[Source] = []
    label_indices: list[int | None] = []
    order = sorted(kept, key=lambda s: ("train", "val", "test").index(mapped[s]) if mapped[s] else 3)
    try:
        with _progress_bar(None, "scan", progress) as bar:
            for split in order:
                dataset = builder.as_dataset(split=split, shuffle_files=False)
                for index, example in enumerate(tfds.as_numpy(dataset)):
                    bar.update(1)
                    image = np.asarray(example[image_key])
                    given_split = mapped[split] if has_splits else None
                    sources.append(_array_source(f"{split}[{index}]", image, given_split, hasher, cache))
                    label_indices.append(int(example[label_key]) if label_key else None)
    finally:
        cache.close()
    names = _integer_class_names(label_indices, known_names)
    for source, index in zip(sources, label_indices):
        source.label = None if index is None else names[index]
    description = {"kind": "tfds", "name": name, "version": str(info.version)}
    if ignored:
        description["ignored_splits"] = ignored
    return ScannedInput(
        kind="tfds",
        description=description,
        sources=sources,
        class_names=names if label_key else [],
        has_splits=has_splits,
    )


def _tfds_keys(info, name: str) -> tuple[str, str | None]:
    import tensorflow_datasets as tfds

    features = info.features
    supervised = info.supervised_keys if isinstance(info.supervised_keys, tuple) else None
    image_key = supervised[0] if supervised and isinstance(supervised[0], str) else None
    if image_key is None or not isinstance(features[image_key], tfds.features.Image):
        images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
        if not images:
            raise RaganError(f"input='tfds:{name}' has no image feature (features: {', '.join(features.keys())})")
        image_key = "image" if "image" in images else images[0]
    label_key = supervised[1] if supervised and isinstance(supervised[1], str) else None
    if label_key is None or not isinstance(features[label_key], tfds.features.ClassLabel):
        labels = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
        label_key = "label" if "label" in labels else (labels[0] if labels else None)
    return image_key, label_key


# --------------------------------------------------------------------------- class names


def _apply_class_names(scanned: ScannedInput, class_names: Sequence[str] | None) -> None:
    if class_names is None:
        return
    names = [str(name) for name in class_names]
    if not scanned.class_names:
        raise RaganError(f"class_names={names!r} given, but the input is unlabelled (no class folders or labels)")
    if len(set(names)) != len(names) or not all(name.strip() for name in names):
        raise RaganError(f"class_names={names!r} is not allowed; give distinct, non-empty names")
    if scanned.kind in ("folder", "zip"):
        # Folder names are the labels: class_names can only fix their order.
        found = set(scanned.class_names)
        if set(names) != found:
            missing, extra = sorted(found - set(names)), sorted(set(names) - found)
            raise RaganError(
                f"class_names={names!r} must list exactly the class folders of the input "
                f"({', '.join(scanned.class_names)}); missing: {missing or 'none'}, unknown: {extra or 'none'}"
            )
        scanned.class_names = names
        return
    if len(names) != len(scanned.class_names):
        raise RaganError(
            f"class_names={names!r} has {len(names)} names but the input has {len(scanned.class_names)} classes "
            f"(currently {', '.join(scanned.class_names)})"
        )
    renamed = dict(zip(scanned.class_names, names))
    for source in scanned.sources:
        if source.label is not None:
            source.label = renamed[source.label]
    scanned.class_names = names
