"""SNGAN: spectrally normalised discriminator trained with the hinge loss."""

from __future__ import annotations

from dataclasses import dataclass

from ragan.config import hparam
from ragan.layers.blocks import build_discriminator
from ragan.losses import hinge_discriminator_loss, hinge_generator_loss
from ragan.models.gan import GAN, GANConfig
from ragan.registry import register_gan

__all__ = ["SNGAN", "SNGANConfig"]


@dataclass
class SNGANConfig(GANConfig):
    """SNGAN hyperparameters (defaults: the paper's setting C, Adam(2e-4, 0.5, 0.999), one
    discriminator step per generator step)."""

    leaky_slope: float = hparam(0.1, help="Negative slope of the discriminator's LeakyReLUs.", min=0, max=1)
    power_iterations: int = hparam(1, help="Power iterations per spectral-norm estimate (per training call).", min=1)


@register_gan("sngan", config=SNGANConfig)
class SNGAN(GAN):
    """GAN whose discriminator has spectral normalisation on every layer, trained with the hinge
    loss.

    Every convolution and dense layer of D (and the projection embedding when conditional) is
    wrapped in ``keras.layers.SpectralNormalization``, which keeps each layer's spectral norm near
    1 with one power iteration per training call, so D is (roughly) 1-Lipschitz without a
    gradient penalty and without BatchNorm. (Keras's wrapper divides the kernel by its estimated
    spectral norm in place before each training call, rather than differentiating through the
    division as the paper does.) D minimises ``relu(1 - D(x)) + relu(1 + D(G(z)))``, G minimises
    ``-D(G(z))`` (:mod:`ragan.losses`). The generator is the DCGAN one (BatchNorm + ReLU), the
    "standard CNN" of the paper. With ``conditional=True`` D gets a projection head (Miyato &
    Koyama 2018, "cGANs with Projection Discriminator").

    Args:
        config: a :class:`SNGANConfig`, a dict of overrides, or ``None``.
        image_size: 16..256, a power of two.
        channels: 1 or 3.
        num_classes: classes in the dataset (for ``conditional=True``).
        seed: seed of all the model's randomness.

    Reference:
        Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for Generative Adversarial
        Networks", ICLR (arXiv:1802.05957).

    Example:
        >>> gan = SNGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
        >>> gan.compile(run_eagerly=True)   # eager: quicker for a 2-step demo; leave it out to train
        >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
        >>> history = gan.fit(images, batch_size=8, epochs=1, verbose=0)   # 2 steps
        >>> sorted(history.history)
        ['d_loss', 'g_loss']
    """

    def build_discriminator(self):
        return build_discriminator(
            image_size=self.image_size,
            channels=self.channels,
            base_filters=self.config.base_filters,
            norm="none",
            spectral_norm=True,
            power_iterations=self.config.power_iterations,
            leaky_slope=self.config.leaky_slope,
            projection_classes=self.num_classes if self.conditional else 0,
            seed=self.seed + 1,
            name="discriminator",
        )

    discriminator_gives_probability = False  # hinge margins, not log-odds

    def discriminator_loss(self, real_logits, fake_logits):
        return hinge_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        return hinge_generator_loss(fake_logits)
