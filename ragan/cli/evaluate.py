"""``ragan evaluate --real DIR --synthetic DIR --out DIR``: the verdict report on synthetic images."""

from __future__ import annotations

import argparse

from ragan.cli.common import add_dataset_arguments


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="Report on synthetic images: FID/KID/precision-recall, diversity, memorisation, classifier study.",
        description="Compare a synthetic prepared dataset with the real one and write report.json and a "
        "self-contained report.html: FID, KID and precision/recall per feature extractor, each beside the same "
        "metric between two real sets (the domain "
        "classifier always; ImageNet InceptionV3 with --inception-weights), MS-SSIM diversity, a memorisation "
        "audit, a membership-inference (privacy) audit, "
        "and the classifier study (real only, real + augmentation, real + synthetic at each fraction, "
        "count-matched controls, synthetic only; several seeds; tested on held-out real images). With --run "
        "the report is also logged to the generator's MLflow run.",
    )
    add_dataset_arguments(
        parser,
        real="the real prepared dataset (labelled; train/val/test splits)",
        synthetic="the synthetic prepared dataset (ragan generate --format tfrecord)",
        out="report folder (must not exist or be empty, see --overwrite)",
    )
    parser.set_defaults(func=run)
    return parser


def configure(parser, argv):
    """The options, declared in :class:`~ragan.evaluation.config.EvaluateConfig` (only for this subcommand)."""
    from ragan.evaluation.config import EvaluateConfig

    EvaluateConfig.add_arguments(parser, title="evaluation options")


def run(args: argparse.Namespace) -> int:
    from ragan.evaluation.config import EvaluateConfig
    from ragan.evaluation.report import evaluate

    report = evaluate(args.real, args.synthetic, out=args.out, config=EvaluateConfig.from_cli(args))
    print("\n".join(report.summary))
    print(f"report: {report.html_path} (data: {report.json_path})")
    if report.mlflow is not None and report.mlflow.get("logged"):
        print(f"logged to MLflow run {report.mlflow['run_id']} at {report.mlflow['tracking_uri']}")
    return 0
