"""``ragan.prepare_dataset``: turn messy medical images into a prepared dataset on disk.

The stage runs in five steps:

1. **Scan** (main process): find every source, hash its bytes, read DICOM headers when grouping
   by patient; in-memory inputs are streamed to a cache file (see :mod:`ragan.data.inputs`).
2. **Decide**: drop exact duplicates (same SHA-256; the first in input order stays), assign
   splits (stratified by class, optionally grouped by patient; or the input's own splits),
   order each split with the seed and cut it into shards of about 64 MiB.
3. **Plan**: the hash of the options and of every decision above. The output is built in a
   hidden sibling folder ``.<name>.ragan-partial/`` holding ``plan.json`` and a journal of
   finished shards (with their SHA-256). A re-run with the same plan keeps the finished shards
   and writes the rest; a different plan starts afresh.
4. **Write**: worker processes (``forkserver``/``spawn``; they import only readers and
   preprocessing, never TensorFlow) decode each file once, resize it and encode it as a finished
   TFRecord (:mod:`ragan.data.records`), in order, a bounded number of chunks ahead; the main
   process appends the records to the shards. No step imports TensorFlow (only ``export_zip``). Memory use does not
   grow with the number of images (only
   an in-memory input, an ``.npz`` split or a MedMNIST file, is loaded whole while it is scanned).
5. **Publish**: ``manifest.json`` (and the optional StyleGAN2-ADA ``dataset.zip``) are written,
   the work files removed and the folder renamed to its final name. With ``overwrite`` an
   existing output is replaced only now, when the new one is complete.

Nothing from DICOM headers reaches the output except what is needed: the patient key, as a
salted hash. The salt is derived from the source files' contents with a keyed hash that differs
from the SHA-256 listed in the manifest, so it is reproducible yet unknown to anyone who does not
hold the source files.

Example:
    >>> import ragan
    >>> manifest = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
    >>> manifest.splits["train"].num_examples
    400
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import multiprocessing
import os
import shutil
import sys
import types
import zipfile
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ragan._common import check_positive_int, read_json
from ragan._files import publish_directory
from ragan._version import __version__
from ragan.data.decoding import (
    DecodeOptions,
    close_cached_files,
    decode_chunk,
    iter_chunks,
    pillow_block_cache,
    start_worker,
)
from ragan.data.inputs import ScannedInput, Source, input_kind, scan_input
from ragan.data.manifest import FORMAT_VERSION, Manifest, ShardInfo, SplitInfo, file_sha256, shard_name
from ragan.data.preprocess import validate_options
from ragan.data.readers import DicomWindow, parse_dicom_window
from ragan.data.selection import LabelTable, Selection, read_csv_table, read_labels_csv
from ragan.data.splits import (
    SPLIT_NAMES,
    grouped_split,
    parse_split_ratios,
    seeded_shuffle,
    shard_count,
    shard_ranges,
    stratified_split,
)
from ragan.errors import RaganError, check_choice, did_you_mean

__all__ = ["prepare_dataset", "partial_dir_for", "GROUP_BY_CHOICES", "TARGET_SHARD_BYTES"]

GROUP_BY_CHOICES = (None, "dicom", "csv")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
TARGET_SHARD_BYTES = 64 << 20
PARTIAL_SUFFIX = ".ragan-partial"
# Bumped whenever the same options give other pixels (2: 8-bit images resized in 8-bit, JPEGs
# decoded at reduced size), so a resumed run never mixes shards of two versions.
PIXELS_VERSION = 2
PLAN_FILE = "plan.json"
JOURNAL_FILE = "progress.jsonl"
CACHE_DIR = "cache"
LOCK_FILE = "lock"
ZIP_NAME = "dataset.zip"
ZIP_LABELS_NAME = "dataset.json"
# Sources per task sent to a worker, and chunks in flight per worker: enough to keep every
# worker busy, few enough that memory stays flat.
CHUNK_SIZE = 8
CHUNKS_AHEAD_PER_WORKER = 3
# Below this many sources a worker pool costs more to start than it saves.
MIN_SOURCES_FOR_POOL = 64
_CSV_PATH_COLUMNS = ("path", "file", "filename", "image", "relpath")


def partial_dir_for(out: str | os.PathLike) -> Path:
    """The hidden sibling folder where ``out`` is built: ``.<name>.ragan-partial``.

    Example:
        >>> partial_dir_for("runs/prepared").name
        '.prepared.ragan-partial'
    """
    out = Path(os.path.abspath(os.fspath(out)))
    return out.parent / f".{out.name}{PARTIAL_SUFFIX}"


def prepare_dataset(
    input,
    out,
    *,
    image_size: int = 64,
    channels: int = 1,
    bit_depth: int = 8,
    resize_mode: str = "crop",
    split=None,
    resplit: bool = False,
    seed: int = 0,
    group_by: str | None = None,
    group_csv=None,
    group_column: str | None = None,
    window="auto",
    class_names: Sequence[str] | None = None,
    labels_csv=None,
    path_column: str | None = None,
    label_column: str | None = None,
    label_map=None,
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    allow_masks: bool = False,
    dedupe: bool = True,
    strict: bool = False,
    overwrite: bool = False,
    export_zip: bool = False,
    shards_per_split: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
) -> Manifest:
    """Prepare a dataset: validate, resize, split and shard images into TFRecords + ``manifest.json``.

    The output format is described in ``docs/prepared-format.md``. The same input, options and
    seed give a byte-identical output, whatever ``num_workers`` is.

    Args:
        input: A folder of images/DICOM (one sub-folder per class, or flat for unlabelled), a
            ``.zip`` of such a folder, a ``.npz`` (MedMNIST layout or ``images``/``labels``),
            ``"sample:pneumoniamnist"`` (bundled), ``"medmnist:NAME"`` or ``"tfds:NAME"``.
        out: The output folder; it must not exist or be empty unless ``overwrite``.
        image_size: Side of the square output images in pixels (4 to 4096).
        channels: 1 (greyscale; RGB is converted by luma) or 3 (RGB; grey is repeated).
        bit_depth: 8 (``uint8``) or 16 (``uint16``, keeps 16-bit PNG/TIFF/DICOM precision).
        resize_mode: ``"crop"`` (centre square), ``"pad"`` (whole image on black) or ``"stretch"``.
        split: ``(train, val, test)`` fractions (or ``"0.8,0.1,0.1"``); val and test may be 0.
            Default ``(0.8, 0.1, 0.1)``. For an input with its own splits it needs ``resplit``.
        resplit: For inputs with their own splits (npz, TFDS), merge them and split by ``split``;
            by default their splits are kept.
        seed: Seed of every random choice (split assignment, record order).
        group_by: ``None``, ``"dicom"`` (DICOM PatientID) or ``"csv"`` (``group_csv``): items of one
            patient never end up in two splits.
        group_csv: A CSV file with a path column (``path``, ``file``, ``filename``, ``image`` or
            ``relpath``: paths relative to the input, or file names) and ``group_column``.
            Defaults to ``labels_csv`` (read with its ``path_column``) when that is given.
        group_column: The CSV column holding the patient key.
        window: DICOM window: ``"auto"`` (the file's, else min-max), ``None``/``"none"`` (the full
            stored range), ``"minmax"``, a preset name such as ``"lung"``, or ``(center, width)``.
        class_names: For integer labels (npz, TFDS, or a labels CSV with values 0..k-1), names
            replacing them, in label order; for folders, the class folder names in the wanted label
            order; for a labels CSV, its classes (after ``label_map``) in the wanted order.
        labels_csv: A CSV file giving each image's class (folder or .zip inputs): one row per image,
            ``path_column`` naming it (relative to the input, with or without extension; leading
            folders the input lacks are ignored) and ``label_column`` its class. Images without a
            row are left out and listed in ``skipped``; rows without an image are counted and listed
            in the manifest's ``source.labels_csv``.
        path_column: The column of ``labels_csv`` naming the images.
        label_column: The column of ``labels_csv`` holding the classes.
        label_map: Values of ``label_column`` renamed or merged: ``{"nevus": "benign", ...}`` or
            ``"nevus=benign,melanoma=malignant"``; other values keep their name.
        include: Glob(s) matched against each file's path relative to the input (``*`` also crosses
            ``/``); only matching files are used.
        exclude: Glob(s); matching files are left out (counted in ``source.excluded``).
        allow_masks: Keep files that look like segmentation masks (a mask-like name such as
            ``*_mask*`` and only a few distinct pixel values); by default they stop the run.
        dedupe: Drop exact duplicates (same file content); listed in ``manifest.duplicates``.
        strict: Fail on the first unusable file instead of skipping it.
        overwrite: Replace a non-empty ``out`` (only once the new dataset is complete).
        export_zip: Also write ``dataset.zip`` + ``dataset.json`` of the train split in the
            StyleGAN2-ADA layout (8-bit only, as StyleGAN2-ADA reads it).
        shards_per_split: Shards per split instead of about 64 MiB each (at most one per source).
        num_workers: Decoding processes; ``None`` uses every core (none for small inputs), 0
            decodes in this process.
        progress: Show progress bars on stderr.

    Returns:
        The :class:`~ragan.data.manifest.Manifest` written to ``out/manifest.json``.

    Raises:
        RaganError: a bad option (naming it, its value and what is allowed), a missing or empty
            input, a non-empty ``out`` without ``overwrite``, or with ``strict`` an unusable file.

    Example:
        >>> from PIL import Image
        >>> for index in range(20):   # 20 different 6x6 images in two class folders
        ...     folder = Path("scans", "tumour" if index % 2 else "healthy")
        ...     folder.mkdir(parents=True, exist_ok=True)
        ...     Image.new("L", (6, 6), index * 10).save(folder / f"{index}.png")
        >>> manifest = prepare_dataset("scans", "prepared", image_size=4, split=(0.8, 0.1, 0.1), seed=0)
        >>> manifest.splits["train"].class_counts
        {'healthy': 8, 'tumour': 8}
    """
    options = _resolve_options(
        image_size=image_size,
        channels=channels,
        bit_depth=bit_depth,
        resize_mode=resize_mode,
        split=split,
        resplit=resplit,
        seed=seed,
        group_by=group_by,
        group_csv=group_csv,
        group_column=group_column,
        window=window,
        class_names=class_names,
        labels_csv=labels_csv,
        path_column=path_column,
        label_column=label_column,
        label_map=label_map,
        include=include,
        exclude=exclude,
        allow_masks=allow_masks,
        dedupe=dedupe,
        strict=strict,
        overwrite=overwrite,
        export_zip=export_zip,
        shards_per_split=shards_per_split,
        num_workers=num_workers,
        progress=progress,
    )
    kind = input_kind(input)
    if options.selects and kind not in ("folder", "zip"):
        raise RaganError(
            f"labels_csv, include, exclude and allow_masks apply to a folder or .zip input; "
            f"input={os.fspath(input)!r} is a {kind} input"
        )
    if options.group_by == "dicom" and kind not in ("folder", "zip"):
        raise RaganError(
            f"group_by='dicom' needs DICOM files (a folder or .zip); input={os.fspath(input)!r} "
            f"is a {kind} input; use group_by='csv' instead"
        )
    out_path = Path(os.path.abspath(os.fspath(out)))
    _check_output(out_path, kind, input, options.overwrite)
    partial = partial_dir_for(out_path)
    partial.mkdir(parents=True, exist_ok=True)
    with _PartialLock(partial):
        try:
            manifest = _build(input, partial, options)
        except BaseException:
            # Keep the partial folder only when it holds resumable work.
            if not (partial / PLAN_FILE).exists():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                shutil.rmtree(partial / CACHE_DIR, ignore_errors=True)
            raise
        (partial / LOCK_FILE).unlink(missing_ok=True)
        _publish(partial, out_path, options.overwrite)
    return manifest


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
    image_size: int
    channels: int
    bit_depth: int
    resize_mode: str
    split: tuple[float, float, float]
    resplit: bool
    seed: int
    group_by: str | None
    group_csv: Path | None
    group_column: str | None
    window: object
    class_names: tuple[str, ...] | None
    labels: LabelTable | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    allow_masks: bool
    dedupe: bool
    strict: bool
    overwrite: bool
    export_zip: bool
    shards_per_split: int | None
    num_workers: int | None
    progress: bool
    split_given: bool = False  # the caller chose ``split`` (not recorded: the ratios are)
    group_path_column: str | None = None  # the labels CSV's path column when it is also the group CSV

    @property
    def selects(self) -> bool:
        """Whether an option chooses files or labels of a folder/zip (labels CSV, globs, masks)."""
        return self.labels is not None or bool(self.include or self.exclude) or self.allow_masks

    def selection(self) -> Selection:
        """A fresh :class:`Selection` for a folder/zip scan (the mask check runs on every one)."""
        return Selection(self.include, self.exclude, self.allow_masks, self.labels)

    def _recorded_selection(self) -> dict:
        # Only the options given, so a manifest without them is what it was before they existed.
        recorded = {}
        if self.labels is not None:
            recorded.update(
                labels_csv=self.labels.path.name,
                path_column=self.labels.path_column,
                label_column=self.labels.label_column,
                label_map=dict(self.labels.label_map),
            )
        if self.include:
            recorded["include"] = list(self.include)
        if self.exclude:
            recorded["exclude"] = list(self.exclude)
        if self.allow_masks:
            recorded["allow_masks"] = True
        return recorded

    def recorded(self) -> dict:
        """The options as the manifest records them (everything that shapes the output)."""
        window = self.window
        if isinstance(window, DicomWindow):
            window = [window.center, window.width]
        return {
            "image_size": self.image_size,
            "channels": self.channels,
            "bit_depth": self.bit_depth,
            "resize_mode": self.resize_mode,
            "split": list(self.split),
            "resplit": self.resplit,
            "seed": self.seed,
            "group_by": self.group_by,
            "group_csv": self.group_csv.name if self.group_csv else None,
            "group_column": self.group_column,
            "window": window,
            "class_names": list(self.class_names) if self.class_names is not None else None,
            **self._recorded_selection(),
            "dedupe": self.dedupe,
            "strict": self.strict,
            "export_zip": self.export_zip,
            "shards_per_split": self.shards_per_split,
        }


def _patterns(name: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    try:
        patterns = tuple(values)
    except TypeError:
        patterns = None
    if patterns is None or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise RaganError(f"{name}={value!r} is not allowed; give a glob or a list of globs, e.g. ['*_mask*']")
    return tuple(p.strip() for p in patterns)


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise RaganError(f"{name}={value!r} is not allowed; use True or False")
    return value


def _check_int(name: str, value, minimum: int, *, optional: bool = False) -> int | None:
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = f"a whole number >= {minimum}" + (" or None" if optional else "")
        raise RaganError(f"{name}={value!r} is not allowed; use {allowed}")
    return int(value)


def _resolve_window(window):
    if window is None or isinstance(window, DicomWindow):
        return window
    if isinstance(window, str):
        return parse_dicom_window(window)
    if isinstance(window, (tuple, list)) and len(window) == 2:
        try:
            return DicomWindow(float(window[0]), float(window[1]))
        except (TypeError, ValueError):
            pass
    raise RaganError(
        f"window={window!r} is not allowed; use 'auto', None, 'minmax', a preset such as 'lung', or (center, width)"
    )


def _resolve_options(**given) -> _Options:
    validate_options(given["image_size"], given["channels"], given["bit_depth"], given["resize_mode"])
    ratios = parse_split_ratios(DEFAULT_SPLIT if given["split"] is None else given["split"])
    for name in ("resplit", "dedupe", "strict", "overwrite", "export_zip", "progress", "allow_masks"):
        _check_bool(name, given[name])
    seed = _check_int("seed", given["seed"], 0)
    check_choice("group_by", given["group_by"], GROUP_BY_CHOICES)
    class_names = given["class_names"]
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
            raise RaganError(
                f"class_names={class_names!r} is not allowed; give a list of names, e.g. ['normal', 'tumour']"
            )
        class_names = tuple(class_names)
        if len(set(class_names)) != len(class_names) or not all(n.strip() for n in class_names):
            raise RaganError(f"class_names={list(class_names)!r} is not allowed; give distinct, non-empty names")
    labels = None
    csv_given = [name for name in ("path_column", "label_column", "label_map") if given[name] is not None]
    if given["labels_csv"] is not None:
        missing = [name for name in ("path_column", "label_column") if not given[name]]
        if missing:
            raise RaganError(f"labels_csv needs {' and '.join(missing)} (the columns naming each image and its class)")
        labels = read_labels_csv(
            given["labels_csv"],
            str(given["path_column"]),
            str(given["label_column"]),
            label_map=given["label_map"],
            class_names=class_names,
        )
        class_names = None  # applied by the labels table
    elif csv_given:
        raise RaganError(f"{', '.join(csv_given)} only apply with labels_csv (the CSV file holding the labels)")
    group_csv, group_column = given["group_csv"], given["group_column"]
    group_path_column = None
    if given["group_by"] == "csv" and group_csv is None and labels is not None:
        group_csv, group_path_column = labels.path, labels.path_column
    if given["group_by"] == "csv":
        if group_csv is None or not group_column:
            raise RaganError("group_by='csv' needs group_csv (the CSV file) and group_column (its patient column)")
        group_csv = Path(os.fspath(group_csv))
        if not group_csv.is_file():
            raise RaganError(f"group_csv='{group_csv}' does not exist or is not a file")
        group_column = str(group_column)
        if labels is not None and group_csv.resolve() == labels.path.resolve():
            group_path_column = labels.path_column
        _check_group_column(group_csv, group_column)
    elif group_csv is not None or group_column is not None:
        raise RaganError(
            f"group_csv and group_column are only used with group_by='csv' (group_by={given['group_by']!r})"
        )
    if given["export_zip"] and given["bit_depth"] != 8:
        raise RaganError(
            f"export_zip=True needs bit_depth=8 (StyleGAN2-ADA reads 8-bit images), got bit_depth={given['bit_depth']}"
        )
    return _Options(
        image_size=int(given["image_size"]),
        channels=int(given["channels"]),
        bit_depth=int(given["bit_depth"]),
        resize_mode=given["resize_mode"],
        split=ratios,
        resplit=given["resplit"],
        seed=seed,
        group_by=given["group_by"],
        group_csv=group_csv,
        group_column=group_column,
        window=_resolve_window(given["window"]),
        class_names=class_names,
        labels=labels,
        include=_patterns("include", given["include"]),
        exclude=_patterns("exclude", given["exclude"]),
        allow_masks=given["allow_masks"],
        dedupe=given["dedupe"],
        strict=given["strict"],
        overwrite=given["overwrite"],
        export_zip=given["export_zip"],
        shards_per_split=check_positive_int("shards_per_split", given["shards_per_split"], allow_none=True),
        num_workers=_check_int("num_workers", given["num_workers"], 0, optional=True),
        progress=given["progress"],
        split_given=given["split"] is not None,
        group_path_column=group_path_column,
    )


def _check_group_column(csv_path: Path, column: str) -> None:
    """A missing patient column is a one-line error before any work."""
    fields, _ = read_csv_table(csv_path, "group_csv")
    if column not in fields:
        raise RaganError(
            f"group_column={column!r} is not a column of group_csv='{csv_path}' "
            f"(columns: {', '.join(fields) or 'none'}).{did_you_mean(column, fields)}"
        )


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _check_output(out: Path, kind: str, input, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise RaganError(f"out='{out}' exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RaganError(
            f"out='{out}' is not empty; pass overwrite=True (--overwrite) to replace it, or choose another folder"
        )
    if kind in ("folder", "zip", "npz"):
        source = Path(os.fspath(input))
        if kind == "folder" and _is_within(out, source):
            raise RaganError(f"out='{out}' is inside the input folder '{source}'; choose a folder outside it")
        if _is_within(source, out):
            raise RaganError(f"input '{source}' is inside out='{out}'; choose another output folder")


class _PartialLock:
    """An exclusive lock on the partial folder: two runs must not write the same output."""

    def __init__(self, partial: Path):
        self.path = partial / LOCK_FILE
        self._handle = None

    def __enter__(self):
        self._handle = open(self.path, "a+")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; concurrent runs are the user's business
            return self
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            raise RaganError(
                f"another 'ragan prepare' is writing '{self.path.parent}'; wait for it to finish"
            ) from None
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


# --------------------------------------------------------------------------- the stage


@dataclass
class _PlannedShard:
    split: str
    file: str
    source_ids: list[int]


def _build(input, partial: Path, options: _Options) -> Manifest:
    cpu_count = _usable_cpus()
    scanned = scan_input(
        input,
        cache_dir=partial / CACHE_DIR,
        class_names=options.class_names,
        with_patient_keys=options.group_by == "dicom",
        with_salt=options.group_by is not None,
        io_threads=min(8, max(2, cpu_count)),
        progress=options.progress,
        selection=options.selection() if input_kind(input) in ("folder", "zip") else None,
    )
    if options.strict and scanned.skipped:
        path, reason = scanned.skipped[0]
        raise RaganError(f"input file '{path}' cannot be used: {reason} (strict=True stops at the first such file)")
    if options.split_given and scanned.has_splits and not options.resplit:
        raise RaganError(
            f"split={list(options.split)} needs resplit=True (--resplit) for an input with its own "
            f"splits ({scanned.kind}); without it those splits are kept as they are"
        )
    if options.group_by is not None and scanned.has_splits and not options.resplit:
        raise RaganError(
            f"group_by={options.group_by!r} needs resplit=True for an input with its own splits "
            f"({scanned.kind}): its splits were made without your patient groups"
        )

    sources, duplicates = _drop_duplicates(scanned.sources, options.dedupe)
    group_hashes, group_keys = _groups(sources, options)
    keep_given = scanned.has_splits and not options.resplit
    if keep_given:
        split_of = [source.given_split for source in sources]
        split_names = [name for name in SPLIT_NAMES if any(s.given_split == name for s in scanned.sources)]
    else:
        labels = [source.label for source in sources]
        if group_keys is not None:
            split_of = grouped_split(labels, group_keys, options.split, options.seed)
        else:
            split_of = stratified_split(labels, options.split, options.seed)
        split_names = [name for name, ratio in zip(SPLIT_NAMES, options.split) if ratio > 0]
    planned = _plan_shards(sources, split_of, split_names, options)

    description = dict(scanned.description)
    description["splits"] = "from input" if keep_given else "assigned"
    plan_hash = _plan_hash(options, description, sources, split_of, group_hashes, planned, scanned.skipped)
    done = _resume_or_reset(partial, plan_hash, planned)

    class_index = {name: index for index, name in enumerate(scanned.class_names)}
    _write_shards(
        partial, [shard for shard in planned if shard.file not in done], sources, class_index, options, done, cpu_count
    )
    shutil.rmtree(partial / CACHE_DIR, ignore_errors=True)

    try:
        manifest = _manifest(
            scanned, description, sources, split_of, split_names, group_hashes, duplicates, planned, done, options
        )
    except RaganError:
        (partial / PLAN_FILE).unlink(missing_ok=True)  # nothing usable: nothing worth resuming
        raise
    if options.export_zip:
        _export_stylegan_zip(partial, manifest)
    for name in (PLAN_FILE, JOURNAL_FILE):
        (partial / name).unlink(missing_ok=True)
    for leftover in partial.glob("*.partial"):
        leftover.unlink()
    manifest.write(partial)
    return manifest


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _drop_duplicates(sources: list[Source], dedupe: bool) -> tuple[list[Source], list[dict]]:
    if not dedupe:
        return list(sources), []
    first: dict[str, Source] = {}
    kept, duplicates = [], []
    for source in sources:
        original = first.setdefault(source.sha256, source)
        if original is source:
            kept.append(source)
        else:
            duplicates.append({"path": source.path, "duplicate_of": original.path})
    return kept, duplicates


def _groups(sources: list[Source], options: _Options) -> tuple[list[str | None] | None, list | None]:
    """Salted hashes of the patient keys (for the manifest) and the keys the split uses."""
    if options.group_by is None:
        return None, None
    if options.group_by == "dicom":
        raw = [source.patient_key for source in sources]
    else:
        raw = _csv_group_keys(options.group_csv, options.group_column, sources, options.group_path_column)
    salt = hashlib.sha256(b"".join(sorted(source.salt_digest for source in sources))).digest()
    hashes = [None if key is None else hmac.new(salt, key.encode("utf-8"), hashlib.sha256).hexdigest() for key in raw]
    # A file without a patient key is its own group: it cannot be matched with anything.
    keys = [digest if digest is not None else f"file:{source.sha256}" for digest, source in zip(hashes, sources)]
    return hashes, keys


def _csv_group_keys(csv_path: Path, column: str, sources: list[Source], path_column: str | None = None) -> list[str]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RaganError(f"group_csv='{csv_path}' cannot be read ({error})") from None
    if column not in fields:
        raise RaganError(
            f"group_column={column!r} is not a column of group_csv='{csv_path}' "
            f"(columns: {', '.join(fields) or 'none'}).{did_you_mean(column, fields)}"
        )
    lowered = {field.lower(): field for field in fields}
    if path_column is None:
        path_column = next((lowered[name] for name in _CSV_PATH_COLUMNS if name in lowered), None)
    if path_column is None:
        raise RaganError(
            f"group_csv='{csv_path}' needs a column naming the files, one of "
            f"{', '.join(_CSV_PATH_COLUMNS)} (columns: {', '.join(fields) or 'none'})"
        )

    # Match a source by its path relative to the input, or by any trailing part of the CSV's path
    # (absolute paths, a leading input folder name), or by its file name when that is unique.
    by_suffix: dict[str, str | None] = {}
    for row in rows:
        listed = (row.get(path_column) or "").strip().replace("\\", "/")
        group = (row.get(column) or "").strip()
        if not listed or not group:
            continue
        parts = PurePosixPath(listed).parts
        for start in range(len(parts)):
            suffix = "/".join(parts[start:])
            previous = by_suffix.get(suffix, group)
            by_suffix[suffix] = group if previous == group else None  # None: ambiguous
    keys, missing = [], []
    for source in sources:
        group = by_suffix.get(source.path)
        if group is None:
            group = by_suffix.get(PurePosixPath(source.path).name)
        if group is None:  # listed without the extension
            group = by_suffix.get(os.path.splitext(source.path)[0]) or by_suffix.get(PurePosixPath(source.path).stem)
        if group is None:
            missing.append(source.path)
        keys.append(group)
    if missing:
        raise RaganError(
            f"group_csv='{csv_path}' has no (unambiguous) {column!r} for {len(missing)} of "
            f"{len(sources)} images, e.g. '{missing[0]}'; list every image in column {path_column!r}"
        )
    return keys


def _plan_shards(
    sources: list[Source], split_of: list[str], split_names: list[str], options: _Options
) -> list[_PlannedShard]:
    bytes_per_frame = options.image_size**2 * options.channels * options.bit_depth // 8 + 32  # + record framing
    planned = []
    for split in split_names:
        members = [index for index, name in enumerate(split_of) if name == split]
        order = seeded_shuffle(members, options.seed, f"order:{split}")
        estimated = sum(sources[i].frames_hint for i in order) * bytes_per_frame
        count = shard_count(len(order), estimated, target_bytes=TARGET_SHARD_BYTES, requested=options.shards_per_split)
        for index, positions in enumerate(shard_ranges(len(order), count)):
            planned.append(_PlannedShard(split, shard_name(split, index, count), [order[p] for p in positions]))
    return planned


def _plan_hash(options, description, sources, split_of, group_hashes, planned, skipped) -> str:
    plan = {
        "format_version": FORMAT_VERSION,
        "ragan_version": __version__,
        "pixels": PIXELS_VERSION,
        "options": options.recorded(),
        "source": description,
        "sources": [
            [s.path, s.sha256, s.label, split, group_hashes[i] if group_hashes else None]
            for i, (s, split) in enumerate(zip(sources, split_of))
        ],
        "skipped": skipped,
        "shards": [[shard.file, shard.source_ids] for shard in planned],
    }
    return hashlib.sha256(json.dumps(plan, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


def _resume_or_reset(partial: Path, plan_hash: str, planned: list[_PlannedShard]) -> dict[str, dict]:
    """Finished shards of an interrupted run with the same plan; otherwise a clean partial folder."""
    plan_path = partial / PLAN_FILE
    try:
        same_plan = read_json(plan_path).get("plan") == plan_hash
    except (RaganError, AttributeError):  # missing, cut short, or not an object: start afresh
        same_plan = False
    if not same_plan:
        for entry in partial.iterdir():
            if entry.name in (LOCK_FILE, CACHE_DIR):
                continue
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        _write_atomically(plan_path, json.dumps({"plan": plan_hash}) + "\n")
        return {}
    wanted = {shard.file for shard in planned}
    done: dict[str, dict] = {}
    try:
        lines = (partial / JOURNAL_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut short by the interruption
            continue
        if isinstance(entry, dict) and entry.get("file") in wanted:
            done[entry["file"]] = entry
    for name, entry in list(done.items()):
        path = partial / name
        if not path.is_file() or file_sha256(path) != entry.get("sha256"):
            del done[name]
    return done


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _append_journal(partial: Path, entry: dict) -> None:
    """Record a finished shard; a re-run with the same plan keeps it."""
    with open(partial / JOURNAL_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class _Decoder:
    """Decode sources in order: in this process, or in worker processes a bounded number of chunks ahead."""

    def __init__(self, options: DecodeOptions, num_workers: int):
        self.options = options
        self.num_workers = num_workers
        self.executor = None

    def __enter__(self):
        if self.num_workers > 0:
            self.executor = _worker_pool(self.num_workers)
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            if self.executor is not None:
                self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            close_cached_files()
        return False

    def results(self, tasks: Iterable[tuple[int, tuple, int]], describe) -> Iterator[tuple[int, bool, object]]:
        """``(source_id, ok, records or reason)`` per task, in task order; ``describe(id)`` names a source."""
        chunks = iter_chunks(tasks, CHUNK_SIZE)
        if self.executor is None:
            with pillow_block_cache():
                for chunk in chunks:
                    yield from decode_chunk(self.options, chunk)
            return
        pending: deque = deque()

        def submit() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            with _HiddenMainModule():  # the executor starts its worker processes inside submit()
                pending.append((self.executor.submit(decode_chunk, self.options, chunk), chunk))
            return True

        for _ in range(self.num_workers * CHUNKS_AHEAD_PER_WORKER):
            if not submit():
                break
        while pending:
            future, chunk = pending.popleft()
            try:
                finished = future.result()
            except BrokenProcessPool:
                names = ", ".join(repr(describe(source_id)) for source_id, *_ in chunk)
                raise RaganError(
                    "a decoding worker process died (out of memory, or a crash inside an image decoder) while "
                    f"reading one of {names}; re-run with num_workers=0 (--workers 0) to find the file, or free "
                    "memory; finished shards are kept for the re-run"
                ) from None
            submit()
            yield from finished


class _HiddenMainModule:
    """Hide the caller's ``__main__`` module while worker processes start (a few microseconds).

    ``spawn`` and ``forkserver`` workers normally re-import the parent's main script. The workers
    need nothing from it (they run :func:`ragan.data.decoding.decode_chunk`), and a script that
    calls ``prepare_dataset`` without an ``if __name__ == "__main__":`` guard would otherwise run
    again in every worker (and hang the pool). A stand-in module without a file or spec makes
    multiprocessing skip that step.
    """

    def __enter__(self):
        self._saved = sys.modules.get("__main__")
        stand_in = types.ModuleType("__main__")
        sys.modules["__main__"] = stand_in
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            sys.modules["__main__"] = self._saved
        return False


def _worker_pool(num_workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers import only the decoding modules (never TensorFlow).

    ``fork`` would copy a parent that may hold TensorFlow's threads (unsafe); ``forkserver``
    forks from a small server that preloads only :mod:`ragan.data.inputs`. A
    :class:`~concurrent.futures.ProcessPoolExecutor` rather than ``multiprocessing.Pool``: when a
    worker dies, it raises instead of waiting forever.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["ragan.data.inputs", "ragan.data.tfrecord"])
    return ProcessPoolExecutor(
        max_workers=num_workers, mp_context=context, initializer=start_worker, initargs=(os.getpid(),)
    )


def _write_shards(partial, todo, sources, class_index, options, done, cpu_count) -> None:
    from tqdm.auto import tqdm

    total = sum(len(shard.source_ids) for shard in todo)
    workers = options.num_workers
    if workers is None:
        workers = cpu_count if cpu_count > 1 and total >= MIN_SOURCES_FOR_POOL else 0
    workers = min(workers, -(-total // CHUNK_SIZE))
    decode_options = DecodeOptions(
        options.image_size, options.channels, options.bit_depth, options.resize_mode, options.window
    )
    tasks = (
        (source_id, sources[source_id].locator, class_index.get(sources[source_id].label, -1))
        for shard in todo
        for source_id in shard.source_ids
    )
    with _Decoder(decode_options, workers) as decoder:
        results = decoder.results(tasks, lambda source_id: sources[source_id].path)
        with tqdm(total=total, desc="prepare", unit="img", disable=not options.progress, file=sys.stderr) as bar:
            _write_shard_files(partial, todo, results, sources, class_index, options, done, bar)


def _write_shard_files(partial, todo, results, sources, class_index, options, done, bar) -> None:
    """Write each shard from the stream of finished records and journal it once it is complete."""
    from ragan.data.tfrecord import ShardWriter

    for shard in todo:
        frames, failed, counts = [], [], Counter()
        with ShardWriter(partial / shard.file) as writer:
            for source_id in shard.source_ids:
                result_id, ok, payload = next(results)
                if result_id != source_id:  # the decoder keeps order; anything else is a bug
                    raise RuntimeError(f"decoded source {result_id} arrived in place of {source_id}")
                bar.update(1)
                source = sources[source_id]
                if not ok:
                    if options.strict:
                        raise RaganError(
                            f"input file '{source.path}' cannot be used: {payload} "
                            "(strict=True stops at the first such file)"
                        )
                    failed.append([source_id, payload])
                    frames.append([source_id, 0])
                    continue
                for record in payload:
                    writer.write_record(record)
                frames.append([source_id, len(payload)])
                if source.label is not None:
                    counts[source.label] += len(payload)
        info = writer.info()
        entry = {
            "file": info.file,
            "sha256": info.sha256,
            "num_examples": info.num_examples,
            "class_counts": dict(counts),
            "frames": frames,
            "failed": failed,
        }
        _append_journal(partial, entry)
        done[shard.file] = entry


def _manifest(
    scanned: ScannedInput, description, sources, split_of, split_names, group_hashes, duplicates, planned, done, options
) -> Manifest:
    frames = {source_id: count for entry in done.values() for source_id, count in entry["frames"]}
    failed = {source_id: reason for entry in done.values() for source_id, reason in entry["failed"]}
    labelled = bool(scanned.class_names)
    splits = {}
    for split in split_names:
        entries = [done[shard.file] for shard in planned if shard.split == split]
        totals = Counter()
        for entry in entries:
            totals.update(entry["class_counts"])
        splits[split] = SplitInfo(
            num_examples=sum(entry["num_examples"] for entry in entries),
            class_counts={name: totals.get(name, 0) for name in scanned.class_names} if labelled else {},
            shards=[ShardInfo(entry["file"], entry["num_examples"], entry["sha256"]) for entry in entries],
        )
    skipped = list(scanned.skipped) + [(sources[i].path, reason) for i, reason in sorted(failed.items())]
    total = sum(split.num_examples for split in splits.values())
    if total == 0:
        example = f"; e.g. '{skipped[0][0]}': {skipped[0][1]}" if skipped else ""
        raise RaganError(f"no image of the input could be used ({len(skipped)} files skipped{example})")
    source_entries = []
    for index, (source, split) in enumerate(zip(sources, split_of)):
        entry = {
            "path": source.path,
            "sha256": source.sha256,
            "label": source.label,
            "split": split,
            "frames": frames.get(index, 0),
        }
        if group_hashes is not None:
            entry["group"] = group_hashes[index]
        source_entries.append(entry)
    return Manifest(
        image_size=options.image_size,
        channels=options.channels,
        dtype="uint16" if options.bit_depth == 16 else "uint8",
        class_names=list(scanned.class_names),
        labelled=labelled,
        splits=splits,
        options=options.recorded(),
        source=description,
        sources=source_entries,
        skipped=[{"path": path, "reason": reason} for path, reason in sorted(skipped)],
        duplicates=duplicates,
    )


# --------------------------------------------------------------------------- StyleGAN2-ADA export


def _zip_info(name: str) -> zipfile.ZipInfo:
    # A fixed timestamp and mode: the same images give the same zip bytes.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED  # PNGs are already compressed
    info.external_attr = 0o644 << 16
    return info


def _png_bytes(image) -> bytes:
    from PIL import Image

    array = image[..., 0] if image.shape[-1] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _export_stylegan_zip(partial: Path, manifest: Manifest) -> None:
    """Write the train split as StyleGAN2-ADA's ``dataset.zip`` (PNGs + ``dataset.json``)."""
    from ragan._tf import import_tf
    from ragan.data.tfrecord import decode_batch_fn

    tf = import_tf()
    files = [os.fspath(partial / shard.file) for shard in manifest.splits["train"].shards]
    labels = []
    temporary = partial / (ZIP_NAME + ".partial")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
        if files:
            records = tf.data.TFRecordDataset(files).batch(256).map(decode_batch_fn(manifest))
            index = 0
            for images, batch_labels, _ in records.as_numpy_iterator():
                for image, label in zip(images, batch_labels):
                    name = f"{index // 1000:05d}/img{index:08d}.png"
                    archive.writestr(_zip_info(name), _png_bytes(image))
                    labels.append([name, int(label)])
                    index += 1
        text = json.dumps({"labels": labels if manifest.labelled else None}, indent=None)
        archive.writestr(_zip_info(ZIP_LABELS_NAME), text)
    os.replace(temporary, partial / ZIP_NAME)
    _write_atomically(partial / ZIP_LABELS_NAME, text + "\n")


# --------------------------------------------------------------------------- publish


def _publish(partial: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished partial folder to ``out``; replace an old ``out`` only now."""
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:  # appeared while we worked
            raise RaganError(
                f"out='{out}' is not empty; pass overwrite=True (--overwrite) to replace it; the "
                f"finished dataset waits in '{partial}'"
            )
    publish_directory(partial, out)
