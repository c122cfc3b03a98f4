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
MedMNIST, TFDS; :mod:`ragan.data.array_inputs`), streams the arrays into a cache file so that
worker processes can read any image by offset without the main process holding them all. What a
scan produces (:class:`Source`, :class:`ScannedInput`) is defined in :mod:`ragan.data.sources`.

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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from ragan._logging import progress_bar
from ragan._untrusted import check_class_name, check_class_names
from ragan.data.array_inputs import scan_array_input

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
    not_an_image_reason,
    read_patient_id,
    scan_folder,
)
from ragan.data.selection import Selection
from ragan.data.sources import Hasher, ScannedInput, Source, display_path
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
# Sources are hashed in chunks of this size; DICOM headers are parsed from this much of the start.
_CHUNK_BYTES = 1 << 20
_HEADER_BYTES = 1 << 20
_IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


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


def scan_input(
    input,
    *,
    cache_dir: str | os.PathLike,
    class_names: Sequence[str] | None = None,
    with_patient_keys: bool = False,
    with_salt: bool = False,
    io_threads: int = 4,
    selection: Selection | None = None,
    follow_symlinks: bool = False,
) -> ScannedInput:
    """Find every source of ``input``, hash it and resolve its class name.

    Args:
        input: See the module docstring.
        cache_dir: A folder for the array cache of npz/MedMNIST/TFDS inputs (created if needed).
        class_names: Names replacing (integer labels) or ordering (folder labels) the classes.
        with_patient_keys: Read each DICOM file's PatientID (for ``group_by="dicom"``).
        with_salt: Compute :attr:`Source.salt_digest` (for any grouping).
        io_threads: Threads reading and hashing files (a progress bar shows while the ``ragan``
            logger shows ``INFO``).
        selection: Include/exclude globs, the mask check and a labels CSV for a folder or zip
            (see :mod:`ragan.data.selection`), applied after listing and before hashing.
        follow_symlinks: In a folder, also read what symbolic links lead to outside it.

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
    hasher = Hasher(with_salt=with_salt)
    cache = Path(cache_dir)
    if selection is not None and kind not in ("folder", "zip"):
        raise RaganError(
            f"labels_csv, include, exclude and allow_masks apply to a folder or .zip input; "
            f"input='{text}' is a {kind} input"
        )
    if kind == "folder":
        scanned = _scan_folder(Path(text), hasher, with_patient_keys, io_threads, selection, follow_symlinks)
    elif kind == "zip":
        scanned = _scan_zip(Path(text), hasher, with_patient_keys, selection)
    else:
        scanned = scan_array_input(kind, text, cache, hasher)
    if not scanned.sources:
        detail = (
            f"; {len(scanned.skipped)} files skipped, e.g. '{scanned.skipped[0][0]}': {scanned.skipped[0][1]}"
            if scanned.skipped
            else ""
        )
        raise RaganError(f"input='{text}' holds no usable images{detail}")
    _apply_class_names(scanned, class_names)
    check_class_names(scanned.class_names, f"input='{text}'")  # whatever gave them: labels, never paths
    return scanned


# --------------------------------------------------------------------------- hashing


def _dicom_frame_count(data: bytes) -> int:
    """NumberOfFrames from the header (1 when absent or unreadable); only used to size shards."""
    import pydicom

    try:
        dataset = pydicom.dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=["NumberOfFrames"], force=True
        )
        return max(1, int(dataset.get("NumberOfFrames") or 1))
    except Exception:  # noqa: BLE001 - any header problem surfaces later, when the pixels are decoded
        return 1


def _inspect(
    open_stream: Callable,
    name: str,
    kind: str,
    hasher: Hasher,
    with_patient_keys: bool,
    describe_error: Callable[[BaseException], str],
) -> dict:
    """Hashes and DICOM facts of one source, read in chunks; raises ImageReadError for a file to skip.

    Only the first ``_HEADER_BYTES`` are kept in memory (DICOM headers precede the pixel data), so
    a multi-gigabyte file costs no more memory than a small one.
    """
    sha = hashlib.sha256()
    salt = hasher.salt_hash()
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
    except Exception as error:  # noqa: BLE001 - OSError, zip CRC/zlib errors ...
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


# --------------------------------------------------------------------------- folder


def _scan_folder(
    root: Path,
    hasher: Hasher,
    with_patient_keys: bool,
    io_threads: int,
    selection: Selection | None = None,
    follow_symlinks: bool = False,
) -> ScannedInput:
    csv_labels = selection is not None and selection.labels is not None
    files, skipped = scan_folder(root, labels_from_folders=not csv_labels, follow_symlinks=follow_symlinks)
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
        progress_bar(total=len(files), desc="scan", unit="file") as bar,
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
        description={"kind": kind, "path": display_path(path), **(selection.record() if selection else {})},
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


def _scan_zip(path: Path, hasher: Hasher, with_patient_keys: bool, selection: Selection | None = None) -> ScannedInput:
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
                except Exception as error:  # noqa: BLE001 - zlib.error, BadZipFile ...: this member is unusable
                    skipped.append((name, _zip_error_reason(error)))
                    continue
            if kind is None:
                skipped.append((name, not_an_image_reason(PurePosixPath(name).suffix.lower())))
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
        with progress_bar(total=len(found), desc="scan", unit="file") as bar:
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
                    if label is not None:
                        check_class_name(label, f"input='{path}' zip entry {member.filename!r}")
                sources.append(
                    Source(path=member.filename, label=label, locator=("zip", zip_path, member.filename, kind), **facts)
                )
    return _listed_input("zip", path, sources, skipped, selection)


def _zip_error_reason(error: BaseException) -> str:
    return f"corrupt zip member ({error_summary(error)})"


# --------------------------------------------------------------------------- class names


def _apply_class_names(scanned: ScannedInput, class_names: Sequence[str] | None) -> None:
    if class_names is None:
        return
    names = check_class_names([str(name) for name in class_names], "class_names")
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
