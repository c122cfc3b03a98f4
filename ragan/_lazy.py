"""Lazy package attributes: names imported from their submodule on first use (PEP 562).

``import ragan`` and its subpackages stay cheap (no TensorFlow) until a stage is used.
"""

from __future__ import annotations

import importlib


def lazy_attributes(package: str, namespace: dict, names: dict[str, str], submodules):
    """Return ``(__getattr__, __dir__)`` for ``package``.

    Args:
        package: the package's ``__name__``.
        namespace: its ``globals()``; a loaded name is cached there.
        names: public name -> the submodule (relative to ``package``) that defines it.
        submodules: submodules reachable as attributes.
    """
    submodules = frozenset(submodules)

    def __getattr__(name):
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(names) | submodules)

    return __getattr__, __dir__
