"""The classifier study: does adding synthetic images help a classifier on held-out real images?

Every arm trains the same classifier on a different training set, early-stops on the real
``val`` split and is tested on the real ``test`` split, for several seeds. The arms:

``real``
    The real training split only.
``real_aug``
    The real training split with standard augmentation (flips, small shifts, brightness).
``real+synthetic@f``
    Real training split + synthetic images making up the fraction ``f`` of the new training set
    (the real set is kept whole; ``round(f / (1 - f) * n_real)`` synthetic images are added,
    spread over the classes in proportion to the real class counts). ``f = 0`` is the ``real``
    arm and is not repeated.
``real+synthetic+N/class``, ``real+synthetic_rebalance``
    Real + ``N`` synthetic images per class; real + synthetic images of the smaller classes until
    every class is as large as the largest.
``count_matched@f`` (and ``count_matched+N/class``, ``count_matched_rebalance``)
    The control of the synthetic arm with the same name: real training images of the same
    classes, repeated (each image once before any twice) and augmented, up to the same count per
    class. A synthetic arm that beats its count-matched control owes the gain to the synthetic
    images, not to more gradient steps or augmentation.
``synthetic_only``
    Synthetic images only; tested on real images (how real the synthetic classes look).

Seeds change the network initialisation, the shuffling, the augmentation and which synthetic
images (and repeated real images) are drawn. Per arm the study reports every seed's test
metrics, their mean and sample standard deviation, and the class counts of the training set;
synthetic arms are also compared, seed by seed, with their control, ``real_aug`` and ``real``, with a
bootstrap interval over the test images and seeds and a verdict (:mod:`ragan.evaluation.statistics`).

Example (needs prepared datasets on disk and trains classifiers for minutes, hence skipped):
    >>> import ragan
    >>> result = ragan.evaluation.classifier_study("prepared", "synthetic", seeds=(0, 1, 2))   # doctest: +SKIP
    >>> print(result.table())                                                                # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragan._common import check_positive_int
from ragan._logging import progress_bar, stage_output
from ragan.data.arrays import SplitArrays, convert_dtype, read_split
from ragan.errors import RaganError, did_you_mean
from ragan.evaluation.classifier import CLASSIFIER_VERSION, DEFAULT_PATIENCE
from ragan.evaluation.mix import (
    check_geometry,
    choose_per_class,
    real_labels_of_synthetic,
    synthetic_addition_counts,
    synthetic_label_map,
)
from ragan.evaluation.statistics import EFFECT_SIZE, check_effect_size
from ragan.evaluation.study_result import SUMMARY_METRICS, ArmResult, StudyResult

__all__ = [
    "ARM_KINDS",
    "SUMMARY_METRICS",
    "ArmResult",
    "StudyResult",
    "classifier_study",
    "load_study_data",
    "StudyData",
]

ARM_KINDS = ("real", "real_aug", "real+synthetic", "count_matched", "synthetic_only")
SYNTHETIC_ARM_KINDS = ("real+synthetic", "count_matched", "synthetic_only")

# ---------------------------------------------------------------------------------------------
# Data


@dataclass
class StudyData:
    """The real splits and the synthetic images of a study, in memory, checked for compatibility.

    Attributes:
        train, val, test: The real splits.
        synthetic: The synthetic ``train`` split, or None.
        synthetic_labels: Real class index of every synthetic image (None without synthetic data
            or when it is unlabelled and no ``synthetic_class`` was given).
        class_names: The real class names.
    """

    train: SplitArrays
    val: SplitArrays
    test: SplitArrays
    synthetic: SplitArrays | None
    synthetic_labels: np.ndarray | None
    class_names: list
    _synthetic_cache: np.ndarray | None = field(default=None, repr=False)

    def synthetic_images(self) -> np.ndarray:
        """The synthetic pixels in the real set's dtype (exact 8 <-> 16-bit conversion)."""
        if self._synthetic_cache is None:
            self._synthetic_cache = convert_dtype(self.synthetic.images, self.train.manifest.dtype)
        return self._synthetic_cache

    def describe(self) -> dict:
        def counts(labels):
            return {name: int(np.sum(labels == c)) for c, name in enumerate(self.class_names)}

        data = {
            "class_names": list(self.class_names),
            "image_shape": list(self.train.manifest.image_shape),
            "eval_size": self.train.image_size,
            **{
                name: {"num_examples": len(split), "class_counts": counts(split.labels)}
                for name, split in (("train", self.train), ("val", self.val), ("test", self.test))
            },
        }
        if self.synthetic is not None:
            data["synthetic"] = {
                "num_examples": len(self.synthetic),
                "class_counts": counts(self.synthetic_labels) if self.synthetic_labels is not None else {},
                "labelled": self.synthetic_labels is not None,
                "generator": self.synthetic.manifest.generator,
                "marked_synthetic": self.synthetic.manifest.synthetic,
            }
        return data


def load_study_data(
    real,
    synthetic=None,
    *,
    synthetic_class: str | None = None,
    require_synthetic_labels: bool = True,
    val_split: str = "val",
    test_split: str = "test",
    image_size: int | None = None,
) -> StudyData:
    """Read and check the real splits and the synthetic set for the study and the report.

    Every split is read once, in batches; with ``image_size`` smaller than the stored images, what
    is kept in memory is a copy area-resized to it (see :func:`~ragan.data.arrays.read_split`), and
    the full-resolution images are read back by index when needed (``split.full_images``).

    Args:
        real: The real prepared dataset (labelled, with ``train``, ``val`` and ``test`` splits).
        synthetic: A prepared dataset of synthetic images (``train`` split), or None.
        synthetic_class: For an unlabelled synthetic set: the real class its images belong to.
        require_synthetic_labels: Raise for an unlabelled synthetic set without ``synthetic_class``
            (otherwise ``synthetic_labels`` is None).
        val_split, test_split: Names of the real validation and test splits.
        image_size: The side to keep the images at (None: as stored); see
            :func:`~ragan.evaluation.config.eval_size_for`.

    Raises:
        RaganError: one line naming the dataset and the problem: not a prepared dataset, a
            missing or empty split, an unlabelled real set, mismatched image size or channels,
            synthetic class names the real set lacks.

    Example (needs prepared datasets on disk, hence skipped):
        >>> data = load_study_data("prepared", "synthetic")   # doctest: +SKIP
    """
    from ragan.data.manifest import read_manifest

    real_path = Path(real)
    real_manifest = read_manifest(real_path)
    if not real_manifest.labelled:
        raise RaganError(
            f"real dataset '{real_path}' is unlabelled; the classifier study needs class labels "
            "(prepare it from class folders or a labelled .npz)."
        )
    if real_manifest.num_classes < 2:
        raise RaganError(
            f"real dataset '{real_path}' has {real_manifest.num_classes} class; a classifier needs 2 or more."
        )
    splits = {}
    for name in ("train", val_split, test_split):
        if name not in real_manifest.splits:
            available = ", ".join(repr(s) for s in real_manifest.splits) or "none"
            raise RaganError(
                f"real dataset '{real_path}' has no {name!r} split (splits: {available}); the study needs "
                "train, val and test splits (prepare with validation and test fractions)."
            )
        if real_manifest.splits[name].num_examples == 0:
            raise RaganError(f"real dataset '{real_path}': the {name!r} split is empty.")
    synthetic_split = None
    synthetic_labels = None
    label_map = None
    if synthetic is not None:
        synthetic_path = Path(synthetic)
        synthetic_manifest = read_manifest(synthetic_path)
        check_geometry(real_manifest, real_path, synthetic_manifest, synthetic_path)
        if "train" not in synthetic_manifest.splits or synthetic_manifest.splits["train"].num_examples == 0:
            raise RaganError(f"synthetic dataset '{synthetic_path}' holds no images in its 'train' split.")
        if not synthetic_manifest.synthetic:
            warnings.warn(
                f"synthetic dataset '{synthetic_path}' is not marked synthetic in its manifest; using it as "
                "the synthetic set anyway.",
                stacklevel=2,
            )
        if synthetic_manifest.labelled or synthetic_class is not None or require_synthetic_labels:
            label_map = synthetic_label_map(
                real_manifest, real_path, synthetic_manifest, synthetic_path, synthetic_class
            )
    # Read only once every manifest has been checked: at 1024 px reading takes minutes.
    for role, name in (("train", "train"), ("val", val_split), ("test", test_split)):
        splits[role] = read_split(real_path, name, image_size=image_size)
    if synthetic is not None:
        synthetic_split = read_split(synthetic_path, "train", image_size=image_size)
        if label_map is not None:
            synthetic_labels = real_labels_of_synthetic(synthetic_split, label_map)
    return StudyData(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        synthetic=synthetic_split,
        synthetic_labels=synthetic_labels,
        class_names=list(real_manifest.class_names),
    )


# ---------------------------------------------------------------------------------------------
# Arms


@dataclass
class _ArmPlan:
    name: str
    kind: str
    description: str
    rule: dict | None = None  # synthetic_addition_counts keywords for synthetic/control arms
    augment_all: bool = False
    control: str | None = None


def _plan_arms(kinds, fractions, add_per_class, rebalance, has_synthetic) -> tuple[list, list]:
    plans, notes = [], []
    variants = []
    for fraction in fractions:
        if fraction == 0:
            notes.append("synthetic fraction 0 is the 'real' arm; it is not run twice")
            continue
        variants.append(
            (
                f"@{fraction:g}",
                {"synthetic_fraction": float(fraction)},
                f"synthetic images making up {fraction:.0%} of the training set",
            )
        )
    if add_per_class is not None:
        variants.append(
            (
                f"+{add_per_class}/class",
                {"add_per_class": int(add_per_class)},
                f"{add_per_class} synthetic images per class",
            )
        )
    if rebalance:
        variants.append(
            ("_rebalance", {"rebalance": True}, "synthetic images of the smaller classes up to the largest")
        )
    if "real" in kinds:
        plans.append(_ArmPlan("real", "real", "real training images only"))
    if "real_aug" in kinds:
        plans.append(
            _ArmPlan("real_aug", "real_aug", "real training images with standard augmentation", augment_all=True)
        )
    if has_synthetic:
        for suffix, rule, text in variants:
            control = f"count_matched{suffix}" if "count_matched" in kinds else None
            if "real+synthetic" in kinds:
                plans.append(
                    _ArmPlan(
                        f"real+synthetic{suffix}",
                        "real+synthetic",
                        f"real training images + {text}",
                        rule=rule,
                        control=control,
                    )
                )
            if "count_matched" in kinds:
                plans.append(
                    _ArmPlan(
                        control,
                        "count_matched",
                        f"control: real training images + as many repeated, augmented real images "
                        f"per class as 'real+synthetic{suffix}' adds ({text})",
                        rule=rule,
                    )
                )
        if "synthetic_only" in kinds:
            plans.append(_ArmPlan("synthetic_only", "synthetic_only", "synthetic images only"))
    return plans, notes


def _repeat_per_class(labels, counts, rng) -> np.ndarray:
    """Indices of ``counts[c]`` images of class c, each image once before any twice (shuffled cycles)."""
    chosen = []
    for c, count in enumerate(np.asarray(counts, dtype=np.int64)):
        if count <= 0:
            continue
        candidates = np.flatnonzero(labels == c)
        cycles = math.ceil(count / candidates.size)
        drawn = np.concatenate([rng.permutation(candidates) for _ in range(cycles)])[:count]
        chosen.append(drawn)
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _training_set(plan: _ArmPlan, data: StudyData, seed: int):
    """Images (the real set's dtype), labels, augment mask and composition of one arm for one seed."""
    num_classes = len(data.class_names)
    train = data.train
    real_images = train.images
    real_labels = train.labels
    empty = np.zeros(0, dtype=np.int64)
    if plan.kind in ("real", "real_aug"):
        mask = np.full(len(train), plan.augment_all)
        return real_images, real_labels, mask, {"real": len(train), "synthetic": 0, "repeated_real": 0}
    synthetic_images = data.synthetic_images()
    if plan.kind == "synthetic_only":
        labels = data.synthetic_labels
        return (
            synthetic_images,
            labels,
            np.zeros(labels.size, bool),
            {"real": 0, "synthetic": int(labels.size), "repeated_real": 0},
        )
    real_counts = np.bincount(real_labels, minlength=num_classes)
    available = np.bincount(data.synthetic_labels, minlength=num_classes)
    counts = synthetic_addition_counts(
        real_counts, available, class_names=data.class_names, synthetic_name=str(data.synthetic.path), **plan.rule
    )
    # The same seed draws the same counts for an arm and its control; the images differ by design.
    rng = np.random.default_rng([int(seed), 7919])
    if plan.kind == "real+synthetic":
        chosen = choose_per_class(data.synthetic_labels, counts, rng)
        images = np.concatenate([real_images, synthetic_images[chosen]])
        labels = np.concatenate([real_labels, data.synthetic_labels[chosen]])
        mask = np.zeros(labels.size, bool)
        return images, labels, mask, {"real": len(train), "synthetic": int(chosen.size), "repeated_real": 0}
    repeated = _repeat_per_class(real_labels, counts, rng) if counts.sum() else empty
    images = np.concatenate([real_images, real_images[repeated]])
    labels = np.concatenate([real_labels, real_labels[repeated]])
    mask = np.concatenate([np.zeros(len(train), bool), np.ones(repeated.size, bool)])
    return images, labels, mask, {"real": len(train), "synthetic": 0, "repeated_real": int(repeated.size)}


class _ReusableClassifier:
    """One compiled classifier, re-initialised for every run exactly as a fresh seeded one would be.

    Tracing a new train step for every run costs seconds, more than a short run itself. A run
    starts from a freshly built, seeded template whose variables (weights, batch-norm statistics,
    dropout seed state) are copied in, with the optimizer state reset to its initial values.
    """

    def __init__(self, build, *, learning_rate: float):
        from ragan.evaluation.classifier import compile_classifier

        self.build = build
        self.model = compile_classifier(build(), learning_rate=learning_rate)
        self.initial_optimizer_state = [variable.numpy() for variable in self.model.optimizer.variables]

    def fresh(self, seed: int):
        from ragan._tf_internals import set_random_seed

        set_random_seed(int(seed))
        template = self.build()
        for target, source in zip(self.model.variables, template.variables, strict=True):
            target.assign(source)
        for variable, value in zip(self.model.optimizer.variables, self.initial_optimizer_state, strict=True):
            variable.assign(value)
        return self.model

    def copy(self):
        """An uncompiled copy of the current model (it survives the next :meth:`fresh`)."""
        copy = self.build()
        copy.set_weights(self.model.get_weights())
        return copy


# ---------------------------------------------------------------------------------------------
# The study


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = [int(seeds)]
    try:
        seeds = list(seeds)
    except TypeError:
        raise RaganError(f"seeds={seeds!r} is not allowed; give a list of integers, e.g. (0, 1, 2).") from None
    if not seeds or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in seeds):
        raise RaganError(f"seeds={seeds!r} is not allowed; give a non-empty list of integers, e.g. (0, 1, 2).")
    if len(set(seeds)) != len(seeds):
        raise RaganError(f"seeds={seeds!r} has repeated seeds; each seed is one independent run.")
    return [int(s) for s in seeds]


def _check_fractions(fractions) -> list[float]:
    try:
        fractions = [float(f) for f in fractions]
    except (TypeError, ValueError):
        raise RaganError(f"synthetic_fractions={fractions!r} is not allowed; give numbers in [0, 1).") from None
    for fraction in fractions:
        if not 0.0 <= fraction < 1.0:
            raise RaganError(
                f"synthetic_fractions: {fraction:g} is not allowed; each fraction must be in [0, 1) "
                "(the synthetic share of the training set)."
            )
    return sorted(set(fractions))


def _check_add_per_class(add_per_class) -> int | None:
    return check_positive_int("add_per_class", add_per_class, allow_none=True)


def check_study_options(seeds, synthetic_fractions, add_per_class, classifier) -> tuple:
    """The study's options checked (one-line errors) and normalised: ``(seeds, fractions, add_per_class)``.

    ``add_per_class`` is checked here, not only by the mix rule: with ``skip_unavailable`` a bad
    value would otherwise become a note.
    """
    from ragan.evaluation.classifier import CLASSIFIER_KINDS

    if classifier not in CLASSIFIER_KINDS:
        raise RaganError(
            f"classifier={classifier!r} is not allowed; choose one of {', '.join(map(repr, CLASSIFIER_KINDS))}."
            f"{did_you_mean(classifier, CLASSIFIER_KINDS)}"
        )
    return _check_seeds(seeds), _check_fractions(synthetic_fractions), _check_add_per_class(add_per_class)


def _check_arm_kinds(arms) -> list[str]:
    """The arm kinds to run: ``arms`` checked against :data:`ARM_KINDS`, or all of them."""
    kinds = list(ARM_KINDS if arms is None else arms)
    for kind in kinds:
        if kind not in ARM_KINDS:
            raise RaganError(
                f"arms: {kind!r} is not an arm kind; choose from {', '.join(map(repr, ARM_KINDS))}."
                f"{did_you_mean(kind, ARM_KINDS)}"
            )
    if not kinds:
        raise RaganError("arms: no arms given; choose from " + ", ".join(map(repr, ARM_KINDS)) + ".")
    return kinds


def _study_plans(data, kinds, needs_synthetic, fractions, add_per_class, rebalance, skip_unavailable):
    """The arms to run and the notes on those left out, every arm's synthetic needs checked before training.

    ``needs_synthetic``: the synthetic arm kinds the caller asked for explicitly (an error, not a note,
    when they cannot run).
    """
    has_synthetic = data.synthetic is not None
    notes = []
    if has_synthetic and data.synthetic_labels is None:
        if needs_synthetic:
            raise RaganError(
                f"synthetic dataset '{data.synthetic.path}' is unlabelled; arms {needs_synthetic!r} need labels: "
                "pass synthetic_class (--synthetic-class) or generate with a conditional GAN."
            )
        notes.append("the synthetic set is unlabelled and no synthetic_class was given: synthetic arms left out")
        has_synthetic = False
    plans, plan_notes = _plan_arms(kinds, fractions, add_per_class, rebalance, has_synthetic)
    notes.extend(plan_notes)
    num_classes = len(data.class_names)
    if rebalance and has_synthetic:
        counts = np.bincount(data.train.labels, minlength=num_classes)
        if counts.min() == counts.max():
            plans = [p for p in plans if not (p.rule or {}).get("rebalance")]
            notes.append("the real training set is already balanced: the rebalance arms were left out")
    # Check every arm's synthetic needs before training anything: a late failure wastes hours.
    servable = []
    for plan in plans:
        if plan.rule:
            try:
                synthetic_addition_counts(
                    np.bincount(data.train.labels, minlength=num_classes),
                    np.bincount(data.synthetic_labels, minlength=num_classes),
                    class_names=data.class_names,
                    synthetic_name=str(data.synthetic.path),
                    **plan.rule,
                )
            except RaganError as error:
                if not skip_unavailable:
                    raise
                notes.append(f"{plan.name} left out: {error}")
                continue
        servable.append(plan)
    if not servable:
        raise RaganError("no arms to run with these options (check arms, synthetic_fractions and synthetic).")
    return servable, notes


def _new_arm(plan: _ArmPlan, labels: np.ndarray, composition: dict, class_names) -> ArmResult:
    """An arm's result, before its runs, from its first training set."""
    total = int(labels.size)
    if plan.augment_all:
        augmentation = "standard"
    else:
        augmentation = "standard (repeated copies)" if composition["repeated_real"] else "none"
    return ArmResult(
        name=plan.name,
        kind=plan.kind,
        description=plan.description,
        num_train=total,
        composition=composition,
        class_counts={name: int(np.sum(labels == c)) for c, name in enumerate(class_names)},
        synthetic_fraction=composition["synthetic"] / total if total else 0.0,
        augmentation=augmentation,
        control=plan.control,
    )


class _ArmRunner:
    """Trains and tests one classifier per (arm, seed) on the study's data; keeps the reference model.

    ``reference_model`` is a copy of the first ``real`` arm run's classifier (the report's domain model).
    """

    def __init__(
        self, data, *, classifier, weights, epochs, batch_size, learning_rate, patience, class_weight, positive_class
    ):
        from ragan.evaluation.classifier import array_dataset, build_classifier, inference_batch_size

        self.data = data
        self.epochs, self.batch_size, self.learning_rate, self.patience = epochs, batch_size, learning_rate, patience
        self.class_weight, self.positive_class = class_weight, positive_class
        size, _, channels = data.train.images.shape[1:]
        self.num_classes = len(data.class_names)
        self.reusable = _ReusableClassifier(
            lambda: build_classifier(
                classifier, image_size=size, channels=channels, num_classes=self.num_classes, weights=weights
            ),
            learning_rate=learning_rate,
        )
        batch = inference_batch_size(size)
        self.val = array_dataset(data.val.images, data.val.labels, batch_size=batch)
        self.test = array_dataset(data.test.images, data.test.labels, batch_size=batch)
        self.reference_model = None

    def run(self, plan: _ArmPlan, seed: int, images, labels, mask) -> dict:
        """One training run on ``images``/``labels`` and its test figures (the probabilities kept)."""
        from ragan.evaluation import classifier as classifiers

        # First: it sets the global seed, which tf.data's shuffle seeds are combined with.
        model = self.reusable.fresh(seed)
        train = classifiers.array_dataset(
            images, labels, batch_size=self.batch_size, shuffle=True, seed=seed, augment_mask=mask
        )
        trained = classifiers.train_classifier(
            train,
            self.val,
            model=model,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            class_weight=classifiers.balanced_class_weights(labels, self.num_classes) if self.class_weight else None,
            patience=self.patience,
            seed=seed,
            compile=False,
        )
        # The predictions are kept: the intervals resample the test images, not the seeds alone.
        test_labels, probabilities = classifiers.predict_probabilities(trained.model, self.test)
        metrics = classifiers.classification_metrics(
            test_labels, probabilities, class_names=self.data.class_names, positive_class=self.positive_class
        )
        if plan.kind == "real" and self.reference_model is None:
            self.reference_model = self.reusable.copy()
        return {
            "seed": seed,
            "metrics": metrics,
            "test_probabilities": probabilities,
            "best_epoch": trained.best_epoch,
            "epochs_trained": trained.epochs_trained,
            "best_val_auc": trained.best_val_auc,
            "seconds": round(trained.seconds, 3),
        }


def _run_arms(runner: _ArmRunner, plans: list, seeds: list) -> list[ArmResult]:
    """Every arm for every seed, with a progress bar."""
    results = []
    bar = progress_bar(total=len(plans) * len(seeds), desc="classifier study", unit="run", dynamic_ncols=True)
    try:
        for plan in plans:
            arm = None
            for seed in seeds:
                bar.set_postfix_str(f"{plan.name} seed {seed}")
                images, labels, mask, composition = _training_set(plan, runner.data, seed)
                if arm is None:
                    arm = _new_arm(plan, labels, composition, runner.data.class_names)
                arm.runs.append(runner.run(plan, seed, images, labels, mask))
                del images, labels, mask
                bar.update(1)
            results.append(arm)
    finally:
        bar.close()
    return results


def classifier_study(
    real,
    synthetic=None,
    *,
    arms: Sequence[str] | None = None,
    synthetic_fractions: Sequence[float] = (0.0, 0.2, 0.5),
    add_per_class: int | None = None,
    rebalance: bool = False,
    seeds: Sequence[int] = (0, 1, 2),
    classifier: str = "small_cnn",
    weights=None,
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = DEFAULT_PATIENCE,
    class_weight: str | None = None,
    synthetic_class: str | None = None,
    positive_class: int | str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    skip_unavailable: bool = False,
    data: StudyData | None = None,
    effect_size: float = EFFECT_SIZE,
) -> StudyResult:
    """Train the classifier on each arm's training set for several seeds; test on real images.

    See the module documentation for the arms and the definitions.

    Args:
        real: The real prepared dataset (labelled; ``train``, ``val`` and ``test`` splits).
        synthetic: A prepared dataset of synthetic images (its ``train`` split), or None for the
            real arms only.
        arms: Arm kinds to run, from :data:`ARM_KINDS`; default all (only ``real`` and
            ``real_aug`` without synthetic data).
        synthetic_fractions: Fractions ``f`` for the ``real+synthetic@f`` / ``count_matched@f`` arms.
        add_per_class: Also run ``real+synthetic+N/class`` (and its control) with this ``N``.
        rebalance: Also run ``real+synthetic_rebalance`` (and its control).
        seeds: One run per seed and arm.
        classifier: A kind of :func:`~ragan.evaluation.classifier.build_classifier`.
        weights: Initial weights for an EfficientNet (a local file, ``"imagenet"`` or None).
        epochs: Most epochs per run (early stopping on the real validation AUC).
        batch_size: Training batch size.
        learning_rate: Adam learning rate.
        patience: Early-stopping patience in epochs (epochs without a better validation AUC).
        class_weight: None or ``"balanced"`` (loss weights from each arm's training class counts).
        synthetic_class: For an unlabelled synthetic set: the real class its images belong to.
        positive_class: Binary tasks: the positive class for sensitivity (default: the second).
        out: Directory to write ``study.json`` and ``study.txt`` into (optional).
        progress: ``False``: no progress bar (warnings only; see :mod:`ragan._logging`).
        skip_unavailable: Leave out (with a note) the arms needing more synthetic images of a
            class than the synthetic set holds, instead of raising.
        data: Already loaded :class:`StudyData` (the report passes it to avoid reading twice).
        effect_size: The smallest AUC difference worth detecting: comparisons whose test split
            cannot detect it are flagged ``underpowered`` (see :mod:`ragan.evaluation.statistics`).

    Returns:
        A :class:`StudyResult`.

    Raises:
        RaganError: for incompatible datasets (size, channels, class names), empty sets, invalid
            arms, fractions or seeds, or too few synthetic images for an arm.

    Example (needs prepared datasets on disk and trains classifiers for minutes, hence skipped):
        >>> result = classifier_study("prepared", "synthetic", synthetic_fractions=(0.2, 0.5),
        ...                           seeds=(0, 1, 2), epochs=20, out="study")       # doctest: +SKIP
        >>> print(result.table())                                                     # doctest: +SKIP
    """
    seeds, fractions, add_per_class = check_study_options(seeds, synthetic_fractions, add_per_class, classifier)
    effect_size = check_effect_size(effect_size)
    if class_weight not in (None, "balanced"):
        raise RaganError(f"class_weight={class_weight!r} is not allowed; use None or 'balanced'.")
    kinds = _check_arm_kinds(arms)
    needs_synthetic = [kind for kind in kinds if kind in SYNTHETIC_ARM_KINDS] if arms is not None else []
    if synthetic is None and data is None and needs_synthetic:
        raise RaganError(f"arms {needs_synthetic!r} need a synthetic dataset; pass synthetic=.")
    if data is None:
        data = load_study_data(real, synthetic, synthetic_class=synthetic_class)
    plans, notes = _study_plans(data, kinds, needs_synthetic, fractions, add_per_class, rebalance, skip_unavailable)
    # How every arm's classifier trains: the runner's arguments and the study's recorded settings.
    training = {
        "classifier": classifier,
        "weights": weights,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "learning_rate": float(learning_rate),
        "patience": int(patience),
        "class_weight": class_weight,
        "positive_class": positive_class,
    }
    runner = _ArmRunner(data, **training)
    with stage_output(progress):
        results = _run_arms(runner, plans, seeds)
    settings = {
        "real": str(real) if real is not None else str(data.train.path),
        "synthetic": (
            str(synthetic)
            if synthetic is not None
            else str(data.synthetic.path)
            if data.synthetic is not None
            else None
        ),
        **training,
        # What build_classifier builds changes between versions (results of two are not comparable).
        "classifier_version": CLASSIFIER_VERSION,
        "weights": None if weights is None else str(weights),
        "seeds": seeds,
        "arms": kinds,
        "synthetic_fractions": fractions,
        "add_per_class": add_per_class,
        "rebalance": bool(rebalance),
        "synthetic_class": synthetic_class,
        "effect_size": effect_size,
    }
    result = StudyResult(
        arms=results,
        settings=settings,
        data=data.describe(),
        notes=notes,
        reference_model=runner.reference_model,
        test_labels=np.asarray(data.test.labels),
    )
    if out is not None:
        result.save(out)
    return result
