"""The four training phases of StyleGAN2-ADA as losses of the networks (the official
``training/loss.py``): ``G main``, ``G reg`` (path length), ``D main`` and ``D reg`` (R1).

Each method returns the per-example loss that one phase minimises, already weighted (``pl_weight``,
``r1_gamma / 2``) but not multiplied by the phase's interval: the caller, which owns the tapes and
the optimizers (:class:`~ragan.models.stylegan2.model.StyleGAN2`), multiplies by it, as the
official training loop passes ``gain=interval``. The adversarial maths are the non-saturating
logistic losses of :mod:`ragan.losses.adversarial`, the regularisers those of
:mod:`ragan.losses.penalties`.

Reference:
    Karras, Laine, Aittala, Hellsten, Lehtinen & Aila 2020, "Analyzing and Improving the Image
    Quality of StyleGAN", CVPR (arXiv:1912.04958): lazy regularisation (section 3.1), path-length
    regularisation (section 3.2).
"""

from __future__ import annotations

import math

from ragan._tf import import_tf
from ragan.losses.adversarial import dcgan_discriminator_loss, dcgan_generator_loss, per_example
from ragan.losses.penalties import path_length_penalty, r1_penalty

tf = import_tf()

__all__ = ["StyleGAN2Loss"]


class StyleGAN2Loss:
    """The losses of the four phases, as functions of a model's networks and randomness.

    Args:
        model: the :class:`~ragan.models.stylegan2.model.StyleGAN2` whose ``generator``,
            ``discriminator``, ``options``, ``next_seed()`` (fresh stateless seeds) and
            ``augment(images)`` (ADA) the losses use.

    Example:
        >>> from ragan.models import StyleGAN2
        >>> tiny = {"cfg": "small", "latent_dim": 8, "w_dim": 8, "channel_base": 64, "channel_max": 8}
        >>> loss = StyleGAN2Loss(StyleGAN2(tiny, image_size=16))
        >>> loss.generator_main(tf.constant(4), None, augment=False).shape
        TensorShape([4])
    """

    def __init__(self, model):
        self.model = model
        self.options = model.options

    # ------------------------------------------------------------------------------------------
    # Running the networks (the official run_G / run_D)
    # ------------------------------------------------------------------------------------------
    def mapped(self, batch_size, labels):
        """ws for training images from fresh latents, with style mixing (one crossover point per
        batch, with probability ``style_mixing``); updates ``w_avg``."""
        model, generator = self.model, self.model.generator
        one_hot = generator.one_hot(labels) if model.conditional else None
        w = generator.mapping(model.sample_latents(batch_size), c=one_hot)
        model.track_w_avg(w)
        num_ws = generator.num_ws
        ws = tf.tile(w[:, None, :], [1, num_ws, 1])
        if self.options.style_mixing > 0:
            seed = model.next_seed()
            cutoff = tf.random.stateless_uniform([], seed=seed, minval=1, maxval=num_ws, dtype=tf.int32)
            mix = tf.random.stateless_uniform([], seed=seed + 1) < self.options.style_mixing
            cutoff = tf.where(mix, cutoff, num_ws)
            other = generator.mapping(model.sample_latents(batch_size), c=one_hot)
            keep = tf.range(num_ws)[None, :, None] < cutoff
            ws = tf.where(keep, ws, other[:, None, :])
        return ws

    def generated(self, batch_size, labels):
        """``(images, ws)`` for ``batch_size`` fresh latents (random noise inputs)."""
        ws = self.mapped(batch_size, labels)
        return self.model.generator.synthesis(ws, noise_mode="random", noise_seed=self.model.next_seed()), ws

    def logits(self, images, labels, *, augment: bool):
        """D's logits ``(B,)`` (float32) on ``images``, through ADA when ``augment``."""
        model = self.model
        if augment:
            images = model.augment(images)
        return per_example(model.discriminator(model.discriminator_inputs(images, labels), training=True))

    # ------------------------------------------------------------------------------------------
    # The phases
    # ------------------------------------------------------------------------------------------
    def generator_main(self, batch_size, labels, *, augment: bool):
        """``G main``: the non-saturating loss ``softplus(-D(G(z)))`` per example."""
        images, _ = self.generated(batch_size, labels)
        return dcgan_generator_loss(self.logits(images, labels, augment=augment))

    def generator_path_length(self, batch_size, labels, pl_mean):
        """``G reg``: ``pl_weight`` times the path-length penalty, on ``batch_size /
        pl_batch_shrink`` fresh images. Returns ``(loss per example, penalty, new pl_mean)``."""
        options = self.options
        shrunk = tf.maximum(batch_size // options.pl_batch_shrink, 1)
        labels = labels[:shrunk] if labels is not None else None
        ws = self.mapped(shrunk, labels)
        with tf.GradientTape() as tape:
            tape.watch(ws)
            images = self.model.generator.synthesis(ws, noise_mode="random", noise_seed=self.model.next_seed())
            noise = tf.random.stateless_normal(tf.shape(images), seed=self.model.next_seed())
            total = tf.reduce_sum(tf.cast(images, tf.float32) * (noise / math.sqrt(options.image_size**2)))
        penalty, new_mean = path_length_penalty(tape.gradient(total, ws), pl_mean, decay=options.pl_decay)
        return penalty * options.pl_weight, penalty, new_mean

    def discriminator_main(self, real, labels, *, augment: bool):
        """``D main``: ``softplus(D(G(z))) + softplus(-D(x))`` per example (G not trained).
        Returns ``(loss per example, D's logits on the real images)``."""
        fakes, _ = self.generated(tf.shape(real)[0], labels)
        fake_logits = self.logits(tf.stop_gradient(fakes), labels, augment=augment)
        real_logits = self.logits(real, labels, augment=augment)
        return dcgan_discriminator_loss(real_logits, fake_logits), real_logits

    def discriminator_r1(self, real, labels, *, augment: bool):
        """``D reg``: ``r1_gamma / 2`` times the R1 penalty at the real images. Returns
        ``(loss per example, penalty)``."""
        penalty = r1_penalty(lambda images: self.logits(images, labels, augment=augment), real)
        return penalty * (self.options.r1_gamma / 2), penalty
