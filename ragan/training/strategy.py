"""Choosing the ``tf.distribute`` strategy, and who writes files in a multi-worker run.

``distribution="auto"`` picks

* ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster of more than one task,
* ``MirroredStrategy`` over all visible GPUs when there are at least two,
* the default (single-device) strategy otherwise.

``"mirrored"`` mirrors over all visible GPUs, or over all logical CPU devices when there is no
GPU (that is how the tests exercise it on CPU); ``"multi_worker"`` insists on ``TF_CONFIG``;
``"none"`` always uses one device.

In a multi-worker run every worker executes the same program (collective ops need all of them),
but only the *chief* writes the run directory, checkpoints, grids and MLflow records; the other
workers write to a temporary directory that is deleted afterwards, which is TensorFlow's
convention for multi-worker checkpointing.

Example:
    >>> strategy = select_strategy("auto")
    >>> describe_strategy(strategy)
    'one device (CPU:0)'
"""

from __future__ import annotations

import json
import os

from ragan._tf import import_tf
from ragan.errors import RaganError, check_choice

__all__ = [
    "select_strategy", "describe_strategy", "is_chief", "is_multi_worker", "cluster_spec_from_env", "any_worker",
]


def cluster_spec_from_env() -> dict | None:
    """The parsed ``TF_CONFIG`` environment variable, or ``None`` when unset/empty."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise RaganError(f"TF_CONFIG is not valid JSON ({error.msg} at column {error.colno}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise RaganError("TF_CONFIG must be a JSON object with a 'cluster' mapping and a 'task'.")
    task = config.get("task") or {}
    if "type" not in task or "index" not in task:
        raise RaganError("TF_CONFIG needs 'task': {'type': 'worker' or 'chief', 'index': N}.")
    return config


def _cluster_size(config: dict) -> int:
    return sum(len(addresses) for addresses in config["cluster"].values())


def select_strategy(distribution: str = "auto"):
    """Return the ``tf.distribute.Strategy`` for ``distribution``.

    Create it before any other TensorFlow operation: ``MultiWorkerMirroredStrategy`` has to
    configure collective ops before the TensorFlow runtime starts.

    Args:
        distribution: ``"auto"``, ``"mirrored"``, ``"multi_worker"`` or ``"none"``.

    Returns:
        A strategy; ``strategy.num_replicas_in_sync`` is the number of replicas.

    Example:
        >>> select_strategy("none").num_replicas_in_sync
        1
    """
    check_choice("distribution", distribution, ("auto", "mirrored", "multi_worker", "none"))
    tf = import_tf()
    cluster = cluster_spec_from_env() if distribution in ("auto", "multi_worker") else None
    if distribution == "multi_worker" and cluster is None:
        raise RaganError("distribution='multi_worker' needs the TF_CONFIG environment variable describing the cluster.")
    if cluster is not None and (distribution == "multi_worker" or _cluster_size(cluster) > 1):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if distribution == "none":
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if distribution == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans more than one process."""
    tf = import_tf()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return strategy.extended._num_workers > 1  # noqa: SLF001 - no public accessor in TF 2.21


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files (always true outside multi-worker runs).

    The chief is the task of type ``chief``, or worker 0 when the cluster has no chief.
    """
    tf = import_tf()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type is None:
        return True
    return is_chief_task(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def is_chief_task(task_type: str, task_id: int, cluster: dict) -> bool:
    """The chief is the task of type ``chief``, or worker 0 when ``cluster`` (TF_CONFIG's) has none."""
    if task_type == "chief":
        return True
    return task_type == "worker" and int(task_id) == 0 and "chief" not in cluster


def describe_strategy(strategy) -> str:
    """A short human description: ``'one device (CPU:0)'``, ``'mirrored over 2 devices'``, ..."""
    tf = import_tf()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        workers = strategy.extended._num_workers  # noqa: SLF001
        return f"multi-worker over {workers} workers ({strategy.num_replicas_in_sync} replicas)"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"mirrored over {strategy.num_replicas_in_sync} devices"
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    return f"one device ({device})"


def any_worker(strategy):
    """``agree(flag) -> bool``: whether ``flag`` is true on any worker of ``strategy`` (a collective).

    Every worker must call it the same number of times, in the same order (after each step).

    Example:
        >>> agree = any_worker(strategy)          # doctest: +SKIP
        >>> agree(stop_requested() is not None)   # the same answer on every worker
    """
    tf = import_tf()

    @tf.function
    def total(flag):
        per_replica = strategy.run(lambda: tf.identity(flag))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def agree(flag: bool) -> bool:
        return float(total(tf.constant(1.0 if flag else 0.0))) > 0.0

    return agree
