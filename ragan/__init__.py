"""ragan: turn a small set of medical images into more training data, and prove whether it helps.

The pipeline, each stage a function here and a ``ragan`` subcommand::

    prepare_dataset -> train -> (tune) -> generate -> evaluate

Example (a few training steps on the bundled sample; a useful generator trains for 100 kimg or more):
    >>> import ragan
    >>> _ = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=16, progress=False)
    >>> run = ragan.train("dcgan", data="prepared", out="runs/dcgan", kimg=0.25, progress=False,
    ...                   config={"base_filters": 8, "latent_dim": 16})
    >>> ragan.generate(run, n=8, out="synthetic", progress=False).num_images
    8

TensorFlow is imported lazily (on first use of a stage that needs it), quietly.
"""

from __future__ import annotations

from ragan._lazy import lazy_attributes
from ragan._logging import install as _install_logging
from ragan._tf import import_tf, quiet_environment
from ragan._version import __version__
from ragan.config import Boolean, Choice, Config, Float, Int, hparam
from ragan.errors import RaganError
from ragan.registry import add_gan_module, get_gan, list_gans, register_gan

quiet_environment()
_install_logging()  # the `ragan` logger's handler: progress on stdout, warnings on stderr (ragan/_logging.py)
# The built-in GANs register themselves when ragan.models is imported: on the registry's first lookup.
add_gan_module("ragan.models")

# name -> module that defines it; imported on first access so `import ragan` stays fast.
_LAZY = {
    "prepare_dataset": "data.prepare",
    "load_dataset": "data.pipeline",
    "read_manifest": "data.manifest",
    "train": "training.loop",
    "generate": "generation",
    "load_generator": "generation",
    "evaluate": "evaluation.report",
    "tune": "tuning.tuner",
    "PrepareConfig": "data.prepare_options",
    "TrainConfig": "training.config",
    "GenerateConfig": "generation",
    "EvaluateConfig": "evaluation.config",
    "TuneConfig": "tuning.config",
}
_SUBMODULES = {"data", "datasets", "models", "training", "evaluation", "tuning", "losses", "layers"}

__all__ = [
    "__version__",
    "Boolean",
    "Choice",
    "Config",
    "Float",
    "Int",
    "RaganError",
    "get_gan",
    "hparam",
    "import_tf",
    "list_gans",
    "register_gan",
    *_LAZY,
    *sorted(_SUBMODULES),
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
