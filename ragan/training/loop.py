"""``ragan.train``: train a registered GAN on a prepared dataset, resumably, on any strategy.

One run directory holds everything a run produces::

    RUN_DIR/
      config.json            resolved model config, training options, data summary, versions
      run.json               status, step, the final model's file name, MLflow run id
      checkpoints/ckpt-<step>.npz   the last ``keep_checkpoints`` checkpoints (exact resume)
      samples/grid-<kimg>.png       fixed-noise sample grids (EMA generator)
      model.keras            the whole trained GAN (generator, EMA generator, discriminator)
      mlflow.db, mlartifacts/       the MLflow run (when no tracking URI is given)

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
import os
import platform
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ragan._common import first_line, read_json
from ragan._interrupt import Interrupted, handle_signals, signal_name, stop_requested
from ragan._version import __version__
from ragan.config import Config, load_overrides
from ragan.data.manifest import Manifest, read_manifest
from ragan.errors import RaganError
from ragan.shapes import check_channels, check_image_size
from ragan.training.config import RESUMABLE_CHANGES, TrainConfig, split_overrides

__all__ = ["train", "describe_training", "run_summary", "TrainingDiverged", "CONFIG_FILE", "RUN_FILE"]

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
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
# Resolving what to run
# ----------------------------------------------------------------------------------------------
@dataclass
class RunPlan:
    """Everything :func:`train` decided before touching TensorFlow."""

    model_name: str
    gan_class: type
    model_config: Config
    train_config: TrainConfig
    data: Path
    manifest: Manifest
    run_dir: Path
    resume: bool
    saved: dict | None = None
    saved_run: dict = field(default_factory=dict)
    init_from: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return self.manifest.num_classes if self.manifest.labelled else 0

    @property
    def total_steps(self) -> int:
        return self.train_config.total_steps()


def _overrides(value, cls, what: str) -> tuple[dict, bool]:
    """(name -> value overrides, whether they are a complete config) from None/dict/Config."""
    if value is None:
        return {}, False
    if isinstance(value, Config):
        if not isinstance(value, cls):
            raise RaganError(f"{what} must be a {cls.__name__} (or a dict), not {type(value).__name__}.")
        return value.to_dict(), True
    if isinstance(value, Mapping):
        return {str(k).replace("-", "_"): v for k, v in value.items()}, False
    raise RaganError(f"{what} must be a {cls.__name__}, a dict or None, not {type(value).__name__}.")


def _resolve_gan(model) -> tuple[str, type]:
    from ragan.registry import get_gan

    if isinstance(model, type):
        name = getattr(model, "gan_name", None)
        if not name:
            raise RaganError(f"model={model.__name__} is not a registered GAN; decorate it with @ragan.register_gan.")
        return name, model
    if not isinstance(model, str):
        raise RaganError(f"model must be a registered GAN name such as 'dcgan', not {type(model).__name__}.")
    cls = get_gan(model)
    return cls.gan_name, cls


def _data_summary(data: Path, manifest: Manifest) -> dict:
    return {
        "path": str(data.resolve()),
        "split": "train",
        "image_size": manifest.image_size,
        "channels": manifest.channels,
        "dtype": manifest.dtype,
        "labelled": manifest.labelled,
        "class_names": list(manifest.class_names),
        "num_classes": manifest.num_classes,
        "num_examples": manifest.split("train").num_examples,
    }


def _differences(old: Config, new: Config, allowed=()) -> list[str]:
    old_values, new_values = old.to_dict(), new.to_dict()
    return [
        f"{name} {old_values[name]!r} -> {new_values[name]!r}"
        for name in old_values
        if old_values[name] != new_values[name] and name not in allowed
    ]


def _plan_run(
    model,
    data,
    out,
    *,
    config=None,
    train_config=None,
    train_options: Mapping[str, Any] | None = None,
    resume: bool = False,
    init_from=None,
) -> RunPlan:
    """Resolve the model, configs, data and run directory (no TensorFlow work). See :func:`train`."""
    if out is None:
        raise RaganError("out (the run directory) is required.")
    resume = _resume_flag(resume)
    run_dir = Path(out)
    model_name, gan_class = _resolve_gan(model)
    config_class = gan_class.config_class

    # Model overrides may come as a file holding both model and training options.
    file_training: dict = {}
    if isinstance(config, (str, os.PathLike)):
        model_overrides, file_training = split_overrides(load_overrides(config), config_class, source=str(config))
    else:
        model_overrides, _ = _overrides(config, config_class, "config")
    train_overrides, train_complete = _overrides(train_config, TrainConfig, "train_config")
    keyword_overrides = {k.replace("-", "_"): v for k, v in (train_options or {}).items()}
    train_overrides = {**file_training, **train_overrides, **keyword_overrides}

    saved = None
    saved_run: dict = {}
    config_file = run_dir / CONFIG_FILE
    if resume and config_file.is_file():
        saved = read_json(config_file)
        if (run_dir / RUN_FILE).is_file():
            saved_run = read_json(run_dir / RUN_FILE)
    notes = []
    if resume and saved is None:
        notes.append(f"no run in '{run_dir}' yet: starting a new one")

    if saved is not None:
        if saved.get("model") != model_name:
            raise RaganError(f"'{run_dir}' holds a {saved.get('model')!r} run; it cannot be resumed as {model_name!r}.")
        saved_model = config_class.from_dict(saved["model_config"], source=str(config_file))
        model_config = config_class.from_dict(model_overrides, base=saved_model, source="config")
        changed = _differences(saved_model, model_config)
        if changed:
            raise RaganError(
                f"cannot change model hyperparameters when resuming '{run_dir}' ({'; '.join(changed)}); "
                "start a new run (optionally with --init-from this one)."
            )
        saved_training = TrainConfig.from_dict(saved["training"], source=str(config_file))
        base = TrainConfig() if train_complete else saved_training
        train_cfg = TrainConfig.from_dict(train_overrides, base=base, source="train_config")
        changed = _differences(saved_training, train_cfg, allowed=RESUMABLE_CHANGES)
        if changed:
            raise RaganError(
                f"cannot change {'; '.join(changed)} when resuming '{run_dir}'; only "
                f"{', '.join(RESUMABLE_CHANGES)} may change."
            )
        if data is None:
            data = saved["data"]["path"]
    else:
        model_config = config_class.from_dict(model_overrides, source="config")
        train_cfg = None  # after the data is known: the model's defaults may depend on its image size
    if data is None:
        raise RaganError("data (a prepared dataset directory) is required; make one with 'ragan prepare'.")
    data = Path(data)
    manifest = read_manifest(data)
    manifest.split("train")
    try:
        # Every ragan GAN (the base class) needs these; checked here, before the run folder exists,
        # so that a re-prepared dataset can be trained with the same command.
        check_image_size(manifest.image_size, gan_class.supported_image_sizes)
        check_channels(manifest.channels)
    except RaganError as error:
        raise RaganError(f"data '{data}': {error}") from None
    if init_from is not None and saved is None:
        architecture = _check_network_pickle(str(init_from), gan_class, manifest.image_size)
        if architecture:
            # The network's own architecture, unless the user set a value: its weights then fit.
            chosen = {key: value for key, value in model_overrides.items() if value is not None}
            model_config = config_class.from_dict({**architecture, **chosen}, source="config")
    if train_cfg is None:
        defaults = gan_class.training_defaults(model_config, manifest.image_size)
        train_cfg = TrainConfig.from_dict({**defaults, **train_overrides}, source="train_config")
    if saved is not None:
        before = saved["data"]
        now = _data_summary(data, manifest)
        for key in ("image_size", "channels", "class_names"):
            if before.get(key) != now[key]:
                raise RaganError(
                    f"data '{data}' has {key}={now[key]!r} but the run being resumed was trained on "
                    f"{key}={before.get(key)!r}."
                )
    if getattr(gan_class, "always_conditional", False) or getattr(model_config, "conditional", False):
        if not manifest.labelled or manifest.num_classes < 2:
            raise RaganError(
                f"{model_name} with conditional=true needs a labelled dataset with at least 2 classes; "
                f"'{data}' is {'unlabelled' if not manifest.labelled else 'labelled with one class'} "
                "(set conditional=false or prepare class sub-folders)."
            )
    if train_cfg.total_steps() < 1:
        raise RaganError("the run has no steps to train; raise kimg or steps.")
    return RunPlan(
        model_name=model_name,
        gan_class=gan_class,
        model_config=model_config,
        train_config=train_cfg,
        data=data,
        manifest=manifest,
        run_dir=run_dir,
        resume=saved is not None,
        saved=saved,
        saved_run=saved_run,
        init_from=str(init_from) if init_from is not None else None,
        notes=notes,
    )


def _resume_flag(resume) -> bool:
    """``resume`` as a bool: ``True`` and ``"auto"`` mean the same (continue a run when there is one)."""
    if resume in (True, False, None, "auto"):
        return bool(resume)
    raise RaganError(f"resume={resume!r} is not allowed; use True, False or 'auto'.")


def resume_command(model_name: str, run_dir: str | os.PathLike) -> str:
    """The command that continues the run in ``run_dir``: ``ragan train dcgan --out runs/x --resume``."""
    return f"ragan train {model_name} --out {shlex.quote(str(run_dir))} --resume"


def _versions() -> dict:
    versions = {"ragan": __version__, "python": platform.python_version()}
    for package in ("tensorflow", "keras", "mlflow", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _resolved_config(plan: RunPlan) -> dict:
    """The ``config.json`` of a run: what was trained, on what, with which software."""
    tc = plan.train_config
    return {
        "format": "ragan-run-config",
        "format_version": 1,
        "model": plan.model_name,
        "model_config": plan.model_config.to_dict(),
        "training": tc.to_dict(),
        "schedule": {
            "total_steps": tc.total_steps(),
            "total_kimg": tc.kimg_at(tc.total_steps()),
            "units": "log_every, checkpoint_every and sample_every count steps of batch_size images",
        },
        "data": _data_summary(plan.data, plan.manifest),
        "init_from": plan.init_from,
        "versions": _versions(),
    }


def describe_training(
    model="dcgan",
    data=None,
    out=None,
    *,
    config=None,
    train_config=None,
    resume: bool = False,
    init_from=None,
    **train_options,
) -> dict:
    """The resolved configuration :func:`train` would use and write as ``config.json`` (a dry run).

    Example:
        >>> import ragan
        >>> images = np.random.default_rng(0).integers(0, 256, (16, 16, 16), dtype=np.uint8)   # 16 images, 16 px
        >>> np.savez("images.npz", images=images, labels=np.arange(16) % 2)
        >>> _ = ragan.prepare_dataset("images.npz", "prepared", image_size=16, split=(1, 0, 0), progress=False)
        >>> describe_training("dcgan", "prepared", "runs/x", kimg=2)["schedule"]["total_steps"]
        32
    """
    plan = _plan_run(
        model,
        data,
        out,
        config=config,
        train_config=train_config,
        train_options=train_options,
        resume=resume,
        init_from=init_from,
    )
    described = _resolved_config(plan)
    described["run_dir"] = str(plan.run_dir)
    described["resume"] = plan.resume
    return described


# ----------------------------------------------------------------------------------------------
# Files of a run
# ----------------------------------------------------------------------------------------------
_RUN_FILE_LOCK = threading.Lock()


def _update_run_file(run_dir: Path, **fields) -> dict:
    """Merge ``fields`` into ``run.json`` (atomically; also called from the tracking thread)."""
    from ragan.training.checkpoint import atomic_write_text

    with _RUN_FILE_LOCK:
        path = run_dir / RUN_FILE
        current = {}
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                current = json.loads(path.read_text(encoding="utf-8"))
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(current.get(key), dict):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
        atomic_write_text(path, json.dumps(current, indent=2) + "\n")
        return current


def _check_run_dir(plan: RunPlan) -> None:
    run_dir = plan.run_dir
    if plan.resume:
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise RaganError(f"out='{run_dir}' exists and is not a directory.")
    if (run_dir / CONFIG_FILE).is_file():
        raise RaganError(
            f"'{run_dir}' already holds a training run; pass --resume (resume=True) to continue it, "
            "or choose another --out."
        )
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise RaganError(f"out='{run_dir}' is not empty and holds no ragan run; choose an empty or new directory.")


def grid_file_name(kimg: float) -> str:
    """``grid-00002.048.png`` for 2.048 kimg (sorts by training progress)."""
    return f"grid-{kimg:09.3f}.png"


def run_summary(run_dir: str | os.PathLike) -> list[str]:
    """Lines saying where a run's outputs are (read from its ``run.json``).

    Example:
        >>> print("\\n".join(run_summary("runs/demo")))      # doctest: +SKIP
    """
    from ragan.tracking import ui_command

    run_dir = Path(run_dir)
    info = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    lines = []
    if info.get("samples"):
        lines.append(f"  samples:    {run_dir / SAMPLES_DIR}/ (latest {run_dir / info['samples']})")
    if info.get("model") and (run_dir / info["model"]).is_file():
        lines.append(f"  model:      {run_dir / info['model']}   (ragan generate {run_dir} --n 100 --out synthetic)")
    if info.get("checkpoint"):
        lines.append(f"  checkpoint: {run_dir / info['checkpoint']}")
    lines.append(f"  config:     {run_dir / CONFIG_FILE}")
    tracking = info.get("mlflow") or {}
    if tracking.get("failure"):
        lines.append(f"  MLflow:     not recorded ({tracking['failure']})")
    elif tracking.get("run_id"):
        lines.append(
            f"  MLflow:     run {tracking['run_id']} (experiment {tracking.get('experiment')!r}) "
            f"at {tracking.get('tracking_uri')}"
        )
        command = ui_command(tracking.get("tracking_uri", ""))
        if command:
            lines.append(f"              view it with: {command}")
    return lines


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _precision(mixed_precision: bool):
    """The Keras dtype policy while the GAN is built: bfloat16 on GPUs that have it, else float16."""
    if not mixed_precision:
        yield "float32"
        return
    from ragan._tf import import_keras, import_tf

    tf, keras = import_tf(), import_keras()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise RaganError(
            "mixed_precision=true needs a GPU and TensorFlow sees none; train without --mixed-precision "
            "(float32 is the right choice on CPU)."
        )
    details = tf.config.experimental.get_device_details(gpus[0])
    policy = "mixed_bfloat16" if tuple(details.get("compute_capability", (0, 0))) >= (8, 0) else "mixed_float16"
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield policy
    finally:
        keras.config.set_dtype_policy(previous)


def _check_network_pickle(init_from: str, gan_class, image_size: int) -> dict:
    """An official network pickle as --init-from: only for stylegan2, at the data's resolution
    (checked before the run folder exists). Returns the network's architecture settings."""
    from ragan.models.stylegan2 import StyleGAN2
    from ragan.models.stylegan2.pickle_import import is_network_pickle, network_pickle_config

    if not is_network_pickle(init_from):
        return {}
    if not issubclass(gan_class, StyleGAN2):
        raise RaganError(
            f"init_from='{init_from}': an official StyleGAN2-ADA pickle can start only a "
            f"stylegan2 run, not {gan_class.gan_name}."
        )
    architecture, shape = network_pickle_config(init_from)
    size = shape["image_size"]
    if size != image_size:
        raise RaganError(
            f"init_from='{init_from}': the network makes {size} px images but the data is {image_size} px; "
            f"prepare the data at {size} px (ragan prepare --image-size {size}) to start from it."
        )
    return architecture


def _load_source_model(init_from: str, *, image_size: int, channels: int):
    from ragan._tf import import_keras
    from ragan.generation import resolve_model_path
    from ragan.models.stylegan2.pickle_import import import_network_pickle, is_network_pickle

    keras = import_keras()
    if is_network_pickle(init_from):
        gan, info = import_network_pickle(init_from, channels=channels)
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
    # A model built under a strategy scope makes Keras 3's fit() pull one batch from the
    # iterator before training ("symbolic build", pointless for a built GAN) and average it across
    # replicas, which (1) shifts the data stream by one batch per fit() call and (2) fails under
    # MultiWorkerMirroredStrategy for (images, labels) batches (its reduce takes no tuples). With
    # the model's own strategy unset and fit() run inside the strategy's scope, Keras uses the
    # same strategy for the step and the input but skips that build.
    gan._distribute_strategy = None  # noqa: SLF001 - Keras 3.15 has no public switch for this
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
        progress: print progress and a summary of the outputs.
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
    plan = _plan_run(
        model,
        data,
        out,
        config=config,
        train_config=train_config,
        train_options=train_options,
        resume=resume,
        init_from=init_from,
    )
    log: Callable[..., None] = print if progress else (lambda *args, **kwargs: None)
    for note in plan.notes:
        log(f"ragan: {note}")

    from ragan._tf import import_keras
    from ragan.training.strategy import describe_strategy, is_chief, is_multi_worker, select_strategy

    # The strategy comes first: multi-worker collectives must be configured before TF starts.
    strategy = strategy or select_strategy(plan.train_config.distribution)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    tc = plan.train_config
    if tc.batch_size % replicas:
        raise RaganError(
            f"batch_size={tc.batch_size} cannot be split evenly over {replicas} replicas; use a multiple of {replicas}."
        )
    if chief:
        _check_run_dir(plan)
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        work_dir = plan.run_dir
    else:
        # TensorFlow's multi-worker convention: non-chief workers do the same work but write to a
        # scratch directory that is thrown away.
        work_dir = Path(tempfile.mkdtemp(prefix="ragan-worker-"))
    try:
        # From here SIGTERM/SIGINT only ask the run to stop after the current step (StopOnSignal);
        # it then checkpoints and raises Interrupted. A signal once the last step is done changes
        # nothing: the run completes (and records itself) normally.
        with handle_signals(graceful=True):
            return _train(
                plan,
                strategy,
                chief,
                work_dir,
                log,
                tracking_uri,
                experiment,
                progress,
                callbacks,
                multi_worker=is_multi_worker(strategy),
                strategy_text=describe_strategy(strategy),
                keras=import_keras(),
                mlflow_tags=dict(mlflow_tags or {}),
            )
    finally:
        if not chief:
            shutil.rmtree(work_dir, ignore_errors=True)


def _train(
    plan,
    strategy,
    chief,
    work_dir,
    log,
    tracking_uri,
    experiment,
    progress,
    user_callbacks,
    *,
    multi_worker,
    strategy_text,
    keras,
    mlflow_tags,
) -> Path:
    from ragan.data.pipeline import load_dataset
    from ragan.tracking import RunTracker
    from ragan.training import callbacks as cb
    from ragan.training.checkpoint import CheckpointManager, atomic_write_text, transfer_weights

    tc = plan.train_config
    run_dir = plan.run_dir
    total_steps = tc.total_steps()
    described = _resolved_config(plan)
    if chief:
        atomic_write_text(run_dir / CONFIG_FILE, json.dumps(described, indent=2) + "\n")

    # Checkpoints are read from the run directory (shared by all workers) and written to work_dir.
    reader = CheckpointManager(run_dir / CHECKPOINT_DIR, keep=tc.keep_checkpoints)
    writer = CheckpointManager(work_dir / CHECKPOINT_DIR, keep=tc.keep_checkpoints)
    latest = None
    if plan.resume:
        latest, problems = reader.latest_readable()
        for problem in problems:
            print(
                f"ragan: warning: {problem}; "
                + (f"resuming from the previous one, {latest.name}" if latest is not None else "no older one is left"),
                file=sys.stderr,
                flush=True,
            )
    finished_before = (
        latest is not None
        and plan.saved_run.get("status") == "finished"
        and (run_dir / MODEL_FILE).is_file()
        and CheckpointManager.read_meta(latest)["step"] >= total_steps
    )
    if finished_before:
        log(
            f"ragan: '{run_dir}' already finished {plan.saved_run.get('step')} steps; nothing to do "
            "(raise kimg or steps to train longer)."
        )
        if progress:
            log("\n".join(run_summary(run_dir)))
        return run_dir

    tracking_info = plan.saved_run.get("mlflow") or {}
    tracker = RunTracker(
        tracking_uri or tracking_info.get("tracking_uri"),
        experiment,
        run_dir,
        enabled=chief,
        on_start=lambda run_id: _update_run_file(
            run_dir, mlflow={"tracking_uri": tracker.tracking_uri, "experiment": experiment, "run_id": run_id}
        ),
    )
    if chief:
        _update_run_file(run_dir, status="running")
    params = {
        "model.name": plan.model_name,
        **plan.model_config.to_params("model."),
        **tc.to_params("training."),
        **{f"data.{k}": str(v) for k, v in described["data"].items()},
        "schedule.total_steps": str(total_steps),
    }
    tracker.start(
        run_id=tracking_info.get("run_id") if plan.resume else None,
        run_name=run_dir.resolve().name,
        params=params,
        tags={
            "ragan.model": plan.model_name,
            "ragan.run_dir": str(run_dir.resolve()),
            "ragan.version": __version__,
            **mlflow_tags,
        },
    )
    if chief:
        tracker.log_artifact(run_dir / CONFIG_FILE)

    status = "FAILED"
    try:
        keras.utils.set_random_seed(tc.seed)
        with _precision(tc.mixed_precision) as policy, strategy.scope():
            gan = plan.gan_class(
                plan.model_config,
                image_size=plan.manifest.image_size,
                channels=plan.manifest.channels,
                num_classes=plan.num_classes,
                seed=tc.seed,
            )
            gan.compile(jit_compile=tc.jit_compile)
        gan.reshape_logs = multi_worker

        start_step = 0
        if latest is not None:
            meta = reader.restore(gan, latest)
            start_step = int(meta["step"])
            log(
                f"ragan: resuming '{run_dir}' from step {start_step} (kimg {tc.kimg_at(start_step):.3f}), {latest.name}"
            )
            tracker.set_tags({"ragan.resumed_at_step": start_step})
        elif plan.init_from:
            source = _load_source_model(
                plan.init_from, image_size=plan.manifest.image_size, channels=plan.manifest.channels
            )
            report = transfer_weights(source, gan)
            skipped = report["skipped"]
            log(
                f"ragan: init-from '{plan.init_from}': loaded {len(report['loaded'])} layers"
                + (f"; skipped {len(skipped)}: {', '.join(skipped)}" if skipped else "; none skipped")
            )
            source_info = getattr(source, "source_info", None) or {}
            tracker.set_tags(
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

        state = cb.TrainingState(
            total_steps=total_steps, batch_size=tc.batch_size, step=start_step, start_step=start_step
        )
        grid_seed = tc.seed + GRID_SEED_OFFSET

        def save_checkpoint(step: int) -> Path:
            extra = {"kimg": tc.kimg_at(step), "mlflow_run_id": tracker.run_id}
            path = writer.save(gan, step, extra)
            if chief:
                _update_run_file(run_dir, step=step, kimg=tc.kimg_at(step), checkpoint=str(path.relative_to(run_dir)))
            return path

        def write_grid(step: int) -> Path:
            path = cb.save_sample_grid(gan, work_dir / SAMPLES_DIR / grid_file_name(tc.kimg_at(step)), seed=grid_seed)
            if chief:
                _update_run_file(run_dir, samples=str(path.relative_to(run_dir)))
                tracker.log_artifact(path, SAMPLES_DIR)
            return path

        with_labels = bool(gan.conditional)
        train_split = plan.manifest.split("train")
        image_bytes = train_split.num_examples * plan.manifest.image_size**2 * plan.manifest.channels
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

        log(
            f"ragan: training {plan.model_name} on '{plan.data}' ({train_split.num_examples} images, "
            f"{plan.manifest.image_size}px x{plan.manifest.channels}"
            + (f", {plan.num_classes} classes" if gan.conditional else "")
            + f") for {total_steps} steps of {tc.batch_size} ({tc.kimg_at(total_steps):g} kimg) on {strategy_text}"
            + (f", {policy}" if policy != "float32" else "")
            + f" -> {run_dir}"
        )
        from ragan.training.strategy import any_worker

        keras_callbacks = [
            cb.StepCounter(state),
            cb.DivergenceGuard(state),
            cb.StopOnSignal(state, any_worker(strategy) if multi_worker else None),
            cb.TickLogger(state, tracker),
        ]
        if progress:
            keras_callbacks.append(cb.ProgressReporter(state))
        keras_callbacks += [
            cb.PeriodicCheckpoint(state, save_checkpoint, tc.checkpoint_every),
            cb.SampleGrids(state, write_grid, tc.sample_every),
            *(user_callbacks or []),
        ]
        started = time.perf_counter()
        if stop_requested() is not None and not multi_worker:
            state.interrupted = stop_requested()  # before the first step (workers decide together, after it)
        elif state.step < total_steps:
            _fit_in_ticks(gan, strategy, make_dataset, state, min(tc.log_every, total_steps), keras_callbacks)

        if state.diverged is not None:
            last = reader.latest() if chief else None
            where = (
                f"the last good checkpoint is {last} (step {CheckpointManager.read_meta(last)['step']})"
                if last is not None
                else "no checkpoint was written before it"
            )
            if chief:
                _update_run_file(run_dir, status="diverged", diverged=state.diverged)
                tracker.set_tags({"ragan.diverged": state.diverged})
            raise TrainingDiverged(
                f"training diverged: {state.diverged}; {where}. Lower g_learning_rate/d_learning_rate "
                "(or try another model/loss) and train again."
            )

        if state.interrupted is not None:
            step = state.step
            checkpoint = writer.path_for(step)
            if not checkpoint.is_file():
                save_checkpoint(step)
            if chief:
                _update_run_file(run_dir, status="interrupted")
            status = "KILLED"
            raise Interrupted(
                state.interrupted,
                f"{signal_name(state.interrupted)}: stopped after step {step}/{total_steps} (kimg "
                f"{tc.kimg_at(step):.3f}), checkpoint {run_dir / CHECKPOINT_DIR / checkpoint.name}; "
                f"continue with: {resume_command(plan.model_name, run_dir)}",
            )

        # The end of the run: checkpoint, grid, model, run.json.
        final_step = state.step
        if not writer.path_for(final_step).is_file():
            save_checkpoint(final_step)
        grid = write_grid(final_step)
        model_path = work_dir / MODEL_FILE
        partial = work_dir / f".{MODEL_FILE}.partial.keras"
        gan.save(partial)
        os.replace(partial, model_path)
        elapsed = time.perf_counter() - started
        if chief:
            tracker.wait_started()
            _update_run_file(
                run_dir,
                format="ragan-run",
                status="finished",
                model=MODEL_FILE,
                gan=plan.model_name,
                image_size=plan.manifest.image_size,
                channels=plan.manifest.channels,
                dtype=plan.manifest.dtype,
                num_classes=plan.num_classes,
                conditional=bool(gan.conditional),
                class_names=list(plan.manifest.class_names),
                step=final_step,
                kimg=tc.kimg_at(final_step),
                samples=str(grid.relative_to(run_dir)),
                data=str(plan.data.resolve()),
                mlflow={
                    "tracking_uri": tracker.tracking_uri,
                    "experiment": experiment,
                    "run_id": tracker.run_id,
                    "failure": tracker.failure,
                },
            )
            tracker.log_metrics({"train_seconds": elapsed}, step=final_step)
            tracker.log_artifact(model_path, "model")
            tracker.log_artifact(run_dir / RUN_FILE, "model")
        status = "FINISHED"
        rate = (final_step - start_step) * tc.batch_size / max(elapsed, 1e-9)
        log(
            f"ragan: finished {final_step} steps ({tc.kimg_at(final_step):g} kimg) in {elapsed:.0f} s"
            + (f" ({rate:.0f} img/s)" if final_step > start_step else "")
        )
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        # A pre-empted job has seconds before SIGKILL: do not wait long for a slow server then.
        tracker.finish(status, **({"timeout": KILLED_TRACKING_TIMEOUT} if status == "KILLED" else {}))
        if chief and tracker.failure is not None and (run_dir / RUN_FILE).is_file():
            _update_run_file(run_dir, mlflow={"failure": tracker.failure})
    if progress and chief:
        log("\n".join(run_summary(run_dir)))
    return run_dir
