"""ragan's GANs: the :class:`GAN` base class (the extension point) and the registered models.

Importing this package registers ``dcgan``, ``wgan_gp``, ``sngan``, ``acgan`` and ``stylegan2`` and makes them
loadable from ``.keras`` files with ``safe_mode`` on.

Example:
    >>> from ragan.models import DCGAN, load_gan
    >>> gan = DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16)
    >>> gan.compile(run_eagerly=True)   # eager: quicker for a 2-step demo; leave it out to train
    >>> images = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
    >>> history = gan.fit(images, batch_size=8, epochs=1, verbose=0)   # 2 steps
    >>> gan.save("dcgan.keras")
    >>> load_gan("dcgan.keras").generate(8, seed=0).shape
    (8, 16, 16, 1)
"""

from __future__ import annotations

import os

from ragan._tf import import_keras
from ragan.errors import RaganError
from ragan.models.acgan import ACGAN, ACGANConfig
from ragan.models.dcgan import DCGAN, DCGANConfig
from ragan.models.gan import GAN, GANConfig
from ragan.models.sngan import SNGAN, SNGANConfig
from ragan.models.stylegan2 import StyleGAN2, StyleGAN2Config
from ragan.models.wgan_gp import WGANGP, WGANGPConfig

__all__ = [
    "ACGAN",
    "ACGANConfig",
    "DCGAN",
    "DCGANConfig",
    "GAN",
    "GANConfig",
    "SNGAN",
    "SNGANConfig",
    "StyleGAN2",
    "StyleGAN2Config",
    "WGANGP",
    "WGANGPConfig",
    "load_gan",
]


def load_gan(path: str | os.PathLike, *, compile: bool = True) -> GAN:
    """Load a GAN saved with ``gan.save("....keras")`` (``safe_mode`` on).

    Args:
        path: the ``.keras`` file.
        compile: also restore the two optimizers (and their state).

    Returns:
        the :class:`GAN` (generator, discriminator, EMA generator and seed state restored).

    Example:
        >>> DCGAN({"latent_dim": 8, "base_filters": 8}, image_size=16).save("tiny.keras")
        >>> gan = load_gan("tiny.keras")
        >>> gan.gan_name, gan.image_size
        ('dcgan', 16)
        >>> load_gan("missing.keras")
        Traceback (most recent call last):
        ragan.errors.RaganError: model file 'missing.keras' does not exist.
    """
    keras = import_keras()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise RaganError(f"model file {path!r} does not exist.")
    if not path.endswith(".keras"):
        raise RaganError(f"model file {path!r} must be a .keras file saved by ragan.")
    model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    if not isinstance(model, GAN):
        raise RaganError(f"model file {path!r} holds a {type(model).__name__}, not a ragan GAN.")
    return model
