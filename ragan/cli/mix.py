"""``ragan mix --real DIR --synthetic DIR --synthetic-fraction F --out DIR``: a real + synthetic dataset."""

from __future__ import annotations

import argparse

from ragan.cli.common import add_dataset_arguments

# The options of mix_datasets, each a flag of the same name.
MIX_OPTIONS = ("synthetic_fraction", "add_per_class", "rebalance", "synthetic_class", "seed", "overwrite")


def register(subparsers):
    parser = subparsers.add_parser(
        "mix",
        help="Write a prepared dataset whose train split is real + synthetic images (val/test stay real).",
        description="Write a new prepared dataset: every real training image plus synthetic images in its train "
        "split, the real val and test splits copied unchanged. Give exactly one rule: --synthetic-fraction F "
        "(synthetic images make up F of the new train split; the real set stays whole), --add-per-class N, or "
        "--rebalance (synthetic images of the smaller classes until all classes are equal). The manifest "
        "records the origin of every record. The output appears only when complete.",
    )
    add_dataset_arguments(
        parser,
        real="the real prepared dataset (labelled)",
        synthetic="a prepared dataset of synthetic images (ragan generate --format tfrecord)",
        out="output folder (must not exist or be empty, see --overwrite)",
    )
    rule = parser.add_mutually_exclusive_group(required=True)
    rule.add_argument(
        "--synthetic-fraction",
        type=float,
        default=None,
        metavar="F",
        help="fraction of the mixed train split that is synthetic, in [0, 1), e.g. 0.3",
    )
    rule.add_argument(
        "--add-per-class", type=int, default=None, metavar="N", help="add N synthetic images of every class"
    )
    rule.add_argument(
        "--rebalance",
        action="store_true",
        help="add synthetic images of the smaller classes until every class matches the largest",
    )
    parser.add_argument(
        "--synthetic-class",
        default=None,
        metavar="CLASS",
        help="for an unlabelled synthetic set (unconditional GAN): the real class of its images",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the choice of synthetic images and of the record order (default 0)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty --out (once the new one is complete)"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from ragan.evaluation.mix import mix_datasets

    options = {name: getattr(args, name) for name in MIX_OPTIONS}
    result = mix_datasets(args.real, args.synthetic, args.out, **options)
    train = result.manifest.splits["train"]
    counts = ", ".join(f"{name}: {count}" for name, count in train.class_counts.items())
    added = ", ".join(f"{name}: {count}" for name, count in result.synthetic_class_counts.items()) or "none"
    print(
        f"wrote '{result.out}': train = {result.num_real} real + {result.num_synthetic} synthetic "
        f"({100 * result.synthetic_fraction:.1f}% synthetic; {counts})"
    )
    print(f"synthetic images added per class: {added}; other splits copied from '{args.real}'")
    return 0
