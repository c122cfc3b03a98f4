"""Every private TensorFlow member ragan relies on, in one place (the only module that touches them).

One today: :func:`set_random_seed` sets TensorFlow's global seed the way ``tf.random.set_seed``
does (``Context._set_global_seed`` of ``tensorflow.python.eager.context``: ``_seed`` and ``_rng``)
but without emptying the eager kernel cache. Measured with TensorFlow 2.21 (``requirements.txt``): a
release without them (:func:`missing_internals` names what is gone) gets the public, slower
``keras.utils.set_random_seed`` instead, with the same seeds and results, so no error is needed.

(The other TensorFlow internals ragan once used, a multi-worker strategy's ``_num_workers`` and
the Slurm resolver's ``expand_tasks_per_node``, were replaced by public API in
:mod:`ragan.training.strategy`; Keras' are in :mod:`ragan._keras_internals`.)

Example:
    >>> missing_internals()
    []
"""

from __future__ import annotations

import random

from ragan._tf import import_keras, import_tf

__all__ = ["TESTED", "missing_internals", "set_random_seed"]

TESTED = "2.21"
# tensorflow.python.eager.context.Context members: the method set_random_seed does the work of, the
# attribute it sets (the other, _rng, is created by that method on first use).
CONTEXT_ATTRIBUTES = ("_set_global_seed", "_seed")


def _eager_context():
    """TensorFlow's eager context when it has :data:`CONTEXT_ATTRIBUTES`, else ``None``."""
    import_tf()
    try:
        from tensorflow.python.eager import context as eager_context
    except ImportError:
        return None
    context = eager_context.context()
    return context if all(hasattr(context, name) for name in CONTEXT_ATTRIBUTES) else None


def missing_internals() -> list[str]:
    """The TensorFlow internals ragan would use that the installed TensorFlow lacks (``[]``: none)."""
    if _eager_context() is not None:
        return []
    return [f"tensorflow.python.eager.context.Context.{name}" for name in CONTEXT_ATTRIBUTES]


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)`` (Python, NumPy, Keras, TensorFlow), keeping TensorFlow's kernels.

    ``tf.random.set_seed`` also empties the eager kernel cache, which holds the instantiated
    ``tf.function`` graphs: every traced function (the train step, the validation and test forward
    passes) is then instantiated again on its next call. That cost 2-3 s per run of the study on 2
    CPU cores, a fifth of a run. Here the seed is set as ``tf.random.set_seed`` sets it, minus the
    clearing, so the same seeds give the same runs. The kernels of unseeded stateful random ops run
    before (``tf.random.uniform`` without a seed; ragan uses stateless ones) keep their state.
    Other TensorFlow versions, without the attributes used, get ``keras.utils.set_random_seed``.
    """
    keras, tf = import_keras(), import_tf()
    context = _eager_context()
    if context is None or not tf.executing_eagerly():
        keras.utils.set_random_seed(seed)
        return

    def set_seed_keeping_kernels(value):
        # tensorflow.python.eager.context.Context._set_global_seed without TFE_ContextClearCaches.
        context._seed = value  # noqa: SLF001 - the fenced internal
        context._rng = random.Random(value)  # noqa: SLF001

    clearing_set_seed = tf.random.set_seed
    tf.random.set_seed = set_seed_keeping_kernels
    try:
        keras.utils.set_random_seed(seed)
    finally:
        tf.random.set_seed = clearing_set_seed
