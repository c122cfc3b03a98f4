"""WGAN-GP: Wasserstein GAN with a gradient penalty on the critic."""

from __future__ import annotations

from dataclasses import dataclass

from ragan._tf import import_tf
from ragan.config import Choice, Float, hparam
from ragan.layers.blocks import build_discriminator
from ragan.losses import gradient_penalty, wasserstein_discriminator_loss, wasserstein_generator_loss
from ragan.models.gan import GAN, GANConfig
from ragan.registry import register_gan

tf = import_tf()

__all__ = ["WGANGP", "WGANGPConfig"]


@dataclass
class WGANGPConfig(GANConfig):
    """WGAN-GP hyperparameters; the defaults are the paper's (Adam(1e-4, 0, 0.9), 5 critic steps,
    lambda = 10)."""

    g_learning_rate: float = hparam(
        1e-4, help="Generator Adam learning rate.", tune=Float(1e-5, 1e-3, sampling="log"), min=0
    )
    d_learning_rate: float = hparam(
        1e-4, help="Critic Adam learning rate.", tune=Float(1e-5, 1e-3, sampling="log"), min=0
    )
    beta_1: float = hparam(0.0, help="Adam beta_1 of both optimizers.", tune=Choice(0.0, 0.5), min=0, max=1)
    beta_2: float = hparam(0.9, help="Adam beta_2 of both optimizers.", min=0, max=1)
    d_steps: int = hparam(5, help="Critic updates per generator update (n_critic).", tune=Choice(1, 3, 5), min=1)
    gp_weight: float = hparam(
        10.0, help="Gradient-penalty weight lambda.", tune=Float(1.0, 20.0, sampling="log"), min=0
    )
    critic_norm: str = hparam(
        "layer",
        help="Normalisation in the critic: layer norm or none (batch norm would break the per-example penalty).",
        choices=("layer", "none"),
    )


@register_gan("wgan_gp", config=WGANGPConfig)
class WGANGP(GAN):
    """Wasserstein GAN with gradient penalty.

    The critic D minimises ``D(G(z)) - D(x) + lambda * (||grad D(x_hat)||_2 - 1)^2`` with
    ``x_hat = x + alpha (G(z) - x)``, ``alpha ~ U[0, 1]`` per example (uniform, as in the paper;
    see :func:`ragan.losses.gradient_penalty`); G minimises ``-D(G(z))``. The critic takes
    ``d_steps`` (n_critic) updates per generator update; in ragan these reuse the same real batch
    with a fresh generated batch each time (the paper draws a new real batch per critic step).
    The critic has no BatchNorm, which would make an example's score depend on the rest of the
    batch and the penalty ill-defined; it uses layer normalisation (or none), as the paper advises.
    The generator is the DCGAN one. ``wasserstein_distance`` in the logs is the critic's estimate
    ``mean D(x) - mean D(G(z))``.

    Args:
        config: a :class:`WGANGPConfig`, a dict of overrides, or ``None``.
        image_size: 16..256, a power of two.
        channels: 1 or 3.
        num_classes: classes in the dataset (for ``conditional=True``, a projection critic).
        seed: seed of all the model's randomness.

    Reference:
        Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein
        GANs", NeurIPS (arXiv:1704.00028).

    Example:
        >>> gan = WGANGP({"gp_weight": 10, "d_steps": 2, "latent_dim": 8, "base_filters": 8}, image_size=16)
        >>> gan.compile(run_eagerly=True)   # eager: quicker for a 2-step demo; leave it out to train
        >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
        >>> history = gan.fit(images, batch_size=8, epochs=1, verbose=0)   # 2 steps, 2 critic updates each
        >>> gan.generate(4, seed=0).shape
        (4, 16, 16, 1)
    """

    log_names = ("d_loss", "g_loss", "gradient_penalty", "wasserstein_distance")
    discriminator_gives_probability = False  # a critic: unbounded Wasserstein scores
    #: added inside the square root of the gradient norm (TF-GAN's default).
    penalty_epsilon = 1e-10

    def build_discriminator(self):
        return build_discriminator(
            image_size=self.image_size,
            channels=self.channels,
            base_filters=self.config.base_filters,
            norm=self.config.critic_norm,
            projection_classes=self.num_classes if self.conditional else 0,
            seed=self.seed + 1,
            name="critic",
        )

    def discriminator_loss(self, real_logits, fake_logits):
        return wasserstein_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return wasserstein_generator_loss(fake_logits)

    def discriminator_step(self, real_images, labels) -> dict:
        batch_size = tf.shape(real_images)[0]
        fake_images = self.generator(self.generator_inputs(self.sample_latents(batch_size), labels), training=True)
        real_seen = self.augment(real_images)
        fake_seen = self.augment(fake_images)

        def critic(images):
            return self.discriminator(self.discriminator_inputs(images, labels), training=True)

        with tf.GradientTape() as tape:
            real_logits = critic(real_seen)
            fake_logits = critic(fake_seen)
            adversarial = self.discriminator_loss(real_logits, fake_logits)
            penalty = gradient_penalty(
                critic, real_seen, fake_seen, epsilon=self.penalty_epsilon, seed=self.next_seed()
            )
            loss, loss_for_gradients = self.reduce_loss(adversarial + self.config.gp_weight * penalty)
            scaled = self.d_optimizer.scale_loss(loss_for_gradients)
        self.apply_gradients(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        self.update_augment_probability(real_logits)
        return {
            "d_loss": loss,
            "gradient_penalty": tf.reduce_mean(penalty),
            "wasserstein_distance": -tf.reduce_mean(adversarial),
        }
