"""The GAN registry: ``@register_gan("name", config=NameConfig)``, ``get_gan``, ``list_gans``.

Registering a class makes it reachable by name from every stage and from the CLI, and makes it
Keras-serialisable (``.keras`` files reload it with ``safe_mode`` on, provided the module that
registers it is imported first).
"""

from __future__ import annotations

from typing import Callable

from ragan.errors import RaganError, did_you_mean

__all__ = ["register_gan", "get_gan", "list_gans", "get_config_class"]

_GANS: dict[str, type] = {}


def _load_builtin_models() -> None:
    # The built-in GANs register themselves when their modules are imported.
    import ragan.models  # noqa: F401


def register_gan(name: str, *, config: type) -> Callable[[type], type]:
    """Class decorator registering a :class:`ragan.models.GAN` subclass under ``name``.

    Args:
        name: the name used on the command line (``ragan train NAME``); lower-case, no spaces.
        config: the :class:`ragan.config.Config` dataclass declaring its hyperparameters.

    Example:
        >>> @ragan.register_gan("my_gan", config=MyGANConfig)
        ... class MyGAN(ragan.models.GAN):
        ...     ...
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
    _load_builtin_models()
    return sorted(_GANS)


def get_gan(name: str) -> type:
    """The GAN class registered as ``name``; an unknown name is an error with a did-you-mean."""
    _load_builtin_models()
    key = name.strip().lower().replace("-", "_")
    for candidate in (name, key):
        if candidate in _GANS:
            return _GANS[candidate]
    raise RaganError(
        f"unknown GAN {name!r}; registered: {', '.join(sorted(_GANS))}.{did_you_mean(key, _GANS)}"
    )


def get_config_class(name: str) -> type:
    """The hyperparameter dataclass of the GAN registered as ``name``."""
    return get_gan(name).config_class
