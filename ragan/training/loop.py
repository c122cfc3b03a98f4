"""``ragan.train``: train a registered GAN on a prepared dataset, resumably, on any strategy.

One run directory holds everything a run produces::

    RUN_DIR/
      config.json            resolved model config, training options, data summary, versions
      run.json               status, step, the final model's file name, MLflow run id
      checkpoints/ckpt-<step>.npz   the last ``keep_checkpoints`` checkpoints (exact resume)
      samples/grid-<kimg>.png       fixed-noise sample grids (EMA generator); MLflow gets grids over
                                    1280 px downsized, from samples/preview/
      model.keras            the whole trained GAN (generator, EMA generator, discriminator)
      mlflow.db, mlartifacts/       the MLflow run (when no tracking URI is given)

:mod:`ragan.training.plan` resolves what to run (no TensorFlow work) and
:mod:`ragan.training.run_files` names these files; :func:`train` then runs the steps of ``_train``
in order (checkpoint to resume from, tracking, model, data, callbacks, ``fit``, publishing).

Why ``keras.Model.fit``: it runs the compiled step in a ``tf.function`` under any
``tf.distribute`` strategy with no extra code, and users' Keras callbacks just work (pass them as
``callbacks=``; one Keras epoch is one tick of ``log_every`` steps). A run is one ``fit`` call
over a repeated dataset (plus one for a final, shorter tick), so the input pipeline is not
restarted between ticks. ``benchmarks/train_throughput.py`` compares the whole loop (``train``
variant) with the bare compiled step (``fit`` variant) and with PyTorch.

Exact resume: a checkpoint holds every variable of the GAN (networks, EMA, noise-generator state,
ADA probability) and of both optimizers; the data stream is a seeded, deterministic shuffle that a
resumed run skips forward by the batches already used. On CPU, a resumed run matched the
uninterrupted one bit for bit in the tests (one device, and MirroredStrategy over two devices);
GPU kernels can be non-deterministic unless ``tf.config.experimental.enable_op_determinism()``
is set. In a multi-worker run every worker reads the checkpoints from ``RUN_DIR``, so resuming
needs ``RUN_DIR`` on a file system all workers share; only the chief writes it.

Example:
    A real run (2 kimg: minutes on a CPU, so not run here; :func:`train` has a runnable one-step run)::

        import ragan
        run = ragan.train("dcgan", data="prepared", out="runs/dcgan", kimg=2,
                          config={"latent_dim": 64, "conditional": True})
        ragan.generate(run, n=100, out="synthetic")
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragan._common import first_line
from ragan._files import PartialLock
from ragan._interrupt import Interrupted, handle_signals, signal_name, stop_requested
from ragan._keras_internals import unset_distribute_strategy
from ragan._logging import bars_enabled, stage_output
from ragan._version import __version__
from ragan.errors import RaganError
from ragan.training.config import TrainConfig
from ragan.training.plan import RunPlan, data_summary, describe_training, plan_run, resolved_config
from ragan.training.run_files import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    RUN_FILE,
    SAMPLES_DIR,
    check_run_dir,
    grid_file_name,
    resume_command,
    run_summary,
    update_run_file,
)

logger = logging.getLogger(__name__)

__all__ = ["train", "describe_training", "run_summary", "TrainingDiverged", "CONFIG_FILE", "RUN_FILE"]

# Offset of the sample grids' latent seed from the run's seed, so the grid's noise is never the
# same stream as the training noise.
GRID_SEED_OFFSET = 7919
# Seconds an interrupted run waits for MLflow to take its last records (clusters send SIGKILL
# some 30 s after SIGTERM).
KILLED_TRACKING_TIMEOUT = 10.0
# Decoded training images are kept in memory when they need at most this many bytes.
CACHE_LIMIT_BYTES = 512 << 20


class TrainingDiverged(RaganError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _precision(mixed_precision: bool):
    """The Keras dtype policy while the GAN is built: bfloat16 on GPUs that have it, else float16.

    Without a GPU it is float16 with loss scaling, the path of older GPUs, emulated on the CPU: slower
    than float32 and said so, but it runs, so a mixed-precision configuration can be checked (and
    tested) on a laptop before it goes to a GPU.
    """
    if not mixed_precision:
        yield "float32"
        return
    from ragan._tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capable = tuple(details.get("compute_capability", (0, 0))) >= (8, 0)
        policy = "mixed_bfloat16" if capable else "mixed_float16"
    else:
        policy = "mixed_float16"
        logger.warning(
            "mixed precision without a GPU: float16 is emulated on the CPU and slower than float32; "
            "use it to check a configuration, train in float32 (without --mixed-precision) on a CPU"
        )
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def _load_source_model(init_from: str, *, image_size: int, channels: int):
    from ragan._tf import import_keras
    from ragan.generation import resolve_model_path
    from ragan.registry import weight_loader_for

    keras = import_keras()
    loader = weight_loader_for(init_from)
    if loader is not None:
        gan, info = loader.load(init_from, channels=channels)
        gan.source_info = info
        return gan
    path, _ = resolve_model_path(init_from)
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - a corrupt or foreign file is the user's input
        raise RaganError(f"init_from='{init_from}': cannot load {path}: {first_line(error)}") from None


def _fit_in_ticks(gan, strategy, make_dataset, state, tick_steps: int, callbacks: list) -> None:
    """Run ``fit`` over the remaining steps: whole ticks, then one shorter tick if needed (and first
    the rest of a tick an interrupted run was stopped in).

    Each ``fit`` call gets a dataset positioned at the current step, so the stream of batches is
    the same however the run is split into calls (or sessions): step ``k`` trains on batch ``k-1``
    of the seeded stream, on every strategy.
    """
    # fit()'s "symbolic build" of a model built under a strategy scope shifts the data stream
    # and fails under multi-worker training; Keras 3 has no public switch for it.
    unset_distribute_strategy(gan)
    remaining = state.total_steps - state.step
    # A run stopped mid-tick (SIGTERM) first finishes that tick, so its ticks (and logged metrics)
    # fall on the same steps as an uninterrupted run's.
    lead = min(remaining, -state.step % tick_steps)
    full_ticks, rest = divmod(remaining - lead, tick_steps)
    epoch = 0
    for steps_per_epoch, epochs in ((lead, 1 if lead else 0), (tick_steps, full_ticks), (rest, 1 if rest else 0)):
        if epochs == 0:
            continue
        with strategy.scope():
            gan.fit(
                make_dataset(state.step),
                epochs=epoch + epochs,
                initial_epoch=epoch,
                steps_per_epoch=steps_per_epoch,
                shuffle=False,  # the dataset shuffles itself, reproducibly
                verbose=0,
                callbacks=callbacks,
            )
        epoch += epochs
        if state.diverged is not None or gan.stop_training:
            return


def train(
    model="dcgan",
    data=None,
    out=None,
    *,
    config=None,
    train_config=None,
    resume: bool = False,
    init_from=None,
    tracking_uri: str | None = None,
    experiment: str = "ragan",
    progress: bool = True,
    strategy=None,
    callbacks: list | None = None,
    mlflow_tags: Mapping[str, str] | None = None,
    **train_options,
) -> Path:
    """Train a registered GAN on a prepared dataset; return the run directory.

    The run seeds Python's, NumPy's and TensorFlow's global random generators with the training
    ``seed`` (``keras.utils.set_random_seed``), so the same call gives the same model.

    Args:
        model: a registered GAN name (``"dcgan"``, ``"wgan_gp"``, ...) or a registered class.
        data: the prepared dataset directory (its ``train`` split is used). May be omitted
            when resuming (the run's ``config.json`` names it).
        out: the run directory (new or empty, or an existing run with ``resume=True``).
        config: model hyperparameters: ``None`` (defaults), a dict of overrides, the model's
            config dataclass, or a YAML/JSON file (which may also hold training options, flat or
            under ``model:``/``training:``).
        train_config: training options: ``None``, a dict of overrides or a :class:`TrainConfig`.
        resume: ``True`` (or ``"auto"``): continue the run in ``out`` from its newest readable
            checkpoint (same step, optimizer state, noise state, data order and MLflow run); a
            truncated or corrupted newest checkpoint is reported and the previous one used. Only
            the options in ``RESUMABLE_CHANGES`` (length, intervals, XLA, distribution) may
            change. With no run in ``out`` yet (missing or empty folder) a new run starts; a
            folder holding anything else is refused. So the same call serves a first start and
            every restart of a pre-empted job.
        init_from: another run directory or ``.keras`` file whose generator/discriminator
            weights start this run where layer shapes match (transfer learning; optimizers start
            fresh). Ignored when resuming from a checkpoint.
        tracking_uri: MLflow tracking URI; default ``MLFLOW_TRACKING_URI`` or
            ``sqlite:///<out>/mlflow.db``.
        experiment: MLflow experiment name.
        progress: ``False``: warnings only, no progress or summary (see :mod:`ragan._logging`).
        strategy: a ``tf.distribute.Strategy`` to use instead of ``train_config.distribution``.
        callbacks: extra Keras callbacks (one Keras epoch = one tick of ``log_every`` steps).
        mlflow_tags: extra tags of the MLflow run, set when it starts (e.g. ``mlflow.parentRunId``
            to nest it under another run, as ``ragan tune`` does with its trials).
        **train_options: training options as keywords (``kimg=2``), on top of ``train_config``.

    Returns:
        The run directory.

    Raises:
        RaganError: invalid options, data or run directory (one line, naming the problem).
        TrainingDiverged: a loss became NaN/inf; the newest checkpoint is the last good one.
        ragan._interrupt.Interrupted: SIGTERM or SIGINT arrived (a ``KeyboardInterrupt``): the
            step under way finished, a checkpoint was written at it, the MLflow run was marked
            KILLED and ``run.json`` says ``"interrupted"``; its message names the command that
            continues the run. In the main thread only (where Python handles signals).

    Example:
        One step on 16 random images (a real run trains for ``kimg=...``; the example still takes
        several seconds: it builds, traces and saves the model and creates the MLflow database):

        >>> import ragan
        >>> images = np.random.default_rng(0).integers(0, 256, (16, 16, 16), dtype=np.uint8)   # 16 images, 16 px
        >>> np.savez("images.npz", images=images, labels=np.arange(16) % 2)
        >>> _ = ragan.prepare_dataset("images.npz", "prepared", image_size=16, split=(1, 0, 0), progress=False)
        >>> tiny = {"latent_dim": 8, "base_filters": 8, "conditional": True}
        >>> run = ragan.train("dcgan", data="prepared", out="runs/dcgan", steps=1, batch_size=8,
        ...                   config=tiny, progress=False)
        >>> sorted(path.name for path in run.iterdir())
        ['checkpoints', 'config.json', 'mlartifacts', 'mlflow.db', 'model.keras', 'run.json', 'samples']
        >>> json.loads((run / "run.json").read_text())["step"]
        1

        Continuing it for one step more (not run here, to keep the examples short; the tests resume runs):

        >>> run = ragan.train("dcgan", out="runs/dcgan", resume=True, steps=2)   # doctest: +SKIP
    """
    options = dict(config=config, train_config=train_config, resume=resume, init_from=init_from)
    plan = plan_run(model, data, out, **options, **train_options)
    with stage_output(progress):
        return _run(plan, tracking_uri, experiment, strategy, callbacks, mlflow_tags)


def _run(plan: RunPlan, tracking_uri, experiment, strategy, callbacks, mlflow_tags) -> Path:
    """:func:`train` once the plan is made: the strategy, the session, then :func:`_train` under signals."""
    for note in plan.notes:
        logger.info(note)

    from ragan._tf import import_keras
    from ragan.training.strategy import describe_strategy, is_chief, is_multi_worker

    strategy = _strategy_for(plan, strategy)
    chief = is_chief(strategy)
    session = _Session(
        plan=plan,
        strategy=strategy,
        chief=chief,
        work_dir=_work_dir(plan, chief),
        tracking_uri=tracking_uri,
        experiment=experiment,
        user_callbacks=list(callbacks or []),
        mlflow_tags=dict(mlflow_tags or {}),
        multi_worker=is_multi_worker(strategy),
        strategy_text=describe_strategy(strategy),
        keras=import_keras(),
    )
    # One train at a time in a run folder (two --resume of the same run would interleave checkpoints).
    lock = PartialLock(session.work_dir, "train").acquire() if chief else None
    try:
        # From here SIGTERM/SIGINT only ask the run to stop after the current step (StopOnSignal);
        # it then checkpoints and raises Interrupted. A signal once the last step is done changes
        # nothing: the run completes (and records itself) normally.
        with handle_signals(graceful=True):
            return _train(session)
    finally:
        if lock is not None:
            lock.release()
        if not chief:
            shutil.rmtree(session.work_dir, ignore_errors=True)


def _strategy_for(plan: RunPlan, strategy):
    """The given strategy, else the one ``distribution`` asks for; the batch must split over its replicas.

    The strategy comes first: multi-worker collectives must be configured before TF starts.
    """
    from ragan.training.strategy import select_strategy

    strategy = strategy or select_strategy(plan.train_config.distribution)
    replicas = strategy.num_replicas_in_sync
    if plan.train_config.batch_size % replicas:
        raise RaganError(
            f"batch_size={plan.train_config.batch_size} cannot be split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}."
        )
    return strategy


def _work_dir(plan: RunPlan, chief: bool) -> Path:
    """Where this process writes: the run directory (the chief), else a scratch directory.

    TensorFlow's multi-worker convention: non-chief workers do the same work but write to a
    scratch directory that is thrown away.
    """
    if not chief:
        return Path(tempfile.mkdtemp(prefix="ragan-worker-"))
    if not plan.resume:
        check_run_dir(plan.run_dir)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    return plan.run_dir


@dataclass
class _Session:
    """One training session: what :func:`train` set up, then what each step of :func:`_train` adds."""

    plan: RunPlan
    strategy: Any
    chief: bool
    work_dir: Path
    tracking_uri: str | None
    experiment: str
    user_callbacks: list
    mlflow_tags: dict
    multi_worker: bool
    strategy_text: str
    keras: Any
    # Filled in by the steps, in order:
    reader: Any = None  # CheckpointManager of the run directory (shared by all workers)
    writer: Any = None  # CheckpointManager of work_dir
    latest: Path | None = None  # the checkpoint to resume from
    tracker: Any = None  # ragan.tracking.RunTracker
    gan: Any = None
    policy: str = "float32"
    state: Any = None  # callbacks.TrainingState
    started: float = 0.0
    status: str = "FAILED"  # the MLflow run's final status

    @property
    def tc(self) -> TrainConfig:
        return self.plan.train_config

    @property
    def run_dir(self) -> Path:
        return self.plan.run_dir

    def save_checkpoint(self, step: int) -> Path:
        extra = {"kimg": self.tc.kimg_at(step), "mlflow_run_id": self.tracker.run_id}
        path = self.writer.save(self.gan, step, extra)
        if self.chief:
            relative = str(path.relative_to(self.run_dir))
            update_run_file(self.run_dir, step=step, kimg=self.tc.kimg_at(step), checkpoint=relative)
        return path

    def write_grid(self, step: int) -> Path:
        from ragan.training.callbacks import grid_preview, save_sample_grid

        path = self.work_dir / SAMPLES_DIR / grid_file_name(self.tc.kimg_at(step))
        path = save_sample_grid(self.gan, path, seed=self.tc.seed + GRID_SEED_OFFSET)
        if self.chief:
            update_run_file(self.run_dir, samples=str(path.relative_to(self.run_dir)))
            # MLflow gets a downsized copy of grids of high-resolution images; the full-size one stays on disk.
            self.tracker.log_artifact(grid_preview(path), SAMPLES_DIR)
        return path


def _train(session: _Session) -> Path:
    """The steps of a run, in order; each reads what the ones before put in ``session``."""
    _write_config(session)
    _find_checkpoint(session)
    if _finished_before(session):
        return session.run_dir
    _start_tracking(session)
    try:
        _build_gan(session)
        _restore_or_init(session)
        _fit(session)
        _stop_if_diverged(session)
        _stop_if_interrupted(session)
        _publish(session)
    except KeyboardInterrupt:
        session.status = "KILLED"
        raise
    finally:
        _finish_tracking(session)
    if session.chief:
        _log_outputs(session.run_dir)
    return session.run_dir


def _log_outputs(run_dir: Path) -> None:
    logger.info("outputs:\n" + "\n".join(run_summary(run_dir)))


def _write_config(session: _Session) -> None:
    from ragan.training.checkpoint import atomic_write_text

    if session.chief:
        described = resolved_config(session.plan)
        atomic_write_text(session.run_dir / CONFIG_FILE, json.dumps(described, indent=2) + "\n")


def _find_checkpoint(session: _Session) -> None:
    """Checkpoints are read from the run directory (shared by all workers) and written to work_dir;
    a resumed run starts from the newest one that reads back whole."""
    from ragan.training.checkpoint import CheckpointManager

    keep = session.tc.keep_checkpoints
    session.reader = CheckpointManager(session.run_dir / CHECKPOINT_DIR, keep=keep)
    session.writer = CheckpointManager(session.work_dir / CHECKPOINT_DIR, keep=keep)
    if not session.plan.resume:
        return
    session.latest, problems = session.reader.latest_readable()
    for problem in problems:
        fallback = (
            f"resuming from the previous one, {session.latest.name}"
            if session.latest is not None
            else "no older one is left"
        )
        logger.warning(f"{problem}; {fallback}")


def _finished_before(session: _Session) -> bool:
    """Whether the run being resumed already finished all its steps (then there is nothing to do)."""
    from ragan.training.checkpoint import CheckpointManager

    saved_run, run_dir = session.plan.saved_run, session.run_dir
    finished = (
        session.latest is not None
        and saved_run.get("status") == "finished"
        and (run_dir / MODEL_FILE).is_file()
        and CheckpointManager.read_meta(session.latest)["step"] >= session.tc.total_steps()
    )
    if finished:
        logger.info(
            f"'{run_dir}' already finished {saved_run.get('step')} steps; nothing to do "
            "(raise kimg or steps to train longer)."
        )
        _log_outputs(run_dir)
    return finished


def _start_tracking(session: _Session) -> None:
    """Start (or, resuming, continue) the run's MLflow run; ``run.json`` says ``running``."""
    from ragan.tracking import RunTracker

    plan, tc, run_dir, experiment = session.plan, session.tc, session.run_dir, session.experiment
    tracking_info = plan.saved_run.get("mlflow") or {}
    tracker = session.tracker = RunTracker(
        session.tracking_uri or tracking_info.get("tracking_uri"),
        experiment,
        run_dir,
        enabled=session.chief,
        on_start=lambda run_id: update_run_file(
            run_dir, mlflow={"tracking_uri": tracker.tracking_uri, "experiment": experiment, "run_id": run_id}
        ),
    )
    if session.chief:
        update_run_file(run_dir, status="running")
    params = {
        "model.name": plan.model_name,
        **plan.model_config.to_params("model."),
        **tc.to_params("training."),
        **{f"data.{k}": str(v) for k, v in data_summary(plan.data, plan.manifest).items()},
        "schedule.total_steps": str(tc.total_steps()),
    }
    tracker.start(
        run_id=tracking_info.get("run_id") if plan.resume else None,
        run_name=run_dir.resolve().name,
        params=params,
        tags={
            "ragan.model": plan.model_name,
            "ragan.run_dir": str(run_dir.resolve()),
            "ragan.version": __version__,
            **session.mlflow_tags,
        },
    )
    if session.chief:
        tracker.log_artifact(run_dir / CONFIG_FILE)


def _build_gan(session: _Session) -> None:
    """The seeded, compiled GAN, built under the strategy (and the mixed-precision policy)."""
    plan, tc = session.plan, session.tc
    session.keras.utils.set_random_seed(tc.seed)
    with _precision(tc.mixed_precision) as policy, session.strategy.scope():
        gan = plan.gan_class(
            plan.model_config,
            image_size=plan.manifest.image_size,
            channels=plan.manifest.channels,
            num_classes=plan.num_classes,
            seed=tc.seed,
        )
        gan.compile(jit_compile=tc.jit_compile)
    gan.reshape_logs = session.multi_worker
    session.gan, session.policy = gan, policy


def _restore_or_init(session: _Session) -> None:
    """Resume from the checkpoint, or start from ``init_from``'s weights; sets the training state."""
    from ragan.training.callbacks import TrainingState

    plan, tc, tracker = session.plan, session.tc, session.tracker
    start_step = 0
    if session.latest is not None:
        start_step = int(session.reader.restore(session.gan, session.latest)["step"])
        logger.info(
            f"resuming '{session.run_dir}' from step {start_step} (kimg {tc.kimg_at(start_step):.3f}), "
            f"{session.latest.name}"
        )
        tracker.set_tags({"ragan.resumed_at_step": start_step})
    elif plan.init_from:
        _init_from(session)
    session.state = TrainingState(
        total_steps=tc.total_steps(), batch_size=tc.batch_size, step=start_step, start_step=start_step
    )


def _init_from(session: _Session) -> None:
    from ragan.training.checkpoint import transfer_weights

    plan = session.plan
    source = _load_source_model(plan.init_from, image_size=plan.manifest.image_size, channels=plan.manifest.channels)
    report = transfer_weights(source, session.gan)
    skipped = report["skipped"]
    logger.info(
        f"init-from '{plan.init_from}': loaded {len(report['loaded'])} layers"
        + (f"; skipped {len(skipped)}: {', '.join(skipped)}" if skipped else "; none skipped")
    )
    source_info = getattr(source, "source_info", None) or {}
    session.tracker.set_tags(
        {
            "ragan.init_from": plan.init_from,
            "ragan.init_from.skipped": ", ".join(skipped) or "none",
            **(
                {"ragan.init_from.file": source_info["file"], "ragan.init_from.sha256": source_info["sha256"]}
                if source_info
                else {}
            ),
        }
    )


def _dataset_factory(session: _Session) -> Callable:
    """``make_dataset(start_step)``: the run's seeded, distributed stream of batches from that step on."""
    from ragan.data.pipeline import load_dataset

    plan, tc, strategy = session.plan, session.tc, session.strategy
    with_labels = bool(session.gan.conditional)
    image_bytes = plan.manifest.split("train").num_examples * plan.manifest.image_size**2 * plan.manifest.channels
    cache = image_bytes * (2 if plan.manifest.dtype == "uint16" else 1) <= CACHE_LIMIT_BYTES

    def make_dataset(start: int):
        def dataset_fn(input_context):
            dataset = load_dataset(
                plan.data,
                "train",
                tc.batch_size,
                shuffle=True,
                repeat=True,
                cache=cache,
                with_labels=with_labels,
                deterministic=True,
                seed=tc.seed,
                drop_remainder=True,
                input_context=input_context,
            )
            # The same seeded stream as an uninterrupted run, from where this one stopped.
            # A pipeline feeding several local replicas gives each step one batch per replica.
            per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
            return dataset.skip(start * per_step) if start else dataset

        return strategy.distribute_datasets_from_function(dataset_fn)

    return make_dataset


def _callbacks(session: _Session) -> list:
    """ragan's Keras callbacks in their order (see :mod:`ragan.training.callbacks`), then the user's."""
    from ragan.training import callbacks as cb
    from ragan.training.strategy import any_worker

    state, tc = session.state, session.tc
    agree = any_worker(session.strategy) if session.multi_worker else None
    return [
        cb.StepCounter(state),
        cb.DivergenceGuard(state),
        cb.StopOnSignal(state, agree),
        cb.TickLogger(state, session.tracker),
        *([cb.ProgressReporter(state)] if bars_enabled() else []),
        cb.PeriodicCheckpoint(state, session.save_checkpoint, tc.checkpoint_every),
        cb.SampleGrids(state, session.write_grid, tc.sample_every),
        *session.user_callbacks,
    ]


def _fit(session: _Session) -> None:
    plan, tc, state = session.plan, session.tc, session.state
    total_steps = tc.total_steps()
    make_dataset = _dataset_factory(session)
    logger.info(
        f"training {plan.model_name} on '{plan.data}' ({plan.manifest.split('train').num_examples} images, "
        f"{plan.manifest.image_size}px x{plan.manifest.channels}"
        + (f", {plan.num_classes} classes" if session.gan.conditional else "")
        + f") for {total_steps} steps of {tc.batch_size} ({tc.kimg_at(total_steps):g} kimg) on {session.strategy_text}"
        + (f", {session.policy}" if session.policy != "float32" else "")
        + f" -> {session.run_dir}"
    )
    callbacks = _callbacks(session)
    session.started = time.perf_counter()
    if stop_requested() is not None and not session.multi_worker:
        state.interrupted = stop_requested()  # before the first step (workers decide together, after it)
    elif state.step < total_steps:
        tick_steps = min(tc.log_every, total_steps)
        _fit_in_ticks(session.gan, session.strategy, make_dataset, state, tick_steps, callbacks)


def _stop_if_diverged(session: _Session) -> None:
    from ragan.training.checkpoint import CheckpointManager

    diverged = session.state.diverged
    if diverged is None:
        return
    last = session.reader.latest() if session.chief else None
    where = (
        f"the last good checkpoint is {last} (step {CheckpointManager.read_meta(last)['step']})"
        if last is not None
        else "no checkpoint was written before it"
    )
    if session.chief:
        update_run_file(session.run_dir, status="diverged", diverged=diverged)
        session.tracker.set_tags({"ragan.diverged": diverged})
    raise TrainingDiverged(
        f"training diverged: {diverged}; {where}. Lower g_learning_rate/d_learning_rate "
        "(or try another model/loss) and train again."
    )


def _stop_if_interrupted(session: _Session) -> None:
    state, tc, run_dir = session.state, session.tc, session.run_dir
    if state.interrupted is None:
        return
    step = state.step
    checkpoint = session.writer.path_for(step)
    if not checkpoint.is_file():
        session.save_checkpoint(step)
    if session.chief:
        update_run_file(run_dir, status="interrupted")
    session.status = "KILLED"
    raise Interrupted(
        state.interrupted,
        f"{signal_name(state.interrupted)}: stopped after step {step}/{tc.total_steps()} (kimg "
        f"{tc.kimg_at(step):.3f}), checkpoint {run_dir / CHECKPOINT_DIR / checkpoint.name}; "
        f"continue with: {resume_command(session.plan.model_name, run_dir)}",
    )


def _publish(session: _Session) -> None:
    """The end of the run: checkpoint, grid, model, ``run.json``, the MLflow artifacts."""
    plan, tc, run_dir, tracker = session.plan, session.tc, session.run_dir, session.tracker
    final_step = session.state.step
    if not session.writer.path_for(final_step).is_file():
        session.save_checkpoint(final_step)
    grid = session.write_grid(final_step)
    model_path = session.work_dir / MODEL_FILE
    partial = session.work_dir / f".{MODEL_FILE}.partial.keras"
    session.gan.save(partial)
    os.replace(partial, model_path)
    elapsed = time.perf_counter() - session.started
    if session.chief:
        tracker.wait_started()
        update_run_file(
            run_dir,
            format="ragan-run",
            status="finished",
            model=MODEL_FILE,
            gan=plan.model_name,
            image_size=plan.manifest.image_size,
            channels=plan.manifest.channels,
            dtype=plan.manifest.dtype,
            num_classes=plan.num_classes,
            conditional=bool(session.gan.conditional),
            class_names=list(plan.manifest.class_names),
            step=final_step,
            kimg=tc.kimg_at(final_step),
            samples=str(grid.relative_to(run_dir)),
            data=str(plan.data.resolve()),
            # The last tick's logs (losses, augment_p, StyleGAN2's real_sign, s/kimg), to read back without MLflow.
            last_tick={k: (v if math.isfinite(v) else None) for k, v in session.state.tick.items()},
            mlflow={
                "tracking_uri": tracker.tracking_uri,
                "experiment": session.experiment,
                "run_id": tracker.run_id,
                "failure": tracker.failure,
            },
        )
        tracker.log_metrics({"train_seconds": elapsed}, step=final_step)
        tracker.log_artifact(model_path, "model")
        tracker.log_artifact(run_dir / RUN_FILE, "model")
    session.status = "FINISHED"
    start_step = session.state.start_step
    rate = (final_step - start_step) * tc.batch_size / max(elapsed, 1e-9)
    logger.info(
        f"finished {final_step} steps ({tc.kimg_at(final_step):g} kimg) in {elapsed:.0f} s"
        + (f" ({rate:.0f} img/s)" if final_step > start_step else "")
    )


def _finish_tracking(session: _Session) -> None:
    # A pre-empted job has seconds before SIGKILL: do not wait long for a slow server then.
    tracker, status = session.tracker, session.status
    tracker.finish(status, **({"timeout": KILLED_TRACKING_TIMEOUT} if status == "KILLED" else {}))
    if session.chief and tracker.failure is not None and (session.run_dir / RUN_FILE).is_file():
        update_run_file(session.run_dir, mlflow={"failure": tracker.failure})
