"""Every private Keras member ragan relies on, in one place (the only module that touches them).

Keras 3 has no public way to stop ``fit`` from building a model that is built already, under a
strategy scope (see :func:`unset_distribute_strategy`); ragan sets ``Model._distribute_strategy``
for it, only through this module. It is tested with Keras ``3.15`` (``requirements.txt`` pins it;
``setup.py`` allows ``keras>=3.3``): :func:`missing_internals` names what another release lacks and
:func:`require_internals` turns that into one line for the user. (StyleGAN2's per-phase steps once
used ``Model._make_function`` too; they now compile their phases themselves.)

TensorFlow's are in :mod:`ragan._tf_internals`.

Example:
    >>> missing_internals()
    []
"""

from __future__ import annotations

import functools

from ragan._tf import import_keras
from ragan.errors import RaganError

__all__ = ["PRIVATE_ATTRIBUTES", "TESTED", "missing_internals", "require_internals", "unset_distribute_strategy"]

TESTED = "3.15"
# Attributes every keras.Model instance has (set in its constructor).
PRIVATE_ATTRIBUTES = ("_distribute_strategy",)


def missing_internals() -> list[str]:
    """The Keras internals ragan needs that the installed Keras lacks (``[]`` when all are there)."""
    model = import_keras().Sequential()
    return [f"keras.Model().{name}" for name in PRIVATE_ATTRIBUTES if not hasattr(model, name)]


@functools.cache
def require_internals() -> None:
    """Raise a one-line :class:`RaganError` when the installed Keras lacks an internal ragan needs."""
    missing = missing_internals()
    if missing:
        keras = import_keras()
        raise RaganError(
            f"keras {keras.__version__} lacks internals ragan's training relies on ({', '.join(missing)}); "
            f"ragan is tested with keras {TESTED}: pip install 'keras=={TESTED}.*'."
        )


def unset_distribute_strategy(model) -> None:
    """Make ``fit`` skip its symbolic build of ``model`` (see :func:`ragan.training.loop.train`).

    A model built under a strategy scope makes Keras 3's ``fit()`` pull one batch from the
    iterator before training and average it across replicas, which shifts the data stream by one
    batch per ``fit`` call and fails under ``MultiWorkerMirroredStrategy`` for ``(images, labels)``
    batches. With the model's own strategy unset and ``fit()`` run inside the strategy's scope,
    Keras uses the same strategy for the step and the input but skips that build.
    """
    require_internals()
    model._distribute_strategy = None  # noqa: SLF001 - the fenced internal
