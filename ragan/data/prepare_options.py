"""Check and resolve the arguments of :func:`ragan.prepare_dataset`, before any file is read.

Every bad value is a one-line :class:`~ragan.errors.RaganError` naming the argument, its value and
what is allowed; what comes out is one frozen :class:`PrepareOptions` that the later steps read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragan.config import StageConfig, hparam
from ragan.data.preprocess import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, RESIZE_MODES
from ragan.data.readers import DicomWindow, parse_dicom_window
from ragan.data.selection import LabelTable, Selection, parse_label_map, read_csv_table, read_labels_csv
from ragan.data.splits import parse_split_ratios
from ragan.errors import RaganError, did_you_mean

__all__ = [
    "DEFAULT_SPLIT",
    "GROUP_BY_CHOICES",
    "PrepareConfig",
    "PrepareOptions",
    "check_options_fit_input",
    "check_output",
    "read_group_csv",
    "resolve_options",
]

GROUP_BY_CHOICES = (None, "dicom", "csv")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)


def _patterns(name: str, value) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    try:
        patterns = tuple(values)
    except TypeError:
        patterns = None
    if patterns is None or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise RaganError(f"{name}={value!r} is not allowed; give a glob or a list of globs, e.g. ['*_mask*']")
    return tuple(p.strip() for p in patterns)


def _window(name: str, window):
    """``"auto"``, ``"none"``, ``"minmax"``, a preset, ``"CENTER,WIDTH"`` or ``(center, width)``, checked."""
    if isinstance(window, str):
        parse_dicom_window(window)  # raises on an unknown name
        return window
    if isinstance(window, DicomWindow):
        return (window.center, window.width)
    if isinstance(window, (tuple, list)) and len(window) == 2:
        try:
            return (float(window[0]), float(window[1]))
        except (TypeError, ValueError):
            pass
    raise RaganError(
        f"{name}={window!r} is not allowed; use 'auto', None, 'minmax', a preset such as 'lung', or (center, width)"
    )


def _split(name: str, value) -> tuple[float, float, float]:
    return parse_split_ratios(value)


def _globs(help_text: str):
    """A repeatable ``GLOB`` option (a glob or a list of globs)."""
    return hparam(None, help=help_text[:-1] + " (repeatable).", check=_patterns, metavar="GLOB", repeat=True)


def _label_map(name: str, value) -> dict[str, str]:
    return parse_label_map(value)


@dataclass
class PrepareConfig(StageConfig):
    """The options of :func:`ragan.prepare_dataset` and ``ragan prepare`` (see :class:`~ragan.config.StageConfig`).

    Example:
        >>> PrepareConfig(image_size=32, split="0.7,0.2,0.1").split
        (0.7, 0.2, 0.1)
        >>> PrepareConfig(channels=2)
        Traceback (most recent call last):
        ragan.errors.RaganError: channels=2 is not allowed; choose one of 1, 3.
    """

    image_size: int = hparam(
        64, help="Side of the square output images in pixels.", min=MIN_IMAGE_SIZE, max=MAX_IMAGE_SIZE
    )
    channels: int = hparam(
        1, help="1 (greyscale; RGB is converted by luma) or 3 (RGB; grey is repeated).", choices=(1, 3)
    )
    bit_depth: int = hparam(
        8, help="Bits per sample: 8 (uint8) or 16 (uint16, keeps 16-bit PNG/TIFF/DICOM precision).", choices=(8, 16)
    )
    resize_mode: str = hparam(
        "crop",
        help="crop (centre square), pad (the whole image on black borders) or stretch.",
        choices=RESIZE_MODES,
        flag="--resize",
    )
    split: Any = hparam(
        None,
        help="train,val,test fractions adding up to 1 (default 0.8,0.1,0.1; val and test may be 0); for inputs "
        "with their own splits (npz, TFDS) only with resplit.",
        check=_split,
        metavar="TRAIN,VAL,TEST",
    )
    resplit: bool = hparam(
        False,
        help="For inputs with their own splits (npz, TFDS): merge them and split by --split (else they are kept).",
    )
    seed: int = hparam(0, help="Seed of every random choice (split assignment, record order).", min=0)
    group_by: str | None = hparam(
        None,
        help="Keep each patient in one split: by DICOM PatientID (dicom) or by --group-csv (csv).",
        choices=GROUP_BY_CHOICES,
    )
    group_csv: str | None = hparam(
        None,
        help="CSV file with a path column (path, file, filename, image or relpath: paths relative to the input, "
        "or file names) and --group-column (default: --labels-csv).",
        metavar="FILE",
    )
    group_column: str | None = hparam(None, help="The column of --group-csv holding the patient key.")
    window: Any = hparam(
        "auto",
        help="DICOM window: auto (the file's, else min-max), none (the full stored range), minmax, a preset "
        "(lung, bone, brain, ...) or CENTER,WIDTH.",
        check=_window,
    )
    class_names: tuple[str, ...] | None = hparam(
        None,
        help="Comma-separated class names: for integer labels (npz, TFDS, a labels CSV of 0..k-1) in label order; "
        "for folders, the folder names in the wanted label order; for a labels CSV, its classes in the wanted order.",
        check=lambda name, value: _class_names_option(value),
    )
    labels_csv: str | None = hparam(
        None,
        help="CSV file giving each image's class instead of class folders (folder or .zip inputs): one row per "
        "image, with --path-column and --label-column. Images without a row are skipped; rows without an "
        "image are counted in the manifest.",
        metavar="FILE",
    )
    path_column: str | None = hparam(
        None,
        help="The column of --labels-csv naming the image: its path relative to the input, with or without "
        "extension (leading folders the input lacks are ignored).",
    )
    label_column: str | None = hparam(None, help="The column of --labels-csv holding the class.")
    label_map: Any = hparam(
        None,
        help="Rename or merge label values: VALUE=CLASS,... (e.g. nevus=benign,melanoma=malignant) or a mapping; "
        "other values keep their name.",
        check=_label_map,
        metavar="VALUE=CLASS,...",
    )
    include: Any = _globs("Use only files whose path relative to the input matches GLOB (* also crosses /).")
    exclude: Any = _globs("Leave out files whose path relative to the input matches GLOB, e.g. '*_mask*'.")
    allow_masks: bool = hparam(
        False,
        help="Keep files that look like segmentation masks (a mask-like name and few distinct pixel values); "
        "by default they stop the run.",
    )
    dedupe: bool = hparam(
        True,
        help="Drop exact duplicate files, keeping the first (on by default; --keep-duplicates keeps them all).",
        flag="--keep-duplicates",
    )
    strict: bool = hparam(False, help="Fail on the first unusable file instead of skipping it.")
    overwrite: bool = hparam(False, help="Replace a non-empty output folder (only once the new dataset is complete).")
    export_zip: bool = hparam(
        False, help="Also write dataset.zip + dataset.json of the train split for StyleGAN2-ADA (8-bit only)."
    )
    shards_per_split: int | None = hparam(
        None, help="Shards per split instead of about 64 MiB each (at most one per source).", min=1
    )
    num_workers: int | None = hparam(
        None,
        help="Decoding processes; default every core (none for small inputs), 0 decodes in this process.",
        min=0,
        flag="--workers",
    )
    follow_symlinks: bool = hparam(
        False,
        help="Also read files that symbolic links in an input folder lead to outside it (by default such links "
        "are skipped, with a reason, so that a folder from someone else cannot make ragan read your other files).",
    )

    def validate(self) -> None:
        if self.labels_csv is None:
            given = [name for name in ("path_column", "label_column", "label_map") if getattr(self, name) is not None]
            if given:
                raise RaganError(f"{', '.join(given)} only apply with labels_csv (the CSV file holding the labels)")
        else:
            missing = [name for name in ("path_column", "label_column") if not getattr(self, name)]
            if missing:
                raise RaganError(
                    f"labels_csv needs {' and '.join(missing)} (the columns naming each image and its class)"
                )
        if self.group_by != "csv" and (self.group_csv is not None or self.group_column is not None):
            raise RaganError(
                f"group_csv and group_column are only used with group_by='csv' (group_by={self.group_by!r})"
            )
        if self.group_by == "csv" and (not self.group_column or (self.group_csv is None and self.labels_csv is None)):
            raise RaganError("group_by='csv' needs group_csv (the CSV file) and group_column (its patient column)")
        if self.export_zip and self.bit_depth != 8:
            raise RaganError(
                f"export_zip=True needs bit_depth=8 (StyleGAN2-ADA reads 8-bit images), got bit_depth={self.bit_depth}"
            )


@dataclass(frozen=True)
class PrepareOptions:
    """A checked :class:`PrepareConfig` with what it refers to read and resolved (files, window, split).

    The declared options read through (``options.image_size``); the fields here are the resolved ones.
    """

    config: PrepareConfig
    split: tuple[float, float, float]
    window: object
    class_names: tuple[str, ...] | None
    labels: LabelTable | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    group_csv: Path | None
    split_given: bool = False  # the caller chose ``split`` (not recorded: the ratios are)
    group_path_column: str | None = None  # the labels CSV's path column when it is also the group CSV

    def __getattr__(self, name: str):
        # Only called for names that are not fields: the declared options.
        if name.startswith("__") or name == "config":
            raise AttributeError(name)
        return getattr(self.config, name)

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


def _resolve_window(window):
    if window is None or isinstance(window, DicomWindow):
        return window
    if isinstance(window, str):
        return parse_dicom_window(window)
    return DicomWindow(float(window[0]), float(window[1]))


def resolve_options(config: PrepareConfig) -> PrepareOptions:
    """Read what ``config`` refers to (the labels and group CSV files) and resolve its defaults."""
    labels = _labels_option(config)
    group_csv, group_path_column = _group_options(config, labels)
    return PrepareOptions(
        config=config,
        split=DEFAULT_SPLIT if config.split is None else config.split,
        window=_resolve_window(config.window),
        class_names=None if labels is not None else config.class_names,  # a labels table applies them itself
        labels=labels,
        include=config.include or (),
        exclude=config.exclude or (),
        group_csv=group_csv,
        split_given=config.split is not None,
        group_path_column=group_path_column,
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


def _labels_option(config: PrepareConfig) -> LabelTable | None:
    """The labels CSV, read and checked, when ``labels_csv`` is given."""
    if config.labels_csv is None:
        return None
    return read_labels_csv(
        config.labels_csv,
        str(config.path_column),
        str(config.label_column),
        label_map=config.label_map,
        class_names=config.class_names,
    )


def _group_options(config: PrepareConfig, labels: LabelTable | None) -> tuple[Path | None, str | None]:
    """``(group_csv, the CSV's path column when it is the labels CSV)`` for ``group_by='csv'``."""
    if config.group_by != "csv":
        return None, None
    group_path_column = None
    if config.group_csv is None:
        group_csv, group_path_column = labels.path, labels.path_column
    else:
        group_csv = Path(os.fspath(config.group_csv))
    if not group_csv.is_file():
        raise RaganError(f"group_csv='{group_csv}' does not exist or is not a file")
    if labels is not None and group_csv.resolve() == labels.path.resolve():
        group_path_column = labels.path_column
    read_group_csv(group_csv, str(config.group_column))  # a missing patient column is an error before any work
    return group_csv, group_path_column


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
