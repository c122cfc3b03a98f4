"""Convolutional building blocks shared by ragan's GANs.

Every network starts (generator) or ends (discriminator) at 4x4 and has one up- or down-sampling
block per doubling, so an image of ``image_size`` pixels needs ``log2(image_size / 4)`` blocks.
The feature map ``2**k`` times smaller than the image has ``min(base_filters * 2**(k-1),
8 * base_filters)`` filters: at 64 px that is the classic DCGAN widths (``ngf``, ``2 ngf``,
``4 ngf``, ``8 ngf``), and wider images reuse the cap instead of growing without bound.
"""

from __future__ import annotations

import math

from ragan._tf import import_keras
from ragan.errors import check_choice
from ragan.shapes import SUPPORTED_IMAGE_SIZES, check_channels, check_image_size

keras = import_keras()
layers = keras.layers

__all__ = [
    "SUPPORTED_IMAGE_SIZES",
    "build_discriminator",
    "build_generator",
    "check_channels",
    "check_image_size",
    "filters_at",
    "num_resolution_blocks",
]

MAX_FILTER_MULTIPLIER = 8
_NORMS = ("batch", "layer", "none")


def num_resolution_blocks(image_size: int) -> int:
    """How many 2x up/down-sampling blocks separate a 4x4 map from ``image_size`` pixels."""
    return int(math.log2(check_image_size(image_size) // 4))


def filters_at(downscale_level: int, base_filters: int) -> int:
    """Filters of the feature map ``2**downscale_level`` times smaller than the image.

    Example:
        >>> [filters_at(k, 64) for k in (1, 2, 3, 4, 5)]
        [64, 128, 256, 512, 512]
    """
    return int(min(base_filters * 2 ** (downscale_level - 1), base_filters * MAX_FILTER_MULTIPLIER))


class _SeededInitializers:
    """Initializers whose seeds follow from one network seed, so that a model built twice with the
    same seed starts from the same weights (``None``: Keras's global randomness)."""

    def __init__(self, seed: int | None):
        self._next = None if seed is None else int(seed) * 7919 % (2**31 - 1)

    def next_seed(self) -> int | None:
        """The next initializer seed (``None``: unseeded)."""
        if self._next is None:
            return None
        self._next += 1
        return self._next

    def normal(self, mean: float = 0.0, stddev: float = 0.02):
        # Radford et al. 2016: "All weights were initialized from a zero-centered Normal
        # distribution with standard deviation 0.02."
        return keras.initializers.RandomNormal(mean=mean, stddev=stddev, seed=self.next_seed())

    def glorot(self):
        return keras.initializers.GlorotUniform(seed=self.next_seed())


def _batch_norm(name: str, init: _SeededInitializers):
    # momentum 0.9 = PyTorch's 0.1: the moving statistics used by generate() must follow a
    # generator that changes fast, which Keras's default 0.99 lags behind on short runs.
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, gamma_initializer=init.normal(mean=1.0), name=name)


def build_generator(
    *,
    latent_dim: int,
    image_size: int,
    channels: int,
    base_filters: int,
    num_classes: int = 0,
    seed: int | None = None,
    name: str = "generator",
):
    """The DCGAN generator: project z to 4x4, then (ConvTranspose 4x4/2, BatchNorm, ReLU) blocks,
    and a last ConvTranspose to ``channels`` with ``tanh`` (kept in float32 under mixed precision).

    Args:
        latent_dim: length of the noise vector z.
        image_size: output side in pixels (16..256, a power of two).
        channels: 1 or 3.
        base_filters: filters of the highest-resolution block (``ngf``).
        num_classes: when > 0 the model takes ``[z, labels]`` and every BatchNorm gets a learned
            per-class scale and offset (class-conditional BatchNorm; see
            :func:`_class_conditional_batch_norm` for why not a label embedding next to z).
        seed: seed of the initial weights (``None``: Keras's global randomness).
        name: the model's name.

    Returns:
        a functional ``keras.Model`` mapping z (and labels) to images in [-1, 1].

    Reference:
        Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks".

    Example:
        >>> g = build_generator(latent_dim=16, image_size=16, channels=1, base_filters=8)
        >>> g.output_shape
        (None, 16, 16, 1)
    """
    blocks = num_resolution_blocks(image_size)
    channels = check_channels(channels)
    init = _SeededInitializers(seed)
    latents = keras.Input(shape=(latent_dim,), name="latents")
    labels = keras.Input(shape=(), dtype="int32", name="labels") if num_classes else None

    def normalise(x, name):
        if not num_classes:
            return _batch_norm(name, init)(x)
        return _class_conditional_batch_norm(x, labels, num_classes, name, init)

    # A ConvTranspose 4x4 from a 1x1 map (the original DCGAN first layer) is exactly a Dense
    # layer reshaped to 4x4.
    top_filters = filters_at(blocks, base_filters)
    x = layers.Dense(4 * 4 * top_filters, use_bias=False, kernel_initializer=init.normal(), name="project")(latents)
    x = layers.Reshape((4, 4, top_filters), name="to_4x4")(x)
    x = normalise(x, "project_bn")
    x = layers.ReLU(name="project_relu")(x)
    for level in range(blocks - 1, 0, -1):
        resolution = image_size // 2**level
        x = layers.Conv2DTranspose(
            filters_at(level, base_filters),
            4,
            strides=2,
            padding="same",
            use_bias=False,
            kernel_initializer=init.normal(),
            name=f"up_{resolution}",
        )(x)
        x = normalise(x, f"up_{resolution}_bn")
        x = layers.ReLU(name=f"up_{resolution}_relu")(x)
    x = layers.Conv2DTranspose(
        channels, 4, strides=2, padding="same", kernel_initializer=init.normal(), name=f"up_{image_size}"
    )(x)
    images = layers.Activation("tanh", dtype="float32", name="images")(x)
    return keras.Model([latents, labels] if num_classes else latents, images, name=name)


def _class_conditional_batch_norm(x, labels, num_classes: int, name: str, init: _SeededInitializers):
    """BatchNorm without its own scale and offset, followed by a per-class scale and offset
    (conditional BatchNorm, de Vries et al. 2017; the generator of Miyato & Koyama 2018).

    Why not concatenate a label embedding to z: the class difference then enters *before* the
    BatchNorms, where it is most of each feature's batch variance, so normalising divides z's share
    down to nothing and the generator draws one image per label (measured: mean pairwise MS-SSIM
    0.93-0.98 within a class after 5-20 kimg on the PneumoniaMNIST sample, against 0.60 for the real
    images and 0.64 for the same network unconditioned). Here the statistics are z's alone and the
    class only shifts and scales the normalised features.
    """
    channels = x.shape[-1]
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, center=False, scale=False, name=name)(x)
    scale = layers.Embedding(
        num_classes, channels, embeddings_initializer=init.normal(mean=1.0), name=f"{name}_class_scale"
    )(labels)
    # Unit-variance class offsets: classes differ from the first step (offsets started at zero are
    # learnt too slowly for the label to matter early in training), and as constants per class they
    # shift the normalised features without shrinking z's share of them.
    offset = layers.Embedding(
        num_classes, channels, embeddings_initializer=init.normal(stddev=1.0), name=f"{name}_class_offset"
    )(labels)
    scale = layers.Reshape((1, 1, channels), name=f"{name}_class_scale_4d")(scale)
    offset = layers.Reshape((1, 1, channels), name=f"{name}_class_offset_4d")(offset)
    x = layers.Multiply(name=f"{name}_scaled")([x, scale])
    return layers.Add(name=f"{name}_shifted")([x, offset])


def build_discriminator(
    *,
    image_size: int,
    channels: int,
    base_filters: int,
    norm: str = "batch",
    spectral_norm: bool = False,
    power_iterations: int = 1,
    leaky_slope: float = 0.2,
    projection_classes: int = 0,
    auxiliary_classes: int = 0,
    seed: int | None = None,
    name: str = "discriminator",
):
    """The DCGAN discriminator: (Conv 4x4/2, norm, LeakyReLU) blocks down to 4x4, then a linear
    layer to one logit (kept in float32 under mixed precision).

    Args:
        image_size: input side in pixels (16..256, a power of two).
        channels: 1 or 3.
        base_filters: filters of the first block (``ndf``).
        norm: ``"batch"`` (DCGAN; not after the first conv), ``"layer"`` (a per-example
            normalisation, as WGAN-GP's critic needs) or ``"none"``. Convs followed by
            BatchNorm have no bias.
        spectral_norm: wrap every conv and dense layer in ``keras.layers.SpectralNormalization``
            (Miyato et al. 2018). Keras's wrapper divides the kernel by its spectral norm in place
            before each training call.
        power_iterations: power iterations per spectral-norm estimate.
        leaky_slope: negative slope of the LeakyReLUs (0.2 in DCGAN, 0.1 in SNGAN).
        projection_classes: when > 0 the model takes ``[images, labels]`` and adds the projection
            term ``<embed(y), pooled features>`` to the logit (Miyato & Koyama 2018).
        auxiliary_classes: when > 0 the model has a second output, class logits (AC-GAN).
        seed: seed of the initial weights (``None``: Keras's global randomness).
        name: the model's name.

    Returns:
        a functional ``keras.Model``: images (and labels) -> logits ``(B, 1)`` (and class logits).

    Example:
        >>> d = build_discriminator(image_size=16, channels=1, base_filters=8)
        >>> d.output_shape
        (None, 1)
    """
    check_choice("norm", norm, _NORMS)
    blocks = num_resolution_blocks(image_size)
    channels = check_channels(channels)
    init = _SeededInitializers(seed)

    def maybe_spectral(layer):
        if not spectral_norm:
            return layer
        return layers.SpectralNormalization(layer, power_iterations=power_iterations, name=f"{layer.name}_sn")

    images = keras.Input(shape=(image_size, image_size, channels), name="images")
    inputs = [images]
    x = images
    for level in range(1, blocks + 1):
        resolution = image_size // 2**level
        normalise = level > 1 and norm != "none"
        x = maybe_spectral(
            layers.Conv2D(
                filters_at(level, base_filters),
                4,
                strides=2,
                padding="same",
                use_bias=not (normalise and norm == "batch"),
                kernel_initializer=init.normal(),
                name=f"down_{resolution}",
            )
        )(x)
        if normalise and norm == "batch":
            x = _batch_norm(f"down_{resolution}_bn", init)(x)
        elif normalise and norm == "layer":
            x = layers.LayerNormalization(axis=[1, 2, 3], epsilon=1e-5, name=f"down_{resolution}_ln")(x)
        x = layers.LeakyReLU(negative_slope=leaky_slope, name=f"down_{resolution}_lrelu")(x)
    features = layers.Flatten(name="features")(x)
    # A Dense layer on the flattened 4x4 map is the original 4x4 "valid" conv to one logit.
    logits = maybe_spectral(layers.Dense(1, kernel_initializer=init.normal(), dtype="float32", name="logit"))(features)
    if projection_classes:
        labels = keras.Input(shape=(), dtype="int32", name="labels")
        inputs.append(labels)
        pooled = layers.GlobalAveragePooling2D(name="pooled_features")(x)
        if spectral_norm:
            # Keras's SpectralNormalization casts its output to its input's dtype, which would
            # turn an Embedding's output into integers; a bias-free Dense on one-hot labels is
            # the same embedding and wraps correctly.
            one_hot = layers.CategoryEncoding(projection_classes, output_mode="one_hot", name="labels_one_hot")(labels)
            embedded = maybe_spectral(
                layers.Dense(x.shape[-1], use_bias=False, kernel_initializer=init.glorot(), name="class_embedding")
            )(one_hot)
        else:
            # Glorot-uniform as in Miyato & Koyama's code: a near-zero start leaves the class
            # term silent while the unconditional logit learns.
            embedded = layers.Embedding(
                projection_classes, x.shape[-1], embeddings_initializer=init.glorot(), name="class_embedding"
            )(labels)
        projection = layers.Dot(axes=1, name="projection")([embedded, pooled])
        logits = layers.Add(dtype="float32", name="conditional_logit")([logits, projection])
    outputs = logits
    if auxiliary_classes:
        class_logits = maybe_spectral(
            layers.Dense(auxiliary_classes, kernel_initializer=init.normal(), dtype="float32", name="class_logits")
        )(features)
        outputs = [logits, class_logits]
    model = keras.Model(inputs if projection_classes else images, outputs, name=name)
    if spectral_norm:
        # The wrapper's power-iteration vector starts from unseeded noise; seed it like the rest.
        for layer in model.layers:
            if isinstance(layer, layers.SpectralNormalization):
                start = keras.initializers.TruncatedNormal(stddev=0.02, seed=init.next_seed())
                layer.vector_u.assign(start(layer.vector_u.shape, layer.vector_u.dtype))
    return model
