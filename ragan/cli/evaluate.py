"""``ragan evaluate --real DIR --synthetic DIR --out DIR``: the verdict report on synthetic images."""

from __future__ import annotations

import argparse

from ragan.errors import RaganError


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="Report on synthetic images: FID/KID/precision-recall, diversity, memorisation, classifier study.",
        description="Compare a synthetic prepared dataset with the real one and write report.json and a "
        "self-contained report.html: FID, KID and precision/recall per feature extractor (the domain "
        "classifier always; ImageNet InceptionV3 with --inception-weights), MS-SSIM diversity, a memorisation "
        "audit, and the classifier study (real only, real + augmentation, real + synthetic at each fraction, "
        "count-matched controls, synthetic only; several seeds; tested on held-out real images). With --run "
        "the report is also logged to the generator's MLflow run.",
    )
    parser.add_argument(
        "--real", metavar="DIR", required=True, help="the real prepared dataset (labelled; train/val/test splits)"
    )
    parser.add_argument(
        "--synthetic",
        metavar="DIR",
        required=True,
        help="the synthetic prepared dataset (ragan generate --format tfrecord)",
    )
    parser.add_argument(
        "--out", metavar="DIR", required=True, help="report folder (must not exist or be empty, see --overwrite)"
    )
    parser.add_argument(
        "--run",
        metavar="DIR",
        dest="generator_run",
        default=None,
        help="the generator's training run directory: log the report to its MLflow run",
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        metavar="URI",
        help="MLflow store for --run (default MLFLOW_TRACKING_URI, else the run folder's own store; "
        "a URI written in the run's run.json is used only when given here)",
    )
    parser.add_argument(
        "--inception-weights",
        default=None,
        metavar="FILE",
        help="local InceptionV3 no-top weights file (or 'imagenet' to download) for ImageNet FID",
    )
    parser.add_argument(
        "--seeds", default="0,1,2", help="comma-separated seeds of the classifier study (default 0,1,2)"
    )
    parser.add_argument(
        "--fractions",
        default="0,0.2,0.5",
        help="comma-separated synthetic fractions of the study's arms (default 0,0.2,0.5)",
    )
    parser.add_argument(
        "--add-per-class", type=int, default=None, metavar="N", help="also run arms adding N synthetic images per class"
    )
    parser.add_argument("--rebalance", action="store_true", help="also run the class-rebalancing arms")
    parser.add_argument(
        "--classifier",
        default="small_cnn",
        help="small_cnn (fast on CPU) or an EfficientNet, e.g. efficientnet_b0 (default small_cnn)",
    )
    parser.add_argument(
        "--classifier-weights",
        default=None,
        metavar="FILE",
        help="EfficientNet initial weights: a local no-top weights file or 'imagenet'",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="most epochs per classifier run (default 20; 3 with --quick)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="classifier batch size (default 64)")
    parser.add_argument(
        "--synthetic-class",
        default=None,
        metavar="CLASS",
        help="for an unlabelled synthetic set (unconditional GAN): the real class of its images",
    )
    parser.add_argument(
        "--max-images",
        type=int,
        default=5000,
        help="at most this many images per set for the feature metrics and the audit's queries; the audit "
        "searches every real training image (default 5000)",
    )
    parser.add_argument(
        "--kid-subsets",
        type=int,
        default=100,
        help="random subsets KID is averaged over; its spread is over them (default 100)",
    )
    parser.add_argument(
        "--diversity-pairs", type=int, default=200, help="image pairs of the MS-SSIM diversity estimate (default 200)"
    )
    parser.add_argument(
        "--effect-size",
        type=float,
        default=0.02,
        help="smallest AUC difference worth detecting: comparisons whose test split is too small to "
        "detect it say so (default 0.02)",
    )
    parser.add_argument("--no-study", action="store_true", help="skip the classifier study (the slow part)")
    parser.add_argument("--no-memorisation", action="store_true", help="skip the memorisation audit")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: first seed only, 3 epochs, at most 1000 images per set"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty --out (once the new report is complete)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    parser.set_defaults(func=run)
    return parser


def _numbers(option: str, text: str, kind):
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RaganError(
            f"{option} {text!r} is not allowed; give comma-separated {kind.__name__}s, e.g. "
            + ("0,1,2." if kind is int else "0,0.2,0.5.")
        ) from None
    if not values:
        raise RaganError(f"{option} {text!r} is empty; give at least one value.")
    return values


def run(args: argparse.Namespace) -> int:
    from ragan.evaluation.report import evaluate

    report = evaluate(
        args.real,
        args.synthetic,
        out=args.out,
        generator_run=args.generator_run,
        inception_weights=args.inception_weights,
        study=not args.no_study,
        seeds=_numbers("--seeds", args.seeds, int),
        synthetic_fractions=_numbers("--fractions", args.fractions, float),
        add_per_class=args.add_per_class,
        rebalance=args.rebalance,
        classifier=args.classifier,
        classifier_weights=args.classifier_weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        synthetic_class=args.synthetic_class,
        memorisation=not args.no_memorisation,
        max_images=args.max_images,
        kid_subsets=args.kid_subsets,
        diversity_pairs=args.diversity_pairs,
        quick=args.quick,
        overwrite=args.overwrite,
        progress=not args.quiet,
        effect_size=args.effect_size,
        tracking_uri=args.tracking_uri,
    )
    print("\n".join(report.summary))
    print(f"report: {report.html_path} (data: {report.json_path})")
    if report.mlflow is not None and report.mlflow.get("logged"):
        print(f"logged to MLflow run {report.mlflow['run_id']} at {report.mlflow['tracking_uri']}")
    return 0
