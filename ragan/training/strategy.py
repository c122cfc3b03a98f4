"""Choosing the ``tf.distribute`` strategy, and who writes files in a multi-worker run.

``distribution="auto"`` picks

* ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster of more than one task,
  or, without ``TF_CONFIG``, when the process is one of several tasks of a Slurm job step
  (``srun``: ``SLURM_STEP_NUM_TASKS`` > 1); then TensorFlow's ``SlurmClusterResolver`` builds the
  cluster from Slurm's variables, so ``srun ragan train ...`` is all it takes (see docs/hpc.md),
* ``MirroredStrategy`` over all visible GPUs when there are at least two,
* the default (single-device) strategy otherwise.

``"mirrored"`` mirrors over all visible GPUs, or over all logical CPU devices when there is no
GPU (that is how the tests exercise it on CPU); ``"multi_worker"`` insists on ``TF_CONFIG`` or a
Slurm job step of several tasks; ``"none"`` always uses one device.

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
import re
import shutil
import subprocess

from ragan._tf import import_tf
from ragan.errors import RaganError, check_choice

__all__ = [
    "select_strategy",
    "describe_strategy",
    "is_chief",
    "is_multi_worker",
    "cluster_spec_from_env",
    "any_worker",
    "slurm_step_tasks",
    "slurm_cluster_resolver",
    "is_chief_process",
    "expand_tasks_per_node",
    "num_workers",
]
# The first port of a Slurm job's workers on each node (tasks on one node use the next ones):
# RAGAN_SLURM_PORT, else derived from the job id so that jobs sharing a node do not collide.
SLURM_PORT_ENV = "RAGAN_SLURM_PORT"


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


def slurm_step_tasks() -> int:
    """How many tasks the current Slurm job step runs (1 outside Slurm or outside ``srun``).

    Raises:
        RaganError: the job has several tasks (``SLURM_NTASKS``) but this process was started
            by the batch script itself, not by ``srun``, so it is not one of them.
    """
    step_tasks = os.environ.get("SLURM_STEP_NUM_TASKS", "").strip()
    job_tasks = os.environ.get("SLURM_NTASKS", "").strip()
    if step_tasks:
        return int(step_tasks)
    if job_tasks and int(job_tasks) > 1:
        raise RaganError(
            f"SLURM_NTASKS={job_tasks} but this process is not one of the job's tasks; start training "
            "with srun (srun ragan train ...), which runs one worker per task."
        )
    return 1


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index, line in enumerate(line for line in listed.splitlines() if line.startswith("GPU "))]


def slurm_cluster_resolver():
    """TensorFlow's ``SlurmClusterResolver`` for this ``srun`` job step: one worker per task.

    Worker ``i`` is the task with ``SLURM_PROCID=i``; the tasks on a node listen on consecutive
    ports from ``RAGAN_SLURM_PORT`` (default: 15000 + 8 x (job id mod 5000)). When several tasks
    share a node that sees several GPUs, each task gets an equal share of them
    (``CUDA_VISIBLE_DEVICES``); a task Slurm already bound to fewer GPUs keeps its own.
    """
    tf = import_tf()
    try:
        tasks_on_node = expand_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"])
        rank = int(os.environ["SLURM_PROCID"])
        os.environ["SLURM_STEP_NODELIST"]  # read by the resolver
    except KeyError as missing:
        raise RaganError(f"Slurm job step without {missing.args[0]}; start training with srun.") from None
    port = os.environ.get(SLURM_PORT_ENV) or str(15000 + 8 * (int(os.environ.get("SLURM_JOB_ID", "0")) % 5000))
    if not port.isdigit():
        raise RaganError(f"{SLURM_PORT_ENV}={port!r} must be a port number.")
    per_node = max(tasks_on_node)
    gpus = _visible_gpus()
    if per_node > 1 and len(gpus) >= per_node:
        share = len(gpus) // per_node
        local = int(os.environ.get("SLURM_LOCALID", rank % per_node))
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[local * share : (local + 1) * share])
    # GPU placement is done above; the resolver's own (which runs nvidia-smi) is turned off.
    return tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=int(port), gpus_per_node=per_node, gpus_per_task=1, auto_set_gpu=False
    )


def is_chief_process() -> bool:
    """Whether this process writes the run's files, from the environment alone (before TF starts):
    false for the non-chief workers of a ``TF_CONFIG`` cluster or of a Slurm job step."""
    config = cluster_spec_from_env()
    if config is not None:
        if _cluster_size(config) < 2:
            return True
        return is_chief_task(config["task"]["type"], config["task"]["index"], config["cluster"])
    try:
        if slurm_step_tasks() > 1:
            return int(os.environ.get("SLURM_PROCID", "0")) == 0
    except (RaganError, ValueError):
        pass
    return True


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
    if cluster is None and distribution in ("auto", "multi_worker") and slurm_step_tasks() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=slurm_cluster_resolver())
    if distribution == "multi_worker" and cluster is None:
        raise RaganError(
            "distribution='multi_worker' needs the TF_CONFIG environment variable describing the cluster, "
            "or a Slurm job step of several tasks (srun)."
        )
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


def expand_tasks_per_node(text: str) -> list[int]:
    """Slurm's ``SLURM_STEP_TASKS_PER_NODE`` as one count per node, in node order.

    Example:
        >>> expand_tasks_per_node("3(x2),2,1")
        [3, 3, 2, 1]
    """
    counts = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if match is None:
            raise RaganError(f"SLURM_STEP_TASKS_PER_NODE={text!r} is not a tasks-per-node list such as '2(x3),1'.")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def num_workers(strategy) -> int:
    """The processes ``strategy`` spans: the chief and worker tasks of its cluster (1 without one).

    What ``MultiWorkerMirroredStrategy`` counts itself, from its public cluster resolver.
    """
    tf = import_tf()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans more than one process."""
    return num_workers(strategy) > 1


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
        workers = num_workers(strategy)
        return f"multi-worker over {workers} workers ({strategy.num_replicas_in_sync} replicas)"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return f"mirrored over {strategy.num_replicas_in_sync} devices"
    device = "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"
    return f"one device ({device})"


def any_worker(strategy):
    """``agree(flag) -> bool``: whether ``flag`` is true on any worker of ``strategy`` (a collective).

    Every worker must call it the same number of times, in the same order (after each step).

    Example:
        >>> agree = any_worker(select_strategy("none"))
        >>> agree(False), agree(True)   # with several workers: the same answer on every one
        (False, True)
    """
    tf = import_tf()

    @tf.function
    def total(flag):
        per_replica = strategy.run(lambda: tf.identity(flag))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def agree(flag: bool) -> bool:
        return float(total(tf.constant(1.0 if flag else 0.0))) > 0.0

    return agree
