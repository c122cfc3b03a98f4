"""Training options (:class:`TrainConfig`), declared once like the models' hyperparameters.

The same declaration gives the ``ragan train`` flags, the ``training:`` part of a YAML/JSON
config file, the ``training.*`` MLflow parameters and the ``training`` block of a run's
``config.json``.

Units: the run's length is counted in thousands of real images shown to the discriminator
(``kimg``, as in StyleGAN) or, when ``steps`` is set, in training steps. Every interval
(``log_every``, ``checkpoint_every``, ``sample_every``) counts **steps**: one step is one global
batch of ``batch_size`` real images (``d_steps`` discriminator updates on it, then one generator
update). Progress, losses and timing are reported once per ``log_every`` steps (a *tick*);
checkpoints and sample grids are written at the end of the tick in which their interval
elapses, and always at the end of the run.

Example:
    >>> cfg = TrainConfig.from_dict({"kimg": 2, "batch_size": 32})
    >>> cfg.total_steps()
    63
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ragan.config import Choice, Config, hparam
from ragan.errors import RaganError

__all__ = ["TrainConfig", "DISTRIBUTIONS", "RESUMABLE_CHANGES", "split_overrides"]

DISTRIBUTIONS = ("auto", "mirrored", "multi_worker", "none")

# Options a resumed run may change: they decide how long to train and what to report, not what
# the next step computes. Everything else must match the checkpoint for the run to continue exactly.
RESUMABLE_CHANGES = (
    "kimg",
    "steps",
    "checkpoint_every",
    "sample_every",
    "log_every",
    "keep_checkpoints",
    "jit_compile",
    "distribution",
)


@dataclass
class TrainConfig(Config):
    """Options of one training run (not part of the model; see the module docstring for units).

    Args:
        batch_size: real images per step, summed over all replicas and workers (the global batch).
        kimg: run length in thousands of real images shown.
        steps: run length in steps; overrides ``kimg`` when set.
        log_every: steps per tick (one progress line and one set of MLflow metrics).
        checkpoint_every: steps between checkpoints.
        sample_every: steps between sample grids.
        keep_checkpoints: how many recent checkpoints to keep on disk.
        seed: seed of weight initialisation, training noise and data order.
        mixed_precision: bfloat16 (or float16 with loss scaling on older GPUs) compute with
            float32 weights; GPU only.
        jit_compile: compile the training step with XLA.
        distribution: ``auto``, ``mirrored``, ``multi_worker`` or ``none``.

    Example:
        >>> TrainConfig(steps=100).total_steps()
        100
    """

    batch_size: int = hparam(
        64,
        help="Real images per training step, summed over all replicas and workers (the global batch).",
        tune=Choice(32, 64, 128),
        min=1,
    )
    kimg: float = hparam(
        100.0,
        help="Training length in thousands of real images shown to the discriminator.",
        min=0.0,
    )
    steps: int | None = hparam(
        None,
        help="Training length in steps (global batches); overrides kimg when set.",
        min=1,
    )
    log_every: int = hparam(
        25,
        help="Steps per tick: one progress line and one set of logged losses/timings per tick.",
        min=1,
    )
    checkpoint_every: int = hparam(
        500,
        help="Steps between checkpoints, written at the end of the tick in which they fall "
        "(and always at the end of the run).",
        min=1,
    )
    sample_every: int = hparam(
        500,
        help="Steps between fixed-noise sample grids (samples/grid-<kimg>.png), written at the end "
        "of the tick in which they fall (and at the end of the run).",
        min=1,
    )
    keep_checkpoints: int = hparam(2, help="How many of the most recent checkpoints to keep.", min=1)
    seed: int = hparam(0, help="Seed of weight initialisation, training noise and data order.")
    mixed_precision: bool = hparam(
        False,
        help="Mixed precision: bfloat16 compute on GPUs with compute capability >= 8.0, else float16 with "
        "loss scaling; weights stay float32. On a CPU it runs float16 emulated, slower than float32, to "
        "check a configuration before a GPU run (with a warning).",
    )
    jit_compile: bool = hparam(
        False,
        help="Compile the training step with XLA (measured slower for DCGAN on CPU; try it on GPU).",
    )
    distribution: str = hparam(
        "auto",
        help="auto: multi-worker when TF_CONFIG is set, mirrored over all GPUs when there are several, "
        "else one device; mirrored: all local GPUs (or CPUs); multi_worker: TF_CONFIG workers; none: one device.",
        choices=DISTRIBUTIONS,
    )

    def total_steps(self) -> int:
        """The run's length in steps (``steps``, or ``kimg`` converted at ``batch_size``)."""
        if self.steps is not None:
            return int(self.steps)
        if self.kimg <= 0:
            raise RaganError(f"kimg={self.kimg!r} must be positive (or set steps).")
        return max(1, math.ceil(self.kimg * 1000 / self.batch_size))

    def kimg_at(self, step: int) -> float:
        """Thousands of real images shown after ``step`` steps."""
        return step * self.batch_size / 1000.0


def split_overrides(values: dict, model_config_class: type, *, source: str = "") -> tuple[dict, dict]:
    """Split a config-file mapping into (model overrides, training overrides).

    Two layouts are accepted: sections ``{"model": {...}, "training": {...}}`` (what
    ``ragan hparams MODEL --json`` prints and ``config.json`` holds), or one flat mapping whose
    keys are split by name. An unknown key is an error with a did-you-mean over both sets of names.

    Example:
        >>> from ragan.models import DCGANConfig
        >>> split_overrides({"latent_dim": 64, "kimg": 2}, DCGANConfig)
        ({'latent_dim': 64}, {'kimg': 2})
    """
    from ragan.errors import did_you_mean

    where = f"{source}: " if source else ""
    values = dict(values or {})
    model_names = {spec.name for spec in model_config_class.hparams()}
    train_names = {spec.name for spec in TrainConfig.hparams()}
    sections = {"model", "training"}
    if values and set(values) <= sections and all(isinstance(v, dict) or v is None for v in values.values()):
        model_part = dict(values.get("model") or {})
        train_part = dict(values.get("training") or {})
        # Validated by the Config classes (unknown names -> did-you-mean over that section).
        return model_part, train_part
    model_part, train_part = {}, {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key in model_names:
            model_part[key] = value
        elif key in train_names:
            train_part[key] = value
        else:
            known = sorted(model_names | train_names)
            raise RaganError(
                f"{where}unknown option {raw_key!r}: neither a {model_config_class.__name__} hyperparameter nor a "
                f"training option (use sections 'model:' and 'training:' or a flat mapping)."
                f"{did_you_mean(key, known)}"
            )
    return model_part, train_part
