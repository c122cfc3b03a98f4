"""The GAN base class: the extension point every ragan model (and a user's own) builds on.

A GAN owns its two networks, their optimizers, the generator's exponential moving average, the
augmentation state and one ``keras.random.SeedGenerator`` from which all its noise is drawn. Its
``train_step`` runs ``d_steps`` discriminator updates then one generator update; subclasses choose
the losses (the :meth:`GAN.discriminator_loss` / :meth:`GAN.generator_loss` hooks) or rewrite a
whole step (:meth:`GAN.discriminator_step` / :meth:`GAN.generator_step`), and may replace the
networks (:meth:`GAN.build_generator` / :meth:`GAN.build_discriminator`, by default the DCGAN
ones from :mod:`ragan.layers.blocks`).

Rules a step follows, so that the model trains the same on one device or many
(``tf.distribute``):

* losses are reduced per *global* batch (the replica's mean divided by the number of replicas,
  because Keras sums the replicas' gradients); :meth:`GAN.reduce_loss` does it;
* randomness comes from :meth:`GAN.next_seed` (the model's ``SeedGenerator``, folded with the
  replica id so that replicas draw different noise) and stateless random ops;
* no Python-side state changes inside ``train_step``: every piece of state is a variable.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ragan._keras_internals import fused_adam_update
from ragan._tf import import_keras, import_tf
from ragan.config import Choice, Config, Float, hparam
from ragan.errors import RaganError
from ragan.layers.augment import ada_update, diff_augment, parse_augment_policy
from ragan.layers.blocks import build_discriminator, build_generator, check_channels, check_image_size
from ragan.losses.adversarial import per_example
from ragan.shapes import SUPPORTED_IMAGE_SIZES

tf = import_tf()
keras = import_keras()

# network -> its inference call compiled with tf.function (one graph per network, any batch size).
# Kept outside the model so that Keras does not track or serialise it.
_COMPILED_INFERENCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inference(network):
    """``network(inputs, training=False)`` as a graph: generation runs about 1.15x faster than eager
    calls on a CPU (benchmarks/train_throughput.py), and the weights are read at each call."""
    function = _COMPILED_INFERENCE.get(network)
    if function is None:
        function = tf.function(lambda inputs: network(inputs, training=False), reduce_retracing=True)
        _COMPILED_INFERENCE[network] = function
    return function


__all__ = ["GAN", "GANConfig"]


@dataclass
class GANConfig(Config):
    """Hyperparameters every ragan GAN has; a model's own config subclasses this one.

    Example:
        >>> GANConfig.from_dict({"latent_dim": 64, "ema_decay": 0}).latent_dim
        64
    """

    latent_dim: int = hparam(128, help="Length of the generator's noise vector z.", tune=Choice(64, 128, 256), min=1)
    base_filters: int = hparam(
        64,
        help="Filters of the highest-resolution block; doubles per block toward 4x4, capped at 8x.",
        tune=Choice(32, 64, 128),
        min=4,
    )
    g_learning_rate: float = hparam(
        2e-4, help="Generator Adam learning rate.", tune=Float(1e-5, 1e-3, sampling="log"), min=0
    )
    d_learning_rate: float = hparam(
        2e-4, help="Discriminator Adam learning rate.", tune=Float(1e-5, 1e-3, sampling="log"), min=0
    )
    beta_1: float = hparam(0.5, help="Adam beta_1 of both optimizers.", tune=Choice(0.0, 0.5), min=0, max=1)
    beta_2: float = hparam(0.999, help="Adam beta_2 of both optimizers.", min=0, max=1)
    d_steps: int = hparam(1, help="Discriminator (critic) updates per generator update.", min=1)
    conditional: bool = hparam(False, help="Condition G and D on class labels (needs a labelled dataset).")
    ema_decay: float = hparam(
        0.999,
        help="Decay of the generator's exponential moving average (warmed up as "
        "min(decay, (1+t)/(10+t))); 0 turns EMA off.",
        min=0,
        max=1,
    )
    augment: str = hparam(
        "none",
        help="Differentiable augmentation of D's inputs for small datasets: always on "
        "(diffaugment) or with an adaptive probability (ada).",
        choices=("none", "diffaugment", "ada"),
    )
    augment_policy: str = hparam(
        "color,translation,cutout",
        help="Comma-separated augmentations among color, translation, cutout.",
    )
    ada_target: float = hparam(0.6, help="ADA target for E[sign(D(real))].", min=0, max=1)
    ada_kimg: float = hparam(
        100.0,
        help="ADA speed: thousands of real images needed to move the probability from 0 to 1.",
        min=0.001,
    )


def first_replica_variables(next_creator, **kwargs):
    """A ``tf.variable_creator_scope`` creator for weights written in replica context (the EMA generator's).

    A mirrored variable accepts writes in replica context (in ``train_step``) only with an
    aggregation; the generator's weights are identical on every replica, so taking the first
    replica's update is exact.
    """
    kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
    return next_creator(**kwargs)


class GAN(keras.Model):
    """Base class of ragan's GANs: subclass it, register it, and every stage can use it.

    A subclass sets the losses by overriding :meth:`discriminator_loss` and
    :meth:`generator_loss` (functions of logits returning one loss per example), or whole steps
    by overriding :meth:`discriminator_step` / :meth:`generator_step`, and may replace the
    networks by overriding :meth:`build_generator` / :meth:`build_discriminator`. Extra scalars a
    step returns must be named in the class attribute ``log_names``.

    Args:
        config: the model's hyperparameters: a ``config_class`` instance, a dict of overrides, or
            ``None`` for the defaults.
        image_size: image side in pixels, a power of two in 16..256.
        channels: 1 (greyscale) or 3 (RGB).
        num_classes: number of classes of the dataset (needed when ``config.conditional``).
        seed: seed of the model's ``SeedGenerator``, the source of all its randomness.
        **kwargs: passed to ``keras.Model`` (``name``...).

    Example:
        >>> from dataclasses import dataclass
        >>> import ragan
        >>> from ragan.losses import hinge_discriminator_loss, hinge_generator_loss
        >>> @dataclass
        ... class MyConfig(ragan.models.GANConfig):
        ...     pass
        >>> @ragan.register_gan("my_hinge_gan", config=MyConfig)
        ... class MyHingeGAN(ragan.models.GAN):
        ...     def discriminator_loss(self, real_logits, fake_logits):
        ...         return hinge_discriminator_loss(real_logits, fake_logits)
        ...     def generator_loss(self, fake_logits):
        ...         return hinge_generator_loss(fake_logits)
        >>> gan = MyHingeGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
        >>> gan.compile(run_eagerly=True)   # eager: quicker for a 2-step demo; leave it out to train
        >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
        >>> history = gan.fit(images, batch_size=8, epochs=1, verbose=0)   # 2 steps
        >>> gan.generate(4, seed=0).shape
        (4, 16, 16, 1)
    """

    gan_name: str | None = None
    config_class: type = GANConfig
    #: The image sizes the networks can be built for.
    supported_image_sizes: tuple[int, ...] = SUPPORTED_IMAGE_SIZES
    #: True for models that are conditional by construction (AC-GAN).
    always_conditional: bool = False
    #: True when ``sigmoid(D(x))`` is a probability that x is real (a cross-entropy-trained D);
    #: False for critics and margin scores (WGAN, hinge), which the generation filter then refuses.
    discriminator_gives_probability: bool = True
    #: Scalars the steps return; each gets a ``keras.metrics.Mean`` tracker.
    log_names: tuple[str, ...] = ("d_loss", "g_loss")

    def __init__(
        self,
        config=None,
        *,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 0,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = self._resolve_config(config)
        self.image_size = check_image_size(image_size, self.supported_image_sizes)
        self.channels = check_channels(channels)
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 0:
            raise RaganError(f"num_classes={num_classes!r} must be an integer >= 0.")
        self.num_classes = int(num_classes)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise RaganError(f"seed={seed!r} must be an integer.")
        self.seed = int(seed)
        self.conditional = bool(self.always_conditional or self.config.conditional)
        if self.conditional and self.num_classes < 2:
            why = f"{type(self).__name__} is always conditional" if self.always_conditional else "conditional=True"
            raise RaganError(
                f"{why}: it needs a labelled dataset with at least 2 classes, got num_classes={self.num_classes}."
            )
        self.augment_policy = self.resolve_augment_policy()
        self.reshape_logs = False

        self.seed_generator = keras.random.SeedGenerator(self.seed, name="gan_seed_generator")
        self.generator = self.build_generator()
        self.discriminator = self.build_discriminator()
        self._check_network(self.generator, "build_generator")
        self._check_network(self.discriminator, "build_discriminator")
        self.ema_generator = self._build_ema_generator() if self.uses_ema() else None
        self.augment_probability = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_augment_probability()),
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="augment_probability",
        )
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self.log_names}
        self.g_optimizer = None
        self.d_optimizer = None
        self.built = True

    # ------------------------------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------------------------------
    @classmethod
    def _resolve_config(cls, config):
        wanted = cls.config_class
        if config is None:
            return wanted()
        if isinstance(config, wanted):
            return config
        if isinstance(config, Mapping):
            return wanted.from_dict(config)
        if isinstance(config, Config):
            return wanted.from_dict(config.to_dict())
        raise RaganError(
            f"config must be a {wanted.__name__}, a dict of hyperparameters or None, not {type(config).__name__}."
        )

    @classmethod
    def training_defaults(cls, config, image_size: int) -> dict:
        """Training options this model prefers by default (e.g. ``{"batch_size": 32}``) for a
        dataset of ``image_size``; the user's options override them. None by default."""
        return {}

    def resolve_augment_policy(self) -> tuple[str, ...]:
        """The augmentations D's inputs go through (empty: none)."""
        return parse_augment_policy(self.config.augment_policy) if self.config.augment != "none" else ()

    def uses_ema(self) -> bool:
        """Whether the model keeps an EMA copy of the generator."""
        return self.config.ema_decay > 0

    def initial_augment_probability(self) -> float:
        """The starting value of ``augment_probability``."""
        return 1.0 if self.config.augment == "diffaugment" else 0.0

    def _check_network(self, network, method: str) -> None:
        if not isinstance(network, keras.Model):
            raise RaganError(
                f"{type(self).__name__}.{method}() must return a keras.Model, got {type(network).__name__}."
            )

    def build_generator(self):
        """The generator network (default: the DCGAN generator, conditional when the model is).

        Returns a ``keras.Model`` taking ``z`` of shape ``(B, latent_dim)``, or ``[z, labels]``
        for conditional models, and returning images ``(B, S, S, C)`` in [-1, 1].
        """
        return build_generator(
            latent_dim=self.config.latent_dim,
            image_size=self.image_size,
            channels=self.channels,
            base_filters=self.config.base_filters,
            num_classes=self.num_classes if self.conditional else 0,
            seed=self.seed,
            name="generator",
        )

    def build_discriminator(self):
        """The discriminator network (default: the DCGAN discriminator with BatchNorm, with a
        projection head on the labels when the model is conditional).

        Returns a ``keras.Model`` taking images (or ``[images, labels]``) and returning logits
        ``(B, 1)`` (optionally as the first of several outputs).
        """
        return build_discriminator(
            image_size=self.image_size,
            channels=self.channels,
            base_filters=self.config.base_filters,
            norm="batch",
            projection_classes=self.num_classes if self.conditional else 0,
            seed=self.seed + 1,
            name="discriminator",
        )

    def _build_ema_generator(self):
        with tf.variable_creator_scope(first_replica_variables):
            ema = keras.models.clone_model(self.generator)
        ema.name = "ema_generator"
        ema.trainable = False
        ema.set_weights(self.generator.get_weights())
        return ema

    @property
    def generator_takes_labels(self) -> bool:
        return len(self.generator.inputs) > 1

    @property
    def discriminator_takes_labels(self) -> bool:
        return len(self.discriminator.inputs) > 1

    # ------------------------------------------------------------------------------------------
    # Compilation
    # ------------------------------------------------------------------------------------------
    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Set the two optimizers (default: Adam from the config) and build them eagerly.

        Under a ``mixed_float16`` policy each optimizer is wrapped in a ``LossScaleOptimizer``.
        Building the optimizers' variables here, on the networks' variables, is what lets the
        model train under ``MirroredStrategy`` (call ``compile`` inside ``strategy.scope()``).

        Args:
            g_optimizer: the generator's optimizer.
            d_optimizer: the discriminator's optimizer.
            **kwargs: passed to ``keras.Model.compile`` (``jit_compile``, ``steps_per_execution``...).

        Example:
            >>> from ragan.models import DCGAN
            >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
            >>> gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, 0.0, 0.9))
            >>> float(gan.g_optimizer.learning_rate)
            0.0001
        """
        config = self.config
        if g_optimizer is None:
            g_optimizer = keras.optimizers.Adam(
                config.g_learning_rate, beta_1=config.beta_1, beta_2=config.beta_2, name="g_adam"
            )
        if d_optimizer is None:
            d_optimizer = keras.optimizers.Adam(
                config.d_learning_rate, beta_1=config.beta_1, beta_2=config.beta_2, name="d_adam"
            )
        if self.dtype_policy.name == "mixed_float16":
            g_optimizer = self._loss_scaled(g_optimizer)
            d_optimizer = self._loss_scaled(d_optimizer)
        for key in ("optimizer", "loss", "metrics"):
            if kwargs.pop(key, None) is not None:
                raise RaganError(
                    f"{type(self).__name__}.compile() takes g_optimizer/d_optimizer; '{key}' is not used by a GAN."
                )
        super().compile(optimizer=g_optimizer, **kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        if not g_optimizer.built:
            g_optimizer.build(self.generator.trainable_variables)
        if not d_optimizer.built:
            d_optimizer.build(self.discriminator.trainable_variables)

    @staticmethod
    def _loss_scaled(optimizer):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scaled")

    def get_compile_config(self):
        if self.g_optimizer is None:
            return None
        return {
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]),
            d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
        )

    # ------------------------------------------------------------------------------------------
    # Randomness
    # ------------------------------------------------------------------------------------------
    def next_seed(self):
        """A fresh shape-``(2,)`` seed for TensorFlow's stateless random ops.

        Drawn from the model's ``SeedGenerator`` (checkpointed state) and, under a distribution
        strategy, folded with the replica id so that replicas draw different noise.
        """
        seed = self.seed_generator.next()
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, context.replica_id_in_sync_group)
        return seed

    def sample_latents(self, n, seed: int | None = None):
        """Noise vectors ``z ~ N(0, I)`` of shape ``(n, latent_dim)``.

        Args:
            n: how many (an int or a scalar tensor).
            seed: an int for reproducible latents; ``None`` draws from the model's
                ``SeedGenerator`` (advancing it).
        """
        if seed is not None:
            return keras.random.normal((n, self.config.latent_dim), seed=int(seed))
        return tf.random.stateless_normal(
            tf.stack([n, self.config.latent_dim]), seed=self.next_seed(), dtype=tf.float32
        )

    # ------------------------------------------------------------------------------------------
    # Pieces of a training step
    # ------------------------------------------------------------------------------------------
    def generator_inputs(self, latents, labels):
        """What the generator is called with: ``z`` or ``[z, labels]``."""
        return [latents, labels] if self.generator_takes_labels else latents

    def discriminator_inputs(self, images, labels):
        """What the discriminator is called with: images or ``[images, labels]``."""
        return [images, labels] if self.discriminator_takes_labels else images

    def augment(self, images):
        """Differentiable augmentation of D's inputs (identity when ``augment="none"``)."""
        if not self.augment_policy:
            return images
        probability = 1.0 if self.config.augment == "diffaugment" else self.augment_probability
        return diff_augment(images, policy=self.augment_policy, probability=probability, seed=self.next_seed())

    @staticmethod
    def num_replicas() -> int:
        return tf.distribute.get_strategy().num_replicas_in_sync

    def reduce_loss(self, per_example_loss):
        """The replica's mean loss (for logs) and the same divided by the number of replicas
        (for gradients: Keras sums replica gradients, so the sum is the global-batch mean).

        Returns:
            ``(loss_for_logs, loss_for_gradients)``.
        """
        loss = tf.reduce_mean(per_example_loss)
        replicas = self.num_replicas()
        return loss, (loss / replicas if replicas > 1 else loss)

    def apply_gradients(self, optimizer, tape, loss, variables) -> None:
        """Scale the loss (mixed precision), differentiate it and apply the update."""
        gradients = tape.gradient(loss, variables)
        if not fused_adam_update(optimizer, gradients, variables):
            optimizer.apply_gradients(zip(gradients, variables))

    def discriminator_loss(self, real_logits, fake_logits):
        """Per-example discriminator loss from logits; subclasses define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define discriminator_loss(real_logits, fake_logits) "
            "or override discriminator_step()."
        )

    def generator_loss(self, fake_logits):
        """Per-example generator loss from D's logits on generated images; subclasses define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must define generator_loss(fake_logits) or override generator_step()."
        )

    def discriminator_step(self, real_images, labels) -> dict:
        """One discriminator update; returns ``{"d_loss": ...}`` (and any other ``log_names``).

        Generated images reuse the real batch's labels, so D sees the same classes on both sides.
        """
        batch_size = tf.shape(real_images)[0]
        latents = self.sample_latents(batch_size)
        fake_images = self.generator(self.generator_inputs(latents, labels), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(
                self.discriminator_inputs(self.augment(real_images), labels), training=True
            )
            fake_logits = self.discriminator(
                self.discriminator_inputs(self.augment(fake_images), labels), training=True
            )
            loss, loss_for_gradients = self.reduce_loss(self.discriminator_loss(real_logits, fake_logits))
            scaled = self.d_optimizer.scale_loss(loss_for_gradients)
        self.apply_gradients(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        self.update_augment_probability(real_logits)
        return {"d_loss": loss}

    def generator_step(self, batch_size, labels) -> dict:
        """One generator update; returns ``{"g_loss": ...}``."""
        latents = self.sample_latents(batch_size)
        with tf.GradientTape() as tape:
            fake_images = self.generator(self.generator_inputs(latents, labels), training=True)
            fake_logits = self.discriminator(
                self.discriminator_inputs(self.augment(fake_images), labels), training=True
            )
            loss, loss_for_gradients = self.reduce_loss(self.generator_loss(fake_logits))
            scaled = self.g_optimizer.scale_loss(loss_for_gradients)
        self.apply_gradients(self.g_optimizer, tape, scaled, self.generator.trainable_variables)
        return {"g_loss": loss}

    def update_augment_probability(self, real_logits) -> None:
        """ADA: move ``augment_probability`` from the sign of D's outputs on real images.

        A subclass overriding :meth:`discriminator_step` calls this with its real logits.
        """
        if self.config.augment != "ada":
            return
        sign_mean = tf.reduce_mean(tf.sign(per_example(real_logits)))
        batch = tf.cast(tf.shape(real_logits)[0], tf.float32)
        replicas = self.num_replicas()
        if replicas > 1:
            sign_mean = tf.distribute.get_replica_context().all_reduce("mean", sign_mean)
        step = batch * replicas / (self.config.ada_kimg * 1000.0)
        self.augment_probability.assign(
            ada_update(self.augment_probability, sign_mean, target=self.config.ada_target, step=step)
        )

    def update_ema(self) -> None:
        """Move the EMA generator toward the generator (call after each generator update).

        Trainable weights are averaged with decay ``min(ema_decay, (1 + t) / (10 + t))`` (t =
        generator updates so far, as in ``tf.train.ExponentialMovingAverage``'s ``num_updates``)
        so that short runs are not dominated by the random initial weights; BatchNorm statistics
        are copied.
        """
        if self.ema_generator is None:
            return
        step = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.config.ema_decay, (1.0 + step) / (10.0 + step))
        for source, average in zip(self.generator.weights, self.ema_generator.weights):
            if source.trainable:
                average.assign(average - (1.0 - decay) * (average - source))
            else:
                average.assign(source)

    def unpack_batch(self, data):
        """``(images, labels)`` from a dataset element: images, ``(images,)``, ``(images, labels)``
        or a dict with ``image``/``images`` and ``label``/``labels``. Labels are ``None`` for
        unconditional models; one-hot labels become class indices."""
        labels = None
        if isinstance(data, Mapping):
            images = data.get("images", data.get("image"))
            labels = data.get("labels", data.get("label"))
        elif isinstance(data, (tuple, list)):
            images = data[0]
            labels = data[1] if len(data) > 1 else None
        else:
            images = data
        if images is None:
            raise RaganError("the training dataset's elements have no 'image'/'images' entry.")
        if not images.dtype.is_floating:
            raise RaganError(
                f"training images must be floats in [-1, 1], got dtype {images.dtype.name} "
                "(load the dataset with ragan.load_dataset)."
            )
        if not self.conditional:
            return images, None
        if labels is None:
            raise RaganError(
                f"{type(self).__name__} is conditional but the training dataset has no labels "
                "(prepare a labelled dataset, or set conditional=false)."
            )
        if labels.shape.rank == 2 and labels.shape[-1] not in (None, 1):
            labels = tf.argmax(labels, axis=-1)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return images, labels

    def train_step(self, data):
        real_images, labels = self.unpack_batch(data)
        batch_size = tf.shape(real_images)[0]
        # A Python loop: d_steps is a constant, so the graph holds d_steps unrolled updates.
        for _ in range(self.config.d_steps):
            self._track(self.discriminator_step(real_images, labels))
        self._track(self.generator_step(batch_size, labels))
        self.update_ema()
        return self.training_logs()

    def _track(self, logs: dict) -> None:
        for name, value in logs.items():
            tracker = self._trackers.get(name)
            if tracker is None:
                raise RaganError(
                    f"{type(self).__name__}: a step returned the log {name!r}, which is not in "
                    f"log_names {self.log_names}; add it to the class attribute log_names."
                )
            tracker.update_state(value)

    def training_logs(self) -> dict:
        """name -> value of every tracker (and ``augment_p`` when augmenting); shape ``[1]``
        instead of scalars when ``reshape_logs`` is set (Keras 3 + MultiWorkerMirroredStrategy,
        tensorflow/tensorflow#72388)."""
        logs = {name: tracker.result() for name, tracker in self._trackers.items()}
        if self.augment_policy:
            logs["augment_p"] = tf.identity(self.augment_probability.value)
        if self.reshape_logs:
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    @property
    def metrics(self):
        return list(self._trackers.values())

    def call(self, inputs, training=False):
        """Images from the generator: ``inputs`` is ``z`` or ``[z, labels]``."""
        return self.generator(inputs, training=training)

    # ------------------------------------------------------------------------------------------
    # Using a trained model
    # ------------------------------------------------------------------------------------------
    def resolve_labels(self, labels, n: int):
        """Class labels for ``n`` generated images as an int32 array, or ``None`` when
        unconditional. ``labels`` is an int, a sequence of ``n`` ints, or ``None`` (classes in
        turn: 0, 1, ..., num_classes - 1, 0, ...)."""
        if not self.conditional:
            if labels is not None:
                raise RaganError(
                    f"labels were given but this {type(self).__name__} is unconditional "
                    "(trained with conditional=false)."
                )
            return None
        if labels is None:
            return (np.arange(n) % self.num_classes).astype(np.int32)
        array = np.asarray(labels)
        if array.ndim == 0:
            array = np.full(n, array)
        array = array.reshape(-1)
        if array.size != n:
            raise RaganError(f"labels has {array.size} entries but n={n} images were asked for.")
        if (
            not np.issubdtype(array.dtype, np.integer)
            or array.min(initial=0) < 0
            or array.max(initial=0) >= self.num_classes
        ):
            raise RaganError(
                f"labels must be integers in 0..{self.num_classes - 1}, got {np.unique(array)[:10].tolist()}."
            )
        return array.astype(np.int32)

    def generation_latents(self, n: int, seed: int | None = None, truncation: float | None = None):
        """The latents :meth:`generate` uses, as a float32 array ``(n, latent_dim)``.

        With ``truncation=psi`` every coordinate with ``|z| > psi`` is redrawn until it lies
        within ``[-psi, psi]`` (the truncation trick of Brock et al. 2019, BigGAN): smaller psi
        trades variety for typicality.
        """
        if truncation is not None and not truncation > 0:
            raise RaganError(f"truncation={truncation!r} must be > 0 (or None for no truncation).")
        source = keras.random.SeedGenerator(int(seed)) if seed is not None else self.seed_generator
        shape = (n, self.config.latent_dim)
        latents = keras.ops.convert_to_numpy(keras.random.normal(shape, seed=source))
        if truncation is not None:
            for _ in range(10_000):
                outside = np.abs(latents) > truncation
                if not outside.any():
                    break
                redrawn = keras.ops.convert_to_numpy(keras.random.normal(shape, seed=source))
                latents = np.where(outside, redrawn, latents)
            latents = np.clip(latents, -truncation, truncation)
        return latents.astype(np.float32)

    def generate(
        self,
        n: int,
        labels=None,
        seed: int | None = None,
        *,
        batch_size: int = 256,
        truncation: float | None = None,
        use_ema: bool = True,
    ) -> np.ndarray:
        """Generate ``n`` images.

        Args:
            n: number of images.
            labels: for conditional models, an int (every image of that class), ``n`` ints, or
                ``None`` (classes in turn, balanced). Must be ``None`` for unconditional models.
            seed: an int makes the output reproducible (same seed, same images); ``None`` draws
                from the model's own ``SeedGenerator``.
            batch_size: images per generator call.
            truncation: optional psi > 0; latent coordinates are redrawn until ``|z| <= psi``.
            use_ema: use the EMA generator when the model has one.

        Returns:
            float32 images in [-1, 1], shape ``(n, image_size, image_size, channels)``.

        Example:
            >>> from ragan.models import DCGAN
            >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
            >>> images = gan.generate(16, seed=0)
            >>> images.shape, images.dtype
            ((16, 16, 16, 1), dtype('float32'))
            >>> bool(np.array_equal(images, gan.generate(16, seed=0)))   # same seed, same images
            True
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise RaganError(f"n={n!r} must be an integer >= 0.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise RaganError(f"batch_size={batch_size!r} must be an integer >= 1.")
        label_array = self.resolve_labels(labels, n)
        latents = self.generation_latents(n, seed, truncation)
        network = self.ema_generator if use_ema and self.ema_generator is not None else self.generator
        images = np.empty((n, self.image_size, self.image_size, self.channels), np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            inputs = latents[start:stop]
            if label_array is not None:
                inputs = [inputs, label_array[start:stop]]
            images[start:stop] = keras.ops.convert_to_numpy(_inference(network)(inputs))
        return images

    def discriminate(self, images, labels=None, *, batch_size: int = 256) -> np.ndarray:
        """D's realness logits for ``images`` (e.g. to filter generated images).

        Args:
            images: float images in [-1, 1], shape ``(n, image_size, image_size, channels)``.
            labels: class labels, needed when D is conditioned on them (projection head).
            batch_size: images per discriminator call.

        Returns:
            float32 logits, shape ``(n,)``; higher means "more real".
        """
        images = np.asarray(images, dtype=np.float32)
        expected = (self.image_size, self.image_size, self.channels)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise RaganError(f"images must have shape (n, {', '.join(map(str, expected))}), got {images.shape}.")
        n = images.shape[0]
        label_array = None
        if self.discriminator_takes_labels:
            if labels is None:
                raise RaganError(f"{type(self).__name__} is conditional: discriminate() needs the images' labels.")
            label_array = self.resolve_labels(labels, n)
        logits = np.empty((n,), np.float32)
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            inputs = images[start:stop]
            if label_array is not None:
                inputs = [inputs, label_array[start:stop]]
            outputs = _inference(self.discriminator)(inputs)
            if isinstance(outputs, (list, tuple)):
                outputs = outputs[0]
            logits[start:stop] = keras.ops.convert_to_numpy(per_example(outputs))
        return logits

    # ------------------------------------------------------------------------------------------
    # Serialisation
    # ------------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "config": self.config.to_dict(),
            "image_size": self.image_size,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _own_state(self) -> list:
        # Keras saves a layer's own variables but not its SeedGenerator's state; a reloaded model
        # must continue the same random stream, so the state travels with the variables.
        return self._trainable_variables + self._non_trainable_variables + [self.seed_generator.state]

    def save_own_variables(self, store):
        for index, variable in enumerate(self._own_state()):
            store[f"{index}"] = variable

    def load_own_variables(self, store):
        state = self._own_state()
        if len(store.keys()) != len(state):
            raise RaganError(
                f"the saved {type(self).__name__} holds {len(store.keys())} own variables, this "
                f"model has {len(state)}: it was saved by a different version of the class."
            )
        for index, variable in enumerate(state):
            variable.assign(store[f"{index}"])
