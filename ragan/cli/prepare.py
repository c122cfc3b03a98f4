"""``ragan prepare INPUT --out DIR``: images, DICOM, npz, zip or TFDS -> a prepared dataset.

The options are :class:`~ragan.data.prepare_options.PrepareConfig`'s (the keywords of
:func:`ragan.prepare_dataset`); this module only parses them and prints a short summary.
"""

from __future__ import annotations

import argparse


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
    parser.set_defaults(func=run)
    return parser


def configure(parser, argv):
    """The options, declared in :class:`~ragan.data.prepare_options.PrepareConfig` (only for this subcommand)."""
    from ragan.data.prepare_options import PrepareConfig

    PrepareConfig.add_arguments(parser, title="dataset options")


def run(args: argparse.Namespace) -> int:
    from ragan.data.prepare import PrepareConfig, prepare_dataset

    manifest = prepare_dataset(args.input, args.out, config=PrepareConfig.from_cli(args))
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
