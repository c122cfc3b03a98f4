"""Feature extractors for the feature-space metrics (FID, KID, precision/recall, memorisation).

A feature value means something only together with the network and the resize that produced it,
so every :class:`FeatureExtractor` carries a ``name`` and a ``resize`` description, and every
metric result records both: two FIDs are comparable only when these match.

Two kinds are provided:

* :func:`inception_extractor` — Keras' ImageNet InceptionV3, 2048-d global-average-pool features,
  the usual choice for natural images. Its weights must be available locally (or downloadable).
* :func:`model_extractor` — a domain extractor: an intermediate layer of a classifier trained on
  the real medical images, which needs no download and sees what matters in the domain.

TensorFlow is imported when an extractor is built, not when this module is imported.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragan._common import check_positive_int, first_line
from ragan.errors import RaganError, did_you_mean
from ragan.evaluation._metric_inputs import check_inside_range

__all__ = ["FeatureExtractor", "inception_extractor", "model_extractor", "INCEPTION_SIZE"]

INCEPTION_SIZE = 299

# md5 of Keras' ImageNet InceptionV3 no-top weights file (the hash keras.applications checks), so a
# local copy of that file is recognised and named like the downloaded one.
_KERAS_INCEPTION_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
_KERAS_INCEPTION_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _bilinear_description(height: int, width: int) -> str:
    return f"bilinear {height}x{width} (tf.image.resize, antialias)"


@dataclass(eq=False)
class FeatureExtractor:
    """A named image -> feature-vector function.

    Calling it runs ``model(preprocess(images))`` in batches. Images are ``(N, H, W, C)`` or
    ``(N, H, W)`` arrays, or a ``tf.data.Dataset`` of images, ``(image, label)`` tuples or
    ``{"image": ...}`` dicts (batched or not), with values in ``input_range``; a batch outside
    that range (beyond 1 % slack) is an error rather than silently wrong features.

    Args:
        name: Identifies the network and weights, e.g. ``"keras_inception_v3_imagenet_pool3"``.
        resize: How images are brought to the network's input size, e.g.
            ``"bilinear 299x299 (tf.image.resize, antialias)"``.
        model: Keras model mapping a preprocessed batch to ``(B, D)`` features.
        preprocess: Maps a float32 batch with values in ``input_range`` to the model's input
            (scaling, channel repetition, resize).
        input_range: ``(low, high)`` pixel range the caller's images are in.
        accepted_channels: Channel counts ``preprocess`` can handle.

    Attributes:
        feature_dim: Length of each feature vector.

    Example:
        >>> # Skipped: InceptionV3 at 299 px takes several seconds to build and run, even untrained.
        >>> extractor = inception_extractor(weights=None)          # doctest: +SKIP
        >>> extractor(images).shape, extractor.name                # doctest: +SKIP
        ((4, 2048), 'inception_v3_random_weights')
    """

    name: str
    resize: str
    model: Any = field(repr=False)
    preprocess: Callable = field(repr=False)
    input_range: tuple[float, float] = (-1.0, 1.0)
    accepted_channels: tuple[int, ...] = (1, 3)
    feature_dim: int = field(init=False)

    def __post_init__(self):
        low, high = (float(v) for v in self.input_range)
        if not high > low:
            raise RaganError(f"input_range={self.input_range!r} must be (low, high) with high > low")
        self.input_range = (low, high)
        self.feature_dim = int(self.model.output_shape[-1])
        self._forward = None

    def describe(self) -> dict:
        """The facts a metric result must carry about its features (JSON-serialisable)."""
        return {
            "name": self.name,
            "resize": self.resize,
            "feature_dim": self.feature_dim,
            "input_range": list(self.input_range),
        }

    def __call__(self, images, batch_size: int = 64) -> np.ndarray:
        """Return ``(N, feature_dim)`` float32 features of ``images``.

        Args:
            images: Array ``(N, H, W, C)`` / ``(N, H, W)`` or a ``tf.data.Dataset`` (see class doc).
            batch_size: Images per forward pass (for arrays and unbatched datasets).
        """
        from ragan._tf import import_tf

        tf = import_tf()
        check_positive_int("batch_size", batch_size)
        if self._forward is None:
            model = self.model
            # reduce_retracing: a short last batch must not trigger a new trace of the network.
            self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        outputs = []
        for batch in _image_batches(images, int(batch_size)):
            batch = self._check_batch(batch)
            features = self._forward(self.preprocess(tf.constant(batch, tf.float32)))
            outputs.append(np.asarray(features, dtype=np.float32).reshape(batch.shape[0], -1))
        if not outputs:
            raise RaganError("images: no images were given (the dataset or array is empty)")
        return np.concatenate(outputs)

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[-1] not in self.accepted_channels:
            raise RaganError(
                f"images: {batch.shape[-1]} channels cannot be fed to {self.name}; "
                f"accepted channel counts: {', '.join(map(str, self.accepted_channels))}"
            )
        batch = batch.astype(np.float32, copy=False)
        if not np.isfinite(batch).all():
            raise RaganError("images: contain NaN or inf values")
        low, high = self.input_range
        expected = f"the extractor {self.name} was built for input_range=({low:g}, {high:g}); build it with the "
        check_inside_range("images", batch, low, high, expected + "range the images are in")
        return batch


def _image_batches(images, batch_size: int):
    """Yield numpy ``(B, H, W, C)`` batches from an array or a tf.data.Dataset."""
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(images, tf.data.Dataset):
        yield from _dataset_batches(images, batch_size)
        return
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise RaganError(f"images: expected an array of shape (N, H, W, C) or (N, H, W), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise RaganError(f"images: expected numeric pixels, got dtype {array.dtype}")
    for start in range(0, array.shape[0], batch_size):
        yield array[start : start + batch_size]


def _dataset_batches(dataset, batch_size: int):
    spec = dataset.element_spec
    if isinstance(spec, tuple):
        dataset = dataset.map(lambda *parts: parts[0])
    elif isinstance(spec, dict):
        if "image" not in spec:
            raise RaganError(f"images: dataset elements are dicts without an 'image' key (keys: {sorted(spec)})")
        dataset = dataset.map(lambda element: element["image"])
    rank = dataset.element_spec.shape.rank
    if rank in (2, 3):
        dataset = dataset.batch(batch_size)
        rank += 1
    if rank not in (3, 4):
        raise RaganError(
            f"images: dataset elements must be images (H, W, C) or batches (B, H, W, C), "
            f"got shape {dataset.element_spec.shape}"
        )
    for batch in dataset.as_numpy_iterator():
        yield batch[..., None] if batch.ndim == 3 else batch


def _scale_to(x, source_range: tuple[float, float], target_range: tuple[float, float]):
    (s_low, s_high), (t_low, t_high) = source_range, target_range
    if (s_low, s_high) == (t_low, t_high):
        return x
    return (x - s_low) * ((t_high - t_low) / (s_high - s_low)) + t_low


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inception_extractor(
    weights: str | os.PathLike | None = "imagenet", *, input_range: tuple[float, float] = (-1.0, 1.0)
) -> FeatureExtractor:
    """InceptionV3 features: the 2048-d global average pool of ``keras.applications.InceptionV3``.

    Preprocessing: values mapped linearly from ``input_range`` to Inception's ``[-1, 1]``,
    1-channel images repeated to 3 channels, then bilinear resize (with antialiasing) to 299x299.

    These are the Keras port's ImageNet weights, not the 2015 TensorFlow graph used by TTUR,
    pytorch-fid and TF-GAN, so FIDs are comparable with other FIDs from this extractor only
    (same name and resize), not with numbers published by those tools.

    Args:
        weights: ``"imagenet"`` (Keras downloads the weights once into ``~/.keras/models``; offline
            this fails and the error says what to do), a path to a local weights file
            (``.h5`` such as Keras' ``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``
            fetched on another machine, ``.weights.h5`` or ``.keras``), or ``None`` for random
            weights (tests and smoke runs only: features from two random instances differ).
        input_range: ``(low, high)`` range of the images that will be passed in.

    Returns:
        A :class:`FeatureExtractor` named ``"keras_inception_v3_imagenet_pool3"`` for the ImageNet
        weights (downloaded, or a local file with Keras' md5), ``"inception_v3_weights:<file>:
        md5=<hash prefix>"`` for other files, or ``"inception_v3_random_weights"``.

    Example:
        >>> # Skipped: needs Keras' InceptionV3 weights file (about 90 MB) on disk.
        >>> extractor = inception_extractor("inception_notop.h5", input_range=(0, 255))  # doctest: +SKIP
        >>> features = extractor(uint8_images)                                      # doctest: +SKIP

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016.
    """
    from ragan._tf import import_keras, import_tf

    keras = import_keras()
    tf = import_tf()

    def build(initial_weights):
        return keras.applications.InceptionV3(
            include_top=False,
            weights=initial_weights,
            pooling="avg",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        )

    if weights is None:
        model, name = build(None), "inception_v3_random_weights"
    elif isinstance(weights, str) and weights == "imagenet":
        try:
            model = build("imagenet")
        except Exception as error:  # any download/cache failure (URLError, OSError, ValueError, ...)
            raise RaganError(
                "weights='imagenet': the InceptionV3 ImageNet weights could not be downloaded "
                f"({type(error).__name__}); download {_KERAS_INCEPTION_NOTOP_FILE} on a machine "
                "with network access and pass its local path as weights="
            ) from error
        name = "keras_inception_v3_imagenet_pool3"
    elif isinstance(weights, (str, os.PathLike)):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise RaganError(
                f"weights={str(weights)!r}: no such file; pass 'imagenet', None, or the path of an "
                "InceptionV3 weights file (.h5, .weights.h5, .keras)"
            )
        model = build(None)
        try:
            model.load_weights(str(path))
        except Exception as error:
            raise RaganError(
                f"weights={str(weights)!r}: could not be loaded into InceptionV3 without top "
                f"({type(error).__name__}: {first_line(error)})"
            ) from error
        md5 = _file_md5(path)
        if md5 == _KERAS_INCEPTION_NOTOP_MD5:
            name = "keras_inception_v3_imagenet_pool3"
        else:
            name = f"inception_v3_weights:{path.name}:md5={md5[:12]}"
    else:
        raise RaganError(f"weights={weights!r} is not allowed; pass 'imagenet', None, or a weights file path")

    def preprocess(batch):
        batch = _scale_to(batch, input_range, (-1.0, 1.0))
        if batch.shape[-1] == 1:
            batch = tf.repeat(batch, 3, axis=-1)
        return tf.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear", antialias=True)

    return FeatureExtractor(
        name=name,
        resize=_bilinear_description(INCEPTION_SIZE, INCEPTION_SIZE),
        model=model,
        preprocess=preprocess,
        input_range=input_range,
        accepted_channels=(1, 3),
    )


def model_extractor(
    model,
    *,
    layer: str | None = None,
    name: str | None = None,
    input_range: tuple[float, float] = (-1.0, 1.0),
    model_input_range: tuple[float, float] | None = None,
) -> FeatureExtractor:
    """A domain feature extractor: one layer's output of a trained Keras model (e.g. a classifier).

    By default the features are the input of the model's last layer, i.e. the penultimate
    representation of a classifier ending in ``Dense(num_classes)``. A 4-D (spatial) layer output
    is global-average-pooled, other shapes are flattened. Images are resized (bilinear, antialias)
    to the model's input size when it has a fixed one; 1-channel images are repeated for a
    3-channel model.

    Args:
        model: A functional or Sequential ``keras.Model``, or a path to a ``.keras`` file.
        layer: Name of the layer whose output is the feature; default: the penultimate one.
        name: Name carried by every result, e.g. ``"ragan_classifier:runs/cls/model.keras"``;
            default ``"model:<model name>/<layer name>"`` (``"model:<file>/<layer>"`` for a path).
        input_range: ``(low, high)`` range of the images that will be passed in.
        model_input_range: Range the model was trained on, if different from ``input_range``
            (images are mapped linearly).

    Returns:
        A :class:`FeatureExtractor`.

    Example:
        >>> from ragan.evaluation.classifier import build_classifier
        >>> model = build_classifier("small_cnn", image_size=16, channels=1, num_classes=2)
        >>> extractor = model_extractor(model, name="ragan_classifier:untrained")
        >>> extractor(np.zeros((3, 16, 16, 1), np.float32)).shape, extractor.name
        ((3, 128), 'ragan_classifier:untrained')
    """
    from ragan._tf import import_keras, import_tf

    keras = import_keras()
    tf = import_tf()
    source = None
    if isinstance(model, (str, os.PathLike)):
        path = Path(model).expanduser()
        if not path.is_file():
            raise RaganError(f"model={str(model)!r}: no such file; pass a keras.Model or a .keras file")
        try:
            model = keras.saving.load_model(str(path), compile=False)
        except Exception as error:
            raise RaganError(
                f"model={str(path)!r}: could not be loaded as a Keras model "
                f"({type(error).__name__}: {first_line(error)})"
            ) from error
        source = path.name
    if not isinstance(model, keras.Model):
        raise RaganError(f"model: expected a keras.Model or a .keras path, got {type(model).__name__}")
    try:
        inputs = model.inputs
        if layer is None:
            chosen = model.layers[-1]
            features = chosen.input
        else:
            names = [candidate.name for candidate in model.layers]
            if layer not in names:
                raise RaganError(
                    f"layer={layer!r} is not a layer of model '{model.name}'; "
                    f"its layers: {', '.join(names)}.{did_you_mean(layer, names)}"
                )
            chosen = model.get_layer(layer)
            features = chosen.output
    except (AttributeError, ValueError) as error:
        if isinstance(error, RaganError):
            raise
        raise RaganError(
            f"model '{model.name}': its layers have no symbolic inputs/outputs (a subclassed or "
            "unbuilt model); pass a functional or Sequential model built with an Input"
        ) from error
    if isinstance(features, (list, tuple)):
        raise RaganError(f"layer={chosen.name!r}: has several inputs/outputs; name a layer with a single output")
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="ragan_feature_pool")(features)
    elif len(features.shape) != 2:
        features = keras.layers.Flatten(name="ragan_feature_flatten")(features)
    if len(inputs) == 1:
        inputs = inputs[0]  # a list of one input makes Keras warn on every call with a tensor
    feature_model = keras.Model(inputs, features, name=f"{model.name}_features")

    input_shape = feature_model.input_shape
    if isinstance(input_shape, list) or len(input_shape) != 4:
        raise RaganError(
            f"model '{model.name}': expected one image input (batch, height, width, channels), "
            f"got input shape {input_shape}"
        )
    _, height, width, channels = input_shape
    if channels is None:
        raise RaganError(f"model '{model.name}': the input's channel count must be fixed")
    accepted = (1, 3) if channels == 3 else (int(channels),)
    target_range = tuple(model_input_range) if model_input_range is not None else tuple(input_range)
    fixed_size = height is not None and width is not None

    def preprocess(batch):
        batch = _scale_to(batch, tuple(input_range), target_range)
        if channels == 3 and batch.shape[-1] == 1:
            batch = tf.repeat(batch, 3, axis=-1)
        if fixed_size and tuple(batch.shape[1:3]) != (height, width):
            batch = tf.image.resize(batch, (height, width), method="bilinear", antialias=True)
        return batch

    layer_name = chosen.name if layer is not None else f"input_of_{chosen.name}"
    if name is None:
        name = f"model:{source or model.name}/{layer_name}"
    return FeatureExtractor(
        name=name,
        resize=(
            _bilinear_description(height, width)
            if fixed_size
            else "none (the model accepts any size; images used as given)"
        ),
        model=feature_model,
        preprocess=preprocess,
        input_range=tuple(input_range),
        accepted_channels=accepted,
    )
