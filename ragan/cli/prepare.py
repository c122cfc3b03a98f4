"""``ragan prepare INPUT --out DIR``: images, DICOM, npz, zip or TFDS -> a prepared dataset.

Each option maps to one argument of :func:`ragan.prepare_dataset`; this module only parses
them and prints a short summary.
"""

from __future__ import annotations

import argparse

# Arguments of prepare_dataset whose option has the same name (--image-size -> image_size) and
# is passed on as parsed; run() maps the others (class names, duplicates, workers, quiet).
SAME_NAMED = (
    "image_size",
    "channels",
    "bit_depth",
    "resize_mode",
    "split",
    "resplit",
    "seed",
    "group_by",
    "group_csv",
    "group_column",
    "window",
    "labels_csv",
    "path_column",
    "label_column",
    "label_map",
    "include",
    "exclude",
    "allow_masks",
    "strict",
    "overwrite",
    "export_zip",
    "shards_per_split",
    "follow_symlinks",
)

SPLIT_HELP = (
    "train,val,test fractions adding up to 1 (default 0.8,0.1,0.1; val and test may be 0); "
    "for inputs with their own splits (npz, TFDS) only with --resplit"
)


def register(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help="Resize, split and shard images (folders, DICOM, .zip, .npz, TFDS) into a prepared dataset.",
        description="Turn a folder of images (one sub-folder per class, or flat), DICOM files, a .zip, a "
        "MedMNIST-style .npz, 'sample:pneumoniamnist', 'medmnist:NAME' or 'tfds:NAME' into TFRecord shards "
        "per split plus manifest.json. Unusable files are skipped and listed in the manifest. The output "
        "appears only when complete; an interrupted run resumes when re-run with the same options.",
    )
    parser.add_argument("input", help="folder, .zip, .npz, sample:NAME, medmnist:NAME or tfds:NAME")
    parser.add_argument("--out", required=True, help="output folder (must not exist or be empty, see --overwrite)")
    parser.add_argument("--image-size", type=int, default=64, help="side of the square images in pixels (default 64)")
    parser.add_argument("--channels", type=int, default=1, help="1 (greyscale) or 3 (RGB) (default 1)")
    parser.add_argument("--bit-depth", type=int, default=8, help="8 or 16 bits per sample (default 8)")
    parser.add_argument(
        "--resize",
        dest="resize_mode",
        default="crop",
        help="crop (centre square), pad (keep all, black borders) or stretch (default crop)",
    )
    parser.add_argument("--split", default=None, help=SPLIT_HELP)
    parser.add_argument(
        "--resplit",
        action="store_true",
        help="for inputs with their own splits (npz, TFDS): merge and split by --split",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of the record order (default 0)")
    parser.add_argument(
        "--group-by",
        choices=("dicom", "csv"),
        default=None,
        help="keep each patient in one split: by DICOM PatientID, or by --group-csv",
    )
    parser.add_argument(
        "--group-csv", default=None, help="CSV with a path column and the --group-column (default: --labels-csv)"
    )
    parser.add_argument("--group-column", default=None, help="the CSV column holding the patient key")
    parser.add_argument(
        "--window",
        default="auto",
        help="DICOM window: auto (the file's), none (full range), minmax, a preset "
        "(lung, bone, brain, ...) or CENTER,WIDTH (default auto)",
    )
    parser.add_argument(
        "--class-names",
        default=None,
        help="comma-separated class names: for integer labels (npz, TFDS, a labels CSV of 0..k-1) "
        "in label order, for folders the folder names (for a labels CSV its classes) in the wanted order",
    )
    parser.add_argument(
        "--labels-csv",
        default=None,
        help="CSV giving each image's class (instead of class folders): one row per image, "
        "with --path-column and --label-column",
    )
    parser.add_argument(
        "--path-column",
        default=None,
        help="column of --labels-csv naming the image: path relative to the input, with or without extension",
    )
    parser.add_argument("--label-column", default=None, help="column of --labels-csv holding the class")
    parser.add_argument(
        "--label-map",
        default=None,
        help="rename or merge label values: VALUE=CLASS,... (e.g. nevus=benign,melanoma=malignant)",
    )
    for option, help_text in (
        ("--include", "use only files whose path relative to the input matches GLOB (repeatable)"),
        (
            "--exclude",
            "leave out files whose path relative to the input matches GLOB (repeatable), e.g. --exclude '*_mask*'",
        ),
    ):
        parser.add_argument(option, action="append", default=None, metavar="GLOB", help=help_text)
    for flag, help_text in (
        ("--allow-masks", "keep files that look like segmentation masks (by default they stop the run)"),
        ("--keep-duplicates", "keep exact duplicate files"),
        ("--strict", "fail on the first unusable file instead of skipping it"),
        ("--overwrite", "replace a non-empty --out (only once the new dataset is complete)"),
        ("--export-zip", "also write dataset.zip + dataset.json of the train split for StyleGAN2-ADA"),
        ("--follow-symlinks", "also read files that symbolic links in the input folder lead to outside it"),
    ):
        parser.add_argument(flag, action="store_true", help=help_text)
    parser.add_argument(
        "--shards-per-split", type=int, default=None, help="shards per split (default: about 64 MiB each)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="decoding processes (default: all cores; 0 = in this process)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def _class_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",")]


def run(args: argparse.Namespace) -> int:
    from ragan.data.prepare import prepare_dataset

    manifest = prepare_dataset(
        args.input,
        args.out,
        **{name: getattr(args, name) for name in SAME_NAMED},
        class_names=_class_names(args.class_names),
        dedupe=not args.keep_duplicates,
        num_workers=args.workers,
        progress=not args.quiet,
    )
    print(format_summary(manifest, args.out))
    return 0


def format_summary(manifest, out) -> str:
    """A few lines: examples per split and class, skipped and duplicate counts, the output folder.

    Example:
        >>> import ragan
        >>> print(format_summary(ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8), "prepared"))
        Prepared 559 images (8x8, 1 channel, uint8) into 'prepared':
          split  examples  normal  pneumonia
          train       400     103        297
        ...
    """
    total = sum(split.num_examples for split in manifest.splits.values())
    channels = "1 channel" if manifest.channels == 1 else f"{manifest.channels} channels"
    lines = [
        f"Prepared {total} images ({manifest.image_size}x{manifest.image_size}, {channels}, {manifest.dtype}) "
        f"into '{out}':"
    ]
    columns = ["split", "examples", *manifest.class_names]
    rows = [
        [name, str(split.num_examples), *(str(split.class_counts.get(c, 0)) for c in manifest.class_names)]
        for name, split in manifest.splits.items()
    ]
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  " + "  ".join(cells))
    source = manifest.source if isinstance(manifest.source, dict) else {}
    if source.get("excluded"):
        lines.append(f"Left out {source['excluded']} files by --include/--exclude.")
    table = source.get("labels_csv")
    if isinstance(table, dict):
        lines.append(
            f"Labels from '{table['file']}': {table['images_matched']} images matched, "
            f"{table['images_without_row']} images without a row (skipped), "
            f"{table['rows_without_image']} rows without an image"
            + (" (listed in manifest.json)." if table["rows_without_image"] else ".")
        )
    lines.append(
        f"Skipped {len(manifest.skipped)} unusable files and {len(manifest.duplicates)} exact duplicates"
        + (" (listed in manifest.json)." if manifest.skipped or manifest.duplicates else ".")
    )
    return "\n".join(lines)
