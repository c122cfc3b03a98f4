"""``ragan generate RUN_OR_MODEL --n N --out DIR``: synthetic images from a trained GAN."""

from __future__ import annotations


def register(subparsers):
    parser = subparsers.add_parser(
        "generate",
        help="Generate synthetic images with a trained GAN (PNG folder or prepared TFRecords).",
        description="Generate N images with a trained GAN. PNG output puts each class in its own "
        "sub-folder for conditional models; TFRecord output is a prepared dataset marked synthetic "
        "that 'ragan evaluate' reads like real data. The same --seed gives the same images.",
    )
    parser.add_argument(
        "model", metavar="RUN_OR_MODEL", help="a training run directory, a .keras file or an MLflow runs:/ID/model URI"
    )
    parser.add_argument("--n", type=int, required=True, help="number of images to write")
    parser.add_argument("--out", required=True, help="output directory (written aside, then renamed)")
    parser.set_defaults(func=run)
    return parser


def configure(parser, argv):
    """The options, declared once in :class:`~ragan.generation.GenerateConfig` (added only for this subcommand)."""
    from ragan.generation import GenerateConfig

    GenerateConfig.add_arguments(parser, title="generation options")


def run(args) -> int:
    from ragan.generation import GenerateConfig, generate

    result = generate(args.model, args.n, args.out, config=GenerateConfig.from_cli(args))
    print(f"wrote {result.num_images} images ({result.format}) to {result.out}")
    if result.filter_threshold is not None:
        print(
            f"discriminator filter >= {result.filter_threshold}: kept {result.num_images} of "
            f"{result.num_generated} generated ({100 * result.kept_fraction:.1f}%)"
        )
    if result.labels:
        import collections

        counts = collections.Counter(result.labels)
        names = result.class_names
        summary = ", ".join(f"{names[c] if c < len(names) else c}: {k}" for c, k in sorted(counts.items()))
        print(f"labels: {summary}")
    return 0
