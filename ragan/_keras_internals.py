"""Every private Keras member ragan relies on, in one place (the only module that touches them).

Keras 3 has no public way to (1) compile a step function of a model's own the way ``fit`` compiles
``train_step`` (a ``tf.function`` run under the model's distribution strategy, its outputs
reduced across replicas) and (2) stop ``fit`` from building a model that is built already, under a
strategy scope (see :func:`unset_distribute_strategy`). ragan uses ``Model._make_function`` and
``Model._distribute_strategy`` for these, and only through this module. It is tested with Keras
``3.15`` (``requirements.txt`` pins it; ``setup.py`` allows ``keras>=3.3``): :func:`missing_internals`
names what another release lacks and :func:`require_internals` turns that into one line for the user.

TensorFlow needs no such module: the number of workers of a multi-worker strategy and Slurm's
tasks-per-node list are read with public API in :mod:`ragan.training.strategy`.

Example:
    >>> missing_internals()
    []
"""

from __future__ import annotations

import functools
import inspect

from ragan._tf import import_keras
from ragan.errors import RaganError

__all__ = [
    "PRIVATE_MEMBERS",
    "TESTED",
    "compile_step",
    "missing_internals",
    "require_internals",
    "unset_distribute_strategy",
]

TESTED = "3.15"
# keras.Model's private methods ragan calls -> their parameters.
PRIVATE_MEMBERS = {"_make_function": ("self", "step_function")}
# Attributes every keras.Model instance has (set in its constructor).
PRIVATE_ATTRIBUTES = ("_distribute_strategy",)


def missing_internals() -> list[str]:
    """The Keras internals ragan needs that the installed Keras lacks (``[]`` when all are there)."""
    keras = import_keras()
    missing = []
    for name, expected in PRIVATE_MEMBERS.items():
        method = getattr(keras.Model, name, None)
        if method is None:
            missing.append(f"keras.Model.{name}")
        elif tuple(inspect.signature(method).parameters) != expected:
            missing.append(f"keras.Model.{name}{expected} (now {tuple(inspect.signature(method).parameters)})")
    model = keras.Sequential()
    missing += [f"keras.Model().{name}" for name in PRIVATE_ATTRIBUTES if not hasattr(model, name)]
    return missing


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


def compile_step(model, step_function):
    """``step_function(data)`` compiled as ``fit`` compiles ``train_step``: ``f(iterator) -> logs``.

    The function runs in a ``tf.function`` under ``model``'s distribution strategy (one call per
    replica, the returned logs reduced across them), so a model may compile several variants of
    its step (StyleGAN2: one per combination of due regularisers) and pick one before each step.
    """
    require_internals()
    return model._make_function(step_function)  # noqa: SLF001 - the fenced internal


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
