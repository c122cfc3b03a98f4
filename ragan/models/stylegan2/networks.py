"""StyleGAN2 generator and discriminator as Keras 3 models (TensorFlow backend, NHWC).

The layer structure, names and parameter shapes follow the official StyleGAN2-ADA networks
(Karras et al. 2020), so that their published weights load into these models
(:mod:`ragan.models.stylegan2.pickle_import`) and the parameter counts agree exactly:

* ``MappingNetwork``: z normalised to unit second moment (and a label embedding, normalised the
  same way, concatenated when conditional), then ``num_layers`` fully connected layers with a
  learning-rate multiplier of 0.01; ``w_avg`` tracks the mean w for the truncation trick.
* ``SynthesisNetwork``: a learned 4x4 constant, then per resolution two modulated 3x3
  convolutions with weight demodulation (the first upsamples 2x through the [1, 3, 3, 1] FIR
  filter), per-layer noise with a learned strength, and a modulated 1x1 ``toRGB`` whose output
  is upsampled and summed over resolutions (the "skip" generator).
* ``Discriminator``: residual blocks (3x3 conv, 3x3 conv + 2x FIR downsampling, 1x1 skip, each
  branch scaled by sqrt(1/2)), then the 4x4 epilogue with the minibatch standard deviation, a
  3x3 conv, two dense layers and, when conditional, a projection onto the mapped label.

Every weight is stored with unit variance and scaled at run time ("equalised learning rate"):
convolutions by 1/sqrt(fan_in), dense layers by ``lr_multiplier``/sqrt(fan_in).
"""

from __future__ import annotations

import math

import numpy as np

from ragan._tf import import_keras, import_tf
from ragan.models.stylegan2 import ops

tf = import_tf()
keras = import_keras()

__all__ = ["Discriminator", "Generator", "MappingNetwork", "SynthesisNetwork", "channels_per_resolution"]

NOISE_MODES = ("random", "const", "none")


def channels_per_resolution(resolutions, channel_base: int, channel_max: int) -> dict:
    """``{resolution: min(channel_base // resolution, channel_max)}`` (the official widths)."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}


class _Seeds:
    """Hands out distinct initializer seeds, so that a network is built the same way every time."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return (self.seed * 1_000_003 + self.count) % (2**31 - 1)


def _compute_dtype(use_fp16: bool):
    """float16/bfloat16 for the blocks marked ``use_fp16`` under a mixed-precision policy.

    Read when a block is built: the policy in force then (``ragan.train`` sets it only while it
    builds the model) decides how the block computes for its whole life.
    """
    if not use_fp16:
        return tf.float32
    policy = keras.config.dtype_policy()
    name = policy.name if hasattr(policy, "name") else str(policy)
    if name == "mixed_float16":
        return tf.float16
    if name == "mixed_bfloat16":
        return tf.bfloat16
    return tf.float32


# ----------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------
class FullyConnected(keras.layers.Layer):
    """Dense layer with equalised learning rate: ``x @ (weight * lr / sqrt(in)) + bias * lr``."""

    def __init__(
        self,
        in_features,
        out_features,
        *,
        activation="linear",
        lr_multiplier=1.0,
        bias_init=0.0,
        use_bias=True,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.weight_gain = self.lr_multiplier / math.sqrt(self.in_features)
        self.weight = self.add_weight(
            shape=(self.in_features, self.out_features),
            name="weight",
            initializer=keras.initializers.RandomNormal(stddev=1.0 / self.lr_multiplier, seed=seed),
        )
        self.bias = (
            self.add_weight(
                shape=(self.out_features,), name="bias", initializer=keras.initializers.Constant(float(bias_init))
            )
            if use_bias
            else None
        )

    def call(self, x):
        x = tf.matmul(x, self.weight * self.weight_gain)
        bias = self.bias * self.lr_multiplier if self.bias is not None else None
        return ops.bias_act(x, bias, act=self.activation)


class Conv2dLayer(keras.layers.Layer):
    """Convolution with equalised learning rate, optional 2x FIR up/down-sampling, bias,
    activation and clamp."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        *,
        use_bias=True,
        activation="linear",
        up=1,
        down=1,
        conv_clamp=None,
        trainable=True,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), int(kernel_size)
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.filter = ops.setup_filter()
        self.weight = self.add_weight(
            shape=(kernel_size, kernel_size, in_channels, out_channels),
            name="weight",
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed),
            trainable=trainable,
        )
        self.bias = (
            self.add_weight(shape=(out_channels,), name="bias", initializer="zeros", trainable=trainable)
            if use_bias
            else None
        )

    def call(self, x, gain=1.0):
        # The activation's gain is folded into the weight and bias (lrelu(g * z) = g * lrelu(z)
        # for g > 0): one multiplication of a small tensor instead of the whole output.
        act_gain = (ops.SQRT2 if self.activation == "lrelu" else 1.0) * gain
        weight = tf.cast(self.weight * (self.weight_gain * act_gain), x.dtype)
        x = ops.conv2d_resample(x, weight, self.filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        bias = self.bias * act_gain if self.bias is not None and act_gain != 1 else self.bias
        return ops.bias_act(x, bias, act=self.activation, gain=1.0, clamp=clamp)


class SynthesisLayer(keras.layers.Layer):
    """Modulated 3x3 convolution (2x upsampling when ``up=2``), noise, bias, leaky ReLU, clamp."""

    def __init__(
        self, in_channels, out_channels, w_dim, resolution, *, up=1, conv_clamp=None, layer_index=0, seed=0, **kwargs
    ):
        super().__init__(dtype="float32", **kwargs)
        self.in_channels, self.out_channels, self.resolution = int(in_channels), int(out_channels), int(resolution)
        self.up, self.conv_clamp, self.layer_index = up, conv_clamp, layer_index
        self.filter = ops.setup_filter()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0, seed=seed, name="affine")
        self.weight = self.add_weight(
            shape=(3, 3, in_channels, out_channels),
            name="weight",
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed + 1),
        )
        self.noise_const = self.add_weight(
            shape=(resolution, resolution),
            name="noise_const",
            trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed + 2),
        )
        self.noise_strength = self.add_weight(shape=(), name="noise_strength", initializer="zeros")
        self.bias = self.add_weight(shape=(out_channels,), name="bias", initializer="zeros")

    def call(self, x, w, noise_mode="random", noise_seed=None, gain=1.0):
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            shape = tf.stack([tf.shape(x)[0], self.resolution, self.resolution, 1])
            seed = tf.random.experimental.stateless_fold_in(noise_seed, self.layer_index)
            noise = tf.random.stateless_normal(shape, seed=seed) * self.noise_strength
        elif noise_mode == "const":
            noise = (self.noise_const * self.noise_strength)[None, :, :, None]
        act_gain = ops.SQRT2 * gain  # folded into the demodulation (see Conv2dLayer.call)
        x = ops.modulated_conv2d(
            x, self.weight, styles, up=self.up, kernel=self.filter, padding=1, noise=noise, gain=act_gain
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias * act_gain, act="lrelu", gain=1.0, clamp=clamp)


class ToRGB(keras.layers.Layer):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels, img_channels, w_dim, *, conv_clamp=None, seed=0, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.conv_clamp = conv_clamp
        self.weight_gain = 1.0 / math.sqrt(in_channels)
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0, seed=seed, name="affine")
        self.weight = self.add_weight(
            shape=(1, 1, in_channels, img_channels),
            name="weight",
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seed + 1),
        )
        self.bias = self.add_weight(shape=(img_channels,), name="bias", initializer="zeros")

    def call(self, x, w):
        styles = self.affine(w) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False)
        return ops.bias_act(x, self.bias, clamp=self.conv_clamp)


# ----------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------
class MappingNetwork(keras.layers.Layer):
    """z (and the one-hot label c) to w: normalise, embed, ``num_layers`` dense layers."""

    def __init__(self, z_dim, c_dim, w_dim, *, num_layers=8, lr_multiplier=0.01, track_w_avg=True, seed=0, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.z_dim, self.c_dim, self.w_dim, self.num_layers = int(z_dim), int(c_dim), int(w_dim), int(num_layers)
        seeds = _Seeds(seed)
        embed_features = self.w_dim if self.c_dim > 0 else 0
        features = [self.z_dim + embed_features] + [self.w_dim] * self.num_layers
        self.embed = FullyConnected(self.c_dim, embed_features, seed=seeds(), name="embed") if self.c_dim else None
        self.fcs = [
            FullyConnected(
                features[i],
                features[i + 1],
                activation="lrelu",
                lr_multiplier=lr_multiplier,
                seed=seeds(),
                name=f"fc{i}",
            )
            for i in range(self.num_layers)
        ]
        self.w_avg = (
            self.add_weight(shape=(self.w_dim,), name="w_avg", initializer="zeros", trainable=False)
            if track_w_avg
            else None
        )

    def call(self, z, c=None):
        parts = []
        if self.z_dim > 0:
            parts.append(ops.normalize_2nd_moment(tf.cast(z, tf.float32)))
        if self.c_dim > 0:
            parts.append(ops.normalize_2nd_moment(self.embed(tf.cast(c, tf.float32))))
        x = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        for layer in self.fcs:
            x = layer(x)
        return x


class SynthesisBlock(keras.layers.Layer):
    """One resolution of the skip generator: (const or upsampling conv0), conv1, toRGB."""

    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        img_channels,
        *,
        conv_clamp=None,
        use_fp16=False,
        first_layer_index=0,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.in_channels, self.resolution, self.use_fp16 = in_channels, resolution, use_fp16
        self.block_dtype = _compute_dtype(use_fp16)
        self.filter = ops.setup_filter()
        seeds = _Seeds(seed)
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = self.add_weight(
                shape=(resolution, resolution, out_channels),
                name="const",
                initializer=keras.initializers.RandomNormal(stddev=1.0, seed=seeds()),
            )
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, up=2, layer_index=first_layer_index, seed=seeds() * 3, name="conv0", **common
            )
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, layer_index=first_layer_index + 1, seed=seeds() * 3, name="conv1", **common
        )
        self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp, seed=seeds() * 3, name="torgb")
        self.num_conv = 1 if in_channels == 0 else 2

    def call(self, x, img, ws, noise_mode="random", noise_seed=None):
        dtype = self.block_dtype
        if self.conv0 is None:
            x = tf.tile(tf.cast(self.const, dtype)[None], [tf.shape(ws)[0], 1, 1, 1])
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode, noise_seed=noise_seed)
        else:
            x = tf.cast(x, dtype)
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode, noise_seed=noise_seed)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode, noise_seed=noise_seed)
        if img is not None:
            img = ops.upsample2d(img, self.filter)
        y = tf.cast(self.torgb(x, ws[:, self.num_conv]), tf.float32)
        img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(keras.layers.Layer):
    """ws ``(N, num_ws, w_dim)`` to images ``(N, R, R, C)``."""

    def __init__(
        self,
        w_dim,
        img_resolution,
        img_channels,
        *,
        channel_base=32768,
        channel_max=512,
        conv_clamp=None,
        num_fp16_res=0,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(np.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = channels_per_resolution(self.block_resolutions, channel_base, channel_max)
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        seeds = _Seeds(seed)
        self.blocks = []
        self.num_ws = 0
        for index, res in enumerate(self.block_resolutions):
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0,
                channels[res],
                w_dim,
                res,
                img_channels,
                conv_clamp=conv_clamp,
                use_fp16=res >= fp16_resolution,
                first_layer_index=2 * index,
                seed=seeds() * 7,
                name=f"b{res}",
            )
            self.num_ws += block.num_conv
            self.blocks.append(block)
        self.num_ws += 1  # the last block's toRGB

    def call(self, ws, noise_mode="random", noise_seed=None):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r}; choose among {NOISE_MODES}")
        if noise_mode == "random" and noise_seed is None:
            noise_seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        x = img = None
        index = 0
        for block in self.blocks:
            x, img = block(
                x=x, img=img, ws=ws[:, index : index + block.num_conv + 1], noise_mode=noise_mode, noise_seed=noise_seed
            )
            index += block.num_conv
        return img


class Generator(keras.Model):
    """StyleGAN2 generator: ``G(z, labels) = synthesis(mapping(z, one_hot(labels)))``.

    Args:
        z_dim, w_dim: latent sizes (512 in the official configurations).
        img_resolution: 4..1024, a power of two. img_channels: 1 or 3.
        num_classes: 0 for an unconditional generator.
        mapping_layers: dense layers of the mapping network.
        channel_base, channel_max: widths ``min(channel_base // res, channel_max)``.
        conv_clamp: clamp of the convolution outputs (None = off).
        num_fp16_res: the highest resolutions computed in float16/bfloat16 under a mixed policy.
        w_avg_beta: decay of the running mean of w.
        seed: seed of the weight initialisation.

    Call it with ``z`` or ``[z, labels]`` (int labels); keyword arguments ``truncation_psi``,
    ``noise_mode`` (``random``/``const``/``none``) and ``noise_seed`` (shape-(2,) ints).
    """

    def __init__(
        self,
        z_dim=512,
        w_dim=512,
        img_resolution=32,
        img_channels=1,
        num_classes=0,
        *,
        mapping_layers=8,
        channel_base=32768,
        channel_max=512,
        conv_clamp=None,
        num_fp16_res=0,
        w_avg_beta=0.995,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.z_dim, self.w_dim, self.num_classes = int(z_dim), int(w_dim), int(num_classes)
        self.img_resolution, self.img_channels = int(img_resolution), int(img_channels)
        self.w_avg_beta = float(w_avg_beta)
        self.synthesis = SynthesisNetwork(
            w_dim,
            img_resolution,
            img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            conv_clamp=conv_clamp,
            num_fp16_res=num_fp16_res,
            seed=seed * 2 + 1,
            name="synthesis",
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim, num_classes, w_dim, num_layers=mapping_layers, seed=seed * 2, name="mapping"
        )
        self.built = True

    def one_hot(self, labels):
        if not self.num_classes:
            return None
        return tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), self.num_classes)

    def map(self, z, labels=None, truncation_psi=1.0):
        """ws ``(N, num_ws, w_dim)``, truncated toward ``w_avg`` when ``truncation_psi`` != 1."""
        w = self.mapping(z, c=self.one_hot(labels))
        if not (isinstance(truncation_psi, (int, float)) and truncation_psi == 1):
            w = self.mapping.w_avg + tf.cast(truncation_psi, tf.float32) * (w - self.mapping.w_avg)
        return tf.tile(w[:, None, :], [1, self.num_ws, 1])

    def call(self, inputs, training=False, truncation_psi=1.0, noise_mode="random", noise_seed=None):
        z, labels = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, None)
        ws = self.map(z, labels, truncation_psi)
        return self.synthesis(ws, noise_mode=noise_mode, noise_seed=noise_seed)


# ----------------------------------------------------------------------------------------------
# Discriminator
# ----------------------------------------------------------------------------------------------
class DiscriminatorBlock(keras.layers.Layer):
    """fromRGB (first block only), 3x3 conv, 3x3 conv with 2x downsampling, and the 1x1 residual
    skip (``architecture="resnet"``); layers below ``freeze_layers`` are not trained (Freeze-D)."""

    def __init__(
        self,
        in_channels,
        tmp_channels,
        out_channels,
        resolution,
        img_channels,
        *,
        first_layer_index=0,
        architecture="resnet",
        conv_clamp=None,
        use_fp16=False,
        freeze_layers=0,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.in_channels, self.resolution, self.architecture, self.use_fp16 = (
            in_channels,
            resolution,
            architecture,
            use_fp16,
        )
        self.block_dtype = _compute_dtype(use_fp16)
        seeds = _Seeds(seed)
        index = first_layer_index
        self.num_layers = 0

        def trainable():
            nonlocal index
            index += 1
            self.num_layers += 1
            return index - 1 >= freeze_layers

        common = dict(conv_clamp=conv_clamp)
        self.fromrgb = (
            Conv2dLayer(
                img_channels,
                tmp_channels,
                1,
                activation="lrelu",
                trainable=trainable(),
                seed=seeds(),
                name="fromrgb",
                **common,
            )
            if in_channels == 0
            else None
        )
        self.conv0 = Conv2dLayer(
            tmp_channels,
            tmp_channels,
            3,
            activation="lrelu",
            trainable=trainable(),
            seed=seeds(),
            name="conv0",
            **common,
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            3,
            activation="lrelu",
            down=2,
            trainable=trainable(),
            seed=seeds(),
            name="conv1",
            **common,
        )
        self.skip = (
            Conv2dLayer(
                tmp_channels, out_channels, 1, use_bias=False, down=2, trainable=trainable(), seed=seeds(), name="skip"
            )
            if architecture == "resnet"
            else None
        )

    def call(self, x, img):
        dtype = self.block_dtype
        if x is not None:
            x = tf.cast(x, dtype)
        if self.fromrgb is not None:
            x = self.fromrgb(tf.cast(img, dtype))
        if self.skip is not None:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            return y + x
        return self.conv1(self.conv0(x))


class DiscriminatorEpilogue(keras.layers.Layer):
    """The 4x4 head: minibatch stddev, 3x3 conv, dense, dense to 1 (or to the label space)."""

    def __init__(
        self,
        in_channels,
        cmap_dim,
        resolution=4,
        *,
        mbstd_group_size=4,
        mbstd_num_channels=1,
        conv_clamp=None,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.cmap_dim, self.mbstd_group_size, self.mbstd_num_channels = cmap_dim, mbstd_group_size, mbstd_num_channels
        seeds = _Seeds(seed)
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            3,
            activation="lrelu",
            conv_clamp=conv_clamp,
            seed=seeds(),
            name="conv",
        )
        self.fc = FullyConnected(in_channels * resolution**2, in_channels, activation="lrelu", seed=seeds(), name="fc")
        self.out = FullyConnected(in_channels, 1 if cmap_dim == 0 else cmap_dim, seed=seeds(), name="out")

    def call(self, x, cmap=None):
        x = tf.cast(x, tf.float32)
        if self.mbstd_num_channels > 0:
            x = ops.minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.conv(x)
        # Flatten channels-first, as the official networks do, so that their weights load as is.
        x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [tf.shape(x)[0], -1])
        x = self.out(self.fc(x))
        if self.cmap_dim > 0:
            x = tf.reduce_sum(x * cmap, axis=1, keepdims=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(keras.Model):
    """StyleGAN2 residual discriminator; returns logits ``(N, 1)``.

    Args:
        img_resolution, img_channels, num_classes: the images (and classes) it judges.
        architecture: ``resnet`` (official default) or ``orig`` (no residual skips).
        channel_base, channel_max, conv_clamp, num_fp16_res: as for :class:`Generator`.
        mbstd_group_size, mbstd_num_channels: the minibatch standard deviation layer.
        mapping_layers: dense layers mapping the label to the projection space (conditional).
        freeze_layers: the first N layers (from the image side) are not trained (Freeze-D).
        seed: seed of the weight initialisation.

    Call it with images or ``[images, labels]``.
    """

    def __init__(
        self,
        img_resolution=32,
        img_channels=1,
        num_classes=0,
        *,
        architecture="resnet",
        channel_base=32768,
        channel_max=512,
        conv_clamp=None,
        num_fp16_res=0,
        mbstd_group_size=4,
        mbstd_num_channels=1,
        mapping_layers=8,
        freeze_layers=0,
        seed=0,
        **kwargs,
    ):
        super().__init__(dtype="float32", **kwargs)
        self.img_resolution, self.img_channels, self.num_classes = (
            int(img_resolution),
            int(img_channels),
            int(num_classes),
        )
        log2 = int(np.log2(img_resolution))
        resolutions = [2**i for i in range(log2, 2, -1)]
        channels = channels_per_resolution(resolutions + [4], channel_base, channel_max)
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        cmap_dim = channels[4] if num_classes else 0
        seeds = _Seeds(seed)
        self.blocks = []
        layer_index = 0
        for res in resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0,
                channels[res],
                channels[res // 2],
                res,
                img_channels,
                first_layer_index=layer_index,
                architecture=architecture,
                conv_clamp=conv_clamp,
                use_fp16=res >= fp16_resolution,
                freeze_layers=freeze_layers,
                seed=seeds() * 5,
                name=f"b{res}",
            )
            layer_index += block.num_layers
            self.blocks.append(block)
        self.mapping = (
            MappingNetwork(
                0, num_classes, cmap_dim, num_layers=mapping_layers, track_w_avg=False, seed=seeds() * 5, name="mapping"
            )
            if num_classes
            else None
        )
        self.b4 = DiscriminatorEpilogue(
            channels[4],
            cmap_dim,
            mbstd_group_size=mbstd_group_size,
            mbstd_num_channels=mbstd_num_channels,
            conv_clamp=conv_clamp,
            seed=seeds() * 5,
            name="b4",
        )
        self.built = True

    def call(self, inputs, training=False):
        img, labels = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, None)
        x = None
        for block in self.blocks:
            x = block(x=x, img=img)
        cmap = None
        if self.mapping is not None:
            cmap = self.mapping(z=None, c=tf.one_hot(tf.reshape(tf.cast(labels, tf.int32), [-1]), self.num_classes))
        return self.b4(x, cmap=cmap)
