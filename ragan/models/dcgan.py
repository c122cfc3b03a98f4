"""DCGAN: the classic convolutional GAN with the non-saturating (BCE) loss."""

from __future__ import annotations

from dataclasses import dataclass

from ragan.config import hparam
from ragan.losses import dcgan_discriminator_loss, dcgan_generator_loss
from ragan.models.gan import GAN, GANConfig
from ragan.registry import register_gan

__all__ = ["DCGAN", "DCGANConfig"]


@dataclass
class DCGANConfig(GANConfig):
    """DCGAN hyperparameters (the paper's Adam(2e-4, beta_1=0.5) are the defaults)."""

    real_label_smoothing: float = hparam(
        0.0,
        help="One-sided label smoothing: D's target for real images is 1 minus this (0 = off).",
        min=0,
        max=0.5,
    )


@register_gan("dcgan", config=DCGANConfig)
class DCGAN(GAN):
    """Deep convolutional GAN with the non-saturating binary cross-entropy loss.

    Generator: z projected to 4x4, then ConvTranspose 4x4 stride 2 + BatchNorm + ReLU blocks (no
    bias before BatchNorm) and a final ConvTranspose with tanh. Discriminator: Conv 4x4 stride 2 +
    LeakyReLU(0.2) blocks, BatchNorm on all but the first, and a linear logit. Weights start from
    N(0, 0.02). D minimises ``BCE(D(x), 1) + BCE(D(G(z)), 0)``; G minimises ``BCE(D(G(z)), 1)``
    (the non-saturating loss, :func:`ragan.losses.dcgan_generator_loss`). With
    ``conditional=True`` G has class-conditional BatchNorms and D gets a projection head.

    Args:
        config: a :class:`DCGANConfig`, a dict of overrides, or ``None``.
        image_size: 16..256, a power of two.
        channels: 1 or 3.
        num_classes: classes in the dataset (for ``conditional=True``).
        seed: seed of all the model's randomness.

    Reference:
        Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks", ICLR (arXiv:1511.06434).

    Example:
        >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16, channels=1)
        >>> gan.compile(run_eagerly=True)   # eager: quicker for a 2-step demo; leave it out to train
        >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
        >>> history = gan.fit(images, batch_size=8, epochs=1, verbose=0)   # 2 steps
        >>> gan.generate(4, seed=0).shape
        (4, 16, 16, 1)
    """

    def discriminator_loss(self, real_logits, fake_logits):
        return dcgan_discriminator_loss(real_logits, fake_logits, real_label_smoothing=self.config.real_label_smoothing)

    def generator_loss(self, fake_logits):
        return dcgan_generator_loss(fake_logits)
