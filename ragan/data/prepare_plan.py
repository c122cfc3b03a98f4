"""Decide and plan the output of ``prepare``: duplicates, patient groups, shards, and the plan's hash.

Everything here is a pure function of the scanned sources and the options, so the same input and
options give the same plan, and an interrupted run resumes only when its plan hash is unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ragan._version import __version__
from ragan.data.manifest import FORMAT_VERSION, shard_name
from ragan.data.prepare_options import PrepareOptions, read_group_csv
from ragan.data.sources import Source
from ragan.data.splits import seeded_shuffle, shard_count, shard_ranges
from ragan.errors import RaganError

__all__ = [
    "PIXELS_VERSION",
    "TARGET_SHARD_BYTES",
    "PlannedShard",
    "drop_duplicates",
    "patient_groups",
    "plan_hash",
    "plan_shards",
]

TARGET_SHARD_BYTES = 64 << 20
# Bumped whenever the same options give other pixels (2: 8-bit images resized in 8-bit, JPEGs
# decoded at reduced size), so a resumed run never mixes shards of two versions.
PIXELS_VERSION = 2
_CSV_PATH_COLUMNS = ("path", "file", "filename", "image", "relpath")


@dataclass
class PlannedShard:
    """One output shard: its split, file name and the sources it holds, in order."""

    split: str
    file: str
    source_ids: list[int]


def drop_duplicates(sources: list[Source], dedupe: bool) -> tuple[list[Source], list[dict]]:
    """Keep the first of each set of sources with the same SHA-256; list the others as duplicates."""
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


def patient_groups(sources: list[Source], options: PrepareOptions) -> tuple[list[str | None] | None, list | None]:
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
    fields, rows = read_group_csv(csv_path, column)
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


def plan_shards(
    sources: list[Source], split_of: list[str], split_names: list[str], options: PrepareOptions
) -> list[PlannedShard]:
    """Cut each split into shards of about ``TARGET_SHARD_BYTES`` (or ``shards_per_split``), in a seeded order."""
    bytes_per_frame = options.image_size**2 * options.channels * options.bit_depth // 8 + 32  # + record framing
    planned = []
    for split in split_names:
        members = [index for index, name in enumerate(split_of) if name == split]
        order = seeded_shuffle(members, options.seed, f"order:{split}")
        estimated = sum(sources[i].frames_hint for i in order) * bytes_per_frame
        count = shard_count(len(order), estimated, target_bytes=TARGET_SHARD_BYTES, requested=options.shards_per_split)
        for index, positions in enumerate(shard_ranges(len(order), count)):
            planned.append(PlannedShard(split, shard_name(split, index, count), [order[p] for p in positions]))
    return planned


def plan_hash(options, description, sources, split_of, group_hashes, planned, skipped) -> str:
    """SHA-256 of everything that decides the output: a resumed run must have the same."""
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
