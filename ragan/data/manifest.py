"""The ``manifest.json`` of a prepared dataset: read, validate, write, verify.

A prepared dataset is a directory of TFRecord shards plus one ``manifest.json`` that says what
the records hold (image size, channels, dtype, class names), which shard belongs to which split
and how many examples it holds, and where every image came from. The format is specified in
``docs/prepared-format.md``; this module is its single implementation and imports no TensorFlow,
so the CLI and the prepare stage can inspect a dataset without paying for a TF import.

Example:
    >>> import ragan
    >>> _ = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
    >>> manifest = read_manifest("prepared")
    >>> manifest.image_shape, manifest.class_names
    ((8, 8, 1), ['normal', 'pneumonia'])
    >>> verify_dataset("prepared", check_hashes=True).splits["train"].num_examples
    400
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragan._untrusted import check_class_names
from ragan._version import __version__ as _RAGAN_VERSION
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "DTYPES",
    "ShardInfo",
    "SplitInfo",
    "Manifest",
    "shard_name",
    "read_manifest",
    "verify_dataset",
    "file_sha256",
]

FORMAT = "ragan-prepared"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SHARD_SUFFIX = ".tfrecord"
DTYPES = ("uint8", "uint16")
CHANNELS = (1, 3)
ENCODINGS = ("raw",)

# Split names become part of shard file names, so keep them to a safe alphabet.
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def shard_name(split: str, index: int, count: int) -> str:
    """Return the file name of shard ``index`` of ``count`` in ``split``.

    Args:
        split: the split name, e.g. ``"train"``.
        index: zero-based shard index, ``0 <= index < count``.
        count: number of shards in the split.

    Example:
        >>> shard_name("train", 0, 4)
        'train-00000-of-00004.tfrecord'
    """
    if not _SPLIT_NAME.match(str(split)):
        raise RaganError(
            f"split name {split!r} is not allowed; use letters, digits, '_', '-' or '.' "
            "(it becomes part of the shard file names)."
        )
    if not 0 <= index < count:
        raise RaganError(f"shard index {index} is out of range for a split of {count} shards.")
    return f"{split}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ShardInfo:
    """One TFRecord shard of a split.

    Args:
        file: the shard's file name, relative to the dataset directory (no directories).
        num_examples: number of records in the shard.
        sha256: hex SHA-256 of the shard file's bytes.

    Example:
        >>> ShardInfo("train-00000-of-00001.tfrecord", 120, "ab" * 32).num_examples
        120
    """

    file: str
    num_examples: int
    sha256: str

    def to_dict(self) -> dict:
        return {"file": self.file, "num_examples": self.num_examples, "sha256": self.sha256}


@dataclass
class SplitInfo:
    """One split (``train``, ``val``, ``test``, ...) of a prepared dataset.

    Args:
        num_examples: total number of records in the split.
        class_counts: records per class name (empty for an unlabelled dataset).
        shards: the split's shard files, in reading order.

    Example:
        >>> split = SplitInfo(3, {"a": 1, "b": 2}, [ShardInfo("train-00000-of-00001.tfrecord", 3, "0" * 64)])
        >>> split.shard_files
        ['train-00000-of-00001.tfrecord']
    """

    num_examples: int
    class_counts: dict[str, int]
    shards: list[ShardInfo]

    @property
    def shard_files(self) -> list[str]:
        return [shard.file for shard in self.shards]

    def to_dict(self) -> dict:
        return {
            "num_examples": self.num_examples,
            "class_counts": dict(self.class_counts),
            "shards": [shard.to_dict() for shard in self.shards],
        }


@dataclass
class Manifest:
    """What a prepared dataset directory holds; the contents of its ``manifest.json``.

    Args:
        image_size: height and width of every image, in pixels (images are square).
        channels: 1 (greyscale) or 3 (RGB).
        dtype: pixel type of the raw records, ``"uint8"`` or ``"uint16"``.
        class_names: class names; a record's ``label`` indexes this list.
        labelled: whether records carry class labels (``label == -1`` otherwise).
        splits: split name -> :class:`SplitInfo`.
        options: the resolved options the dataset was prepared with (for reproducibility).
        source: what the input was, e.g. ``{"kind": "folder", "path": "..."}``.
        sources: one entry per input image (relative path, sha256, label, split, ...);
            a record's ``source_id`` indexes this list.
        skipped: inputs that were not used, each with a reason.
        duplicates: inputs dropped as exact duplicates of another input.
        synthetic: True for generated images.
        generator: for synthetic data, ``{"model", "run", "seed", "truncation"}``.
        encoding: how pixels are stored in a record; only ``"raw"`` exists.
        format_version: version of this on-disk format.
        ragan_version: the ragan version that wrote the dataset.

    Example:
        >>> manifest = Manifest(image_size=32, channels=1, dtype="uint8",
        ...                     class_names=["normal", "pneumonia"], labelled=True, splits={})
        >>> manifest.image_shape, manifest.num_classes, manifest.bit_depth
        ((32, 32, 1), 2, 8)

    Reference:
        ``docs/prepared-format.md`` in the ragan repository.
    """

    image_size: int
    channels: int
    dtype: str
    class_names: list[str]
    labelled: bool
    splits: dict[str, SplitInfo]
    options: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    synthetic: bool = False
    generator: dict | None = None
    encoding: str = "raw"
    format_version: int = FORMAT_VERSION
    ragan_version: str = _RAGAN_VERSION

    # ------------------------------------------------------------------ derived properties
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""
        return (self.image_size, self.image_size, self.channels)

    @property
    def bit_depth(self) -> int:
        return 16 if self.dtype == "uint16" else 8

    @property
    def max_value(self) -> int:
        """The largest pixel value the dtype can hold (255 or 65535)."""
        return (1 << self.bit_depth) - 1

    def split(self, name: str) -> SplitInfo:
        """Return the :class:`SplitInfo` of ``name``; a clear error listing the splits otherwise."""
        if name not in self.splits:
            available = ", ".join(repr(s) for s in self.splits) or "none"
            raise RaganError(
                f"split={name!r} is not in this dataset; available splits: {available}."
                f"{did_you_mean(name, self.splits)}"
            )
        return self.splits[name]

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        """Return the manifest as a JSON-ready dict, keys in the documented order."""
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "ragan_version": self.ragan_version,
            "image_size": self.image_size,
            "channels": self.channels,
            "dtype": self.dtype,
            "encoding": self.encoding,
            "labelled": self.labelled,
            "class_names": list(self.class_names),
            "synthetic": self.synthetic,
            "generator": self.generator,
            "splits": {name: split.to_dict() for name, split in self.splits.items()},
            "options": self.options,
            "source": self.source,
            "sources": self.sources,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
        }

    def to_json(self) -> str:
        """Return the manifest as JSON text; the same manifest always gives the same bytes."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str | os.PathLike = "") -> Manifest:
        """Build and validate a manifest from its dict form.

        Args:
            data: the parsed ``manifest.json``.
            path: the file it came from, named in error messages.

        Raises:
            RaganError: naming the file and the field, for a wrong format, a newer
                ``format_version``, or a missing or invalid field.

        Example:
            >>> m = Manifest(image_size=16, channels=1, dtype="uint8", class_names=[], labelled=False, splits={})
            >>> Manifest.from_dict(m.to_dict()) == m
            True
        """
        fields = _Fields(data, path)
        version = fields.format_version()
        image_size, channels, dtype, encoding = _image_fields(fields)
        labelled, class_names = _class_fields(fields)
        splits = _split_fields(fields, class_names)
        generator = fields.get("generator", (dict, type(None)), None)
        return cls(
            image_size=image_size,
            channels=channels,
            dtype=dtype,
            class_names=list(class_names),
            labelled=labelled,
            splits=splits,
            options=dict(fields.get("options", dict, {})),
            source=dict(fields.get("source", dict, {})),
            sources=list(fields.get("sources", list, [])),
            skipped=list(fields.get("skipped", list, [])),
            duplicates=list(fields.get("duplicates", list, [])),
            synthetic=fields.get("synthetic", bool, False),
            generator=generator,
            encoding=encoding,
            format_version=version,
            ragan_version=str(fields.get("ragan_version", str, "unknown")),
        )

    def write(self, directory: str | os.PathLike) -> Path:
        """Write ``manifest.json`` into ``directory`` atomically and return its path.

        The text goes to ``manifest.json.tmp`` first and is renamed over ``manifest.json``, so a
        reader never sees a half-written manifest.

        Example:
            >>> import ragan
            >>> manifest = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
            >>> manifest.write("prepared")
            PosixPath('prepared/manifest.json')
        """
        directory = Path(directory)
        target = directory / MANIFEST_NAME
        temporary = directory / (MANIFEST_NAME + ".tmp")
        with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(self.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        return target


_REQUIRED = object()


def _is_instance(value, kinds) -> bool:
    # bool is a subclass of int in Python; a manifest saying "channels": true is still wrong.
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _describe(kinds) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {
        int: "an integer",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }
    return " or ".join(names.get(kind, kind.__name__) for kind in kinds)


class _Fields:
    """The fields of a manifest's dict, read with checks; every error names the file and the field."""

    def __init__(self, data: Mapping[str, Any], path: str | os.PathLike):
        self.where = f"{os.fspath(path)}: " if os.fspath(path) else "manifest: "
        if not isinstance(data, Mapping):
            raise RaganError(f"{self.where}expected a JSON object, got {type(data).__name__}.")
        self.data = data

    def fail(self, field_name: str, problem: str):
        raise RaganError(f"{self.where}field '{field_name}' {problem}")

    def get(self, field_name: str, kinds, default=_REQUIRED):
        """The field's value, checked against ``kinds``; ``default`` when it is absent (else an error)."""
        if field_name not in self.data:
            if default is _REQUIRED:
                self.fail(field_name, "is missing.")
            return default
        value = self.data[field_name]
        if not _is_instance(value, kinds):
            self.fail(field_name, f"must be {_describe(kinds)}, got {value!r}.")
        return value

    def format_version(self) -> int:
        """The format version, after checking that this is a ragan manifest this ragan can read."""
        fmt = self.data.get("format")
        if fmt != FORMAT:
            raise RaganError(
                f"{self.where}not a ragan prepared-dataset manifest (field 'format' is {fmt!r}, expected {FORMAT!r})."
            )
        version = self.get("format_version", int)
        if version > FORMAT_VERSION:
            raise RaganError(
                f"{self.where}written in format_version {version} by a newer ragan "
                f"({self.data.get('ragan_version', 'unknown')}); this ragan ({_RAGAN_VERSION}) reads up to "
                f"format_version {FORMAT_VERSION}. Upgrade ragan."
            )
        if version < 1:
            self.fail("format_version", f"must be at least 1, got {version}.")
        return version


def _image_fields(fields: _Fields) -> tuple[int, int, str, str]:
    """``image_size``, ``channels``, ``dtype`` and ``encoding``, each one of the allowed values."""
    image_size = fields.get("image_size", int)
    if image_size < 1:
        fields.fail("image_size", f"must be a positive integer, got {image_size}.")
    channels = fields.get("channels", int)
    if channels not in CHANNELS:
        fields.fail("channels", f"must be one of {', '.join(map(str, CHANNELS))}, got {channels}.")
    dtype = fields.get("dtype", str)
    if dtype not in DTYPES:
        fields.fail("dtype", f"must be one of {', '.join(map(repr, DTYPES))}, got {dtype!r}.")
    encoding = fields.get("encoding", str, "raw")
    if encoding not in ENCODINGS:
        fields.fail("encoding", f"must be one of {', '.join(map(repr, ENCODINGS))}, got {encoding!r}.")
    return image_size, channels, dtype, encoding


def _class_fields(fields: _Fields) -> tuple[bool, list[str]]:
    """``labelled`` and ``class_names``: distinct non-empty names, some when labelled."""
    labelled = fields.get("labelled", bool)
    class_names = fields.get("class_names", list)
    if not all(isinstance(name, str) and name for name in class_names):
        fields.fail("class_names", "must be a list of non-empty strings.")
    if len(set(class_names)) != len(class_names):
        fields.fail("class_names", f"has duplicate names: {class_names!r}.")
    if labelled and not class_names:
        fields.fail("class_names", "must not be empty when 'labelled' is true.")
    check_class_names(class_names, f"{fields.where}field 'class_names'")
    return labelled, class_names


def _split_fields(fields: _Fields, class_names: list[str]) -> dict[str, SplitInfo]:
    """``splits``: each split's counts and shards; no shard file listed twice."""
    splits: dict[str, SplitInfo] = {}
    seen_files: dict[str, str] = {}
    for split_name, raw_split in fields.get("splits", dict).items():
        label = f"splits.{split_name}"
        if not _SPLIT_NAME.match(split_name):
            fields.fail(label, "has a name that is not allowed (letters, digits, '_', '-', '.').")
        if not isinstance(raw_split, Mapping):
            fields.fail(label, f"must be an object, got {raw_split!r}.")
        num_examples = raw_split.get("num_examples")
        if not _is_instance(num_examples, int) or num_examples < 0:
            fields.fail(f"{label}.num_examples", f"must be a non-negative integer, got {num_examples!r}.")
        class_counts = raw_split.get("class_counts", {})
        if not isinstance(class_counts, Mapping) or not all(
            _is_instance(c, int) and c >= 0 for c in class_counts.values()
        ):
            fields.fail(f"{label}.class_counts", "must map class names to non-negative integers.")
        unknown = [name for name in class_counts if name not in class_names]
        if unknown:
            fields.fail(f"{label}.class_counts", f"names classes not in 'class_names': {unknown!r}.")
        raw_shards = raw_split.get("shards")
        if not isinstance(raw_shards, list):
            fields.fail(f"{label}.shards", f"must be a list, got {raw_shards!r}.")
        shards = [
            _shard_field(fields, f"{label}.shards[{index}]", raw_shard, seen_files)
            for index, raw_shard in enumerate(raw_shards)
        ]
        splits[split_name] = SplitInfo(num_examples=num_examples, class_counts=dict(class_counts), shards=shards)
    return splits


def _shard_field(fields: _Fields, label: str, raw_shard, seen_files: dict[str, str]) -> ShardInfo:
    """One entry of a split's ``shards``: a plain file name (not seen before), a count and a SHA-256."""
    if not isinstance(raw_shard, Mapping):
        fields.fail(label, f"must be an object, got {raw_shard!r}.")
    file_name = raw_shard.get("file")
    if not isinstance(file_name, str) or not _is_plain_file_name(file_name):
        fields.fail(f"{label}.file", f"must be a file name inside the dataset directory, got {file_name!r}.")
    if file_name in seen_files:
        fields.fail(f"{label}.file", f"{file_name!r} is listed twice (also in {seen_files[file_name]}).")
    seen_files[file_name] = label
    count = raw_shard.get("num_examples")
    if not _is_instance(count, int) or count < 0:
        fields.fail(f"{label}.num_examples", f"must be a non-negative integer, got {count!r}.")
    sha = raw_shard.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        fields.fail(f"{label}.sha256", f"must be 64 lower-case hex digits, got {sha!r}.")
    return ShardInfo(file=file_name, num_examples=count, sha256=sha)


def _is_plain_file_name(name: str) -> bool:
    # Shard names come from a file anyone can edit: never let one point outside the directory.
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _manifest_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        manifest_path = path / MANIFEST_NAME
        if not manifest_path.is_file():
            raise RaganError(
                f"'{path}' is not a prepared ragan dataset: no {MANIFEST_NAME} (run 'ragan prepare' first)."
            )
        return manifest_path
    if path.is_file():
        return path
    raise RaganError(f"'{path}' is not a prepared ragan dataset: it does not exist (run 'ragan prepare' first).")


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read and validate the manifest of a prepared dataset.

    Args:
        path: the dataset directory, or its ``manifest.json``.

    Returns:
        The validated :class:`Manifest`.

    Raises:
        RaganError: when there is no manifest, it is not valid JSON, it is not a ragan manifest,
            it was written by a newer ragan, or a field is invalid; the message names the file.

    Example:
        >>> import ragan
        >>> _ = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
        >>> read_manifest("prepared").class_names
        ['normal', 'pneumonia']
    """
    manifest_path = _manifest_file(path)
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RaganError(f"cannot read '{manifest_path}': {error}.") from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RaganError(
            f"'{manifest_path}' is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})."
        ) from error
    return Manifest.from_dict(data, path=manifest_path)


def verify_dataset(
    path: str | os.PathLike,
    manifest: Manifest | None = None,
    *,
    check_hashes: bool = False,
    splits: Iterable[str] | None = None,
) -> Manifest:
    """Check that a prepared dataset directory agrees with its manifest.

    Checks that every listed shard exists and is non-empty (unless it holds no examples), that
    the shard counts of a split add up to its ``num_examples``, that the class counts of a
    labelled split add up too, that no ``*.tfrecord`` file lies in the directory without being
    listed, and (with ``check_hashes``) that every shard's SHA-256 matches.

    Args:
        path: the dataset directory (or its ``manifest.json``).
        manifest: the manifest, if already read; read from ``path`` otherwise.
        check_hashes: also hash every shard (reads all data; slow for big datasets).
        splits: split names that must exist, e.g. ``["train"]``.

    Returns:
        The manifest.

    Raises:
        RaganError: naming the file and the problem.

    Example:
        >>> import ragan
        >>> _ = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
        >>> verify_dataset("prepared", splits=["train"], check_hashes=True).class_names
        ['normal', 'pneumonia']
    """
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    if manifest is None:
        manifest = read_manifest(path)
    manifest_path = directory / MANIFEST_NAME

    for name in splits or ():
        manifest.split(name)

    listed: set[str] = set()
    for split_name, split in manifest.splits.items():
        shard_total = sum(shard.num_examples for shard in split.shards)
        if shard_total != split.num_examples:
            raise RaganError(
                f"'{manifest_path}': split '{split_name}' says num_examples={split.num_examples} but "
                f"its shards hold {shard_total}; the dataset is inconsistent (prepare it again)."
            )
        if manifest.labelled:
            class_total = sum(split.class_counts.values())
            if class_total != split.num_examples:
                raise RaganError(
                    f"'{manifest_path}': split '{split_name}' has class_counts adding up to "
                    f"{class_total}, not num_examples={split.num_examples}."
                )
        for shard in split.shards:
            listed.add(shard.file)
            shard_path = directory / shard.file
            if not shard_path.is_file():
                raise RaganError(
                    f"shard '{shard_path}' listed in the manifest (split '{split_name}') is missing; "
                    "the dataset is incomplete (prepare it again)."
                )
            if shard.num_examples > 0 and shard_path.stat().st_size == 0:
                raise RaganError(
                    f"shard '{shard_path}' is empty but the manifest says it holds {shard.num_examples} examples."
                )
            if check_hashes:
                actual = file_sha256(shard_path)
                if actual != shard.sha256:
                    raise RaganError(
                        f"shard '{shard_path}' has SHA-256 {actual}, not {shard.sha256} as the manifest "
                        "says; the file was changed or corrupted."
                    )

    stray = sorted(p.name for p in directory.glob(f"*{SHARD_SUFFIX}") if p.name not in listed)
    if stray:
        raise RaganError(
            f"'{directory / stray[0]}' is not listed in '{manifest_path}'"
            + (f" (nor are {len(stray) - 1} more .tfrecord files)" if len(stray) > 1 else "")
            + "; remove it or prepare the dataset again."
        )
    return manifest
