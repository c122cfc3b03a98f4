"""The objective a study minimises: a quality metric of a trial's generator on held-out real images.

Each trial's EMA generator makes as many images as the held-out real set holds (at most
``max_images``), from a fixed seed and, for a conditional GAN, with the real set's labels; the
metric compares them with the real held-out images (split ``val``, or ``test`` when there is no
``val``), never with the training images the GAN saw.

Metrics:

* ``"kid"`` (default): Kernel Inception Distance, unbiased, so it is comparable between small sets;
* ``"fid"``: Fréchet distance (biased upwards for small sets);
* a function ``f(real, fake) -> float`` of two float arrays in ``[-1, 1]`` shaped
  ``(N, H, W, C)``, or its import path ``"package.module:function"`` (what the CLI and
  distributed workers use). Lower must be better.

Feature extractors (KID/FID are distances between features, so results name theirs):

* ``"domain"``: the penultimate layer of a small CNN classifier trained once per study on the real
  ``train`` split (labelled data with at least 2 classes); needs no download;
* ``"pixels"``: the images themselves, area-downsampled to at most 32x32 (for unlabelled data);
* ``"inception"``: ImageNet InceptionV3 (``inception_weights`` = a local weights file, or
  ``"imagenet"`` to download);
* ``"auto"`` (default): ``domain`` for labelled data, else ``pixels``.

Everything computed once (the classifier, the real features, a description) is cached in the
study's ``objective/`` folder, so a resumed study and distributed workers use the very same
extractor.

Example (skipped: it needs a prepared dataset and a trained generator's run folder):
    >>> objective = prepare_objective("prepared", "study/objective", metric="kid")   # doctest: +SKIP
    >>> objective.evaluate(ragan.load_generator("study/trials/00"))                   # doctest: +SKIP
    {'metric': 'kid', 'value': 0.0123, 'std': 0.002, 'extractor': 'ragan_domain_small_cnn:...', ...}
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragan._common import check_positive_int, first_line, read_json
from ragan._logging import stage_output
from ragan.errors import RaganError, check_choice, did_you_mean

logger = logging.getLogger(__name__)

__all__ = [
    "EXTRACTORS",
    "HELD_OUT_SPLITS",
    "METRICS",
    "StudyObjective",
    "describe_metric",
    "held_out_split",
    "load_objective",
    "metric_identity",
    "metric_name",
    "pixel_extractor",
    "prepare_objective",
    "resolve_metric",
]

METRICS = ("kid", "fid")
EXTRACTORS = ("auto", "domain", "pixels", "inception")
HELD_OUT_SPLITS = ("val", "test")
DESCRIPTION_FILE = "objective.json"
CLASSIFIER_FILE = "domain_classifier.keras"
FEATURES_FILE = "real_features.npz"
PIXEL_FEATURE_SIZE = 32
# Offset of the objective's generation seed from the study seed: never the training noise.
GENERATION_SEED_OFFSET = 104_729
KID_SUBSETS = 100
# The domain classifier reads at most this many training images.
CLASSIFIER_MAX_IMAGES = 20_000


# --------------------------------------------------------------------------------------------
# Metric and data choices
# --------------------------------------------------------------------------------------------
def resolve_metric(metric) -> tuple[str, str | Callable]:
    """``(name, metric)``: ``"kid"``/``"fid"``, a callable, or a ``"module:function"`` import path.

    The name is what the tuner reports (``kid``, ``fid``, or the function's name).

    Example:
        >>> resolve_metric("kid")
        ('kid', 'kid')
        >>> resolve_metric("numpy:mean")[0]
        'mean'
    """
    if callable(metric):
        return metric_name(metric), metric
    if not isinstance(metric, str):
        raise RaganError(f"objective={metric!r} must be 'kid', 'fid', a function f(real, fake) or 'module:function'.")
    if ":" in metric:
        module_name, _, attribute = metric.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise RaganError(
                f"objective={metric!r}: cannot import module {module_name!r} ({first_line(error)})."
            ) from None
        function = getattr(module, attribute, None)
        if not callable(function):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise RaganError(
                f"objective={metric!r}: {module_name} has no function {attribute!r}.{did_you_mean(attribute, names)}"
            )
        return metric_name(function), function
    check_choice("objective", metric, METRICS)
    return metric, metric


def metric_name(function: Callable) -> str:
    """A metric name for MLflow and KerasTuner from a function's name (letters, digits, ``_``)."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", getattr(function, "__name__", "") or "").strip("_")
    return name if name and name != "lambda" else "objective"


def metric_identity(metric) -> str:
    """How a metric is recorded (``objective.json``, ``study.json``): compared when a study resumes.

    Example:
        >>> metric_identity("kid")
        'kid'
    """
    if isinstance(metric, str):
        return metric
    module = getattr(metric, "__module__", "?")
    return f"function {module}:{getattr(metric, '__qualname__', metric_name(metric))}"


def held_out_split(manifest, data) -> str:
    """The split the objective compares against: ``val``, else ``test``."""
    for split in HELD_OUT_SPLITS:
        if split in manifest.splits and manifest.splits[split].num_examples > 0:
            return split
    available = ", ".join(repr(s) for s in manifest.splits) or "none"
    raise RaganError(
        f"data '{data}' has no held-out split for the objective (needs 'val' or 'test'; it has {available}); "
        "prepare it with a validation or test fraction (ragan prepare --val-fraction ...)."
    )


# --------------------------------------------------------------------------------------------
# Feature extractors
# --------------------------------------------------------------------------------------------
def pixel_extractor(image_size: int, channels: int, *, max_size: int = PIXEL_FEATURE_SIZE):
    """Pixel features: images area-downsampled to at most ``max_size`` square, flattened.

    Needs no training and no download, so it works for unlabelled data; it measures closeness
    in pixel space, which is cruder than a learned feature space.

    Example:
        >>> extractor = pixel_extractor(64, 1)
        >>> extractor.name, extractor.feature_dim
        ('pixels_32x32', 1024)
    """
    from ragan._tf import import_keras, import_tf
    from ragan.evaluation.features import FeatureExtractor

    keras, tf = import_keras(), import_tf()
    size = min(int(image_size), int(max_size))
    model = keras.Sequential([keras.Input((size, size, channels)), keras.layers.Flatten()], name="pixels")

    def preprocess(batch):
        if batch.shape[1] != size:
            batch = tf.image.resize(batch, (size, size), method="area")
        return batch

    resize = "none" if size == image_size else f"area {image_size}x{image_size} -> {size}x{size}"
    return FeatureExtractor(
        name=f"pixels_{size}x{size}", resize=resize, model=model, preprocess=preprocess, accepted_channels=(channels,)
    )


def _weights_digest(model) -> str:
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------------------------
@dataclass
class StudyObjective:
    """The study's objective: evaluates a trained GAN against the held-out real images.

    Build it with :func:`prepare_objective` (first time) or :func:`load_objective` (workers,
    resumed studies).

    Attributes:
        name: the reported metric name (``"kid"``, ``"fid"`` or the function's name).
        metric: ``"kid"``, ``"fid"`` or the user's function.
        extractor: the feature extractor (``None`` for a user function, which gets images).
        extractor_name: the extractor's name as recorded in the results.
        split: the held-out split compared against.
        real_features: ``(N, D)`` features of the held-out real images (KID/FID).
        real_images: the held-out images in ``[-1, 1]`` (user functions only).
        real_labels: their class indices (used as the labels of a conditional generator).
        seed: seed of the generated images (the same for every trial).
        description: what ``objective.json`` holds.
    """

    name: str
    metric: Any
    extractor: Any
    extractor_name: str
    split: str
    real_labels: np.ndarray
    seed: int
    real_features: np.ndarray | None = None
    real_images: np.ndarray | None = None
    description: dict = field(default_factory=dict)

    @property
    def num_real(self) -> int:
        return int(self.real_labels.shape[0])

    def evaluate(self, gan) -> dict:
        """Generate images with ``gan`` and compute the metric; returns a JSON-ready dict.

        Raises:
            RaganError: the generator produced non-finite images, or the metric is not finite.
        """
        from ragan.evaluation.metrics import fid_from_features, kid_from_features, kid_subset_size

        labels = None
        if getattr(gan, "conditional", False):
            labels = self.real_labels if self.real_labels.min(initial=0) >= 0 else None
        fake = gan.generate(self.num_real, labels=labels, seed=self.seed)
        if not np.isfinite(fake).all():
            raise RaganError("the generator produced NaN/inf images; the trial has diverged.")
        std = None
        if callable(self.metric):
            value = float(self.metric(self.real_images, fake))
        else:
            fake_features = self.extractor(fake)
            if self.metric == "kid":
                size = kid_subset_size(self.real_features.shape[0], fake_features.shape[0])
                value, std = kid_from_features(
                    self.real_features, fake_features, num_subsets=KID_SUBSETS, subset_size=size, seed=self.seed
                )
            else:
                value = fid_from_features(self.real_features, fake_features)
        if not np.isfinite(value):
            raise RaganError(f"the objective {self.name} is not finite ({value}).")
        return {
            "metric": self.name,
            "value": float(value),
            "std": None if std is None else float(std),
            "extractor": self.extractor_name,
            "split": self.split,
            "num_real": self.num_real,
            "num_generated": int(fake.shape[0]),
            "seed": self.seed,
        }


def _settings(
    data, metric, extractor: str, max_images: int, classifier_epochs: int, seed: int, inception_weights
) -> dict:
    return {
        "metric": metric_identity(metric),
        "extractor_kind": extractor,
        "data": str(Path(data).resolve()),
        "max_images": int(max_images),
        "classifier_epochs": int(classifier_epochs),
        "seed": int(seed),
        "inception_weights": None if inception_weights is None else str(inception_weights),
    }


def prepare_objective(
    data,
    directory,
    *,
    metric="kid",
    extractor: str = "auto",
    max_images: int = 1000,
    classifier_epochs: int = 10,
    inception_weights=None,
    seed: int = 0,
    progress: bool = True,
) -> StudyObjective:
    """Build (or reuse from ``directory``) the study's objective.

    Args:
        data: the prepared real dataset (its ``val`` or ``test`` split is the reference).
        directory: the cache folder (``<study>/objective``); reused when its settings match.
        metric: ``"kid"``, ``"fid"``, a function ``f(real, fake) -> float`` or ``"module:function"``.
        extractor: ``"auto"``, ``"domain"``, ``"pixels"`` or ``"inception"`` (KID/FID only).
        max_images: at most this many held-out real images (a random subset) and as many generated.
        classifier_epochs: epochs of the domain classifier.
        inception_weights: weights of the ``"inception"`` extractor (local file or ``"imagenet"``).
        seed: seed of the subset, the classifier and the generated images.
        progress: ``False``: warnings only (see :mod:`ragan._logging`).

    Returns:
        A :class:`StudyObjective`.

    Example (skipped: it reads a prepared dataset and trains the domain classifier):
        >>> objective = prepare_objective("prepared", "study/objective", extractor="domain")   # doctest: +SKIP
        >>> objective.extractor_name                                                          # doctest: +SKIP
        'ragan_domain_small_cnn:3f9a0c1e22b4'
    """
    from ragan.data.manifest import read_manifest

    name, metric = resolve_metric(metric)
    check_choice("extractor", extractor, EXTRACTORS)
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 2:
        raise RaganError(f"objective_images={max_images!r} must be an integer >= 2.")
    check_positive_int("classifier_epochs", classifier_epochs)
    manifest = read_manifest(data)
    split = held_out_split(manifest, data)
    extractor = _resolve_extractor(extractor, metric, manifest, data)
    directory = Path(directory)
    settings = _settings(data, metric, extractor, max_images, classifier_epochs, seed, inception_weights)
    if _cache_matches(directory, settings):
        return load_objective(directory, metric)
    with stage_output(progress):
        partial = directory.parent / f".{directory.name}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        started = time.perf_counter()
        real, labels = _held_out_images(data, split, max_images, seed)
        description = {
            "format": "ragan-tune-objective",
            "format_version": 1,
            "settings": settings,
            "metric": name,
            "split": split,
            "num_real": int(real.shape[0]),
        }
        if extractor == "domain":
            logger.info(
                f"objective: training the domain classifier (small_cnn, {classifier_epochs} epochs) on '{data}'"
            )
            description["classifier"] = _save_domain_classifier(partial, data, manifest, classifier_epochs, seed)
        _save_real_features(partial, description, extractor, manifest, inception_weights, real, labels)
        description["seconds"] = round(time.perf_counter() - started, 3)
        (partial / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, directory)
        logger.info(
            f"objective: {name} on {real.shape[0]} '{split}' images, features {description['extractor']['name']}"
        )
        return load_objective(directory, metric)


def _resolve_extractor(extractor: str, metric, manifest, data) -> str:
    """``auto`` made concrete (``domain`` for labelled data, else ``pixels``; ``none`` for a user function)."""
    labelled = manifest.labelled and manifest.num_classes >= 2
    if extractor == "auto":
        extractor = "domain" if labelled else "pixels"
    if callable(metric):
        extractor = "none"
    if extractor == "domain" and not labelled:
        raise RaganError(
            f"extractor='domain' trains a classifier on the real labels, but '{data}' is "
            f"{'unlabelled' if not manifest.labelled else 'labelled with one class'}; use extractor='pixels' "
            "(or 'inception' with local weights)."
        )
    return extractor


def _cache_matches(directory: Path, settings: dict) -> bool:
    """Whether ``directory`` holds an objective prepared with ``settings``; a stale one is removed."""
    described = directory / DESCRIPTION_FILE
    if not described.is_file():
        return False
    try:
        cached = read_json(described)
    except RaganError:
        cached = {}  # a torn cache: prepared again
    if cached.get("settings") == settings:
        return True
    shutil.rmtree(directory)
    return False


def _save_domain_classifier(partial: Path, data, manifest, classifier_epochs: int, seed: int) -> dict:
    """Train the domain classifier on the real ``train`` split, save it in ``partial``; return its description."""
    model = _train_domain_classifier(data, manifest, classifier_epochs, seed)
    model.save(partial / CLASSIFIER_FILE)
    return {
        "kind": "small_cnn",
        "file": CLASSIFIER_FILE,
        "epochs": classifier_epochs,
        "seed": seed,
        "trained_on": "train",
        "weights_sha256": _weights_digest(model),
    }


def _save_real_features(partial: Path, description: dict, extractor, manifest, inception_weights, real, labels):
    """Save the held-out images' features (or only their labels, for a user function) in ``partial``."""
    extractor_object = _build_extractor(extractor, partial, description, manifest, inception_weights)
    if extractor_object is not None:
        np.savez(partial / FEATURES_FILE, features=extractor_object(real), labels=labels)
        description["extractor"] = extractor_object.describe()
    else:
        np.savez(partial / FEATURES_FILE, labels=labels)
        description["extractor"] = {"name": "none (user function of the images)"}


def load_objective(directory, metric=None) -> StudyObjective:
    """The objective cached in ``directory`` by :func:`prepare_objective`.

    Args:
        directory: the study's ``objective/`` folder.
        metric: for a user function, the function itself (or its import path); ``None`` resolves
            the recorded ``"kid"``/``"fid"`` or import path.

    Example (skipped: it needs the ``objective/`` folder of a study):
        >>> objective = load_objective("study/objective")      # doctest: +SKIP
    """
    directory = Path(directory)
    described = directory / DESCRIPTION_FILE
    if not described.is_file():
        raise RaganError(
            f"'{directory}' holds no prepared objective ({DESCRIPTION_FILE} missing); a distributed worker "
            "needs the chief to start first (it prepares the objective)."
        )
    description = read_json(described)
    settings = description["settings"]
    if metric is None:
        recorded = settings["metric"]
        if recorded.startswith("function "):
            metric = recorded[len("function ") :]
        else:
            metric = recorded
    name, metric = resolve_metric(metric)
    from ragan.data.manifest import read_manifest

    manifest = read_manifest(settings["data"])
    with np.load(directory / FEATURES_FILE) as cached:
        labels = cached["labels"]
        features = cached["features"] if "features" in cached.files else None
    extractor = _build_extractor(
        settings["extractor_kind"], directory, description, manifest, settings["inception_weights"]
    )
    real_images = None
    if callable(metric):
        real_images, _ = _held_out_images(
            settings["data"], description["split"], settings["max_images"], settings["seed"]
        )
    return StudyObjective(
        name=name,
        metric=metric,
        extractor=extractor,
        extractor_name=description["extractor"]["name"],
        split=description["split"],
        real_labels=labels,
        seed=int(settings["seed"]) + GENERATION_SEED_OFFSET,
        real_features=features,
        real_images=real_images,
        description=description,
    )


def _held_out_images(data, split: str, max_images: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random subset of at most ``max_images`` held-out images in ``[-1, 1]``, with labels."""
    from ragan.data.arrays import read_split

    arrays = read_split(data, split)
    if len(arrays) < 2:
        raise RaganError(f"split {split!r} of '{data}' holds {len(arrays)} image(s); the objective needs at least 2.")
    index = np.arange(len(arrays))
    if len(arrays) > max_images:
        index = np.sort(np.random.default_rng(seed).choice(len(arrays), size=max_images, replace=False))
    return arrays.unit_range()[index], arrays.labels[index]


def _train_domain_classifier(data, manifest, epochs: int, seed: int):
    from ragan._tf import import_keras
    from ragan.data.arrays import read_split
    from ragan.evaluation.classifier import build_classifier, train_classifier

    train = read_split(data, "train", limit=CLASSIFIER_MAX_IMAGES)
    import_keras().utils.set_random_seed(seed)
    model = build_classifier(
        "small_cnn", image_size=manifest.image_size, channels=manifest.channels, num_classes=manifest.num_classes
    )
    return train_classifier((train.images, train.labels), None, model=model, epochs=epochs, seed=seed).model


def _build_extractor(kind: str, directory: Path, description: dict, manifest, inception_weights):
    from ragan.evaluation.features import inception_extractor, model_extractor

    if kind == "none":
        return None
    if kind == "pixels":
        return pixel_extractor(manifest.image_size, manifest.channels)
    if kind == "domain":
        digest = description["classifier"]["weights_sha256"]
        return model_extractor(str(directory / CLASSIFIER_FILE), name=f"ragan_domain_small_cnn:{digest}")
    return inception_extractor(inception_weights if inception_weights is not None else "imagenet")


def describe_metric(objective: StudyObjective) -> str:
    """``"kid (ragan_domain_small_cnn:3f9a..., 'val' split, 200 images)"`` for summaries."""
    return f"{objective.name} ({objective.extractor_name}, {objective.split!r} split, {objective.num_real} images)"
