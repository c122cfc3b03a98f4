"""The GAN registry: ``@register_gan("name", config=NameConfig)``, ``get_gan``, ``list_gans``.

Registering a class makes it reachable by name from every stage and from the CLI, and makes it
Keras-serialisable (``.keras`` files reload it with ``safe_mode`` on, provided the module that
registers it is imported first).

The registry knows no model: GANs register themselves when their module is imported. Before the
first lookup it imports the modules named with :func:`add_gan_module` (``ragan/__init__.py`` names
``ragan.models``, the package of the built-in GANs) and then the plugins (:func:`load_plugins`), so
``get_gan("dcgan")`` works whatever was imported first.

Weight files of other programs (StyleGAN2-ADA's ``.pkl`` network pickles) are read by a loader a
model registers for their file name suffix (:func:`register_weight_loader`); ``ragan generate``,
``--init-from`` and the training plan ask :func:`weight_loader_for` and name no model themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ragan.errors import RaganError, did_you_mean

__all__ = [
    "WeightLoader",
    "add_gan_module",
    "get_config_class",
    "get_gan",
    "list_gans",
    "load_plugins",
    "register_gan",
    "register_weight_loader",
    "weight_loader_for",
]

_GANS: dict[str, type] = {}
# Modules imported before the registry is first read; importing one registers its GANs.
_GAN_MODULES: list[str] = []


PLUGINS_ENV = "RAGAN_PLUGINS"
_loaded_plugins: set[str] = set()


def load_plugins(specs: str | list[str] | None = None) -> list[str]:
    """Import user modules that register their own GANs.

    Args:
        specs: module names (``my_lab.gans``) or ``.py`` file paths, as a list or a
            comma-separated string; ``None`` reads the ``RAGAN_PLUGINS`` environment variable.
            Child processes (multi-worker training, tuner workers) inherit the variable, so
            they see the same GANs.

    Returns:
        The specs imported by this call (each is imported once per process).

    Example:
        A plugin file registering one GAN (on the command line: ``RAGAN_PLUGINS=my_gans.py ragan train
        my_dcgan ...`` or ``ragan --import my_gans.py train my_dcgan ...``):

        >>> from pathlib import Path
        >>> _ = Path("my_gans.py").write_text(
        ...     "import ragan\\n"
        ...     "@ragan.register_gan('my_dcgan', config=ragan.models.DCGANConfig)\\n"
        ...     "class MyDCGAN(ragan.models.DCGAN):\\n"
        ...     "    pass\\n"
        ... )
        >>> load_plugins("my_gans.py")
        ['my_gans.py']
        >>> get_gan("my_dcgan").__name__
        'MyDCGAN'
        >>> load_plugins("my_gans.py")   # imported once per process
        []
    """
    import importlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    if specs is None:
        specs = os.environ.get(PLUGINS_ENV, "")
    if isinstance(specs, str):
        specs = [part for part in specs.split(",")]
    loaded = []
    for spec in (part.strip() for part in specs):
        if not spec or spec in _loaded_plugins:
            continue
        _loaded_plugins.add(spec)
        try:
            if spec.endswith(".py") or os.sep in spec:
                path = Path(spec).expanduser().resolve()
                if not path.is_file():
                    raise RaganError(f"plugin file {spec!r} does not exist ({PLUGINS_ENV} / --import).")
                name = f"ragan_plugin_{path.stem}"
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                module_spec.loader.exec_module(module)
            else:
                importlib.import_module(spec)
        except RaganError:
            _loaded_plugins.discard(spec)
            raise
        except ImportError as error:
            _loaded_plugins.discard(spec)
            raise RaganError(f"cannot import plugin {spec!r} ({PLUGINS_ENV} / --import): {error}") from None
        loaded.append(spec)
    return loaded


def add_gan_module(name: str) -> None:
    """Have the module ``name`` imported before the registry is first read (it registers GANs).

    Importing it is deferred to the first :func:`get_gan` / :func:`list_gans`, so naming a module
    that needs TensorFlow keeps ``import ragan`` light.

    Example:
        >>> add_gan_module("ragan.models")   # what ragan/__init__.py does for the built-in GANs
        >>> "dcgan" in list_gans()
        True
    """
    if name not in _GAN_MODULES:
        _GAN_MODULES.append(name)


def _load_gan_modules() -> None:
    # The GANs register themselves when their modules are imported: the named ones (the built-in
    # models), then users' plugins (RAGAN_PLUGINS / ragan --import).
    import importlib

    for name in _GAN_MODULES:
        importlib.import_module(name)
    load_plugins()


def register_gan(name: str, *, config: type) -> Callable[[type], type]:
    """Class decorator registering a :class:`ragan.models.GAN` subclass under ``name``.

    Args:
        name: the name used on the command line (``ragan train NAME``); lower-case, no spaces.
        config: the :class:`ragan.config.Config` dataclass declaring its hyperparameters.

    Example:
        >>> from dataclasses import dataclass
        >>> from ragan.models import GAN, GANConfig
        >>> @dataclass
        ... class MyGANConfig(GANConfig):
        ...     pass
        >>> @register_gan("my_gan", config=MyGANConfig)
        ... class MyGAN(GAN):
        ...     pass
        >>> get_gan("my_gan") is MyGAN, MyGAN.gan_name
        (True, 'my_gan')
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum() or name != name.lower():
        raise RaganError(f"GAN name {name!r} must be lower-case letters, digits, '_' or '-'.")

    def decorate(cls: type) -> type:
        from ragan._tf import import_keras

        keras = import_keras()
        existing = _GANS.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise RaganError(f"a GAN named {name!r} is already registered ({existing.__qualname__}).")
        cls.gan_name = name
        cls.config_class = config
        registered = keras.saving.register_keras_serializable(package="ragan", name=cls.__name__)(cls)
        _GANS[name] = registered
        return registered

    return decorate


def list_gans() -> list[str]:
    """Names of all registered GANs, sorted."""
    _load_gan_modules()
    return sorted(_GANS)


def get_gan(name: str) -> type:
    """The GAN class registered as ``name``; an unknown name is an error with a did-you-mean."""
    _load_gan_modules()
    key = name.strip().lower().replace("-", "_")
    for candidate in (name, key):
        if candidate in _GANS:
            return _GANS[candidate]
    raise RaganError(f"unknown GAN {name!r}; registered: {', '.join(sorted(_GANS))}.{did_you_mean(key, _GANS)}")


def get_config_class(name: str) -> type:
    """The hyperparameter dataclass of the GAN registered as ``name``."""
    return get_gan(name).config_class


# --------------------------------------------------------------------------------------------
# Loaders of other programs' weight files
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightLoader:
    """How to read one kind of foreign weight file (see :func:`register_weight_loader`).

    Attributes:
        suffix: the file name suffix, lower-case with its dot (``".pkl"``).
        gan: the registered GAN name the weights make (``"stylegan2"``).
        load: ``load(path, *, channels=None) -> (gan, info)``: a built GAN holding the file's
            weights (``channels`` converts the image channels) and a JSON-ready dict describing
            the source (file name, hash, ...).
        architecture: ``architecture(path) -> (config_values, shape)``: the GAN config values
            the weights need and ``{"image_size", "channels", "num_classes"}``, read without
            building the model (so ``--init-from`` is checked before a run folder exists).
        description: what the file is, for messages (``"an official StyleGAN2-ADA pickle"``).
    """

    suffix: str
    gan: str
    load: Callable
    architecture: Callable
    description: str


_WEIGHT_LOADERS: dict[str, WeightLoader] = {}


def register_weight_loader(
    suffix: str, *, gan: str, load: Callable, architecture: Callable, description: str
) -> WeightLoader:
    """Register the reader of foreign weight files ending in ``suffix`` (one loader per suffix).

    Args:
        suffix: the file name suffix with its dot, e.g. ``".pkl"`` (matched case-insensitively).
        gan: the registered name of the GAN the weights make.
        load: ``load(path, *, channels=None) -> (gan, info)`` (see :class:`WeightLoader`).
        architecture: ``architecture(path) -> (config_values, shape)``.
        description: what such a file is, for messages.

    Example:
        >>> def load(path, *, channels=None):
        ...     raise NotImplementedError
        >>> loader = register_weight_loader(
        ...     ".npw", gan="dcgan", load=load, architecture=load, description="a NumPy weights file"
        ... )
        >>> weight_loader_for("nets/g.NPW") is loader, weight_loader_for("runs/dcgan") is None
        (True, True)
    """
    suffix = suffix.lower()
    if not suffix.startswith(".") or len(suffix) < 2:
        raise RaganError(f"suffix={suffix!r} must be a file name suffix such as '.pkl'.")
    existing = _WEIGHT_LOADERS.get(suffix)
    if existing is not None and existing.gan != gan:
        raise RaganError(f"{suffix} files are already read by the {existing.gan} loader.")
    loader = WeightLoader(suffix, gan, load, architecture, description)
    _WEIGHT_LOADERS[suffix] = loader
    return loader


def weight_loader_for(path) -> WeightLoader | None:
    """The loader registered for ``path``'s suffix, or ``None`` (a ragan run, a ``.keras`` file...).

    The GAN modules (built-in and plugins) are imported first: they register the loaders.
    """
    if not isinstance(path, (str, os.PathLike)):
        return None
    _load_gan_modules()
    return _WEIGHT_LOADERS.get(os.path.splitext(os.fspath(path))[1].lower())
