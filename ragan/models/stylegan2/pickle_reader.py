"""Read official StyleGAN2-ADA network pickles without PyTorch and without running their code.

The reader lives in :mod:`ragan._network_pickle` (it imports no TensorFlow, so a file is checked
and refused before any heavy import); this module is its public name under the StyleGAN2 package.
See that module for what is read and what is refused: in short, the file's opcodes are walked by
a small stack machine that builds only the values official network pickles hold (plain data,
numeric tensors checked against their storages, modules as :class:`PersistentModule`), with
its memory and time bounded by the file's size, and no callable from the file is ever called.

Example:
    >>> data = read_network_pickle("sg2ada-32px-gray-uncond.pkl")   # doctest: +SKIP
    >>> data["G_ema"].init_kwargs["img_resolution"]                  # doctest: +SKIP
    32
"""

from ragan._network_pickle import PersistentModule, network_config, read_network_pickle

__all__ = ["PersistentModule", "network_config", "read_network_pickle"]
