"""``ragan.evaluate``: the verdict on a synthetic dataset, as ``report.json`` and ``report.html``.

One call measures everything the project promises about synthetic images, against a real
prepared dataset:

* **Quality**: FID, KID (mean ± std over random subsets) and precision/recall of the synthetic
  images against the real training images, per feature extractor. Every row names its extractor
  and resize method, because feature-space values are only comparable when both match. The
  *domain* extractor (the penultimate layer of the ragan classifier trained on the real data,
  seed 0 of the study's ``real`` arm) needs no download and is always used; ImageNet InceptionV3
  is added when its weights are available (a local file, or ``"imagenet"`` online). The same
  metrics between the held-out real test images and the training images are reported as a
  reference: a synthetic set cannot be expected to score better than new real images do.
* **Diversity**: mean pairwise MS-SSIM within the synthetic set and within the real set (a
  synthetic value well above the real one suggests mode collapse). Skipped, with the reason in
  the report, for images smaller than MS-SSIM's 11x11 window.
* **Similarity to the nearest real image**: PSNR, SSIM, MS-GMSD, MDSI and HaarPSI of each synthetic
  image (and, as the reference, each held-out real image) against its nearest real training image
  (smallest mean squared pixel difference); not against random real images, which mostly measures
  how much real images differ from each other.
* **Memorisation**: :func:`~ragan.evaluation.memorisation.memorisation_audit` with the real test
  images as the baseline; the closest synthetic/training pairs are shown.
* **Privacy**: :func:`~ragan.evaluation.privacy_audit.privacy_audit`, a membership-inference
  audit: can an attacker holding the synthetic images (black-box) or the GAN's discriminator
  (white-box, with ``generator_run``) tell the training images from held-out ones? ROC AUC with a
  bootstrap interval and the true-positive rate at 1 % and 10 % false positives, overall and per
  class; one plain sentence on the first screen, and a flag when the interval lies above 0.6.
* **Floors**: beside every FID, KID and precision/recall figure, the same metric between two
  disjoint sets of real training images at the same sizes, with the ratio
  (:mod:`~ragan.evaluation.floors`); beside the synthetic MS-SSIM diversity, the real one.
* **Per class**: precision/recall, the synthetic-only classifier's AUC and the membership AUC of
  each class.
* **Classifier study**: :func:`~ragan.evaluation.study.classifier_study`: does adding synthetic
  images beat real-only training, standard augmentation and the count-matched control, on held-out
  real images? Every comparison carries a 95 % bootstrap interval and a verdict ("helps", "no
  evidence either way", "hurts"; :mod:`~ragan.evaluation.statistics`), and the report opens with
  that verdict in plain words.

The output directory appears atomically (written aside, then renamed) and holds
``report.json``, the self-contained ``report.html`` (inline CSS, images as data URIs, plots as
inline SVG), ``study.json``/``study.txt`` and ``domain_classifier.keras`` (the domain extractor,
so its FIDs can be reproduced). With ``generator_run`` the report files are also logged as
artifacts (and the headline numbers as metrics) to the generator's MLflow run; a tracking
failure is a warning, not an error.

The stage is a straight sequence of named steps, each adding its results to one :class:`_Evaluation`:
check the options -> load the data -> classifier study (and the domain classifier) -> features ->
metrics (quality, floors, diversity, similarity) -> memorisation audit -> privacy audit -> per-class
table -> write ``report.json`` and ``report.html`` -> log to MLflow. From an evaluation size of
:data:`TRAIN_IN_CHILD_MIN_SIZE` px up, the loading and the classifiers run first in a child process
that ends when they are trained (:mod:`ragan._child`), so the memory TensorFlow keeps after
training (about 2 GB at 256 px) is back with the system before the later stages start.

The measurements are in :mod:`~ragan.evaluation.quality` (and :mod:`~ragan.evaluation.floors`,
:mod:`~ragan.evaluation.privacy_audit`), the words in :mod:`~ragan.evaluation.verdict`, the page in
:mod:`~ragan.evaluation.render` and the tracking in :mod:`~ragan.evaluation.report_mlflow`.

Example (needs two prepared datasets on disk and trains classifiers for minutes, hence skipped):
    >>> import ragan
    >>> report = ragan.evaluate("prepared", "synthetic", out="report", generator_run="runs/dcgan")  # doctest: +SKIP
    >>> print("\\n".join(report.summary))                                                         # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragan._common import json_ready
from ragan._files import build_then_publish
from ragan._logging import stage_output
from ragan._version import __version__
from ragan.config import takes_options
from ragan.errors import RaganError
from ragan.evaluation.config import EXTRACTORS, MIN_IMAGES, QUICK, EvaluateConfig

# Private names as before the split: tests/test_tuning.py and benchmarks/gan_quality.py import them from here.
from ragan.evaluation.render import IMAGES_DIR
from ragan.evaluation.report_mlflow import describe_target as describe_mlflow_target
from ragan.evaluation.report_mlflow import log_to_mlflow as _log_to_mlflow
from ragan.evaluation.report_mlflow import mlflow_target as _mlflow_target
from ragan.evaluation.verdict import headline_metrics as _headline_metrics

logger = logging.getLogger(__name__)

__all__ = ["EvaluateConfig", "EvaluationReport", "evaluate", "EXTRACTORS", "REPORT_JSON", "REPORT_HTML"]
_DECLARED = (EXTRACTORS, MIN_IMAGES, QUICK)  # re-exported from ragan.evaluation.config, where they are declared

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
DOMAIN_MODEL_FILE = "domain_classifier.keras"
# From this evaluation size (px) up, the classifiers train in a child process (see _run_steps): at
# 256 px the study's training leaves about 2 GB in TensorFlow's allocator that the later stages
# would otherwise sit on. Below it, the child's start (a second TensorFlow import, seconds) costs
# more than the memory it returns.
TRAIN_IN_CHILD_MIN_SIZE = 128
GALLERY_PAIRS = 8


@dataclass
class EvaluationReport:
    """What :func:`evaluate` wrote.

    Attributes:
        out: The report directory.
        data: The content of ``report.json``.
        summary: The headline lines (also at the top of the HTML report).
        study: The :class:`~ragan.evaluation.study.StudyResult`, or None without the study.
        mlflow: ``{"logged": bool, "run_id", "tracking_uri", "error"}`` when a run was given.
    """

    out: Path
    data: dict
    summary: list = field(default_factory=list)
    study: object = None
    mlflow: dict | None = None

    @property
    def json_path(self) -> Path:
        return self.out / REPORT_JSON

    @property
    def html_path(self) -> Path:
        return self.out / REPORT_HTML


@dataclass
class _Evaluation:
    """The results of :func:`evaluate`'s steps, passed forward from one to the next.

    Attributes:
        real, synthetic: The inputs as given.
        options: The settings it runs with (:meth:`EvaluateConfig.quick_applied`).
        data: The :class:`~ragan.evaluation.study.StudyData` (every image, read once).
        inception: The Inception extractor, or None.
        study: The :class:`~ragan.evaluation.study.StudyResult`, or None without the study.
        domain_model: The classifier whose penultimate layer is the domain extractor.
        domain: The domain extractor.
        images: The compared sets' images as stored (random subsets of at most ``max_images``), at the
            evaluation size.
        indices: The record index of every image of ``images`` in its split.
        sets: The same images as floats in [-1, 1].
        features: The domain extractor's features of ``sets``.
        quality, diversity, similarity: The report's sections.
        memorisation: The audit's ``to_dict()``, or None; ``gallery``: its closest pairs with images.
        privacy: The membership-inference audit, or None; ``per_class``: the per-class table.
        labels: Class indices of ``images`` (None for an unlabelled synthetic set).
        splits: Whole real splits as ``(images in [-1, 1], domain features)``, computed once.
    """

    real: object
    synthetic: object
    options: EvaluateConfig
    data: object
    inception: object = None
    study: object = None
    domain_model: object = None
    domain: object = None
    images: dict = field(default_factory=dict)
    indices: dict = field(default_factory=dict)
    sets: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    diversity: dict | None = None
    similarity: dict | None = None
    memorisation: dict | None = None
    gallery: list = field(default_factory=list)
    privacy: dict | None = None
    per_class: dict | None = None
    labels: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole real split ``name`` (``train``, ``val``, ``test``) in [-1, 1] and its domain features.

        The metrics' subsample is reused when it is the whole split; otherwise the split is scaled and
        its features extracted once, then kept.
        """
        if name not in self.splits:
            images = getattr(self.data, name).images
            subset = {"train": "real train", "test": "real test"}.get(name)
            if subset is not None and len(self.images[subset]) == len(images):
                self.splits[name] = (self.sets[subset], self.features[subset])
            else:
                from ragan.evaluation.classifier import inference_batch_size

                scaled = images.astype(np.float32) * self.real_scale - 1.0
                batch = inference_batch_size(scaled.shape[1], most=64)
                self.splits[name] = (scaled, self.domain(scaled, batch_size=batch))
        return self.splits[name]

    @property
    def real_scale(self) -> float:
        """Factor taking the real images' stored values to [0, 2] (subtract 1 for [-1, 1])."""
        return 2.0 / self.data.train.manifest.max_value

    def units(self, name: str):
        """A compared set (``"real train"``, ``"synthetic"``, ``"real test"``) or a whole real split (``"train"``,
        ``"val"``, ``"test"``) as :class:`~ragan.evaluation.full_resolution.UnitImages`: in [-1, 1], with its
        full-resolution images."""
        from ragan.evaluation.full_resolution import UnitImages

        if name in ("train", "val", "test"):
            split = getattr(self.data, name)
            return UnitImages(split.images, split.manifest.max_value, split=split)
        split = {"real train": self.data.train, "synthetic": self.data.synthetic, "real test": self.data.test}[name]
        return UnitImages(self.sets[name], None, split=split, positions=self.indices[name])


# ---------------------------------------------------------------------------------------------
# Helpers


def _weights_md5(model) -> str:
    digest = hashlib.md5()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_inception_file(inception_weights) -> None:
    """A missing local weights file, found before any data is read ("imagenet" is tried when built)."""
    if inception_weights is None or (isinstance(inception_weights, str) and inception_weights == "imagenet"):
        return
    if isinstance(inception_weights, (str, os.PathLike)) and not Path(inception_weights).expanduser().is_file():
        raise RaganError(
            f"inception_weights='{inception_weights}': no such file; pass the path of a local InceptionV3 no-top "
            "weights file (.h5, .weights.h5, .keras) or 'imagenet' to download it."
        )


def _build_inception(inception_weights):
    """The Inception extractor, built before the study so that unusable weights fail in seconds, not hours."""
    from ragan.evaluation.features import inception_extractor

    try:
        return inception_extractor("imagenet" if inception_weights is None else inception_weights)
    except RaganError as error:
        # inception_extractor names its own argument; here the user passed inception_weights.
        raise RaganError(re.sub(r"(?<!\w)weights=", "inception_weights=", str(error))) from error


# ---------------------------------------------------------------------------------------------
# The steps of the stage, in order


def _check_output(out: Path, real, synthetic, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RaganError(f"output '{out}' exists and is not empty; pass overwrite=True (--overwrite) to replace it.")
    for label, path in (("real", real), ("synthetic", synthetic)):
        if path is not None and out.resolve() == Path(path).resolve():
            raise RaganError(f"out='{out}' is the {label} dataset; write the report to a new directory.")
    if synthetic is None:
        raise RaganError("synthetic: a synthetic prepared dataset is required (--synthetic DIR).")


def _load(real, synthetic, options: EvaluateConfig, *, announce: bool = True) -> _Evaluation:
    """Read and check both datasets (and build the Inception extractor), so that bad input is one line.

    ``announce=False``: no progress lines (the datasets were read and announced before, in the
    classifiers' child process).
    """
    from ragan.evaluation.study import load_study_data

    eval_size = _eval_size(real, options)
    options = options.replace(eval_size=eval_size)
    data = load_study_data(
        real, synthetic, synthetic_class=options.synthetic_class, require_synthetic_labels=False, image_size=eval_size
    )
    if announce and data.train.resized:
        logger.info(f"evaluating {data.train.full_size}-px images at {eval_size} px (--eval-size), resized once")
    if announce:
        logger.info(f"read {len(data.train)} real training and {len(data.synthetic)} synthetic images")
    for label, path, split, count in (
        ("real", real, "train", len(data.train)),
        ("real", real, "test", len(data.test)),
        ("synthetic", synthetic, "train", len(data.synthetic)),
    ):
        if count < MIN_IMAGES:
            raise RaganError(
                f"{label} dataset '{path}': the {split!r} split holds {count} image(s), fewer than the {MIN_IMAGES} "
                "the metrics need (FID, KID, precision/recall, memorisation baseline)."
            )
    # Built now: a weights file that does not load (or an offline 'imagenet') must fail before the study.
    inception = _build_inception(options.inception_weights) if "inception" in options.extractors else None
    return _Evaluation(real, synthetic, options, data, inception=inception)


def _run_study(run: _Evaluation, folder: Path) -> None:
    """The classifier study (saved to ``folder``); its seed-0 real-only classifier is the domain model.

    Without the study, one real-only classifier is trained for the domain extractor.
    """
    from ragan.evaluation import study as studies

    options = run.options
    if options.study:
        seeds = ", ".join(map(str, options.seeds))
        logger.info(f"classifier study ({options.classifier}, seeds {seeds}, up to {options.epochs} epochs)")
        run.study = studies.classifier_study(
            run.real, run.synthetic, **options.study_arguments(), data=run.data, skip_unavailable=True
        )
        for note in run.study.notes:
            logger.info(f"note: {note}")
        run.study.save(folder)
        run.domain_model = run.study.reference_model
    if run.domain_model is None:
        logger.info(f"training the domain classifier ({options.classifier}, seed {options.seed})")
        run.domain_model = _train_domain_classifier(run.data, options)
    run.domain_model.save(folder / DOMAIN_MODEL_FILE)


def _eval_size(real, options: EvaluateConfig) -> int:
    """The side the classifiers and extractors run at (see :func:`~ragan.evaluation.config.eval_size_for`)."""
    from ragan.data.manifest import read_manifest
    from ragan.evaluation.config import eval_size_for

    return eval_size_for(read_manifest(real).image_size, options.eval_size, name=f"real dataset '{real}'")


def _trains_in_child(real, options: EvaluateConfig) -> bool:
    """Whether the classifiers train in a child process: from :data:`TRAIN_IN_CHILD_MIN_SIZE` px up."""
    return _eval_size(real, options) >= TRAIN_IN_CHILD_MIN_SIZE


def _train_in_child(real, synthetic, options: EvaluateConfig, folder: Path):
    """The child's part (see :func:`ragan._child.run_in_child`): read the datasets, then :func:`_run_study`
    into ``folder``. Returns the study result without its model (the parent loads the saved domain model)."""
    run = _load(real, synthetic, options)
    run.inception = None  # built only to fail early; the parent builds its own
    _run_study(run, folder)
    if run.study is not None:
        run.study.reference_model = None
    return run.study


def _adopt_trained(run: _Evaluation, study, folder: Path) -> None:
    """Take over what the child trained: its study result and the domain classifier it saved in ``folder``."""
    from ragan._tf import import_keras

    run.domain_model = import_keras().saving.load_model(str(folder / DOMAIN_MODEL_FILE), compile=False, safe_mode=True)
    run.study = study
    if study is not None:
        study.reference_model = run.domain_model


def _train_domain_classifier(data, options: EvaluateConfig):
    """A classifier trained on the real training split only (seed ``options.seed``), for the domain extractor."""
    from ragan._tf import import_keras
    from ragan.evaluation import classifier as classifiers

    import_keras().utils.set_random_seed(options.seed)
    size, _, channels = data.train.images.shape[1:]
    model = classifiers.build_classifier(
        options.classifier,
        image_size=size,
        channels=channels,
        num_classes=len(data.class_names),
        weights=options.classifier_weights,
    )
    train = classifiers.array_dataset(
        data.train.images, data.train.labels, batch_size=options.batch_size, shuffle=True, seed=options.seed
    )
    val = classifiers.array_dataset(
        data.val.images, data.val.labels, batch_size=classifiers.inference_batch_size(data.train.image_size)
    )
    return classifiers.train_classifier(
        train, val, model=model, epochs=options.epochs, batch_size=options.batch_size, seed=options.seed
    ).model


def _extract_features(run: _Evaluation) -> None:
    """The compared sets (random subsets of at most ``max_images``) and their domain features."""
    from ragan.evaluation.classifier import classifier_input_resize, inference_batch_size
    from ragan.evaluation.features import model_extractor
    from ragan.evaluation.quality import subsample

    options, data = run.options, run.data
    rng = np.random.default_rng(options.seed)
    for name, split, labels in (
        ("real train", data.train, data.train.labels),
        ("synthetic", data.synthetic, data.synthetic_labels),
        ("real test", data.test, data.test.labels),
    ):
        run.images[name], run.indices[name] = subsample(split.images, np.arange(len(split)), options.max_images, rng)
        run.labels[name] = None if labels is None else labels[run.indices[name]]
    synthetic_scale = 2.0 / data.synthetic.manifest.max_value
    run.sets = {
        name: images.astype(np.float32) * (synthetic_scale if name == "synthetic" else run.real_scale) - 1.0
        for name, images in run.images.items()
    }
    name = (
        f"ragan_domain_{options.classifier}:{Path(run.real).name}:seed{options.seed}:"
        f"weights_md5={_weights_md5(run.domain_model)[:12]}"
    )
    run.domain = model_extractor(run.domain_model, name=name)
    # The images enter at the classifier's own input size; any resize happens inside it.
    run.domain.resize = classifier_input_resize(options.classifier, data.train.image_size)
    if data.train.resized:
        inside = "" if run.domain.resize.startswith("none") else f"; then {run.domain.resize}"
        run.domain.resize = f"{_eval_resize(data.train)}{inside}"
    logger.info(f"features ({run.domain.name})")
    batch = inference_batch_size(data.train.image_size, most=64)
    run.features = {name: run.domain(images, batch_size=batch) for name, images in run.sets.items()}


def _measure(run: _Evaluation) -> None:
    """Quality rows per extractor, diversity and similarity to the nearest real training image."""
    from ragan.evaluation import quality
    from ragan.evaluation.floors import feature_floors

    options = run.options
    rows = quality.quality_rows(run.domain, run.sets, options.kid_subsets, options.seed, features=run.features)
    floors = [
        dict(row, extractor=run.domain.name)
        for row in feature_floors(
            run.features["real train"], run.features["synthetic"], kid_subsets=options.kid_subsets, seed=options.seed
        )
    ]
    notes = [
        f"domain extractor: penultimate layer of the {options.classifier} trained on the real training split "
        f"(seed {options.seed}), saved as {DOMAIN_MODEL_FILE}; its features are only comparable with reports "
        "using the same file (same weights_md5).",
    ]
    if run.inception is not None:
        logger.info(f"features ({run.inception.name})")
        if run.data.train.resized and not run.inception.resize.startswith("area"):
            run.inception.resize = f"{_eval_resize(run.data.train)}; then {run.inception.resize}"
        inception = {name: run.inception(images) for name, images in run.sets.items()}
        rows += quality.quality_rows(run.inception, run.sets, options.kid_subsets, options.seed, features=inception)
        floors += [
            dict(row, extractor=run.inception.name)
            for row in feature_floors(
                inception["real train"], inception["synthetic"], kid_subsets=options.kid_subsets, seed=options.seed
            )
        ]
        notes.append(
            "Inception: the Keras ImageNet InceptionV3 (pool3, 2048-d); not the TF-1 graph of pytorch-fid/TTUR, "
            "so its FIDs are comparable with other ragan reports only."
        )
    else:
        notes.append(
            "No ImageNet-Inception FID: pass inception_weights (--inception-weights FILE) with a local copy of "
            "Keras' inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 to add it."
        )
    notes.append(
        "Floors: each metric again at equal sizes, the synthetic images and, in their place, real training images "
        "the reference set does not hold, both against the same random part of the real training images; the "
        "ratio is synthetic / real (none where the real value is at or below zero, for a KID at or below zero, "
        "or a real KID within two of its standard deviations of zero)."
    )
    run.quality = {"reference_set": "real train", "rows": rows, "floors": floors, "notes": notes}
    logger.info("diversity (pairwise MS-SSIM)")
    run.diversity = quality.diversity(run.sets, options.diversity_pairs, options.seed)
    if run.diversity.get("skipped"):
        logger.info(f"note: {run.diversity['skipped']}")
    logger.info("similarity to the nearest real training image (PSNR, SSIM, MS-GMSD, MDSI, HaarPSI)")
    sets = {name: run.units(name) for name in ("synthetic", "real test")}
    run.similarity = quality.similarity_table(sets, run.units("train"), options.seed)


def _audit_memorisation(run: _Evaluation) -> None:
    """The memorisation audit against every training image, and the gallery of its closest pairs."""
    from ragan.evaluation.full_resolution import confirm_ssim
    from ragan.evaluation.memorisation import memorisation_audit

    logger.info("memorisation audit")
    # Against every training image, not the metrics' subsample: a copy of an image left out
    # of the subsample must be found too. The synthetic queries may stay subsampled.
    train, train_features = run.split("train")
    audit = memorisation_audit(
        train,
        run.sets["synthetic"],
        run.sets["real test"],
        features=(train_features, run.features["synthetic"], run.features["real test"]),
        feature_name=run.domain.name,
        value_range=(-1.0, 1.0),
    )
    synthetic_units, train_units = run.units("synthetic"), run.units("train")
    if run.data.train.resized:
        logger.info(f"memorisation audit: confirming at full resolution ({run.data.train.full_size} px)")
        confirm_ssim(audit, synthetic_units, run.units("real test"), train_units)
    run.memorisation = audit.to_dict()
    # The pictures are drawn when the report is written (they need its folder).
    run.gallery = [
        dict(
            pair,
            synthetic_pixels=synthetic_units.full_pixels([pair["synthetic_index"]])[0],
            train_pixels=train_units.full_pixels([pair["train_index"]])[0],
            synthetic_record=int(run.indices["synthetic"][pair["synthetic_index"]]),
        )
        for pair in audit.closest_pairs(GALLERY_PAIRS)
    ]


def _audit_privacy(run: _Evaluation) -> None:
    """The membership-inference audit: every training image against every held-out test image."""
    from ragan.evaluation.privacy_audit import discriminator_scores_of_run, privacy_audit

    logger.info("privacy audit (membership inference)")
    data = run.data
    train, train_features = run.split("train")
    test, test_features = run.split("test")
    unseen = len(data.val) >= MIN_IMAGES
    notes = [
        f"members: all {len(train)} real training images; non-members: all {len(test)} held-out real test images; "
        f"synthetic: {len(run.sets['synthetic'])} images"
        + (f"; floors: the {len(data.val)} real validation images, which the GAN never saw" if unseen else "")
    ]
    spaces = {}
    for space, members, nonmembers, synthetic, val in (
        ("domain features", train_features, test_features, run.features["synthetic"], 1),
        ("pixels", train, test, run.sets["synthetic"], 0),
    ):
        spaces[space] = {"train": members, "held_out": nonmembers, "synthetic": synthetic}
        if unseen:
            spaces[space]["unseen"] = run.split("val")[val]
    discriminators = {}
    if run.options.generator_run is not None:
        # The discriminator takes the images at the GAN's size: at full resolution, read a group at a time.
        full = data.train.resized
        discriminators, found_notes = discriminator_scores_of_run(
            run.options.generator_run,
            run.units("train") if full else train,
            data.train.labels,
            run.units("test") if full else test,
            data.test.labels,
            data.class_names,
            seed=run.options.seed,
            unseen=(run.units("val") if full else run.split("val")[0]) if unseen else None,
            unseen_labels=data.val.labels if unseen else None,
        )
        notes += found_notes
    else:
        notes.append("white-box attack not run: pass the generator's training run (--run) to attack its discriminator")
    run.privacy = privacy_audit(
        spaces,
        data.train.labels,
        data.test.labels,
        data.class_names,
        unseen_labels=data.val.labels if unseen else None,
        discriminators=discriminators,
        notes=notes,
        seed=run.options.seed,
    )
    for sentence in run.privacy["sentences"]:
        logger.info(sentence)


def _per_class_table(run: _Evaluation) -> None:
    """Per class: precision/recall, the synthetic-only classifier's AUC and the membership AUCs."""
    from ragan.evaluation.floors import PR_K
    from ragan.evaluation.metrics import precision_recall_from_features

    names = run.data.class_names
    notes = []
    rows = []
    synthetic_labels = run.labels.get("synthetic")
    if synthetic_labels is None:
        notes.append("precision/recall per class skipped: the synthetic set is unlabelled (see --synthetic-class)")
    arms = {arm.name: arm for arm in run.study.arms} if run.study is not None else {}
    privacy = {row["class"]: row for row in (run.privacy or {}).get("per_class", [])}
    for index, name in enumerate(names):
        row = {"class": name, "num_real": int(np.sum(run.labels["real train"] == index))}
        if synthetic_labels is not None:
            real = run.features["real train"][run.labels["real train"] == index]
            synthetic = run.features["synthetic"][synthetic_labels == index]
            row["num_synthetic"] = int(len(synthetic))
            if min(len(real), len(synthetic)) > PR_K:
                row.update(precision_recall_from_features(real, synthetic, k=PR_K))
        for arm_name, key in (("synthetic_only", "tstr_auc"), ("real", "real_auc")):
            if arm_name in arms:
                values = [
                    run_["metrics"]["auc_per_class"].get(name)
                    for run_ in arms[arm_name].runs
                    if run_["metrics"].get("auc_per_class")
                ]
                values = [v for v in values if v is not None]
                row[key] = float(np.mean(values)) if values else None
        if name in privacy:
            row["membership"] = privacy[name].get("attacks", {})
            row["num_members"] = privacy[name]["num_members"]
            row["num_nonmembers"] = privacy[name]["num_nonmembers"]
        rows.append(row)
    if "synthetic_only" not in arms:
        notes.append("train-on-synthetic AUC per class: the study's synthetic-only arm was not run")
    if len(names) == 2:
        notes.append("with two classes each class's one-vs-rest AUC is the same number")
    run.per_class = {"rows": rows, "notes": notes}


def _eval_resize(split) -> str:
    """How the evaluation-size copies were made, for the report."""
    return f"area {split.full_size}x{split.full_size} -> {split.image_size}x{split.image_size} (tf.image.resize, once)"


def _resolution(run: _Evaluation) -> dict:
    """``report.json``'s ``resolution``: the images' size, the evaluation size and what runs at which."""

    def listed(items):
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    train = run.data.train
    size, eval_size = train.full_size or train.image_size, train.image_size
    at_eval = [
        "classifier study" if run.study is not None else "domain classifier",
        "feature extractors (FID, KID, precision/recall)",
        "MS-SSIM diversity",
    ]
    at_full = ["sample grids", "similarity table's scores"]
    if run.memorisation is not None:
        at_eval.append("memorisation searches")
        at_full.append("memorisation audit's SSIM confirmation and gallery")
    if run.privacy is not None:
        at_eval.append("black-box membership attacks")
        if run.options.generator_run is not None:
            at_full.append("discriminator's (white-box) membership attack")
    resolution = {
        "image_size": size,
        "eval_size": eval_size,
        "resize": _eval_resize(train) if train.resized else "none",
        "at_eval_size": at_eval,
        "at_full_resolution": at_full,
    }
    if train.resized:
        resolution["sentence"] = (
            f"Images are {size}x{size}. The {listed(at_eval)} ran at {eval_size}x{eval_size} (--eval-size) on "
            f"area-resized copies made once; the {listed(at_full)} use the images at full resolution "
            f"({size}x{size}), shown as thumbnails linked to the full-size files in images/."
        )
    else:
        resolution["sentence"] = f"Images are {size}x{size}; everything ran at that size (--eval-size {eval_size})."
    return resolution


def _report_data(run: _Evaluation) -> dict:
    """The content of ``report.json``."""
    from ragan.evaluation.verdict import plain_verdict, summary_lines

    described = run.data.describe()
    study = run.study.to_dict() if run.study is not None else None
    report = {
        "format": "ragan-evaluation-report",
        "ragan_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
        "real": {"path": str(run.real), **{k: v for k, v in described.items() if k != "synthetic"}},
        "synthetic": {"path": str(run.synthetic), **described["synthetic"]},
        "generator_run": run.options.generator_run,
        "settings": run.options.settings(),
        "quality": run.quality,
        "diversity": run.diversity,
        "resolution": _resolution(run),
        "similarity": run.similarity,
        "memorisation": run.memorisation,
        "privacy": run.privacy,
        "per_class": run.per_class,
        "study": study,
        "files": {
            "html": REPORT_HTML,
            "domain_classifier": DOMAIN_MODEL_FILE,
            **({"study": "study.json"} if study else {}),
        },
    }
    report = json_ready(report)
    report["verdict"] = plain_verdict(report)
    report["summary"] = summary_lines(report)
    return report


def _render(run: _Evaluation, report: dict, folder: Path) -> str:
    """``report.html``: sample grids, the study's plots and the memorisation gallery around the data.

    The pictures are full-resolution images: above the thumbnail size, thumbnails in the page linked to
    full-size PNG files in ``folder/images``.
    """
    from ragan.evaluation.render import ImageFiles, arm_plot_svg, gallery_pair, grid_rows, render_html

    data = run.data
    rng = np.random.default_rng(run.options.seed)
    files = ImageFiles(folder)
    grids = {}
    for key, split, labels, prefix in (
        ("real", data.train, data.train.labels, "real-train"),
        ("synthetic", data.synthetic, data.synthetic_labels, "synthetic"),
    ):
        grids[key] = grid_rows(
            labels, data.class_names, rng, split.full_images, count=len(split), files=files, prefix=prefix
        )
    visuals = {"grids": grids, "gallery": [gallery_pair(pair, files) for pair in run.gallery], "plots": {}}
    if report["study"] is not None:
        visuals["plots"] = {
            "auc": arm_plot_svg(report["study"], "auc", title="Test ROC AUC per arm (mean ± std over seeds)"),
            "accuracy": arm_plot_svg(
                report["study"], "accuracy", title="Test accuracy per arm (mean ± std over seeds)"
            ),
        }
    return render_html(report, visuals)


def _write(run: _Evaluation, folder: Path) -> dict:
    """``report.json`` and ``report.html`` into ``folder``; returns the report's data."""
    logger.info("writing the report")
    report = _report_data(run)
    (folder / REPORT_JSON).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    (folder / REPORT_HTML).write_text(_render(run, report, folder), encoding="utf-8")
    return report


def _run_steps(real, synthetic, options: EvaluateConfig, out: Path) -> tuple[_Evaluation, dict]:
    """Load, then the steps, into a partial folder published as ``out`` when complete.

    From :data:`TRAIN_IN_CHILD_MIN_SIZE` px up the classifiers train in a child process that reads
    the datasets itself; this process reads them afterwards and starts the later stages without
    TensorFlow's training memory (see :mod:`ragan._child`).
    """
    from ragan._child import run_in_child

    in_child = _trains_in_child(real, options)
    run = None if in_child else _load(real, synthetic, options)
    # One evaluate at a time into `out`: a second one stops instead of deleting this one's work.
    with build_then_publish(out.parent / f".{out.name}.ragan-partial", out, "evaluate") as partial:
        if in_child:
            what = "the classifier study" if options.study else "the domain classifier's training"
            study = run_in_child(_train_in_child, real, synthetic, options, partial, what=what)
            run = _load(real, synthetic, options, announce=False)
            _adopt_trained(run, study, partial)
        else:
            _run_study(run, partial)
        _extract_features(run)
        _measure(run)
        if run.options.memorisation:
            _audit_memorisation(run)
        if run.options.privacy:
            _audit_privacy(run)
        _per_class_table(run)
        report = _write(run, partial)
    return run, report


# ---------------------------------------------------------------------------------------------
# The stage


@takes_options(EvaluateConfig)
def evaluate(real, synthetic, *, out, config=None, progress: bool = True, **options) -> EvaluationReport:
    """Evaluate synthetic images against real ones and write ``report.json`` and ``report.html``.

    Args:
        real: The real prepared dataset (labelled, with ``train``, ``val`` and ``test`` splits).
        synthetic: The synthetic prepared dataset (e.g. ``ragan generate --format tfrecord``).
        out: Output directory; it appears atomically.
        config: The options as an :class:`~ragan.evaluation.config.EvaluateConfig`, a dict or a
            YAML/JSON file; keyword options win over it.
        progress: ``False``: warnings only, no progress messages or bars (see :mod:`ragan._logging`).

    Returns:
        An :class:`EvaluationReport`.

    Raises:
        RaganError: for incompatible datasets (image size, channels, class names), empty sets or
            fewer than 10 images in the real train or test split or the synthetic set, invalid
            options, missing or unloadable Inception weights, or an existing ``out``; all before
            the classifier study starts.

    Example (needs prepared datasets and trains classifiers, hence skipped):
        >>> report = ragan.evaluate("prepared", "synthetic", out="report", seeds=(0, 1, 2))   # doctest: +SKIP
        >>> report.html_path                                                                 # doctest: +SKIP
        PosixPath('report/report.html')
    """
    options = EvaluateConfig.resolve(config, options).quick_applied()
    if "inception" in options.extractors:
        _check_inception_file(options.inception_weights)
    out = Path(out)
    _check_output(out, real, synthetic, options.overwrite)
    generator_run = options.generator_run
    mlflow_target = _mlflow_target(generator_run, options.tracking_uri) if generator_run is not None else None
    with stage_output(progress):
        run, report = _run_steps(real, synthetic, options, out)
        mlflow_result = None
        if mlflow_target is not None:
            for line in describe_mlflow_target(mlflow_target):  # always: where patient image grids go
                logger.warning(line)
            files = [out / REPORT_JSON, out / REPORT_HTML] + ([out / IMAGES_DIR] if (out / IMAGES_DIR).is_dir() else [])
            mlflow_result = _log_to_mlflow(mlflow_target, files, _headline_metrics(report))
    return EvaluationReport(out=out, data=report, summary=report["summary"], study=run.study, mlflow=mlflow_result)
