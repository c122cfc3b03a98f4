"""StyleGAN2-ADA as a ragan GAN: ``ragan train stylegan2``.

The networks are in :mod:`~ragan.models.stylegan2.networks` (the official architecture, weights
interchangeable with NVIDIA's pickles), the hyperparameters and presets in
:mod:`~ragan.models.stylegan2.config` and :mod:`~ragan.models.stylegan2.presets`, the losses of the
four training phases in :mod:`~ragan.models.stylegan2.loss`. This module is the Keras model: it
compiles the optimizers, decides the phase schedule once and runs it, and generates images.

Training, as the official code does it:

* four phases per step, each its own optimizer step: ``G main`` (non-saturating loss), ``G reg``
  (path-length regularisation every ``pl_interval`` = 4 steps, on half the batch), ``D main``
  (logistic loss on fakes and reals) and ``D reg`` (R1 every ``r1_interval`` = 16 steps); a lazy
  regulariser's loss is multiplied by its interval, and Adam's learning rate and betas are
  corrected for the extra steps (``lr * k / (k + 1)``, ``beta ** (k / (k + 1))``);
* style mixing (two latents, one crossover point, probability 0.9);
* a generator EMA with a half-life of ``ema_kimg`` thousand images, ramped up over the first
  ``ema_rampup`` of training;
* adaptive discriminator augmentation (ADA, :mod:`ragan.layers.ada`): every image D sees goes
  through the ``bgc`` pipeline with probability ``p``, adjusted every ``ada_interval`` steps
  toward ``E[sign(D(real))] = ada_target`` at the speed ``ada_kimg``.

Each phase is compiled once (one ``tf.function`` per phase, and per "p is 0 / p is above 0" for
ADA, whose pipeline is skipped entirely while p is 0); before each step the schedule picks the
due phases from the step counter, as the official ``training_loop.py`` does. An optimizer update
under ``tf.distribute`` cannot sit inside ``tf.cond``, which is why the choice is made in Python.

References:
    Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
    Quality of StyleGAN", CVPR (arXiv:1912.04958).
    Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial
    Networks with Limited Data", NeurIPS (arXiv:2006.06676).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ragan._keras_internals import fused_adam_update
from ragan._tf import import_keras, import_tf
from ragan.errors import RaganError
from ragan.models.gan import GAN
from ragan.models.stylegan2.config import StyleGAN2Config, StyleGAN2Options, resolve_preset
from ragan.models.stylegan2.loss import StyleGAN2Loss
from ragan.models.stylegan2.networks import NOISE_MODES, Discriminator, Generator
from ragan.models.stylegan2.presets import PRESETS
from ragan.registry import register_gan

tf = import_tf()
keras = import_keras()

__all__ = [
    "PRESETS",
    "STYLEGAN2_IMAGE_SIZES",
    "Phase",
    "StyleGAN2",
    "StyleGAN2Config",
    "StyleGAN2Options",
    "resolve_preset",
    "training_phases",
]

STYLEGAN2_IMAGE_SIZES = (16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Phase:
    """One optimizer step of a training step: ``G main``, ``G reg``, ``D main`` or ``D reg``.

    It runs on the steps where ``step % interval == 0``, and its loss is multiplied by
    ``interval`` (lazy regularisation).
    """

    name: str
    interval: int = 1

    def due(self, step: int) -> bool:
        return step % self.interval == 0


def training_phases(options: StyleGAN2Options) -> tuple[Phase, ...]:
    """The phases of a training step, in the order they run (the official ``training_loop.py``).

    Example:
        >>> options = resolve_preset(StyleGAN2Config(cfg="cifar"), 32)   # no path-length term
        >>> [(phase.name, phase.interval) for phase in training_phases(options)]
        [('G main', 1), ('D main', 1), ('D reg', 16)]
    """
    phases = [Phase("G main")]
    if options.pl_on:
        phases.append(Phase("G reg", options.pl_interval))
    phases.append(Phase("D main"))
    if options.r1_on:
        phases.append(Phase("D reg", options.r1_interval))
    return tuple(phases)


def _first_replica(strategy, outputs):
    # What Keras' fit does with a step's logs ("auto" reduction of a mirrored step): every
    # replica holds the same synchronised state, so the first replica's values are the logs.
    if outputs is None:
        return None
    return tf.nest.map_structure(lambda value: strategy.experimental_local_results(value)[0], outputs)


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

    #: The method that runs each phase on one replica (see :meth:`make_train_function`).
    phase_methods = {
        "G main": "generator_main_step",
        "G reg": "generator_reg_step",
        "D main": "discriminator_main_step",
        "D reg": "discriminator_reg_step",
    }

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
        #: The losses of the four phases; the schedule of phases, decided once.
        self.phase_losses = StyleGAN2Loss(self)
        self.phases = training_phases(self.options)

    @property
    def options(self) -> StyleGAN2Options:
        """Every hyperparameter's value, typed: the config's, or the preset's where it says ``None``
        (resolved once per config)."""
        cached = self.__dict__.get("_resolved_options")
        if cached is None or cached[0] is not self.config:
            cached = (self.config, resolve_preset(self.config, self.image_size))
            self.__dict__["_resolved_options"] = cached  # not an attribute Keras should track
        return cached[1]

    # ------------------------------------------------------------------------------------------
    # Hooks of the base class
    # ------------------------------------------------------------------------------------------
    @classmethod
    def training_defaults(cls, config, image_size: int) -> dict:
        """The preset's batch size is the default ``--batch-size``."""
        if image_size not in STYLEGAN2_IMAGE_SIZES:
            return {}
        return {"batch_size": resolve_preset(cls._resolve_config(config), image_size).batch_size}

    def resolve_augment_policy(self):
        return (self.options.augment_pipeline,) if self.options.augment != "none" else ()

    def uses_ema(self) -> bool:
        return self.options.ema_kimg > 0

    def initial_augment_probability(self) -> float:
        return float(self.options.augment_p) if self.options.augment != "none" else 0.0

    @property
    def latent_dim(self) -> int:
        return self.options.latent_dim

    @property
    def generator_takes_labels(self) -> bool:
        return self.conditional

    @property
    def discriminator_takes_labels(self) -> bool:
        return self.conditional

    def build_generator(self):
        o = self.options
        return Generator(
            o.latent_dim,
            o.w_dim,
            self.image_size,
            self.channels,
            self.num_classes if self.conditional else 0,
            mapping_layers=o.mapping_layers,
            channel_base=o.channel_base,
            channel_max=o.channel_max,
            conv_clamp=o.conv_clamp,
            num_fp16_res=o.num_fp16_res,
            seed=self.seed,
            name="generator",
        )

    def build_discriminator(self, freeze_layers=None):
        o = self.options
        return Discriminator(
            self.image_size,
            self.channels,
            self.num_classes if self.conditional else 0,
            architecture=o.d_architecture,
            channel_base=o.channel_base,
            channel_max=o.channel_max,
            conv_clamp=o.conv_clamp,
            num_fp16_res=o.num_fp16_res,
            mbstd_group_size=o.mbstd_group,
            freeze_layers=o.freeze_d if freeze_layers is None else freeze_layers,
            seed=self.seed + 1,
            name="discriminator",
        )

    def _build_ema_generator(self):
        from ragan.models.gan import first_replica_variables

        with tf.variable_creator_scope(first_replica_variables):
            ema = self.build_generator()
        ema.name = "ema_generator"
        ema.trainable = False
        for source, target in zip(self.generator.weights, ema.weights):
            target.assign(source)
        return ema

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Adam(beta_1 = 0, beta_2 = 0.99, epsilon = 1e-8) for both networks, with the learning
        rate and betas corrected for the lazy regularisation steps (see the module docstring)."""
        o = self.options

        def adam(rate, interval, name):
            ratio = interval / (interval + 1) if interval else 1.0
            return keras.optimizers.Adam(
                rate * ratio, beta_1=o.beta_1**ratio, beta_2=o.beta_2**ratio, epsilon=1e-8, name=name
            )

        if g_optimizer is None:
            g_optimizer = adam(o.g_learning_rate, o.pl_interval if o.pl_on else 0, "g_adam")
        if d_optimizer is None:
            d_optimizer = adam(o.d_learning_rate, o.r1_interval if o.r1_on else 0, "d_adam")
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, **kwargs)

    # ------------------------------------------------------------------------------------------
    # Pieces the losses use
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

        return ada_augment(images, self.augment_probability, self.next_seed(), pipeline=self.options.augment_pipeline)

    def track_w_avg(self, w) -> None:
        """Move the generator's ``w_avg`` (the truncation centre) toward the batch mean of ``w``."""
        mean = tf.reduce_mean(tf.stop_gradient(w), axis=0)
        if self.num_replicas() > 1:
            mean = tf.distribute.get_replica_context().all_reduce("mean", mean)
        w_avg = self.generator.mapping.w_avg
        w_avg.assign(mean + (w_avg - mean) * self.generator.w_avg_beta)

    def apply_gradients(self, optimizer, tape, loss, variables) -> None:
        # A regulariser does not reach every weight (R1 never reaches D's last bias); those get a
        # zero gradient, as in the official code, instead of a warning.
        gradients = tape.gradient(loss, variables)
        gradients = [tf.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(gradients, variables)]
        if not fused_adam_update(optimizer, gradients, variables):
            optimizer.apply_gradients(zip(gradients, variables))

    def _minimise(self, optimizer, variables, compute, gain: int):
        """One optimizer step on ``gain`` times the loss ``compute()`` returns (per example,
        first of a tuple); returns the logged mean loss and the rest of the tuple."""
        with tf.GradientTape() as tape:
            per_example, *rest = compute()
            loss, for_gradients = self.reduce_loss(per_example)
            scaled = optimizer.scale_loss(for_gradients * gain if gain != 1 else for_gradients)
        self.apply_gradients(optimizer, tape, scaled, variables)
        return loss, rest

    # ------------------------------------------------------------------------------------------
    # The phases, each one optimizer step on one replica
    # ------------------------------------------------------------------------------------------
    def generator_main_step(self, data, *, gain: int = 1, augment: bool = True):
        real, labels = self.unpack_batch(data)
        loss, _ = self._minimise(
            self.g_optimizer,
            self.generator.trainable_variables,
            lambda: (self.phase_losses.generator_main(tf.shape(real)[0], labels, augment=augment),),
            gain,
        )
        self._track({"g_loss": loss})

    def generator_reg_step(self, data, *, gain: int = 1, augment: bool = True):
        real, labels = self.unpack_batch(data)
        _, (penalty, new_mean) = self._minimise(
            self.g_optimizer,
            self.generator.trainable_variables,
            lambda: self.phase_losses.generator_path_length(tf.shape(real)[0], labels, self.pl_mean),
            gain,
        )
        if self.num_replicas() > 1:
            new_mean = tf.distribute.get_replica_context().all_reduce("mean", new_mean)
        self.pl_mean.assign(tf.stop_gradient(new_mean))
        self.last_pl_penalty.assign(tf.reduce_mean(penalty))

    def discriminator_main_step(self, data, *, gain: int = 1, augment: bool = True):
        """``D main``, then the end of the training step: EMA, ADA, counters; returns the logs."""
        real, labels = self.unpack_batch(data)
        loss, (real_logits,) = self._minimise(
            self.d_optimizer,
            self.discriminator.trainable_variables,
            lambda: self.phase_losses.discriminator_main(real, labels, augment=augment),
            gain,
        )
        self._track({"d_loss": loss, "real_sign": tf.reduce_mean(tf.sign(real_logits))})
        global_batch = tf.cast(tf.shape(real)[0] * self.num_replicas(), tf.float32)
        self._update_ema(global_batch)
        self.update_augment_probability(real_logits)
        self.images_seen.assign_add(global_batch)
        self.step_counter.assign_add(1)
        return self.training_logs()

    def discriminator_reg_step(self, data, *, gain: int = 1, augment: bool = True):
        real, labels = self.unpack_batch(data)
        _, (penalty,) = self._minimise(
            self.d_optimizer,
            self.discriminator.trainable_variables,
            lambda: self.phase_losses.discriminator_r1(real, labels, augment=augment),
            gain,
        )
        self.last_r1_penalty.assign(tf.reduce_mean(penalty))
        return self.training_logs()

    # ------------------------------------------------------------------------------------------
    # The schedule
    # ------------------------------------------------------------------------------------------
    def augments_now(self) -> bool:
        """Whether this step's phases run ADA: an augmenting model with ``p > 0`` (at p = 0 the
        pipeline is the identity, and the compiled phases without it are used)."""
        return bool(self.augment_policy) and float(self.augment_probability.numpy()) > 0

    def phase_function(self, phase: Phase, augment: bool):
        """``phase`` as one compiled call on a (distributed) batch, made on first use; returns the
        first replica's logs, or ``None`` for the generator phases."""
        functions = self.__dict__.setdefault("_phase_functions", {})
        key = (phase.name, augment)
        if key not in functions:
            replica_step = getattr(self, self.phase_methods[phase.name])

            def run(data):
                strategy = self.distribute_strategy
                outputs = strategy.run(
                    lambda batch: replica_step(batch, gain=phase.interval, augment=augment), args=(data,)
                )
                return _first_replica(strategy, outputs)

            if not self.run_eagerly:
                # No autograph: the phases branch on Python values only (tf.cond/tf.where in the graph).
                run = tf.function(run, autograph=False, reduce_retracing=True, jit_compile=bool(self.jit_compile))
            functions[key] = run
        return functions[key]

    @property
    def compiled_phases(self) -> list[tuple[str, bool]]:
        """The ``(phase name, with ADA)`` pairs compiled so far by :meth:`phase_function`."""
        return sorted(self.__dict__.get("_phase_functions", {}))

    def make_train_function(self, force=False):
        """A training step as its due phases, each a compiled call of its own.

        Which phases are due is decided in Python before each step from the step counter (the
        schedule of :func:`training_phases`, fixed at construction): each phase is traced once,
        not once per combination of due regularisers, and a regularisation step, an optimizer
        update, never sits inside ``tf.cond`` (refused under ``tf.distribute``).
        """
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution != 1:
            raise RaganError(
                "stylegan2 trains one step per execution (steps_per_execution=1): "
                "its regularisation steps are chosen step by step."
            )
        self.__dict__["_phase_functions"] = {}

        def train_function(iterator):
            data = next(iterator)
            step = int(self.step_counter.numpy())
            augment = self.augments_now()
            logs = None
            for phase in self.phases:
                if phase.due(step):
                    outputs = self.phase_function(phase, augment)(data)
                    logs = outputs if outputs is not None else logs
            return logs

        self.train_function = train_function
        return train_function

    def train_step(self, data):
        """One training step in a single graph, each regulariser's turn decided by ``tf.cond`` on
        the step counter (for custom loops on one device; ``fit`` runs the compiled phases of
        :meth:`make_train_function` instead)."""
        augment = bool(self.augment_policy)
        step_number = tf.convert_to_tensor(self.step_counter)  # D main advances the counter
        for phase in self.phases:
            step = getattr(self, self.phase_methods[phase.name])
            if phase.interval == 1:
                step(data, augment=augment)
                continue

            def run(step=step, phase=phase):
                step(data, gain=phase.interval, augment=augment)
                return tf.constant(0)

            tf.cond(tf.equal(step_number % phase.interval, 0), run, lambda: tf.constant(0))
        return self.training_logs()

    def _update_ema(self, global_batch):
        """``ema = w + (ema - w) * 0.5 ** (batch / ema_images)``: a half-life of ``ema_kimg``
        thousand images, at most ``ema_rampup`` times the images seen so far; buffers copied."""
        if self.ema_generator is None:
            return
        o = self.options
        ema_images = tf.constant(o.ema_kimg * 1000.0)
        if o.ema_rampup > 0:
            ema_images = tf.minimum(ema_images, self.images_seen * o.ema_rampup)
        beta = tf.pow(0.5, global_batch / tf.maximum(ema_images, 1e-8))
        for source, average in zip(self.generator.weights, self.ema_generator.weights):
            if source.trainable:
                average.assign(source + (average - source) * beta)
            else:
                average.assign(source)

    def update_augment_probability(self, real_logits) -> None:
        """ADA: every ``ada_interval`` steps, ``p += sign(mean sign(D(real)) - target) * images /
        (ada_kimg * 1000)``, clipped to [0, 1]."""
        if self.options.augment != "ada":
            return
        from ragan.layers.ada import ada_adjust

        signs = tf.reduce_sum(tf.sign(real_logits))
        count = tf.cast(tf.size(real_logits), tf.float32)
        if self.num_replicas() > 1:
            context = tf.distribute.get_replica_context()
            signs, count = context.all_reduce("sum", signs), context.all_reduce("sum", count)
        total, count = self.ada_sign_sum + signs, self.ada_sign_count + count
        # No tf.cond: assigning a mirrored variable inside one is refused under tf.distribute.
        due = tf.equal((self.step_counter + 1) % self.options.ada_interval, 0)
        adjusted = ada_adjust(
            self.augment_probability,
            total / tf.maximum(count, 1.0),
            target=self.options.ada_target,
            images_since_last=count,
            ada_kimg=self.options.ada_kimg,
        )
        self.augment_probability.assign(tf.where(due, adjusted, self.augment_probability))
        self.ada_sign_sum.assign(tf.where(due, 0.0, total))
        self.ada_sign_count.assign(tf.where(due, 0.0, count))

    def update_ema(self) -> None:  # the base class's per-step EMA is replaced by _update_ema
        return None

    def training_logs(self) -> dict:
        logs = super().training_logs()
        extra = {}
        if self.options.r1_on:
            extra["r1_penalty"] = tf.identity(self.last_r1_penalty.value)
        if self.options.pl_on:
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
