"""Check and resolve the arguments of :func:`ragan.prepare_dataset`, before any file is read.

Every bad value is a one-line :class:`~ragan.errors.RaganError` naming the argument, its value and
what is allowed; what comes out is one frozen :class:`PrepareOptions` that the later steps read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ragan._common import check_positive_int
from ragan.data.preprocess import validate_options
from ragan.data.readers import DicomWindow, parse_dicom_window
from ragan.data.selection import LabelTable, Selection, read_csv_table, read_labels_csv
from ragan.data.splits import parse_split_ratios
from ragan.errors import RaganError, check_choice, did_you_mean

__all__ = [
    "DEFAULT_SPLIT",
    "GROUP_BY_CHOICES",
    "PrepareOptions",
    "check_options_fit_input",
    "check_output",
    "read_group_csv",
    "resolve_options",
]

GROUP_BY_CHOICES = (None, "dicom", "csv")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)


@dataclass(frozen=True)
class PrepareOptions:
    """The checked arguments of :func:`ragan.prepare_dataset` (see there for each one)."""

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
    follow_symlinks: bool = False  # read what links in an input folder lead to outside it

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


def resolve_options(**given) -> PrepareOptions:
    """Check every argument of :func:`ragan.prepare_dataset` (given by name) and resolve defaults."""
    validate_options(given["image_size"], given["channels"], given["bit_depth"], given["resize_mode"])
    ratios = parse_split_ratios(DEFAULT_SPLIT if given["split"] is None else given["split"])
    for name in ("resplit", "dedupe", "strict", "overwrite", "export_zip", "progress", "allow_masks"):
        _check_bool(name, given[name])
    seed = _check_int("seed", given["seed"], 0)
    check_choice("group_by", given["group_by"], GROUP_BY_CHOICES)
    class_names = _class_names_option(given["class_names"])
    labels = _labels_option(given, class_names)
    if labels is not None:
        class_names = None  # applied by the labels table
    group_csv, group_column, group_path_column = _group_options(given, labels)
    if given["export_zip"] and given["bit_depth"] != 8:
        raise RaganError(
            f"export_zip=True needs bit_depth=8 (StyleGAN2-ADA reads 8-bit images), got bit_depth={given['bit_depth']}"
        )
    return PrepareOptions(
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
        follow_symlinks=_check_bool("follow_symlinks", given.get("follow_symlinks", False)),
    )


def _class_names_option(class_names) -> tuple[str, ...] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
        raise RaganError(f"class_names={class_names!r} is not allowed; give a list of names, e.g. ['normal', 'tumour']")
    class_names = tuple(class_names)
    if len(set(class_names)) != len(class_names) or not all(n.strip() for n in class_names):
        raise RaganError(f"class_names={list(class_names)!r} is not allowed; give distinct, non-empty names")
    return class_names


def _labels_option(given: dict, class_names: tuple[str, ...] | None) -> LabelTable | None:
    """The labels CSV, read and checked, when ``labels_csv`` is given (its columns only with it)."""
    if given["labels_csv"] is None:
        csv_given = [name for name in ("path_column", "label_column", "label_map") if given[name] is not None]
        if csv_given:
            raise RaganError(f"{', '.join(csv_given)} only apply with labels_csv (the CSV file holding the labels)")
        return None
    missing = [name for name in ("path_column", "label_column") if not given[name]]
    if missing:
        raise RaganError(f"labels_csv needs {' and '.join(missing)} (the columns naming each image and its class)")
    return read_labels_csv(
        given["labels_csv"],
        str(given["path_column"]),
        str(given["label_column"]),
        label_map=given["label_map"],
        class_names=class_names,
    )


def _group_options(given: dict, labels: LabelTable | None) -> tuple[Path | None, str | None, str | None]:
    """``(group_csv, group_column, the CSV's path column when it is the labels CSV)`` for ``group_by='csv'``."""
    group_csv, group_column = given["group_csv"], given["group_column"]
    if given["group_by"] != "csv":
        if group_csv is not None or group_column is not None:
            raise RaganError(
                f"group_csv and group_column are only used with group_by='csv' (group_by={given['group_by']!r})"
            )
        return group_csv, group_column, None
    group_path_column = None
    if group_csv is None and labels is not None:
        group_csv, group_path_column = labels.path, labels.path_column
    if group_csv is None or not group_column:
        raise RaganError("group_by='csv' needs group_csv (the CSV file) and group_column (its patient column)")
    group_csv = Path(os.fspath(group_csv))
    if not group_csv.is_file():
        raise RaganError(f"group_csv='{group_csv}' does not exist or is not a file")
    group_column = str(group_column)
    if labels is not None and group_csv.resolve() == labels.path.resolve():
        group_path_column = labels.path_column
    read_group_csv(group_csv, group_column)  # a missing patient column is an error before any work
    return group_csv, group_column, group_path_column


def read_group_csv(csv_path: Path, column: str) -> tuple[list[str], list[dict[str, str]]]:
    """The columns and rows of ``group_csv``; a one-line error when ``column`` is not one of them."""
    fields, rows = read_csv_table(csv_path, "group_csv")
    if column not in fields:
        raise RaganError(
            f"group_column={column!r} is not a column of group_csv='{csv_path}' "
            f"(columns: {', '.join(fields) or 'none'}).{did_you_mean(column, fields)}"
        )
    return fields, rows


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def check_options_fit_input(input, kind: str, options: PrepareOptions) -> None:
    """Options that only some inputs take: file selection for folders and zips, DICOM grouping for DICOM files."""
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


def check_output(out: Path, kind: str, input, overwrite: bool) -> None:
    """``out`` must be a usable folder: empty (unless ``overwrite``), and not inside the input or around it."""
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
