"""AC-GAN: class-conditional GAN whose discriminator also classifies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ragan._tf import import_keras, import_tf
from ragan.config import Float, hparam
from ragan.errors import RaganError
from ragan.layers.blocks import build_discriminator
from ragan.losses import auxiliary_classifier_loss, dcgan_discriminator_loss, dcgan_generator_loss
from ragan.models.gan import GAN, GANConfig
from ragan.registry import register_gan

tf = import_tf()
keras = import_keras()

__all__ = ["ACGAN", "ACGANConfig"]


@dataclass
class ACGANConfig(GANConfig):
    """AC-GAN hyperparameters (the model is always conditional; ``conditional`` is ignored)."""

    class_loss_weight: float = hparam(
        1.0,
        help="Weight of the auxiliary classification loss relative to the adversarial loss.",
        tune=Float(0.1, 10.0, sampling="log"),
        min=0,
    )


@register_gan("acgan", config=ACGANConfig)
class ACGAN(GAN):
    """Auxiliary-classifier GAN: G is conditioned on a class, D predicts real/fake and the class.

    G is the DCGAN generator with class-conditional BatchNorms. D is the DCGAN
    discriminator with two heads on the same features: one real/fake logit and ``num_classes``
    class logits. With ``CE`` the softmax cross-entropy of the class head and ``BCE`` the
    non-saturating adversarial loss of :class:`DCGAN`:

    * D minimises ``BCE(D(x), real) + BCE(D(G(z, c)), fake) + w * (CE(x, c_x) + CE(G(z, c), c))``
    * G minimises ``BCE(D(G(z, c)), real) + w * CE(G(z, c), c)``

    (the paper's ``L_S`` and ``L_C``, D maximising ``L_S + L_C`` and G ``L_C - L_S``, written as
    minimised losses; ``w`` = ``class_loss_weight``). Generated images use the labels of the real
    batch, so classes are drawn with the dataset's frequencies. :meth:`classify` exposes D's class
    head.

    Args:
        config: an :class:`ACGANConfig`, a dict of overrides, or ``None``.
        image_size: 16..256, a power of two.
        channels: 1 or 3.
        num_classes: classes in the dataset (at least 2).
        seed: seed of all the model's randomness.

    Reference:
        Odena, Olah & Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs",
        ICML (arXiv:1610.09585).

    Example:
        >>> gan = ACGAN({"latent_dim": 8, "base_filters": 8}, image_size=16, num_classes=2)
        >>> gan.compile(run_eagerly=True)   # eager: quicker for a 2-step demo; leave it out to train
        >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
        >>> labels = np.arange(16) % 2
        >>> history = gan.fit(images, labels, batch_size=8, epochs=1, verbose=0)   # 2 steps
        >>> pneumonia = gan.generate(4, labels=1, seed=0)   # 4 images of class 1
        >>> pneumonia.shape
        (4, 16, 16, 1)
    """

    always_conditional = True
    log_names = ("d_loss", "g_loss", "d_class_loss", "g_class_loss")

    def build_discriminator(self):
        return build_discriminator(
            image_size=self.image_size,
            channels=self.channels,
            base_filters=self.config.base_filters,
            norm="batch",
            auxiliary_classes=self.num_classes,
            seed=self.seed + 1,
            name="discriminator",
        )

    def discriminator_step(self, real_images, labels) -> dict:
        batch_size = tf.shape(real_images)[0]
        fake_images = self.generator(self.generator_inputs(self.sample_latents(batch_size), labels), training=True)
        weight = self.config.class_loss_weight
        with tf.GradientTape() as tape:
            real_logits, real_class_logits = self.discriminator(self.augment(real_images), training=True)
            fake_logits, fake_class_logits = self.discriminator(self.augment(fake_images), training=True)
            class_loss = auxiliary_classifier_loss(real_class_logits, labels) + auxiliary_classifier_loss(
                fake_class_logits, labels
            )
            per_example = dcgan_discriminator_loss(real_logits, fake_logits) + weight * class_loss
            loss, loss_for_gradients = self.reduce_loss(per_example)
            scaled = self.d_optimizer.scale_loss(loss_for_gradients)
        self.apply_gradients(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        self.update_augment_probability(real_logits)
        return {"d_loss": loss, "d_class_loss": tf.reduce_mean(class_loss)}

    def generator_step(self, batch_size, labels) -> dict:
        latents = self.sample_latents(batch_size)
        with tf.GradientTape() as tape:
            fake_images = self.generator(self.generator_inputs(latents, labels), training=True)
            fake_logits, fake_class_logits = self.discriminator(self.augment(fake_images), training=True)
            class_loss = auxiliary_classifier_loss(fake_class_logits, labels)
            per_example = dcgan_generator_loss(fake_logits) + self.config.class_loss_weight * class_loss
            loss, loss_for_gradients = self.reduce_loss(per_example)
            scaled = self.g_optimizer.scale_loss(loss_for_gradients)
        self.apply_gradients(self.g_optimizer, tape, scaled, self.generator.trainable_variables)
        return {"g_loss": loss, "g_class_loss": tf.reduce_mean(class_loss)}

    def classify(self, images, *, batch_size: int = 256) -> np.ndarray:
        """D's auxiliary class logits for ``images``.

        Args:
            images: float images in [-1, 1], shape ``(n, image_size, image_size, channels)``.
            batch_size: images per discriminator call.

        Returns:
            float32 class logits, shape ``(n, num_classes)``.

        Example:
            >>> gan = ACGAN({"latent_dim": 8, "base_filters": 8}, image_size=16, num_classes=2)
            >>> logits = gan.classify(gan.generate(10, labels=1, seed=0))
            >>> logits.shape   # predicted classes: logits.argmax(axis=1)
            (10, 2)
        """
        images = np.asarray(images, dtype=np.float32)
        expected = (self.image_size, self.image_size, self.channels)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise RaganError(f"images must have shape (n, {', '.join(map(str, expected))}), got {images.shape}.")
        logits = np.empty((images.shape[0], self.num_classes), np.float32)
        for start in range(0, images.shape[0], batch_size):
            stop = min(start + batch_size, images.shape[0])
            _, class_logits = self.discriminator(images[start:stop], training=False)
            logits[start:stop] = keras.ops.convert_to_numpy(class_logits)
        return logits
