"""Every private Keras member ragan relies on, in one place (the only module that touches them).

Keras 3 has no public way to stop ``fit`` from building a model that is built already, under a
strategy scope (see :func:`unset_distribute_strategy`); ragan sets ``Model._distribute_strategy``
for it, only through this module. It is tested with Keras ``3.15`` (``requirements.txt`` pins it;
``setup.py`` allows ``keras>=3.3``): :func:`missing_internals` names what another release lacks and
:func:`require_internals` turns that into one line for the user. (StyleGAN2's per-phase steps once
used ``Model._make_function`` too; they now compile their phases themselves.)

:func:`fused_adam_update` reads an ``Adam`` optimizer's slots (``_momentums``, ``_velocities``,
``_get_variable_index``) to apply its update with one fused kernel per variable; where anything it
relies on is missing or unusual it returns ``False`` and the caller uses ``apply_gradients``.

TensorFlow's are in :mod:`ragan._tf_internals`.

Example:
    >>> missing_internals()
    []
"""

from __future__ import annotations

import functools

from ragan._tf import import_keras, import_tf
from ragan.errors import RaganError

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "TESTED",
    "fused_adam_update",
    "missing_internals",
    "require_internals",
    "unset_distribute_strategy",
]

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


# What Keras's own Adam step does besides the update rule; any of these set means the fused step
# would differ from it, so it is not used.
_ADAM_EXTRAS = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "gradient_accumulation_steps",
    "loss_scale_factor",
)


def _fusable(optimizer, gradients, variables) -> bool:
    keras = import_keras()
    tf = import_tf()
    if type(optimizer) is not keras.optimizers.Adam or optimizer.amsgrad or getattr(optimizer, "use_ema", False):
        return False
    if any(getattr(optimizer, name, None) for name in _ADAM_EXTRAS):
        return False
    if not hasattr(optimizer, "_get_variable_index"):
        return False
    if tf.distribute.get_strategy().num_replicas_in_sync != 1:
        return False  # Keras all-reduces the replicas' gradients first
    for gradient, variable in zip(gradients, variables):
        if not isinstance(gradient, tf.Tensor) or gradient.dtype != tf.float32:
            return False  # IndexedSlices, or another precision
        value = getattr(variable, "value", variable)
        if getattr(variable, "constraint", None) is not None or getattr(variable, "overwrite_with_gradient", False):
            return False
        if not hasattr(value, "handle") or isinstance(value, tf.distribute.DistributedValues):
            return False
    return True


def fused_adam_update(optimizer, gradients, variables) -> bool:
    """Apply ``optimizer`` (a plain ``keras.optimizers.Adam``) with one ``ResourceApplyAdam``
    kernel per variable instead of Keras's dozen element-wise ops per variable; returns ``False``
    (and changes nothing) where Keras's ``apply_gradients`` must do it instead.

    The update is Keras's Adam rule (``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``;
    ``m += (g - m)(1 - beta_1)``; ``v += (g^2 - v)(1 - beta_2)``; ``w -= alpha m / (sqrt(v) +
    epsilon)``) on the optimizer's own slot variables, so checkpoints are unchanged. It falls back for
    AMSGrad, weight decay, clipping, EMA, gradient accumulation, loss scaling, constraints, more
    than one replica (Keras all-reduces the gradients), sparse or non-float32 gradients. One
    ``tf.function`` trace of the four StyleGAN2 phases builds a third fewer ops with it (16,970 -> 11,322).
    """
    gradients, variables = list(gradients), list(variables)
    if not variables or not _fusable(optimizer, gradients, variables):
        return False
    tf = import_tf()
    if not optimizer.built:  # as Keras's apply() builds it
        with import_keras().name_scope(optimizer.name, caller=optimizer):
            optimizer.build(variables)
        optimizer.built = True
    if not (hasattr(optimizer, "_momentums") and hasattr(optimizer, "_velocities")):
        return False
    step = tf.cast(optimizer.iterations + 1, tf.float32)
    beta_1 = tf.constant(optimizer.beta_1, tf.float32)
    beta_2 = tf.constant(optimizer.beta_2, tf.float32)
    shared = {
        "lr": tf.cast(optimizer.learning_rate, tf.float32),
        "beta1_power": tf.pow(beta_1, step),
        "beta2_power": tf.pow(beta_2, step),
        "beta1": beta_1,
        "beta2": beta_2,
        "epsilon": tf.constant(optimizer.epsilon, tf.float32),
    }
    for gradient, variable in zip(gradients, variables):
        index = optimizer._get_variable_index(variable)  # noqa: SLF001 - the fenced internal
        momentum = optimizer._momentums[index]  # noqa: SLF001
        velocity = optimizer._velocities[index]  # noqa: SLF001
        tf.raw_ops.ResourceApplyAdam(
            var=getattr(variable, "value", variable).handle,
            m=momentum.value.handle,
            v=velocity.value.handle,
            grad=gradient,
            use_locking=False,
            **shared,
        )
    optimizer.iterations.assign_add(1)
    return True
