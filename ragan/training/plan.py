"""Planning a training run: the model, its configs, the data and the run directory, before any
TensorFlow work (:func:`describe_training` shows the result; :func:`ragan.train` runs it).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ragan._common import read_json
from ragan._version import __version__
from ragan.config import Config, load_overrides
from ragan.data.manifest import Manifest, read_manifest
from ragan.errors import RaganError
from ragan.shapes import check_channels, check_image_size
from ragan.training.config import RESUMABLE_CHANGES, TrainConfig, split_overrides
from ragan.training.run_files import CONFIG_FILE, RUN_FILE

__all__ = ["RunPlan", "data_summary", "describe_training", "plan_run", "resolved_config"]


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


def data_summary(data: Path, manifest: Manifest) -> dict:
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


def plan_run(
    model,
    data,
    out,
    *,
    config=None,
    train_config=None,
    resume: bool = False,
    init_from=None,
    **train_options,
) -> RunPlan:
    """Resolve the model, configs, data and run directory (no TensorFlow work); the arguments are
    :func:`~ragan.training.loop.train`'s."""
    if out is None:
        raise RaganError("out (the run directory) is required.")
    resume = _resume_flag(resume)
    run_dir = Path(out)
    model_name, gan_class = _resolve_gan(model)
    config_class = gan_class.config_class
    model_overrides, train_overrides, train_complete = _collect_overrides(
        config, train_config, train_options, config_class
    )
    saved, saved_run = _saved_run(run_dir) if resume else (None, {})
    notes = [f"no run in '{run_dir}' yet: starting a new one"] if resume and saved is None else []
    train_cfg = None  # for a new run, after the data is known: the defaults may depend on its image size
    if saved is not None:
        model_config, train_cfg = _resumed_configs(
            saved, run_dir, model_name, config_class, model_overrides, train_overrides, train_complete
        )
        data = saved["data"]["path"] if data is None else data
    else:
        model_config = config_class.from_dict(model_overrides, source="config")
    if data is None:
        raise RaganError("data (a prepared dataset directory) is required; make one with 'ragan prepare'.")
    data = Path(data)
    manifest = _training_data(data, gan_class)
    if init_from is not None and saved is None:
        architecture = _check_foreign_weights(str(init_from), gan_class, manifest.image_size)
        if architecture:
            # The network's own architecture, unless the user set a value: its weights then fit.
            chosen = {key: value for key, value in model_overrides.items() if value is not None}
            model_config = config_class.from_dict({**architecture, **chosen}, source="config")
    if train_cfg is None:
        defaults = gan_class.training_defaults(model_config, manifest.image_size)
        train_cfg = TrainConfig.from_dict({**defaults, **train_overrides}, source="train_config")
    if saved is not None:
        _check_same_data(saved["data"], data, manifest)
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


def _collect_overrides(config, train_config, train_options, config_class) -> tuple[dict, dict, bool]:
    """(model overrides, training overrides, whether ``train_config`` is a complete TrainConfig).

    Model overrides may come as a file also holding training options; keyword options win over
    ``train_config``, which wins over the file.
    """
    file_training: dict = {}
    if isinstance(config, (str, os.PathLike)):
        model_overrides, file_training = split_overrides(load_overrides(config), config_class, source=str(config))
    else:
        model_overrides, _ = _overrides(config, config_class, "config")
    train_overrides, train_complete = _overrides(train_config, TrainConfig, "train_config")
    keyword_overrides = {k.replace("-", "_"): v for k, v in (train_options or {}).items()}
    return model_overrides, {**file_training, **train_overrides, **keyword_overrides}, train_complete


def _saved_run(run_dir: Path) -> tuple[dict | None, dict]:
    """The ``config.json`` and ``run.json`` of the run in ``run_dir`` (``None, {}`` when there is none)."""
    if not (run_dir / CONFIG_FILE).is_file():
        return None, {}
    saved = read_json(run_dir / CONFIG_FILE)
    return saved, read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}


def _resumed_configs(
    saved: dict, run_dir: Path, model_name: str, config_class, model_overrides, train_overrides, train_complete
) -> tuple[Config, TrainConfig]:
    """The model and training configs of a resumed run: the saved ones, with only what may change changed."""
    config_file = run_dir / CONFIG_FILE
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
    return model_config, train_cfg


def _training_data(data: Path, gan_class) -> Manifest:
    """The manifest of prepared dataset ``data``, checked to have a train split that ``gan_class`` can learn."""
    manifest = read_manifest(data)
    manifest.split("train")
    try:
        # Every ragan GAN (the base class) needs these; checked here, before the run folder exists,
        # so that a re-prepared dataset can be trained with the same command.
        check_image_size(manifest.image_size, gan_class.supported_image_sizes)
        check_channels(manifest.channels)
    except RaganError as error:
        raise RaganError(f"data '{data}': {error}") from None
    return manifest


def _check_same_data(before: dict, data: Path, manifest: Manifest) -> None:
    """A resumed run must train on images of the same shape and classes."""
    now = data_summary(data, manifest)
    for key in ("image_size", "channels", "class_names"):
        if before.get(key) != now[key]:
            raise RaganError(
                f"data '{data}' has {key}={now[key]!r} but the run being resumed was trained on "
                f"{key}={before.get(key)!r}."
            )


def _resume_flag(resume) -> bool:
    """``resume`` as a bool: ``True`` and ``"auto"`` mean the same (continue a run when there is one)."""
    if resume in (True, False, None, "auto"):
        return bool(resume)
    raise RaganError(f"resume={resume!r} is not allowed; use True, False or 'auto'.")


def _versions() -> dict:
    versions = {"ragan": __version__, "python": platform.python_version()}
    for package in ("tensorflow", "keras", "mlflow", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def resolved_config(plan: RunPlan) -> dict:
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
        "data": data_summary(plan.data, plan.manifest),
        "init_from": plan.init_from,
        "versions": _versions(),
    }


def describe_training(model="dcgan", data=None, out=None, **arguments) -> dict:
    """The resolved configuration :func:`~ragan.training.loop.train` would use and write as
    ``config.json`` (a dry run); ``arguments`` are train's (``config``, ``train_config``, ``resume``,
    ``init_from`` and training options as keywords).

    Example:
        >>> import ragan
        >>> images = np.random.default_rng(0).integers(0, 256, (16, 16, 16), dtype=np.uint8)   # 16 images, 16 px
        >>> np.savez("images.npz", images=images, labels=np.arange(16) % 2)
        >>> _ = ragan.prepare_dataset("images.npz", "prepared", image_size=16, split=(1, 0, 0), progress=False)
        >>> describe_training("dcgan", "prepared", "runs/x", kimg=2)["schedule"]["total_steps"]
        32
    """
    plan = plan_run(model, data, out, **arguments)
    described = resolved_config(plan)
    described["run_dir"] = str(plan.run_dir)
    described["resume"] = plan.resume
    return described


def _check_foreign_weights(init_from: str, gan_class, image_size: int) -> dict:
    """Another program's weight file as --init-from (see :func:`ragan.registry.register_weight_loader`):
    only for the GAN its loader makes, at the data's resolution (checked before the run folder
    exists). Returns the network's architecture settings (``{}`` for a ragan run or model)."""
    from ragan.registry import get_gan, weight_loader_for

    loader = weight_loader_for(init_from)
    if loader is None:
        return {}
    if not issubclass(gan_class, get_gan(loader.gan)):
        raise RaganError(
            f"init_from='{init_from}': {loader.description} can start only a {loader.gan} run, "
            f"not {gan_class.gan_name}."
        )
    architecture, shape = loader.architecture(init_from)
    size = shape["image_size"]
    if size != image_size:
        raise RaganError(
            f"init_from='{init_from}': the network makes {size} px images but the data is {image_size} px; "
            f"prepare the data at {size} px (ragan prepare --image-size {size}) to start from it."
        )
    return architecture
