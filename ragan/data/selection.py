"""Which files of a folder or zip ``prepare`` uses, and their labels when a CSV holds them.

Applied after the files are listed and before any is hashed or decoded, so every problem found
here stops ``prepare`` with a one-line error before any work:

* ``include`` / ``exclude`` globs, matched (case-sensitively, ``*`` also crossing ``/``) against
  the path relative to the input: a file is kept when it matches an ``include`` pattern (or none
  is given) and no ``exclude`` pattern.
* Segmentation masks stored next to the images (BUSI's ``benign (1)_mask.png``, ``*_seg*``,
  ``*_label*``, a ``masks/`` folder): a file whose name says "mask" *and* whose pixels take only a
  few values (binary or label-valued) stops the run, naming an example and the ``exclude``
  pattern that drops them, unless ``allow_masks``.
* A labels CSV (``labels_csv``, ``path_column``, ``label_column``): each file's class comes from
  its row; the path is relative to the input (any leading folders of the CSV's paths that the
  input lacks are ignored), with or without the file extension. ``label_map`` merges or renames
  values; ``class_names`` orders them, or names integer labels ``0..k-1``. Files without a row
  are left out (listed in the manifest's ``skipped``); rows without a file are counted and
  listed in the manifest's ``source.labels_csv``.

This module runs in the main process only; it imports neither TensorFlow nor anything that does.

Example:
    >>> _ = Path("train.csv").write_text("image_name,diagnosis\\nISIC_0001,nevus\\nISIC_0002,melanoma\\n")
    >>> table = read_labels_csv("train.csv", "image_name", "diagnosis")
    >>> selection = Selection(exclude=("*_mask*",), labels=table)
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

import numpy as np

from ragan._untrusted import check_class_name
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "LabelTable",
    "Selection",
    "read_csv_table",
    "read_labels_csv",
    "match_rows",
    "parse_label_map",
    "mask_name_pattern",
]

# Words that name a segmentation mask, as a whole word of a file or folder name.
_MASK_WORDS = ("mask", "masks", "seg", "segmentation", "label", "labels", "annotation", "annotations", "gt")
_MASK_NAME = re.compile(r"(?:^|[\s_\-.()\[\]])(" + "|".join(_MASK_WORDS) + r")(?=$|[\s_\-.()\[\]\d])", re.IGNORECASE)
# A mask has at most this many distinct pixel values (binary, or a few class labels).
MAX_MASK_VALUES = 8
# Name-matched files whose pixels are checked before the run (a few suffice to tell).
_MASK_CHECKS = 3
_CSV_LIST_LIMIT = 1000  # rows without a file listed in the manifest (all are counted)


def mask_name_pattern(path: str) -> str | None:
    """The ``exclude`` glob that drops files named like this one, when its name says "mask".

    Example:
        >>> mask_name_pattern("benign/benign (1)_mask.png")
        '*_mask*'
        >>> mask_name_pattern("masks/case1.png")
        'masks/*'
        >>> mask_name_pattern("benign/benign (1).png") is None
        True
    """
    parts = PurePosixPath(path).parts
    stem = PurePosixPath(path).stem
    found = _MASK_NAME.search(stem)
    if found:
        start = found.start(1)
        separator = stem[start - 1] if start > 0 else ""
        return f"*{separator}{found.group(1)}*"
    for depth, part in enumerate(parts[:-1]):
        if _MASK_NAME.fullmatch(part) or _MASK_NAME.match(part):
            return "/".join(parts[: depth + 1]) + "/*" if depth == 0 else f"*/{part}/*"
    return None


def _distinct_values(data: bytes) -> int | None:
    """Distinct pixel values of an image file (None when Pillow cannot read it)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (64, 64))
            image.thumbnail((256, 256), Image.Resampling.NEAREST)  # keep the values, lose pixels
            return int(np.unique(np.asarray(image)).size)
    except Exception:  # noqa: BLE001 - not our business here: the decoding stage reports unusable files
        return None


# --------------------------------------------------------------------------- CSV


@dataclass
class LabelTable:
    """A labels CSV, read and checked: path -> raw label, plus what the manifest records.

    Args:
        path: The CSV file.
        path_column: The column naming each image.
        label_column: The column holding its class.
        rows: ``(line number, listed path, label)`` for every row with both cells filled.
        label_map: Raw value -> class name (values not in it keep their own name).
        class_names: Wanted class names (order, or names of integer labels), or ``None``.
    """

    path: Path
    path_column: str
    label_column: str
    rows: list[tuple[int, str, str]]
    label_map: dict[str, str] = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None

    def class_name(self, raw: str) -> str:
        return self.label_map.get(raw, raw)

    def resolve_class_names(self, labels: Sequence[str]) -> list[str]:
        """The class names in label order, given the (mapped) labels in use; applies ``class_names``."""
        found = sorted(set(labels), key=_natural_key)
        if self.class_names is None:
            return found
        names = list(self.class_names)
        if set(names) == set(found):
            return names
        if len(names) == len(found) and all(value.isdigit() and int(value) < len(names) for value in found):
            return names  # integer labels named by position: 0 -> names[0] ...
        missing, extra = sorted(set(found) - set(names)), sorted(set(names) - set(found))
        raise RaganError(
            f"class_names={names!r} must list the classes of label_column={self.label_column!r} of "
            f"labels_csv='{self.path.name}' ({', '.join(found)}), or name integer labels 0..{len(names) - 1}; "
            f"missing: {missing or 'none'}, unknown: {extra or 'none'}"
        )

    def renamed(self, label: str) -> str:
        """The final class name of a mapped label (integer labels named by ``class_names``)."""
        if self.class_names is not None and label not in self.class_names and label.isdigit():
            return self.class_names[int(label)]
        return label


def _natural_key(text: str):
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def read_csv_table(csv_path: Path, option: str) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows of a CSV file (UTF-8, with or without BOM); a one-line error otherwise."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [name.strip() for name in (reader.fieldnames or [])]
            reader.fieldnames = fields
            rows = list(reader)
    except FileNotFoundError:
        raise RaganError(f"{option}='{csv_path}' does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RaganError(f"{option}='{csv_path}' cannot be read as a CSV file ({error})") from None
    if not fields:
        raise RaganError(f"{option}='{csv_path}' is empty (no header row)")
    return fields, rows


def _check_column(option: str, column: str, fields: list[str], csv_path: Path) -> None:
    if column not in fields:
        raise RaganError(
            f"{option}={column!r} is not a column of '{csv_path}' (columns: {', '.join(fields)})."
            f"{did_you_mean(column, fields)}"
        )


def parse_label_map(value) -> dict[str, str]:
    """``"A=x,B=y"`` or a mapping -> ``{"A": "x", "B": "y"}``.

    Example:
        >>> parse_label_map("nevus=benign, melanoma=malignant")
        {'nevus': 'benign', 'melanoma': 'malignant'}
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        items = [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    elif isinstance(value, str):
        items = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            if "=" not in part:
                raise RaganError(
                    f"label_map={value!r} is not allowed; write VALUE=CLASS pairs separated by commas, "
                    "e.g. 'nevus=benign,melanoma=malignant'"
                )
            source, target = part.split("=", 1)
            items.append((source.strip(), target.strip()))
    else:
        raise RaganError(f"label_map={value!r} is not allowed; give a dict or 'VALUE=CLASS,...'")
    if not items or any(not source or not target for source, target in items):
        raise RaganError(f"label_map={value!r} is not allowed; every pair needs a value and a class name")
    for source, target in items:
        check_class_name(target, f"label_map value for {source!r}")
    return dict(items)


def read_labels_csv(
    csv_path, path_column: str, label_column: str, *, label_map=None, class_names: Sequence[str] | None = None
) -> LabelTable:
    """Read and check a labels CSV before any image is touched.

    Raises:
        RaganError: an unreadable file, a missing column (with a did-you-mean), no usable row, or a
            label column with a single class (after ``label_map``): nothing to tell apart.

    Example:
        >>> _ = Path("train.csv").write_text("image_name,target\\nISIC_2637011,0\\nISIC_0015719,1\\n")
        >>> read_labels_csv("train.csv", "image_name", "target").rows[0]   # (CSV line, path, label)
        (2, 'ISIC_2637011', '0')
    """
    csv_path = Path(os.fspath(csv_path))
    fields, rows = read_csv_table(csv_path, "labels_csv")
    _check_column("path_column", path_column, fields, csv_path)
    _check_column("label_column", label_column, fields, csv_path)
    mapping = parse_label_map(label_map)
    table_rows = []
    for line, row in enumerate(rows, start=2):
        listed = (row.get(path_column) or "").strip()
        label = (row.get(label_column) or "").strip()
        if listed and label:
            table_rows.append((line, listed, label))
    if not table_rows:
        raise RaganError(f"labels_csv='{csv_path}' has no row with both {path_column!r} and {label_column!r} filled")
    table = LabelTable(
        csv_path,
        path_column,
        label_column,
        table_rows,
        mapping,
        tuple(class_names) if class_names is not None else None,
    )
    unknown = sorted(set(mapping) - {label for _, _, label in table_rows})
    if unknown:
        raise RaganError(
            f"label_map names values that column {label_column!r} of '{csv_path}' never holds: "
            f"{', '.join(repr(u) for u in unknown)}.{did_you_mean(unknown[0], sorted({r[2] for r in table_rows}))}"
        )
    first_lines = {label: line for line, _, label in reversed(table_rows)}
    for label, line in first_lines.items():  # a class name may become a folder name: never a path
        check_class_name(table.class_name(label), f"labels_csv='{csv_path}' line {line}")
    classes = {table.class_name(label) for _, _, label in table_rows}
    if len(classes) < 2:
        raise RaganError(
            f"label_column={label_column!r} of labels_csv='{csv_path}' holds a single class "
            f"({next(iter(classes))!r}) after label_map; a labelled dataset needs at least two"
        )
    return table


def _normalised_parts(listed: str) -> tuple[str, ...]:
    parts = PurePosixPath(listed.strip().replace("\\", "/")).parts
    return tuple(part for part in parts if part not in ("/", "."))


def match_rows(paths: Sequence[str], listed_paths: Sequence[str]) -> tuple[list[int | None], list[int]]:
    """Match CSV paths to input paths: for each input path the index of its row (or None), and the unmatched rows.

    A listed path matches an input path when a trailing part of it (dropping leading folders the
    input lacks) equals the input path, with or without its extension. Rows are tried longest
    suffix first; a suffix that fits several files is ambiguous and matches none.

    Example:
        >>> match_rows(["a/1.png", "b/2.png"], ["data/a/1.png", "2", "c/3.png"])
        ([0, 1], [2])
    """
    index: dict[str, list[int]] = {}
    for position, path in enumerate(paths):
        parts = PurePosixPath(path).parts
        for start in range(len(parts)):
            suffix = "/".join(parts[start:])
            for key in {suffix, os.path.splitext(suffix)[0]}:
                index.setdefault(key, []).append(position)
    row_of: list[int | None] = [None] * len(paths)
    unmatched = []
    for row_index, listed in enumerate(listed_paths):
        parts = _normalised_parts(listed)
        found = None
        for start in range(len(parts)):
            candidates = index.get("/".join(parts[start:]))
            if candidates:
                found = candidates if len(set(candidates)) == 1 else None
                break
        if found is None:
            unmatched.append(row_index)
            continue
        row_of[found[0]] = row_index if row_of[found[0]] is None else row_of[found[0]]
    return row_of, unmatched


# --------------------------------------------------------------------------- the selection


@dataclass
class Selection:
    """Include/exclude globs, the mask check and a labels table, applied to a listed input.

    Args:
        include: Globs; when given, only matching paths are kept.
        exclude: Globs; matching paths are dropped.
        allow_masks: Keep files that look like segmentation masks.
        labels: A :class:`LabelTable`, or ``None``.

    Example:
        >>> Selection(exclude=("*_mask*",)).keeps("benign/benign (1)_mask.png")
        False
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_masks: bool = False
    labels: LabelTable | None = None
    # Filled by apply():
    excluded: int = 0
    label_of: dict[str, str] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    without_row: list[str] = field(default_factory=list)
    csv_record: dict | None = None

    def keeps(self, path: str) -> bool:
        if self.include and not any(fnmatchcase(path, pattern) for pattern in self.include):
            return False
        return not any(fnmatchcase(path, pattern) for pattern in self.exclude)

    def apply(self, paths: Sequence[str], read_bytes: Callable[[str], bytes], input_name: str) -> list[str]:
        """The paths to use, in order; raises :class:`RaganError` for masks or a CSV that fits nothing."""
        kept = [path for path in paths if self.keeps(path)]
        self.excluded = len(paths) - len(kept)
        if not kept:
            patterns = [f"include={list(self.include)}"] if self.include else []
            patterns += [f"exclude={list(self.exclude)}"] if self.exclude else []
            raise RaganError(
                f"{' and '.join(patterns)} leave no file of input='{input_name}' "
                f"({len(paths)} files; patterns match the path relative to the input, e.g. '{paths[0]}')"
            )
        if not self.allow_masks:
            self._check_masks(kept, read_bytes, input_name)
        if self.labels is not None:
            kept = self._apply_labels(kept, input_name)
        return kept

    def _check_masks(self, paths: Sequence[str], read_bytes: Callable[[str], bytes], input_name: str) -> None:
        named = [(path, pattern) for path in paths if (pattern := mask_name_pattern(path)) is not None]
        checked = 0
        for path, pattern in named:
            if checked == _MASK_CHECKS:
                break
            try:
                values = _distinct_values(read_bytes(path))
            except OSError:
                continue
            if values is None:
                continue
            checked += 1
            if values <= MAX_MASK_VALUES:
                count = sum(1 for _, p in named if p == pattern)
                raise RaganError(
                    f"input='{input_name}' holds segmentation masks next to its images, e.g. '{path}' "
                    f"({values} distinct pixel values; {count} files named like it); leave them out with "
                    f"--exclude '{pattern}' (exclude=['{pattern}']), or keep them with --allow-masks (allow_masks=True)"
                )

    def _apply_labels(self, paths: list[str], input_name: str) -> list[str]:
        table = self.labels
        row_of, unmatched = match_rows(paths, [listed for _, listed, _ in table.rows])
        if all(row is None for row in row_of):
            example = table.rows[0][1]
            raise RaganError(
                f"path_column={table.path_column!r} of labels_csv='{table.path.name}' matches no file of "
                f"input='{input_name}' (e.g. row value '{example}' vs file '{paths[0]}'); its values must be paths "
                "relative to the input, with or without the file extension"
            )
        used = {}
        for path, row in zip(paths, row_of):
            if row is None:
                self.without_row.append(path)
            else:
                used[path] = table.class_name(table.rows[row][2])
        names = table.resolve_class_names(list(used.values()))
        if len(set(used.values())) < 2:
            raise RaganError(
                f"the files of input='{input_name}' matched by labels_csv='{table.path.name}' all have "
                f"one class ({next(iter(used.values()))!r}); a labelled dataset needs at least two"
            )
        self.label_of = {path: table.renamed(label) for path, label in used.items()}
        self.class_names = [table.renamed(name) for name in names]
        counts = Counter(self.label_of.values())
        self.csv_record = {
            "file": table.path.name,
            "path_column": table.path_column,
            "label_column": table.label_column,
            "label_map": dict(table.label_map),
            "rows": len(table.rows),
            "images_matched": len(used),
            "images_without_row": len(self.without_row),
            "rows_without_image": len(unmatched),
            "rows_without_image_listed": [
                {"line": table.rows[i][0], "path": table.rows[i][1]} for i in unmatched[:_CSV_LIST_LIMIT]
            ],
            "class_counts": {name: counts.get(name, 0) for name in self.class_names},
        }
        return [path for path in paths if path in used]

    def record(self) -> dict:
        """What the manifest's ``source`` records about the selection."""
        entry = {}
        if self.include or self.exclude:
            entry["include"], entry["exclude"], entry["excluded"] = (
                list(self.include),
                list(self.exclude),
                self.excluded,
            )
        if self.csv_record is not None:
            entry["labels_csv"] = self.csv_record
        return entry
