"""The classifier protocol: build, train and test an image classifier on prepared data.

The classifier answers the question the whole project exists for: does adding synthetic images
to the real training set make a classifier better on held-out *real* images? It is also the
domain feature extractor of the report (its penultimate layer), which needs no download.

Two families are offered:

* ``"small_cnn"``: a plain VGG-style CNN (conv-BN-ReLU pairs, max-pooling down to about 7x7,
  global average pooling, a 128-unit layer; from 32 px up a stride-2 convolution replaces the
  full-size stage). It trains in seconds per epoch on a CPU at 28-64 px and is the default of the
  study and of the report.
* ``"efficientnet_b0"`` ... ``"efficientnet_b3"``, ``"efficientnetv2_b0"`` ... ``"efficientnetv2_b3"``,
  ``"efficientnetv2_s"``: ``keras.applications`` EfficientNets, trained from scratch or started from
  ImageNet weights (a local weights file; ``"imagenet"`` downloads them when online).

Every model takes images in ``[-1, 1]`` (what :func:`ragan.load_dataset` yields), with the
dataset's own size and channel count, and outputs one logit per class; the last layer is a
``Dense`` named ``"logits"`` so the layer before it is the feature layer.

Example (needs a prepared dataset on disk and 20 epochs of training, hence skipped; the functions'
own examples run on tiny arrays):
    >>> import ragan
    >>> from ragan.evaluation.classifier import build_classifier, train_classifier, evaluate_classifier
    >>> train = ragan.load_dataset("prepared", "train", batch_size=64)            # doctest: +SKIP
    >>> val = ragan.load_dataset("prepared", "val", batch_size=256, shuffle=False)  # doctest: +SKIP
    >>> model = build_classifier("small_cnn", image_size=28, channels=1, num_classes=2)  # doctest: +SKIP
    >>> result = train_classifier(train, val, model=model, epochs=20, augmentation="standard")  # doctest: +SKIP
    >>> test = ragan.load_dataset("prepared", "test", shuffle=False)  # doctest: +SKIP
    >>> evaluate_classifier(result.model, test)["auc"]  # doctest: +SKIP
    0.95
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragan._common import check_positive_int, first_line
from ragan._tf_internals import set_random_seed
from ragan.data.pipeline import no_autotune_thread
from ragan.errors import RaganError, check_choice, did_you_mean
from ragan.evaluation.classifier_metrics import classification_metrics, roc_auc, roc_auc_one_vs_rest

__all__ = [
    "CLASSIFIER_KINDS",
    "CLASSIFIER_VERSION",
    "AUGMENTATIONS",
    "EFFICIENTNET_MIN_SIZE",
    "build_classifier",
    "standard_augmentation",
    "array_dataset",
    "train_classifier",
    "compile_classifier",
    "TrainingResult",
    "predict_probabilities",
    "evaluate_classifier",
    "classification_metrics",
    "roc_auc",
    "roc_auc_one_vs_rest",
    "balanced_class_weights",
    "classifier_input_resize",
]

# keras.applications constructor per kind.
_EFFICIENTNETS = {
    "efficientnet_b0": "EfficientNetB0",
    "efficientnet_b1": "EfficientNetB1",
    "efficientnet_b2": "EfficientNetB2",
    "efficientnet_b3": "EfficientNetB3",
    "efficientnetv2_b0": "EfficientNetV2B0",
    "efficientnetv2_b1": "EfficientNetV2B1",
    "efficientnetv2_b2": "EfficientNetV2B2",
    "efficientnetv2_b3": "EfficientNetV2B3",
    "efficientnetv2_s": "EfficientNetV2S",
}
CLASSIFIER_KINDS = ("small_cnn", *_EFFICIENTNETS)
AUGMENTATIONS = ("none", "standard")

# EfficientNets halve the resolution five times (total stride 32); below 32 px the last stages
# would work on sub-pixel maps that Keras pads to 1x1. Smaller images (e.g. 28 px MedMNIST) are
# therefore upsampled bilinearly inside the model to this size. Larger sizes stay as they are.
EFFICIENTNET_MIN_SIZE = 32
# ImageNet channel standard deviations: Keras' EfficientNet (V1) adds a Rescaling by
# 1/sqrt(std) only when built with weights="imagenet" (tensorflow/tensorflow#49930).
_IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
# The small CNN stops pooling at about this spatial size.
_SMALL_CNN_FINAL_SIZE = 7
# Filters of the first stage, doubled per stage up to the cap. Each stage costs about the same
# (a quarter of the pixels, twice the filters in and out); at 16/128 a 32 px image takes 13 M
# multiply-adds instead of 52 M at 32/256, with the same test AUC on PneumoniaMNIST
# (benchmarks/classifier_baseline.py, benchmarks/classifier_study.py).
_SMALL_CNN_FIRST_FILTERS = 16
_SMALL_CNN_MAX_FILTERS = 128
# From this input size up, the small CNN starts with a stem: one stride-2 convolution (16 filters)
# instead of the full-size stage (two convolutions, then pooling), the later stages unchanged. At
# 32 px a training step costs 1.35-2x less (timed interleaved on 2 loaded cores) and the full
# PneumoniaMNIST resized to 32 px gives the same test AUC (benchmarks/classifier_baseline.py:
# 0.974 +- 0.002 against 0.973 +- 0.002 without the stem, 3 seeds). A plain stride-2 first
# convolution (16-32-64 filters on 16-8-4 px maps) lost 0.013 AUC; below 32 px the stem would leave
# maps of 14 px and less, so 28 px MedMNIST images keep the full-size stage.
_SMALL_CNN_STEM_MIN_SIZE = 32
# The version of what build_classifier builds for a kind, input size and channel count. Results and
# caches that depend on the architecture (study results, trained classifiers) record it and should
# not mix versions. 1: the small CNN with 16-128 filters; 2: its stem from 32 px up (smaller images
# and the EfficientNets as in version 1).
CLASSIFIER_VERSION = 2
# Early-stopping patience in epochs. 3 instead of 5 stops a study run ~2 epochs sooner (the main
# job's runs peak on validation AUC at epoch 4-8): benchmarks/classifier_baseline.py on the full
# PneumoniaMNIST gave test AUC 0.973 +- 0.004 (3 seeds) against 0.974 +- 0.005 with 5.
DEFAULT_PATIENCE = 3


# ---------------------------------------------------------------------------------------------
# Building


def classifier_input_resize(kind: str, image_size: int, *, min_size: int = EFFICIENTNET_MIN_SIZE) -> str:
    """Describe how ``build_classifier(kind, image_size=...)`` resizes its input (for reports).

    Example:
        >>> classifier_input_resize("efficientnet_b0", 28)
        'bilinear 28x28 -> 32x32 inside the classifier'
        >>> classifier_input_resize("small_cnn", 28)
        'none (native 28x28)'
    """
    if kind in _EFFICIENTNETS and image_size < min_size:
        return f"bilinear {image_size}x{image_size} -> {min_size}x{min_size} inside the classifier"
    return f"none (native {image_size}x{image_size})"


def build_classifier(
    kind: str = "small_cnn",
    *,
    image_size: int,
    channels: int,
    num_classes: int,
    weights: str | os.PathLike | None = None,
    dropout: float = 0.2,
    min_size: int = EFFICIENTNET_MIN_SIZE,
    name: str | None = None,
):
    """Build an (uncompiled) image classifier taking ``[-1, 1]`` images and returning logits.

    For EfficientNets the model starts with what the backbone needs: a 1-channel image is repeated
    to 3 channels, images smaller than ``min_size`` are upsampled bilinearly to it, and ``[-1, 1]``
    is mapped to the ``[0, 255]`` range that Keras' EfficientNets rescale internally. With a local
    ImageNet weights file for a V1 EfficientNet the extra per-channel scale Keras applies only for
    ``weights="imagenet"`` is folded into that input mapping, so both give the same features.

    The small CNN's stages follow the input size (two convolutions per stage, pooling down to about
    7x7); from 32 px up a stride-2 convolution, the stem, replaces the full-size stage.
    :data:`CLASSIFIER_VERSION` numbers these rules; record it with results that depend on them.

    Args:
        kind: ``"small_cnn"`` or an EfficientNet: one of :data:`CLASSIFIER_KINDS`.
        image_size: Height and width of the input images (the dataset's size).
        channels: 1 or 3.
        num_classes: Number of classes (>= 2); the output has one logit per class.
        weights: EfficientNets only: ``None`` (train from scratch), ``"imagenet"`` (download; fails
            offline with a message asking for a local file) or the path of a no-top weights file,
            e.g. Keras' ``efficientnetb0_notop.h5`` or a ``.weights.h5`` saved from the backbone.
        dropout: Dropout rate before the logits.
        min_size: EfficientNets only: smallest side fed to the backbone (default 32, its stride).
        name: Model name (default ``"ragan_<kind>"``).

    Returns:
        A functional ``keras.Model`` with input ``(image_size, image_size, channels)`` and output
        ``(num_classes,)`` logits; its last layer is ``Dense`` named ``"logits"``.

    Raises:
        RaganError: for an unknown kind, invalid sizes, weights for the small CNN, a missing or
            incompatible weights file, or ``"imagenet"`` without network access.

    Example:
        >>> model = build_classifier("small_cnn", image_size=28, channels=1, num_classes=2)
        >>> model.output_shape
        (None, 2)
    """
    from ragan._tf import import_keras

    keras = import_keras()
    if kind not in CLASSIFIER_KINDS:
        raise RaganError(
            f"classifier={kind!r} is not allowed; choose one of {', '.join(map(repr, CLASSIFIER_KINDS))}."
            f"{did_you_mean(kind, CLASSIFIER_KINDS)}"
        )
    _check_int("image_size", image_size, minimum=8)
    check_choice("channels", channels, (1, 3))
    _check_int("num_classes", num_classes, minimum=2)
    if not (isinstance(dropout, numbers.Real) and 0.0 <= dropout < 1.0):
        raise RaganError(f"dropout={dropout!r} is not allowed; it must be in [0, 1).")
    name = name or f"ragan_{kind}"
    inputs = keras.Input((image_size, image_size, channels), name="image")
    if kind == "small_cnn":
        if weights is not None:
            raise RaganError(
                f"weights={str(weights)!r} is not allowed for classifier='small_cnn' (it is always trained "
                "from scratch); use an EfficientNet for pretrained weights."
            )
        features = _small_cnn_features(keras, inputs, image_size)
    else:
        _check_int("min_size", min_size, minimum=32)
        features = _efficientnet_features(keras, inputs, kind, image_size, channels, weights, min_size)
    if dropout:
        features = keras.layers.Dropout(dropout, name="head_dropout")(features)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name=name)


def _small_cnn_features(keras, inputs, image_size: int):
    layers = keras.layers
    x = inputs
    size, stage, filters = image_size, 0, _SMALL_CNN_FIRST_FILTERS
    if image_size >= _SMALL_CNN_STEM_MIN_SIZE:
        # The stem: the full-size first stage (two convolutions, then pooling) as one stride-2 convolution.
        x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
        x = layers.ReLU(name="stem_relu")(x)
        size, stage = -(-image_size // 2), 1
        filters = min(filters * 2, _SMALL_CNN_MAX_FILTERS)
    while True:
        for repeat in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage}_{repeat}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage}_{repeat}")(x)
            x = layers.ReLU(name=f"relu{stage}_{repeat}")(x)
        if size <= _SMALL_CNN_FINAL_SIZE or stage >= 5:
            break
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        size, stage = size // 2, stage + 1
        filters = min(filters * 2, _SMALL_CNN_MAX_FILTERS)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    return layers.Dense(128, activation="relu", name="features")(x)


def _efficientnet_features(keras, inputs, kind, image_size, channels, weights, min_size):
    layers = keras.layers
    constructor = getattr(keras.applications, _EFFICIENTNETS[kind])
    size = max(image_size, min_size)
    backbone_kwargs = dict(include_top=False, input_shape=(size, size, 3), pooling="avg")
    local_file = None
    if weights is None:
        backbone = constructor(weights=None, **backbone_kwargs)
    elif isinstance(weights, str) and weights == "imagenet":
        try:
            backbone = constructor(weights="imagenet", **backbone_kwargs)
        except Exception as error:  # noqa: BLE001 - any download/cache failure
            raise RaganError(
                f"weights='imagenet': the {_EFFICIENTNETS[kind]} ImageNet weights could not be downloaded "
                f"({type(error).__name__}); download the no-top weights file (e.g. "
                f"{_EFFICIENTNETS[kind].lower()}_notop.h5) on a machine with network access and pass its "
                "local path as weights= (--classifier-weights)."
            ) from error
    elif isinstance(weights, (str, os.PathLike)):
        local_file = Path(weights).expanduser()
        if not local_file.is_file():
            raise RaganError(
                f"weights={str(weights)!r}: no such file; pass None, 'imagenet' or the path of a no-top "
                f"{_EFFICIENTNETS[kind]} weights file."
            )
        backbone = constructor(weights=None, **backbone_kwargs)
        try:
            backbone.load_weights(str(local_file))
        except Exception as error:  # noqa: BLE001 - wrong file / wrong architecture
            first = first_line(error) if str(error).strip() else ""
            raise RaganError(
                f"weights={str(weights)!r}: could not be loaded into {_EFFICIENTNETS[kind]} without top "
                f"({type(error).__name__}: {first})."
            ) from error
    else:
        raise RaganError(f"weights={weights!r} is not allowed; pass None, 'imagenet' or a weights file path.")

    x = inputs
    if channels == 1:
        # Explicit repetition: the backbone (and any ImageNet weights) expects RGB.
        x = layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x])
    if image_size < min_size:
        x = layers.Resizing(size, size, interpolation="bilinear", name="upsample")(x)
    # [-1, 1] -> [0, 255]: Keras' EfficientNets rescale 0..255 inputs themselves.
    scale, offset = 127.5, 127.5
    if local_file is not None and not kind.startswith("efficientnetv2"):
        # Fold Keras' imagenet-only post-normalisation scale r = 1/sqrt(std) into the input map:
        # r * (x/255 - mean) == x'/255 - mean  <=>  x' = r * x + 255 * mean * (1 - r).
        mean = _normalization_mean(backbone)
        if mean is not None:
            ratio = np.array([1.0 / math.sqrt(s) for s in _IMAGENET_STDDEV_RGB])
            scale = (127.5 * ratio).tolist()
            offset = (127.5 * ratio + 255.0 * mean * (1.0 - ratio)).tolist()
    x = layers.Rescaling(scale=scale, offset=offset, name="to_0_255")(x)
    return backbone(x)


def _normalization_mean(backbone) -> np.ndarray | None:
    for layer in backbone.layers:
        if type(layer).__name__ == "Normalization":
            mean = getattr(layer, "mean", None)
            if mean is None:
                return None
            mean = np.asarray(mean, dtype=np.float64).reshape(-1)
            return mean if mean.size == 3 and np.any(mean != 0) else None
    return None


# ---------------------------------------------------------------------------------------------
# Input pipelines


# "standard" augmentation: the largest shift (fraction of the side) and brightness offset
# (fraction of the [-1, 1] range).
MAX_SHIFT_FRACTION = 0.1
MAX_BRIGHTNESS_FRACTION = 0.1


def standard_augmentation(images, seed):
    """Randomly flip, shift and brighten a batch of ``[-1, 1]`` images, reproducibly.

    Every image independently: a horizontal flip with probability 1/2, a shift of up to
    :data:`MAX_SHIFT_FRACTION` of the side in each direction (bilinear, edge pixels repeated) and a
    brightness offset of up to :data:`MAX_BRIGHTNESS_FRACTION` of the range; values are clipped to
    ``[-1, 1]``. Stateless random ops are used rather than Keras' random layers, whose stateful
    generators give different images for the same seed depending on what ran before in the
    process; here the same ``seed`` always gives the same batch.

    Args:
        images: ``(B, H, W, C)`` float tensor in ``[-1, 1]``.
        seed: Shape-``[2]`` integer tensor (a stateless seed).

    Example:
        >>> out = standard_augmentation(np.zeros((2, 28, 28, 1), "float32"), [0, 1])
        >>> tuple(out.shape)
        (2, 28, 28, 1)
    """
    from ragan._tf import import_tf

    tf = import_tf()
    images = tf.convert_to_tensor(images, tf.float32)
    flip_seed, shift_seed, brightness_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    )
    batch = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1:3], tf.float32)
    images = tf.image.stateless_random_flip_left_right(images, flip_seed)
    shifts = tf.random.stateless_uniform([batch, 2], shift_seed, -MAX_SHIFT_FRACTION, MAX_SHIFT_FRACTION)
    shifts = shifts * size[::-1]  # (dx, dy) in pixels
    ones, zeros = tf.ones([batch, 1]), tf.zeros([batch, 1])
    # Projective transform rows [a0 a1 a2 b0 b1 b2 c0 c1]: output (x, y) reads input (x + dx, y + dy).
    transforms = tf.concat([ones, zeros, shifts[:, :1], zeros, ones, shifts[:, 1:], zeros, zeros], axis=1)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    offsets = tf.random.stateless_uniform(
        [batch, 1, 1, 1], brightness_seed, -2.0 * MAX_BRIGHTNESS_FRACTION, 2.0 * MAX_BRIGHTNESS_FRACTION
    )
    return tf.clip_by_value(images + offsets, -1.0, 1.0)


def _with_batch_seeds(dataset, seed: int | None):
    """Zip a batched dataset with one stateless seed per batch, new ones every epoch."""
    tf = sys.modules["tensorflow"]
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds))


def _to_unit_range(images: np.ndarray) -> tuple[np.ndarray, float]:
    """Return images as given plus the divisor mapping them to [0, 2] (then minus 1)."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise RaganError(f"images: expected shape (N, H, W, C) or (N, H, W), got {images.shape}.")
    if images.dtype == np.uint8:
        return images, 255.0
    if images.dtype == np.uint16:
        return images, 65535.0
    if np.issubdtype(images.dtype, np.floating):
        if images.size and (images.min() < -1.01 or images.max() > 1.01):
            raise RaganError(
                f"images: float pixels must be in [-1, 1], got [{images.min():g}, {images.max():g}]; "
                "pass uint8/uint16 images or scale them first."
            )
        return images, 0.0
    raise RaganError(f"images: expected uint8, uint16 or float pixels, got dtype {images.dtype}.")


# Image pixels per batch of a forward pass without gradients (validation, testing, features): 256
# images of 256 px in one batch raised the small CNN's peak to 3.1 GB, 32 of them to 1.1 GB (and ran faster).
INFERENCE_PIXELS = 1 << 21


def inference_batch_size(image_size: int, most: int = 256) -> int:
    """Images per batch of a forward pass at ``image_size`` px: ``most`` up to 90 px, fewer above.

    Example:
        >>> inference_batch_size(28), inference_batch_size(256), inference_batch_size(1024)
        (256, 32, 2)
    """
    return int(max(1, min(most, INFERENCE_PIXELS // (int(image_size) * int(image_size)))))


def array_dataset(
    images,
    labels,
    *,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int | None = None,
    augmentation: str = "none",
    augment_mask=None,
):
    """A batched ``tf.data.Dataset`` of ``(images in [-1, 1], int32 labels)`` from arrays.

    Images stay in memory in their stored dtype (``uint8``/``uint16``: 2-4x less memory than
    floats) and are scaled per batch; float images must already be in ``[-1, 1]``.

    Args:
        images: ``(N, H, W, C)`` or ``(N, H, W)`` array.
        labels: ``(N,)`` integer class indices.
        batch_size: Images per batch.
        shuffle: Reshuffle every epoch.
        seed: Seed of the shuffle and of the augmentation.
        augmentation: ``"none"`` or ``"standard"`` (see :func:`standard_augmentation`).
        augment_mask: Optional ``(N,)`` booleans: augment only these images (e.g. the repeated
            copies of a count-matched control); default: all images when augmenting.

    Example:
        >>> dataset = array_dataset(np.zeros((10, 28, 28, 1), np.uint8), np.zeros(10, int), batch_size=4)
        >>> [int(x.shape[0]) for x, _ in dataset]
        [4, 4, 2]
    """
    from ragan._tf import import_tf

    tf = import_tf()
    images, max_value = _to_unit_range(images)
    labels = np.asarray(labels).reshape(-1).astype(np.int32)
    if labels.shape[0] != images.shape[0]:
        raise RaganError(f"labels: {labels.shape[0]} labels for {images.shape[0]} images.")
    if images.shape[0] == 0:
        raise RaganError("images: no images were given (the set is empty).")
    check_positive_int("batch_size", batch_size)
    check_choice("augmentation", augmentation, AUGMENTATIONS)
    if augment_mask is None:
        mask = np.full(images.shape[0], augmentation == "standard")
    else:
        mask = np.asarray(augment_mask, dtype=bool).reshape(-1)
        if mask.shape[0] != images.shape[0]:
            raise RaganError(f"augment_mask: {mask.shape[0]} entries for {images.shape[0]} images.")
    augmenting = bool(mask.any())
    dataset = tf.data.Dataset.from_tensor_slices((images, labels, mask))
    if shuffle:
        dataset = dataset.shuffle(images.shape[0], seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(int(batch_size))

    def scale(batch):
        batch = tf.cast(batch, tf.float32)
        return batch * (2.0 / max_value) - 1.0 if max_value else batch

    if augmenting:

        def prepare(parts, batch_seed):
            batch, batch_labels, batch_mask = parts
            batch = scale(batch)
            augmented = standard_augmentation(batch, batch_seed)
            return tf.where(batch_mask[:, None, None, None], augmented, batch), batch_labels

        dataset = _with_batch_seeds(dataset, seed).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(
            lambda batch, batch_labels, _: (scale(batch), batch_labels), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(no_autotune_thread())


def _as_dataset(data, name: str, batch_size: int):
    """A tf.data dataset of (images, labels) from a dataset or an ``(images, labels)`` pair."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if not (isinstance(spec, tuple) and len(spec) >= 2):
            raise RaganError(f"{name}: the dataset must yield (images, labels) pairs; load it with with_labels=True.")
        if len(spec) > 2:
            data = data.map(lambda *parts: (parts[0], parts[1]))
        return data.with_options(no_autotune_thread())
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return array_dataset(data[0], data[1], batch_size=batch_size)
    raise RaganError(
        f"{name}: expected a tf.data.Dataset of (images, labels) or an (images, labels) pair of arrays, "
        f"got {type(data).__name__}."
    )


# ---------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainingResult:
    """What :func:`train_classifier` returns.

    Attributes:
        model: The trained model (weights of the best validation epoch when validating).
        history: Per-epoch values: ``loss``, ``accuracy``, and ``val_auc`` when validating.
        best_epoch: 1-based epoch whose weights were kept (the last one without validation).
        best_val_auc: Validation AUC of that epoch, or None.
        epochs_trained: Epochs actually run (fewer than asked after early stopping).
        seconds: Wall time of the training.
    """

    model: Any
    history: dict = field(default_factory=dict)
    best_epoch: int = 0
    best_val_auc: float | None = None
    epochs_trained: int = 0
    seconds: float = 0.0


def balanced_class_weights(labels, num_classes: int) -> dict[int, float]:
    """Class weights ``n / (k * n_c)``: every class contributes equally to the loss.

    Classes absent from ``labels`` get weight 1.

    Example:
        >>> balanced_class_weights([0, 1, 1, 1], 2)
        {0: 2.0, 1: 0.6666666666666666}
    """
    labels = np.asarray(labels).reshape(-1)
    counts = np.bincount(labels, minlength=num_classes)[:num_classes]
    present = int((counts > 0).sum())
    return {int(c): (float(labels.size / (present * counts[c])) if counts[c] else 1.0) for c in range(num_classes)}


def _validation_auc_callback(keras, val_data, patience: int, verbose: int):
    class ValidationAUC(keras.callbacks.Callback):
        """Early stopping on validation ROC AUC (macro one-vs-rest), keeping the best weights."""

        def __init__(self):
            super().__init__()
            self.best_auc = -math.inf
            self.best_epoch = 0
            self.best_weights = None
            self.wait = 0

        def on_epoch_end(self, epoch, logs=None):
            labels, probabilities = predict_probabilities(self.model, val_data)
            auc = roc_auc_one_vs_rest(labels, probabilities)[0]
            score = -math.inf if auc is None else auc
            if logs is not None:
                logs["val_auc"] = float("nan") if auc is None else auc
            if score > self.best_auc or self.best_weights is None:
                self.best_auc, self.best_epoch, self.wait = score, epoch + 1, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if patience and self.wait >= patience:
                    self.model.stop_training = True
            if verbose:
                shown = "undefined" if auc is None else f"{auc:.4f}"
                print(
                    f"epoch {epoch + 1}: val_auc={shown} (best {self.best_auc:.4f} at epoch {self.best_epoch})",
                    file=sys.stderr,
                )

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return ValidationAUC()


def train_classifier(
    train_data,
    val_data=None,
    *,
    model=None,
    kind: str = "small_cnn",
    num_classes: int | None = None,
    weights: str | os.PathLike | None = None,
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    augmentation: str = "none",
    class_weight: str | Mapping[int, float] | None = None,
    patience: int = DEFAULT_PATIENCE,
    seed: int | None = 0,
    jit_compile: bool = False,
    compile: bool = True,
    verbose: int = 0,
) -> TrainingResult:
    """Train a classifier, early-stopping on validation ROC AUC.

    Args:
        train_data: ``tf.data.Dataset`` of batched ``(images in [-1, 1], labels)`` (as from
            :func:`ragan.load_dataset`) or an ``(images, labels)`` pair of arrays (uint8/uint16,
            or floats in ``[-1, 1]``; shuffled every epoch).
        val_data: The same kinds, or None to train all ``epochs`` without early stopping.
        model: A model from :func:`build_classifier`; built from ``kind`` when None.
        kind: Classifier kind when ``model`` is None.
        num_classes: Needed when ``model`` is None and ``train_data`` is a dataset (arrays: inferred).
        weights: Weights for a new EfficientNet (see :func:`build_classifier`).
        epochs: Most epochs to train.
        batch_size: Batch size for array inputs.
        learning_rate: Adam learning rate.
        augmentation: ``"none"`` or ``"standard"`` (flips, small shifts, brightness), applied to
            every training batch in the input pipeline.
        class_weight: None, ``"balanced"`` (``n / (k n_c)``) or ``{class index: weight}``.
        patience: Epochs without a better validation AUC before stopping (0: never stop early).
        seed: Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``), the shuffle
            and the augmentation; None leaves them alone.
        jit_compile: Compile the train step with XLA (slower on CPUs in our measurements).
        compile: Compile ``model`` with :func:`compile_classifier` (Adam at ``learning_rate``);
            False trains a model compiled by the caller, keeping its traced train step (the study
            re-initialises one compiled model per run instead of tracing a new one each time).
        verbose: 0 silent, 1 progress bar per epoch and validation AUC on stderr.

    Returns:
        A :class:`TrainingResult`; ``result.model`` holds the best validation weights.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.uniform(-1, 1, (16, 8, 8, 1)).astype(np.float32), np.arange(16) % 2
        >>> model = build_classifier("small_cnn", image_size=8, channels=1, num_classes=2)
        >>> result = train_classifier((x, y), (x, y), model=model, epochs=1, batch_size=8)
        >>> result.epochs_trained, 0.0 <= result.best_val_auc <= 1.0
        (1, True)
    """
    from ragan._tf import import_keras

    keras = import_keras()
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    _check_int("patience", patience, minimum=0)
    if not (isinstance(learning_rate, numbers.Real) and learning_rate > 0):
        raise RaganError(f"learning_rate={learning_rate!r} is not allowed; it must be a positive number.")
    check_choice("augmentation", augmentation, AUGMENTATIONS)
    if seed is not None:
        set_random_seed(int(seed))  # keeps TensorFlow's kernels (ragan/_tf_internals.py)

    array_labels = None
    if isinstance(train_data, (tuple, list)) and len(train_data) == 2:
        array_labels = np.asarray(train_data[1]).reshape(-1)
        train_dataset = array_dataset(
            train_data[0], array_labels, batch_size=batch_size, shuffle=True, seed=seed, augmentation=augmentation
        )
        image_shape = _to_unit_range(train_data[0])[0].shape[1:]
    else:
        train_dataset = _as_dataset(train_data, "train_data", batch_size)
        image_shape = tuple(train_dataset.element_spec[0].shape[1:])
        if augmentation == "standard":
            tf = sys.modules["tensorflow"]
            train_dataset = _with_batch_seeds(train_dataset, seed).map(
                lambda parts, batch_seed: (standard_augmentation(parts[0], batch_seed), parts[1]),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
    if model is None:
        if num_classes is None:
            if array_labels is None:
                raise RaganError("num_classes: needed to build a classifier for a tf.data train_data; pass it.")
            num_classes = max(int(array_labels.max()) + 1, 2)
        if len(image_shape) != 3 or image_shape[0] is None or image_shape[0] != image_shape[1]:
            raise RaganError(f"train_data: images must be square (H, W, C) with a fixed size, got {image_shape}.")
        model = build_classifier(
            kind,
            image_size=int(image_shape[0]),
            channels=int(image_shape[2]),
            num_classes=int(num_classes),
            weights=weights,
        )
    num_outputs = int(model.output_shape[-1])

    weights_by_class = None
    if class_weight is not None:
        if isinstance(class_weight, str):
            check_choice("class_weight", class_weight, ("balanced",))
            labels = array_labels if array_labels is not None else _dataset_labels(train_dataset)
            weights_by_class = balanced_class_weights(labels, num_outputs)
        elif isinstance(class_weight, Mapping):
            weights_by_class = {int(k): float(v) for k, v in class_weight.items()}
        else:
            raise RaganError(
                f"class_weight={class_weight!r} is not allowed; use None, 'balanced' or a dict class -> weight."
            )

    if compile:
        compile_classifier(model, learning_rate=learning_rate, jit_compile=jit_compile)
    elif not getattr(model, "compiled", False):
        raise RaganError("model: compile=False needs a compiled model (see compile_classifier).")
    callbacks = []
    validation = None
    if val_data is not None:
        val_dataset = _as_dataset(val_data, "val_data", max(batch_size, 256))
        validation = _validation_auc_callback(keras, val_dataset, patience, verbose)
        callbacks.append(validation)
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A dataset of unknown length (e.g. from load_dataset) ends its first epoch by running out
        # of data, which Keras reports as a warning although nothing is wrong.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        # shuffle=False: tf.data inputs are shuffled in their pipeline; Keras would only warn.
        history = model.fit(
            train_dataset,
            epochs=int(epochs),
            callbacks=callbacks,
            class_weight=weights_by_class,
            shuffle=False,
            verbose=1 if verbose else 0,
        )
    seconds = time.perf_counter() - start
    values = {key: [float(v) for v in series] for key, series in history.history.items()}
    epochs_trained = len(next(iter(values.values()))) if values else 0
    best_auc = None
    best_epoch = epochs_trained
    if validation is not None and validation.best_epoch:
        best_epoch = validation.best_epoch
        best_auc = None if validation.best_auc == -math.inf else float(validation.best_auc)
    return TrainingResult(
        model=model,
        history=values,
        best_epoch=best_epoch,
        best_val_auc=best_auc,
        epochs_trained=epochs_trained,
        seconds=seconds,
    )


def compile_classifier(model, *, learning_rate: float = 1e-3, jit_compile: bool = False):
    """Compile a classifier the way :func:`train_classifier` does (Adam, cross-entropy on logits).

    Returns the model, whose ``optimizer`` is built on its trainable variables.

    Example:
        >>> model = compile_classifier(build_classifier("small_cnn", image_size=28, channels=1, num_classes=2))
        >>> round(float(model.optimizer.learning_rate.numpy()), 4)
        0.001
    """
    from ragan._tf import import_keras

    keras = import_keras()
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    optimizer.build(model.trainable_variables)
    return model


def _dataset_labels(dataset) -> np.ndarray:
    return np.concatenate([np.asarray(labels).reshape(-1) for _, labels in dataset.as_numpy_iterator()])


# ---------------------------------------------------------------------------------------------
# Evaluation


_FORWARD_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward_function(model):
    """A traced inference call of ``model``, kept per model (validation runs every epoch)."""
    forward = _FORWARD_FUNCTIONS.get(model)
    if forward is None:
        tf = sys.modules["tensorflow"]
        # A weak reference: the cache must not keep the model alive.
        model_ref = weakref.ref(model)
        forward = tf.function(lambda images: model_ref()(images, training=False), reduce_retracing=True)
        _FORWARD_FUNCTIONS[model] = forward
    return forward


def predict_probabilities(model, data, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels, class probabilities)`` of a model (logits output) on labelled data.

    Example:
        >>> model = build_classifier("small_cnn", image_size=8, channels=1, num_classes=2)
        >>> x, y = np.zeros((5, 8, 8, 1), np.float32), np.array([0, 1, 0, 1, 1])
        >>> labels, probabilities = predict_probabilities(model, (x, y))
        >>> labels.tolist(), probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1))
        ([0, 1, 0, 1, 1], (5, 2), True)
    """
    dataset = _as_dataset(data, "data", batch_size)
    forward = _forward_function(model)
    labels, logits = [], []
    for images, batch_labels in dataset:
        logits.append(np.asarray(forward(images), dtype=np.float64))
        labels.append(np.asarray(batch_labels).reshape(-1))
    if not labels:
        raise RaganError("data: no images were given (the test set is empty).")
    logits = np.concatenate(logits)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.concatenate(labels).astype(np.int64), shifted / shifted.sum(axis=1, keepdims=True)


def evaluate_classifier(
    model,
    test_data,
    *,
    class_names: Sequence[str] | None = None,
    positive_class: int | str | None = None,
    batch_size: int = 256,
) -> dict:
    """Test a classifier: accuracy, ROC AUC, sensitivity/specificity, per-class figures, confusion matrix.

    Args:
        model: A model returning logits (e.g. from :func:`train_classifier`).
        test_data: ``tf.data.Dataset`` of ``(images, labels)`` or an ``(images, labels)`` pair.
        class_names: Names of the classes (default ``class_0``, ``class_1``, ...).
        positive_class: Binary tasks: the class counted as positive (index or name; default 1).
        batch_size: Batch size for array inputs.

    Returns:
        The dict of :func:`classification_metrics`.

    Example:
        >>> model = build_classifier("small_cnn", image_size=8, channels=1, num_classes=2)
        >>> x, y = np.zeros((4, 8, 8, 1), np.float32), np.array([0, 1, 0, 1])
        >>> figures = evaluate_classifier(model, (x, y), class_names=["normal", "pneumonia"])
        >>> figures["num_examples"], figures["auc"]  # identical images: every positive ties every negative
        (4, 0.5)
    """
    labels, probabilities = predict_probabilities(model, test_data, batch_size=batch_size)
    return classification_metrics(labels, probabilities, class_names=class_names, positive_class=positive_class)


def _check_int(name: str, value, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise RaganError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}.")
