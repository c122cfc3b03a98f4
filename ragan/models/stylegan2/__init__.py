"""StyleGAN2-ADA in Keras 3: the official architecture and training, registered as ``stylegan2``.

* :mod:`~ragan.models.stylegan2.model`: :class:`StyleGAN2` (the ragan GAN: compile, the phase
  schedule, generation, transfer);
* :mod:`~ragan.models.stylegan2.config` / :mod:`~ragan.models.stylegan2.presets`: the
  hyperparameters, the official ``--cfg`` presets as data, and their values resolved once;
* :mod:`~ragan.models.stylegan2.loss`: the losses of the four training phases;
* :mod:`~ragan.models.stylegan2.networks`: the generator and discriminator;
* :mod:`~ragan.models.stylegan2.ops`: modulated convolution, FIR resampling, minibatch stddev;
* :mod:`~ragan.models.stylegan2.pickle_reader` / :mod:`~ragan.models.stylegan2.official_names`:
  reading NVIDIA's published network pickles without PyTorch.
"""

from ragan.models.stylegan2 import pickle_import
from ragan.models.stylegan2.config import StyleGAN2Config, StyleGAN2Options, resolve_preset
from ragan.models.stylegan2.model import StyleGAN2
from ragan.models.stylegan2.presets import PRESETS
from ragan.registry import register_weight_loader

# Official network pickles are read by the registry's hook (ragan generate, --init-from), not by name.
register_weight_loader(
    ".pkl",
    gan="stylegan2",
    load=pickle_import.import_network_pickle,
    architecture=pickle_import.network_pickle_config,
    description="an official StyleGAN2-ADA pickle",
)

__all__ = ["PRESETS", "StyleGAN2", "StyleGAN2Config", "StyleGAN2Options", "resolve_preset"]
