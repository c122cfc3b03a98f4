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
    parser.add_argument("--format", choices=("png", "tfrecord"), default="png", help="output format (default: png)")
    parser.add_argument(
        "--labels",
        default=None,
        help="conditional models: class names or indices, comma-separated, cycled over the "
        "images (default: all classes in turn)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives the same images (default: 0)"
    )
    parser.add_argument(
        "--truncation",
        type=float,
        default=None,
        help="truncation psi: StyleGAN2 pulls w toward its average (e.g. 0.7), the other GANs redraw "
        "latent values beyond +-psi (default: off)",
    )
    parser.add_argument(
        "--noise-mode",
        choices=("const", "random", "none"),
        default=None,
        help="StyleGAN2: its stored noise maps (const, the default), fresh noise (random) or none",
    )
    parser.add_argument(
        "--filter-threshold",
        type=float,
        default=None,
        help="keep only images the discriminator scores as real with probability >= this (e.g. 0.7); "
        "not for critic models (wgan_gp, sngan)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="images per generator call: speed and memory only, the images do not depend on it (default: 256)",
    )
    parser.add_argument("--no-ema", action="store_true", help="use the raw generator instead of its EMA copy")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow server or store of a runs:/ID/model URI (default: MLFLOW_TRACKING_URI; a run's "
        "own store is sqlite:///RUN_DIR/mlflow.db)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    from ragan.generation import generate

    labels = None
    if args.labels:
        labels = [part.strip() for part in args.labels.split(",") if part.strip()]
    result = generate(
        args.model,
        args.n,
        args.out,
        format=args.format,
        labels=labels,
        seed=args.seed,
        truncation=args.truncation,
        batch_size=args.batch_size,
        filter_threshold=args.filter_threshold,
        use_ema=not args.no_ema,
        tracking_uri=args.tracking_uri,
        overwrite=args.overwrite,
        progress=not args.quiet,
        noise_mode=args.noise_mode,
    )
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
