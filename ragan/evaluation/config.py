"""The options of ``ragan evaluate`` (:class:`EvaluateConfig`), declared once.

The same declaration gives the ``ragan evaluate`` flags, the keywords of :func:`ragan.evaluate`,
the keys of its ``--config`` file and the ``settings`` block of ``report.json``.

Example:
    >>> EvaluateConfig(seeds="0,1", quick=True).quick_applied().seeds
    (0,)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ragan.config import StageConfig, hparam
from ragan.errors import RaganError, did_you_mean
from ragan.evaluation.statistics import EFFECT_SIZE, check_effect_size

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_EVAL_SIZE",
    "EXTRACTORS",
    "MIN_IMAGES",
    "QUICK",
    "EvaluateConfig",
    "eval_size_for",
]

EXTRACTORS = ("domain", "inception")
# Fewest images of each compared set (real train, real test, synthetic) the metrics accept.
MIN_IMAGES = 10
DEFAULT_EPOCHS = 20
# Settings that --quick replaces, for a smoke run in about a minute.
QUICK = {"epochs": 3, "max_images": 1000, "kid_subsets": 20, "diversity_pairs": 50}
# Largest default evaluation size: larger images are evaluated at this side (see eval_size_for).
DEFAULT_EVAL_SIZE = 256


def eval_size_for(image_size: int, eval_size: int | None = None, *, name: str = "dataset") -> int:
    """The side the classifier study and the feature extractors run at, for images of ``image_size``.

    Default: the images' own size up to :data:`DEFAULT_EVAL_SIZE`, else that. A small CNN at 512 px
    costs 4x the time and activation memory of one at 256 px for little the metrics need.

    Example:
        >>> eval_size_for(64), eval_size_for(512), eval_size_for(1024, 128)
        (64, 256, 128)
    """
    if eval_size is None:
        return min(int(image_size), DEFAULT_EVAL_SIZE)
    if eval_size > image_size:
        raise RaganError(
            f"eval_size={eval_size} is larger than the {image_size}x{image_size} images of {name}; give at most "
            f"{image_size} (images are only made smaller for the evaluation), or leave it out for "
            f"{min(int(image_size), DEFAULT_EVAL_SIZE)}."
        )
    return int(eval_size)


def _seeds(name: str, seeds: tuple) -> tuple[int, ...]:
    if not seeds:
        raise RaganError(f"{name}={seeds!r} is not allowed; give a non-empty list of integers, e.g. (0, 1, 2).")
    if len(set(seeds)) != len(seeds):
        raise RaganError(f"{name}={list(seeds)!r} has repeated seeds; each seed is one independent run.")
    return seeds


def _fractions(name: str, fractions: tuple) -> tuple[float, ...]:
    for fraction in fractions:
        if not (math.isfinite(fraction) and 0.0 <= fraction < 1.0):
            raise RaganError(
                f"{name}: {fraction:g} is not allowed; each fraction must be in [0, 1) "
                "(the synthetic share of the training set)."
            )
    return tuple(sorted(set(fractions)))


def _classifier(name: str, classifier: str) -> str:
    from ragan.evaluation.classifier import CLASSIFIER_KINDS

    if classifier not in CLASSIFIER_KINDS:
        raise RaganError(
            f"{name}={classifier!r} is not allowed; choose one of {', '.join(map(repr, CLASSIFIER_KINDS))}."
            f"{did_you_mean(classifier, CLASSIFIER_KINDS)}"
        )
    return classifier


def _effect_size(name: str, value: float) -> float:
    return check_effect_size(value)


@dataclass
class EvaluateConfig(StageConfig):
    """The options of :func:`ragan.evaluate` and ``ragan evaluate`` (see :class:`~ragan.config.StageConfig`).

    Example:
        >>> EvaluateConfig(synthetic_fractions="0.5,0.2").synthetic_fractions
        (0.2, 0.5)
        >>> EvaluateConfig(effect_size=2)
        Traceback (most recent call last):
        ragan.errors.RaganError: effect_size=2.0 is not allowed; give the smallest difference worth detecting, ...
    """

    generator_run: str | None = hparam(
        None,
        help="The generator's training run directory: the report files are logged to its MLflow run (the run "
        "id from its run.json); a tracking failure only warns.",
        flag="--run",
        metavar="DIR",
    )
    tracking_uri: str | None = hparam(
        None,
        help="The MLflow store to log the report to (default MLFLOW_TRACKING_URI, else the run folder's own "
        "store); a tracking URI written in the run's run.json is used only when given here, since a run folder "
        "may come from someone else.",
        metavar="URI",
    )
    extractor: tuple[str, ...] = hparam(
        ("domain",),
        help="Feature extractors of FID/KID/precision-recall: domain (always used; a classifier trained on the "
        "real data) and/or inception (ImageNet InceptionV3, needs its weights).",
        choices=EXTRACTORS,
        metavar="NAME,...",
    )
    inception_weights: str | None = hparam(
        None,
        help="InceptionV3 no-top weights for ImageNet FID: a local file (e.g. Keras' "
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5) or 'imagenet' (download); giving it turns "
        "the inception extractor on.",
        metavar="FILE",
    )
    study: bool = hparam(
        True,
        help="The classifier study, the slow part (on by default; --no-study skips it and trains one real-only "
        "classifier for the domain extractor). Arms needing more synthetic images of a class than there are are "
        "left out, with a note.",
        flag="--no-study",
    )
    seeds: tuple[int, ...] = hparam(
        (0, 1, 2), help="Seeds of the classifier study (the first also trains the domain extractor).", check=_seeds
    )
    synthetic_fractions: tuple[float, ...] = hparam(
        (0.0, 0.2, 0.5),
        help="Synthetic fractions of the study's real+synthetic@f arms.",
        check=_fractions,
        flag="--fractions",
    )
    add_per_class: int | None = hparam(
        None, help="Also run the study's arms adding N synthetic images per class.", min=1, metavar="N"
    )
    rebalance: bool = hparam(False, help="Also run the study's class-rebalancing arms.")
    classifier: str = hparam(
        "small_cnn",
        help="Classifier of the study and of the domain extractor: small_cnn (fast on CPU) or an EfficientNet, "
        "e.g. efficientnet_b0.",
        check=_classifier,
    )
    classifier_weights: str | None = hparam(
        None, help="EfficientNet initial weights: a local no-top weights file or 'imagenet'.", metavar="FILE"
    )
    epochs: int | None = hparam(
        None, help=f"Most epochs per classifier run (default {DEFAULT_EPOCHS}; {QUICK['epochs']} with quick).", min=1
    )
    batch_size: int = hparam(64, help="Classifier batch size.", min=1)
    synthetic_class: str | None = hparam(
        None,
        help="For an unlabelled synthetic set (an unconditional GAN): the real class its images belong to.",
        metavar="CLASS",
    )
    memorisation: bool = hparam(
        True, help="The memorisation audit (on by default; --no-memorisation skips it).", flag="--no-memorisation"
    )
    privacy: bool = hparam(
        True,
        help="The membership-inference audit, the report's Privacy section: can an attacker with the synthetic "
        "set (or, with --run, the GAN's discriminator) tell the training images from held-out ones? On by "
        "default; --no-privacy skips it.",
        flag="--no-privacy",
    )
    eval_size: int | None = hparam(
        None,
        help=f"Side (px) the classifier study, the feature extractors, MS-SSIM diversity and the memorisation "
        f"searches run at, on area-resized copies made once (default: the images' size up to {DEFAULT_EVAL_SIZE}, "
        f"else {DEFAULT_EVAL_SIZE}); the sample grids, the similarity table and the audit's SSIM confirmation and "
        "gallery use the full-resolution images.",
        min=8,
        metavar="PX",
    )
    max_images: int = hparam(
        5000,
        help="At most this many images per set (random subsets, fixed by the first seed) for the feature metrics, "
        "diversity and the audit's queries; the audit searches every real training image.",
        min=MIN_IMAGES,
    )
    kid_subsets: int = hparam(100, help="Random subsets KID is averaged over; its spread is over them.", min=1)
    diversity_pairs: int = hparam(200, help="Image pairs of the MS-SSIM diversity estimate.", min=1)
    effect_size: float = hparam(
        EFFECT_SIZE,
        help="The smallest AUC difference worth detecting: comparisons whose test split is too small to detect "
        "it say so.",
        check=_effect_size,
    )
    quick: bool = hparam(
        False, help="A smoke run: the first seed only, 3 epochs, at most 1000 images per set, fewer KID subsets."
    )
    overwrite: bool = hparam(False, help="Replace a non-empty output folder (once the new report is complete).")

    @property
    def seed(self) -> int:
        """The first seed: it trains the domain classifier and draws every random subset."""
        return self.seeds[0]

    @property
    def extractors(self) -> list[str]:
        """The extractor names, ``"domain"`` first; ``inception`` too when ``inception_weights`` is given."""
        names = list(self.extractor)
        if self.inception_weights is not None and "inception" not in names:
            names.append("inception")
        return ["domain"] + [name for name in names if name != "domain"]

    def study_arguments(self) -> dict:
        """The keywords of :func:`~ragan.evaluation.study.classifier_study` these options set."""
        names = ("synthetic_fractions", "add_per_class", "rebalance", "seeds", "classifier", "epochs", "batch_size")
        return {
            **{name: getattr(self, name) for name in names},
            "weights": self.classifier_weights,
            "synthetic_class": self.synthetic_class,
            "effect_size": self.effect_size,
        }

    def quick_applied(self) -> EvaluateConfig:
        """The settings the evaluation runs with: ``epochs`` resolved, and :data:`QUICK` applied with ``quick``."""
        if not self.quick:
            return self.replace(epochs=DEFAULT_EPOCHS if self.epochs is None else self.epochs)
        return self.replace(
            seeds=self.seeds[:1],
            epochs=QUICK["epochs"] if self.epochs is None else self.epochs,
            **{
                name: min(getattr(self, name), QUICK[name]) for name in ("max_images", "kid_subsets", "diversity_pairs")
            },
        )

    def settings(self) -> dict:
        """``report.json``'s ``settings``: what the numbers depend on."""
        settings = {"extractors": self.extractors, **self.to_dict()}
        for name in ("extractor", "generator_run", "tracking_uri", "overwrite"):
            del settings[name]
        return settings
