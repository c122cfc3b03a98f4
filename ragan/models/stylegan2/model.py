"""StyleGAN2-ADA as a ragan GAN: ``ragan train stylegan2``.

The networks are in :mod:`ragan.models.stylegan2.networks` (the official architecture, weights
interchangeable with NVIDIA's pickles); this module holds the hyperparameters with the official
``--cfg`` presets, and the training step:

* non-saturating logistic loss for G and D;
* lazy R1 regularisation of D on real images every ``r1_interval`` (16) D steps, and lazy
  path-length regularisation of G every ``pl_interval`` (4) G steps (batch shrunk 2x, decay
  0.01, weight 2), each as its own optimizer step with its loss multiplied by the interval;
  Adam's learning rate and betas corrected for the extra steps (``lr * k / (k + 1)``,
  ``beta ** (k / (k + 1))``);
* style mixing (two latents, one crossover point, probability 0.9);
* a generator EMA with a half-life of ``ema_kimg`` thousand images, ramped up over the first
  ``ema_rampup`` of training;
* adaptive discriminator augmentation (ADA, :mod:`ragan.layers.ada`): every image D sees goes
  through the ``bgc`` pipeline with probability ``p``, adjusted every ``ada_interval`` steps
  toward ``E[sign(D(real))] = ada_target`` at the speed ``ada_kimg``.

References:
    Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
    Quality of StyleGAN", CVPR (arXiv:1912.04958).
    Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
    Networks with Limited Data", NeurIPS (arXiv:2006.06676).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np

from ragan._tf import import_keras, import_tf
from ragan.config import Choice, Config, Float, hparam
from ragan.errors import RaganError
from ragan.losses.penalties import path_length_penalty, r1_penalty
from ragan.models.gan import GAN
from ragan.models.stylegan2.networks import NOISE_MODES, Discriminator, Generator
from ragan.registry import register_gan

tf = import_tf()
keras = import_keras()

__all__ = ["PRESETS", "STYLEGAN2_IMAGE_SIZES", "StyleGAN2", "StyleGAN2Config", "resolve_preset"]

STYLEGAN2_IMAGE_SIZES = (16, 32, 64, 128, 256, 512, 1024)

#: The official ``--cfg`` presets of stylegan2-ada-pytorch's train.py (for one GPU), plus
#: ``small``, a narrow network for CPUs. ``batch`` is the reference batch size the formulas use
#: (and the default ``--batch-size``); ``fmaps`` multiplies the channel base 32768.
PRESETS = {
    "auto": dict(batch=None, mbstd=None, fmaps=None, lrate=None, gamma=None, ema=None, ramp=0.05, map=2),
    "stylegan2": dict(batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=10, ema=10, ramp=None, map=8),
    "paper256": dict(batch=64, mbstd=8, fmaps=0.5, lrate=0.0025, gamma=1, ema=20, ramp=None, map=8),
    "paper512": dict(batch=64, mbstd=8, fmaps=1, lrate=0.0025, gamma=0.5, ema=20, ramp=None, map=8),
    "paper1024": dict(batch=32, mbstd=4, fmaps=1, lrate=0.002, gamma=2, ema=10, ramp=None, map=8),
    "cifar": dict(batch=64, mbstd=32, fmaps=1, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
    "small": dict(batch=32, mbstd=4, fmaps=None, lrate=0.0025, gamma=None, ema=None, ramp=0.05, map=2),
}

_SMALL = dict(latent_dim=128, w_dim=128, channel_base=2048, channel_max=128, ada_kimg=100.0)


@dataclass
class StyleGAN2Config(Config):
    """StyleGAN2-ADA hyperparameters. ``cfg`` picks a preset; every value it sets can be given
    explicitly (``None`` = take it from the preset), as ``--cfg`` and its overrides do in the
    official train.py.

    Example:
        >>> resolve_preset(StyleGAN2Config(cfg="auto"), 64)["r1_gamma"]   # 0.0002 * 64**2 / 32
        0.0256
    """

    cfg: str = hparam(
        "auto",
        help="Preset: auto (from the resolution, as the official --cfg auto), stylegan2, paper256, paper512, "
        "paper1024, cifar, or small (a narrow network that trains on a CPU).",
        choices=tuple(PRESETS),
    )
    latent_dim: int | None = hparam(None, help="Length of z (official z_dim; preset: 512, small 128).", min=1)
    w_dim: int | None = hparam(None, help="Length of w, the intermediate latent (preset: 512, small 128).", min=1)
    mapping_layers: int | None = hparam(
        None,
        help="Dense layers in the mapping network (preset: 2 for auto/cifar/small, else 8).",
        min=1,
        tune=Choice(2, 4, 8),
    )
    channel_base: int | None = hparam(
        None,
        help="Width multiplier: a resolution r gets min(channel_base // r, channel_max) channels "
        "(preset: fmaps x 32768; auto: 16384 below 512 px; small 2048).",
        min=1,
    )
    channel_max: int | None = hparam(None, help="Most channels in any layer (preset: 512, small 128).", min=1)
    conditional: bool = hparam(False, help="Condition G (label embedding) and D (projection) on class labels.")
    g_learning_rate: float | None = hparam(
        None,
        help="Generator Adam learning rate (preset: 0.0025, 0.002 at 1024 px).",
        min=0,
        tune=Float(5e-4, 5e-3, sampling="log"),
    )
    d_learning_rate: float | None = hparam(
        None,
        help="Discriminator Adam learning rate (preset: as the generator's).",
        min=0,
        tune=Float(5e-4, 5e-3, sampling="log"),
    )
    beta_1: float = hparam(0.0, help="Adam beta_1 of both optimizers.", min=0, max=1)
    beta_2: float = hparam(0.99, help="Adam beta_2 of both optimizers.", min=0, max=1)
    r1_gamma: float | None = hparam(
        None,
        help="R1 regularisation weight (preset; auto: 0.0002 * resolution^2 / batch).",
        min=0,
        tune=Float(1e-3, 10.0, sampling="log"),
    )
    r1_interval: int = hparam(16, help="Lazy R1: regularise D every this many D steps (0 turns R1 off).", min=0)
    pl_weight: float | None = hparam(None, help="Path-length regularisation weight (preset: 2, cifar 0).", min=0)
    pl_interval: int = hparam(4, help="Lazy path-length regularisation every this many G steps.", min=1)
    pl_batch_shrink: int = hparam(2, help="Path-length regularisation runs on batch / this many images.", min=1)
    pl_decay: float = hparam(0.01, help="Decay of the running mean of path lengths.", min=0, max=1)
    style_mixing: float | None = hparam(
        None,
        help="Probability of mixing two latents' styles in a training image (preset: 0.9, cifar 0).",
        min=0,
        max=1,
    )
    ema_kimg: float | None = hparam(
        None,
        help="Half-life of the generator EMA in thousands of images (preset; auto: batch * 10 / 32); 0 turns EMA off.",
        min=0,
    )
    ema_rampup: float | None = hparam(
        None,
        help="EMA ramp-up: the half-life is at most this fraction of the images seen so far "
        "(preset: 0.05 for auto/cifar/small; 0 = none).",
        min=0,
    )
    mbstd_group: int | None = hparam(
        None,
        help="Minibatch standard deviation group size (preset; auto: min(batch, 4)).",
        min=1,
    )
    d_architecture: str | None = hparam(
        None,
        help="Discriminator architecture: resnet (preset) or orig (cifar).",
        choices=("resnet", "orig"),
    )
    conv_clamp: float | None = hparam(256.0, help="Clamp of convolution outputs (None = off).", min=0)
    num_fp16_res: int = hparam(
        4,
        help="Under --mixed-precision, the N highest resolutions compute in float16 (bfloat16 on newer GPUs).",
        min=0,
    )
    augment: str = hparam(
        "ada",
        help="Augmentation of every image D sees: ada (adaptive p), fixed (p = augment_p), none.",
        choices=("ada", "fixed", "none"),
    )
    augment_p: float = hparam(
        0.0, help="Augmentation probability: the start for ada, the value for fixed.", min=0, max=1
    )
    augment_pipeline: str = hparam(
        "bgc",
        help="ADA pipeline: bgc (blit, geometric, colour), bg, or c.",
        choices=("bgc", "bg", "c"),
    )
    ada_target: float = hparam(0.6, help="ADA target for E[sign(D(real))].", min=0, max=1)
    ada_interval: int = hparam(4, help="Adjust the ADA probability every this many steps.", min=1)
    ada_kimg: float | None = hparam(
        None,
        help="ADA speed: thousands of images for p to move by 1 (preset: 500, small 100).",
        min=0.001,
    )
    freeze_d: int = hparam(
        0, help="Freeze-D: do not train the discriminator's first N layers (transfer learning).", min=0
    )


def resolve_preset(config: StyleGAN2Config, image_size: int) -> dict:
    """Every value the model uses: the explicit ones in ``config``, the rest from ``config.cfg``.

    Example:
        >>> resolve_preset(StyleGAN2Config(cfg="small"), 32)["channel_max"]
        128
    """
    spec = dict(PRESETS[config.cfg])
    res = int(image_size)
    if config.cfg == "auto":
        spec["batch"] = max(min(min(4096 // res, 32), 64), 1)
        spec["mbstd"] = min(spec["batch"], 4)
        spec["fmaps"] = 1 if res >= 512 else 0.5
        spec["lrate"] = 0.002 if res >= 1024 else 0.0025
        spec["gamma"] = 0.0002 * res**2 / spec["batch"]
        spec["ema"] = spec["batch"] * 10 / 32
    elif config.cfg == "small":
        spec["gamma"] = 0.0002 * res**2 / spec["batch"]
        spec["ema"] = spec["batch"] * 10 / 32
    small = config.cfg == "small"
    derived = {
        "batch_size": spec["batch"],
        "latent_dim": _SMALL["latent_dim"] if small else 512,
        "w_dim": _SMALL["w_dim"] if small else 512,
        "mapping_layers": spec["map"],
        "channel_base": _SMALL["channel_base"] if small else int(spec["fmaps"] * 32768),
        "channel_max": _SMALL["channel_max"] if small else 512,
        "g_learning_rate": spec["lrate"],
        "r1_gamma": round(float(spec["gamma"]), 10),
        "pl_weight": 0.0 if config.cfg == "cifar" else 2.0,
        "style_mixing": 0.0 if config.cfg == "cifar" else 0.9,
        "ema_kimg": float(spec["ema"]),
        "ema_rampup": float(spec["ramp"] or 0.0),
        "mbstd_group": spec["mbstd"],
        "d_architecture": "orig" if config.cfg == "cifar" else "resnet",
        "ada_kimg": _SMALL["ada_kimg"] if small else 500.0,
    }
    resolved = config.to_dict()
    for name, value in derived.items():
        if resolved.get(name) is None:
            resolved[name] = value
    if resolved["d_learning_rate"] is None:
        resolved["d_learning_rate"] = resolved["g_learning_rate"]
    resolved["batch_size"] = derived["batch_size"]
    resolved["image_size"] = res
    return resolved


# (network, psi, noise_mode) -> compiled call; outside the model so Keras does not track it.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _synthesize_function(generator, truncation_psi: float, noise_mode: str, conditional: bool):
    functions = _COMPILED.setdefault(generator, {})
    key = (float(truncation_psi), noise_mode, conditional)
    if key not in functions:

        def run(latents, labels, noise_seed):
            inputs = [latents, labels] if conditional else latents
            return generator(inputs, truncation_psi=truncation_psi, noise_mode=noise_mode, noise_seed=noise_seed)

        functions[key] = tf.function(run, reduce_retracing=True)
    return functions[key]


@register_gan("stylegan2", config=StyleGAN2Config)
class StyleGAN2(GAN):
    """StyleGAN2 with adaptive discriminator augmentation (StyleGAN2-ADA), 16 to 1024 px.

    The official architecture (mapping network, modulated convolutions with demodulation,
    noise inputs, skip generator, residual discriminator with minibatch standard deviation and
    label projection) and training (non-saturating loss, lazy R1 and path-length regularisation,
    style mixing, EMA, ADA) in Keras 3. ``cfg`` selects the official presets; ``small`` is a
    narrow network that trains on a CPU.

    Args:
        config: a :class:`StyleGAN2Config`, a dict of overrides, or ``None``.
        image_size: 16..1024, a power of two.
        channels: 1 or 3.
        num_classes: classes of the dataset (for ``conditional=True``).
        seed: seed of all the model's randomness.

    Reference:
        Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"
        (arXiv:2006.06676); Karras et al. 2020, "Analyzing and Improving the Image Quality of
        StyleGAN" (arXiv:1912.04958).

    Example:
        >>> tiny = {"cfg": "small", "latent_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_max": 8}
        >>> gan = StyleGAN2(tiny, image_size=16, channels=1)
        >>> images = gan.generate(4, seed=0, truncation=0.7)
        >>> images.shape
        (4, 16, 16, 1)
    """

    supported_image_sizes = STYLEGAN2_IMAGE_SIZES
    # real_sign: E[sign(D(real))] over the tick, the ADA overfitting heuristic (the official
    # Loss/signs/real): near 1 = D separates every real image, overfitting; ADA steers it to ada_target.
    log_names = ("d_loss", "g_loss", "real_sign")

    def __init__(
        self, config=None, *, image_size: int = 32, channels: int = 1, num_classes: int = 0, seed: int = 0, **kwargs
    ):
        super().__init__(config, image_size=image_size, channels=channels, num_classes=num_classes, seed=seed, **kwargs)

        def state(name, dtype="float32"):
            return self.add_weight(
                shape=(), initializer="zeros", dtype=dtype, trainable=False, aggregation="only_first_replica", name=name
            )

        self.step_counter = state("step_counter", "int64")
        self.images_seen = state("images_seen")
        self.pl_mean = state("pl_mean")
        self.ada_sign_sum = state("ada_sign_sum")
        self.ada_sign_count = state("ada_sign_count")
        # The regularisers run every few steps: logs show their latest value.
        self.last_r1_penalty = state("last_r1_penalty")
        self.last_pl_penalty = state("last_pl_penalty")

    @property
    def resolved(self) -> dict:
        """Every hyperparameter's value, the preset's where the config leaves it ``None``."""
        return resolve_preset(self.config, self.image_size)

    # ------------------------------------------------------------------------------------------
    # Hooks of the base class
    # ------------------------------------------------------------------------------------------
    @classmethod
    def training_defaults(cls, config, image_size: int) -> dict:
        """The preset's batch size is the default ``--batch-size``."""
        if image_size not in STYLEGAN2_IMAGE_SIZES:
            return {}
        return {"batch_size": resolve_preset(cls._resolve_config(config), image_size)["batch_size"]}

    def resolve_augment_policy(self):
        return (self.config.augment_pipeline,) if self.config.augment != "none" else ()

    def uses_ema(self) -> bool:
        return self.resolved["ema_kimg"] > 0

    def initial_augment_probability(self) -> float:
        return float(self.config.augment_p) if self.config.augment != "none" else 0.0

    @property
    def latent_dim(self) -> int:
        return int(self.resolved["latent_dim"])

    @property
    def generator_takes_labels(self) -> bool:
        return self.conditional

    @property
    def discriminator_takes_labels(self) -> bool:
        return self.conditional

    def build_generator(self):
        r = self.resolved
        return Generator(
            r["latent_dim"],
            r["w_dim"],
            self.image_size,
            self.channels,
            self.num_classes if self.conditional else 0,
            mapping_layers=r["mapping_layers"],
            channel_base=r["channel_base"],
            channel_max=r["channel_max"],
            conv_clamp=r["conv_clamp"],
            num_fp16_res=r["num_fp16_res"],
            seed=self.seed,
            name="generator",
        )

    def build_discriminator(self, freeze_layers=None):
        r = self.resolved
        return Discriminator(
            self.image_size,
            self.channels,
            self.num_classes if self.conditional else 0,
            architecture=r["d_architecture"],
            channel_base=r["channel_base"],
            channel_max=r["channel_max"],
            conv_clamp=r["conv_clamp"],
            num_fp16_res=r["num_fp16_res"],
            mbstd_group_size=r["mbstd_group"],
            freeze_layers=r["freeze_d"] if freeze_layers is None else freeze_layers,
            seed=self.seed + 1,
            name="discriminator",
        )

    def _build_ema_generator(self):
        from ragan.models.gan import _first_replica_variables

        with tf.variable_creator_scope(_first_replica_variables):
            ema = self.build_generator()
        ema.name = "ema_generator"
        ema.trainable = False
        for source, target in zip(self.generator.weights, ema.weights):
            target.assign(source)
        return ema

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Adam(beta_1 = 0, beta_2 = 0.99, epsilon = 1e-8) for both networks, with the learning
        rate and betas corrected for the lazy regularisation steps (see the module docstring)."""
        r = self.resolved

        def adam(rate, interval, name):
            ratio = interval / (interval + 1) if interval else 1.0
            return keras.optimizers.Adam(
                rate * ratio,
                beta_1=self.config.beta_1**ratio,
                beta_2=self.config.beta_2**ratio,
                epsilon=1e-8,
                name=name,
            )

        pl_on = r["pl_weight"] > 0
        r1_on = r["r1_gamma"] > 0 and r["r1_interval"] > 0
        if g_optimizer is None:
            g_optimizer = adam(r["g_learning_rate"], r["pl_interval"] if pl_on else 0, "g_adam")
        if d_optimizer is None:
            d_optimizer = adam(r["d_learning_rate"], r["r1_interval"] if r1_on else 0, "d_adam")
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, **kwargs)

    # ------------------------------------------------------------------------------------------
    # Training
    # ------------------------------------------------------------------------------------------
    def sample_latents(self, n, seed: int | None = None):
        if seed is not None:
            return keras.random.normal((n, self.latent_dim), seed=int(seed))
        return tf.random.stateless_normal(tf.stack([n, self.latent_dim]), seed=self.next_seed(), dtype=tf.float32)

    def generation_latents(self, n: int, seed: int | None = None, truncation: float | None = None):
        source = keras.random.SeedGenerator(int(seed)) if seed is not None else self.seed_generator
        return keras.ops.convert_to_numpy(keras.random.normal((n, self.latent_dim), seed=source)).astype(np.float32)

    def augment(self, images):
        """ADA: the ``augment_pipeline`` transforms, each with probability ``augment_probability``."""
        if not self.augment_policy:
            return images
        from ragan.layers.ada import ada_augment

        return ada_augment(images, self.augment_probability, self.next_seed(), pipeline=self.config.augment_pipeline)

    def _mapped(self, latents, labels):
        """ws for training images, with style mixing (one crossover point per batch)."""
        generator = self.generator
        one_hot = generator.one_hot(labels) if self.conditional else None
        w = generator.mapping(latents, c=one_hot)
        self._track_w_avg(w)
        ws = tf.tile(w[:, None, :], [1, generator.num_ws, 1])
        probability = self.resolved["style_mixing"]
        if probability > 0:
            seed = self.next_seed()
            cutoff = tf.random.stateless_uniform([], seed=seed, minval=1, maxval=generator.num_ws, dtype=tf.int32)
            mix = tf.random.stateless_uniform([], seed=seed + 1) < probability
            cutoff = tf.where(mix, cutoff, generator.num_ws)
            other = generator.mapping(self.sample_latents(tf.shape(latents)[0]), c=one_hot)
            keep = tf.range(generator.num_ws)[None, :, None] < cutoff
            ws = tf.where(keep, ws, other[:, None, :])
        return ws

    def _track_w_avg(self, w):
        mean = tf.reduce_mean(tf.stop_gradient(w), axis=0)
        replicas = self.num_replicas()
        if replicas > 1:
            mean = tf.distribute.get_replica_context().all_reduce("mean", mean)
        w_avg = self.generator.mapping.w_avg
        w_avg.assign(mean + (w_avg - mean) * self.generator.w_avg_beta)

    def _fakes(self, batch_size, labels):
        latents = self.sample_latents(batch_size)
        ws = self._mapped(latents, labels)
        return self.generator.synthesis(ws, noise_mode="random", noise_seed=self.next_seed()), ws

    def _discriminate(self, images, labels):
        return self.discriminator(self.discriminator_inputs(self.augment(images), labels), training=True)

    def _g_main(self, batch_size, labels):
        with tf.GradientTape() as tape:
            fakes, _ = self._fakes(batch_size, labels)
            logits = self._discriminate(fakes, labels)
            loss, for_gradients = self.reduce_loss(tf.nn.softplus(-tf.reshape(tf.cast(logits, tf.float32), [-1])))
            scaled = self.g_optimizer.scale_loss(for_gradients)
        self.apply_gradients(self.g_optimizer, tape, scaled, self.generator.trainable_variables)
        return loss

    def _g_path_length(self, batch_size, labels):
        r = self.resolved
        shrunk = tf.maximum(batch_size // r["pl_batch_shrink"], 1)
        labels = labels[:shrunk] if labels is not None else None
        with tf.GradientTape() as tape:
            latents = self.sample_latents(shrunk)
            ws = self._mapped(latents, labels)
            with tf.GradientTape() as inner:
                inner.watch(ws)
                images = self.generator.synthesis(ws, noise_mode="random", noise_seed=self.next_seed())
                shape = tf.shape(images)
                noise = tf.random.stateless_normal(shape, seed=self.next_seed()) / math.sqrt(self.image_size**2)
                total = tf.reduce_sum(tf.cast(images, tf.float32) * noise)
            gradients = inner.gradient(total, ws)
            pl_mean = self.pl_mean
            replicas = self.num_replicas()
            penalty, new_mean = path_length_penalty(gradients, pl_mean, decay=r["pl_decay"])
            if replicas > 1:
                new_mean = tf.distribute.get_replica_context().all_reduce("mean", new_mean)
            loss, for_gradients = self.reduce_loss(penalty * r["pl_weight"] * r["pl_interval"])
            scaled = self.g_optimizer.scale_loss(for_gradients)
        self.apply_gradients(self.g_optimizer, tape, scaled, self.generator.trainable_variables)
        self.pl_mean.assign(tf.stop_gradient(new_mean))
        self.last_pl_penalty.assign(tf.reduce_mean(penalty))

    def _d_main(self, real, labels):
        batch_size = tf.shape(real)[0]
        fakes, _ = self._fakes(batch_size, labels)
        fakes = tf.stop_gradient(fakes)
        with tf.GradientTape() as tape:
            fake_logits = tf.reshape(tf.cast(self._discriminate(fakes, labels), tf.float32), [-1])
            real_logits = tf.reshape(tf.cast(self._discriminate(real, labels), tf.float32), [-1])
            per_example = tf.nn.softplus(fake_logits) + tf.nn.softplus(-real_logits)
            loss, for_gradients = self.reduce_loss(per_example)
            scaled = self.d_optimizer.scale_loss(for_gradients)
        self.apply_gradients(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        return loss, real_logits

    def _d_r1(self, real, labels):
        r = self.resolved
        with tf.GradientTape() as tape:
            penalty = r1_penalty(lambda images: self._discriminate(images, labels), real)
            loss, for_gradients = self.reduce_loss(penalty * (r["r1_gamma"] / 2) * r["r1_interval"])
            scaled = self.d_optimizer.scale_loss(for_gradients)
        self.apply_gradients(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        self.last_r1_penalty.assign(tf.reduce_mean(penalty))

    def apply_gradients(self, optimizer, tape, loss, variables) -> None:
        # A regulariser does not reach every weight (R1 never reaches D's last bias); those get a
        # zero gradient, as in the official code, instead of a warning.
        gradients = tape.gradient(loss, variables)
        gradients = [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(gradients, variables)]
        optimizer.apply_gradients(zip(gradients, variables))

    def _every(self, interval: int):
        return tf.equal(self.step_counter % interval, 0)

    def _due_regularisers(self) -> tuple[bool, bool]:
        """Whether this step runs the path-length and the R1 regularisation step."""
        r = self.resolved
        step = int(self.step_counter.numpy())
        return (
            r["pl_weight"] > 0 and step % r["pl_interval"] == 0,
            r["r1_gamma"] > 0 and r["r1_interval"] > 0 and step % r["r1_interval"] == 0,
        )

    def make_train_function(self, force=False):
        """One compiled step per combination of due regularisers, chosen before each step.

        Lazy regularisation is a separate optimizer step every few steps; an optimizer update (a
        synchronisation point under ``tf.distribute``) cannot sit inside ``tf.cond``, so the step
        to run is chosen in Python, as the official training loop does, from the step counter.
        """
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution != 1:
            raise RaganError(
                "stylegan2 trains one step per execution (steps_per_execution=1): "
                "its regularisation steps are chosen step by step."
            )
        compiled = {}

        def train_function(iterator):
            due = self._due_regularisers()
            if due not in compiled:
                compiled[due] = self._make_function(lambda data, due=due: self._train_step(data, *due))
            return compiled[due](iterator)

        self.train_function = train_function
        return train_function

    def train_step(self, data):
        """One training step (the due regularisers decided in the graph; ``fit`` uses
        :meth:`make_train_function`'s per-step choice instead)."""
        return self._train_step(data, None, None)

    def _train_step(self, data, pl_due, r1_due):
        r = self.resolved
        real, labels = self.unpack_batch(data)
        batch_size = tf.shape(real)[0]
        global_batch = tf.cast(batch_size * self.num_replicas(), tf.float32)

        def maybe(due, interval, step):
            if due is None:  # decided in the graph

                def run():
                    step()
                    return tf.constant(0)

                tf.cond(self._every(interval), run, lambda: tf.constant(0))
            elif due:
                step()

        g_loss = self._g_main(batch_size, labels)
        if r["pl_weight"] > 0:
            maybe(pl_due, r["pl_interval"], lambda: self._g_path_length(batch_size, labels))
        d_loss, real_logits = self._d_main(real, labels)
        if r["r1_gamma"] > 0 and r["r1_interval"] > 0:
            maybe(r1_due, r["r1_interval"], lambda: self._d_r1(real, labels))

        self._update_ema(global_batch)
        self.update_augment_probability(real_logits)
        self.images_seen.assign_add(global_batch)
        self.step_counter.assign_add(1)
        self._track({"g_loss": g_loss, "d_loss": d_loss, "real_sign": tf.reduce_mean(tf.sign(real_logits))})
        return self.training_logs()

    def _update_ema(self, global_batch):
        """``ema = w + (ema - w) * 0.5 ** (batch / ema_images)``: a half-life of ``ema_kimg``
        thousand images, at most ``ema_rampup`` times the images seen so far; buffers copied."""
        if self.ema_generator is None:
            return
        r = self.resolved
        ema_images = tf.constant(r["ema_kimg"] * 1000.0)
        if r["ema_rampup"] > 0:
            ema_images = tf.minimum(ema_images, self.images_seen * r["ema_rampup"])
        beta = tf.pow(0.5, global_batch / tf.maximum(ema_images, 1e-8))
        for source, average in zip(self.generator.weights, self.ema_generator.weights):
            if source.trainable:
                average.assign(source + (average - source) * beta)
            else:
                average.assign(source)

    def update_augment_probability(self, real_logits) -> None:
        """ADA: every ``ada_interval`` steps, ``p += sign(mean sign(D(real)) - target) * images /
        (ada_kimg * 1000)``, clipped to [0, 1]."""
        if self.config.augment != "ada":
            return
        from ragan.layers.ada import ada_adjust

        signs = tf.reduce_sum(tf.sign(real_logits))
        count = tf.cast(tf.size(real_logits), tf.float32)
        if self.num_replicas() > 1:
            context = tf.distribute.get_replica_context()
            signs, count = context.all_reduce("sum", signs), context.all_reduce("sum", count)
        total, count = self.ada_sign_sum + signs, self.ada_sign_count + count
        # No tf.cond: assigning a mirrored variable inside one is refused under tf.distribute.
        due = tf.equal((self.step_counter + 1) % self.config.ada_interval, 0)
        adjusted = ada_adjust(
            self.augment_probability,
            total / tf.maximum(count, 1.0),
            target=self.config.ada_target,
            images_since_last=count,
            ada_kimg=self.resolved["ada_kimg"],
        )
        self.augment_probability.assign(tf.where(due, adjusted, self.augment_probability))
        self.ada_sign_sum.assign(tf.where(due, 0.0, total))
        self.ada_sign_count.assign(tf.where(due, 0.0, count))

    def update_ema(self) -> None:  # the base class's per-step EMA is replaced by _update_ema
        return None

    def training_logs(self) -> dict:
        logs = super().training_logs()
        extra = {}
        if self.resolved["r1_gamma"] > 0 and self.resolved["r1_interval"] > 0:
            extra["r1_penalty"] = tf.identity(self.last_r1_penalty.value)
        if self.resolved["pl_weight"] > 0:
            extra["pl_penalty"] = tf.identity(self.last_pl_penalty.value)
        if self.reshape_logs:
            extra = {name: tf.reshape(value, [1]) for name, value in extra.items()}
        return {**logs, **extra}

    def transfer_from(self, source) -> dict:
        """Copy ``source``'s weights variable by variable (official names), where shapes agree:
        another StyleGAN2 run, or an imported official network (transfer learning)."""
        from ragan.models.stylegan2.label_transfer import widened_mapping_input
        from ragan.models.stylegan2.official_names import named_variables

        if not isinstance(source, StyleGAN2):
            raise RaganError(
                f"a stylegan2 model can start only from another stylegan2 model or an official .pkl, "
                f"not from a {getattr(source, 'gan_name', type(source).__name__)}."
            )
        loaded, skipped = [], []
        for part in ("generator", "discriminator", "ema_generator"):
            destination, origin = getattr(self, part), getattr(source, part)
            if destination is None:
                continue
            if origin is None:
                origin = source.generator if part == "ema_generator" else None
            if origin is None:
                skipped.append(f"{part} (the source has none)")
                continue
            theirs = {name: variable for name, variable, _ in named_variables(origin)}
            for name, variable, _ in named_variables(destination):
                match = theirs.get(name)
                widened = None if match is None else widened_mapping_input(name, match, variable.shape)
                if match is None:
                    skipped.append(f"{part}/{name} (not in the source)")
                elif widened is not None:  # unconditional -> conditional: see label_transfer
                    variable.assign(widened)
                    loaded.append(f"{part}/{name} (its z rows; the new label rows start at zero)")
                elif tuple(match.shape) != tuple(variable.shape):
                    skipped.append(
                        f"{part}/{name} (shape {tuple(variable.shape)} here, {tuple(match.shape)} in the source)"
                    )
                else:
                    variable.assign(match)
                    loaded.append(f"{part}/{name}")
        self.augment_probability.assign(source.augment_probability)
        return {"loaded": loaded, "skipped": skipped}

    # ------------------------------------------------------------------------------------------
    # Using a trained model
    # ------------------------------------------------------------------------------------------
    def generate(
        self,
        n: int | None = None,
        labels=None,
        seed: int | None = None,
        *,
        batch_size: int = 64,
        truncation: float | None = None,
        use_ema: bool = True,
        noise_mode: str = "const",
        latents=None,
        clip: bool = True,
    ) -> np.ndarray:
        """Generate images, NHWC float32 in [-1, 1].

        Args:
            n: number of images (or give ``latents``).
            labels: for conditional models, an int, ``n`` ints, or ``None`` (classes in turn).
            seed: the latents (and random noise) are a function of the seed alone.
            batch_size: images per generator call.
            truncation: psi in (0, 1] pulls w toward the average ``w_avg`` (the truncation trick
                of StyleGAN); ``None`` or 1 means none.
            use_ema: generate with the EMA generator.
            noise_mode: ``const`` (the stored noise maps, deterministic), ``random`` or ``none``.
            latents: explicit z ``(n, latent_dim)`` instead of drawing them.
            clip: clip to [-1, 1] (the generator has no output non-linearity; its images stray
                slightly outside the range, as the official ones do).

        Example:
            >>> tiny = {"cfg": "small", "latent_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_max": 8}
            >>> gan = StyleGAN2(tiny, image_size=16)
            >>> z = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
            >>> images = gan.generate(latents=z, truncation=0.7, noise_mode="const")
            >>> images.shape
            (2, 16, 16, 1)
        """
        if noise_mode not in NOISE_MODES:
            raise RaganError(f"noise_mode={noise_mode!r} is not one of {', '.join(NOISE_MODES)}.")
        psi = 1.0 if truncation is None else float(truncation)
        if not psi > 0:
            raise RaganError(f"truncation={truncation!r} must be > 0 (or None for none).")
        if latents is not None:
            latents = np.asarray(latents, dtype=np.float32)
            if latents.ndim != 2 or latents.shape[1] != self.latent_dim:
                raise RaganError(f"latents must have shape (n, {self.latent_dim}), got {latents.shape}.")
            if n is not None and n != latents.shape[0]:
                raise RaganError(f"n={n} but {latents.shape[0]} latents were given.")
            n = latents.shape[0]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise RaganError(f"n={n!r} must be an integer >= 0.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise RaganError(f"batch_size={batch_size!r} must be an integer >= 1.")
        label_array = self.resolve_labels(labels, n)
        if latents is None:
            latents = self.generation_latents(n, seed)
        network = self.ema_generator if use_ema and self.ema_generator is not None else self.generator
        function = _synthesize_function(network, psi, noise_mode, self.conditional)
        base_seed = 0 if seed is None else int(seed)
        images = np.empty((n, self.image_size, self.image_size, self.channels), np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            batch_labels = label_array[start:stop] if label_array is not None else np.zeros((stop - start,), np.int32)
            noise_seed = np.array([base_seed, start], np.int32)
            images[start:stop] = function(latents[start:stop], batch_labels, noise_seed).numpy()
        return np.clip(images, -1.0, 1.0, out=images) if clip else images

    def map_latents(self, latents, labels=None, truncation: float | None = None, use_ema: bool = True) -> np.ndarray:
        """The ws ``(n, num_ws, w_dim)`` for ``latents`` (truncated toward ``w_avg`` when asked)."""
        network = self.ema_generator if use_ema and self.ema_generator is not None else self.generator
        label_array = self.resolve_labels(labels, len(latents))
        psi = 1.0 if truncation is None else float(truncation)
        return network.map(np.asarray(latents, np.float32), label_array, psi).numpy()
