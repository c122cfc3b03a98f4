"""The ``--cfg`` presets of StyleGAN2-ADA as data.

Each preset is the official train.py's ``cfg_specs`` entry for one GPU (stylegan2-ada-pytorch), plus
``small``, a narrow network for CPUs. A field left ``None`` follows the resolution, as the official
``auto`` does; :func:`ragan.models.stylegan2.config.resolve_preset` applies those rules and the
user's explicit values.

Example:
    >>> PRESETS["paper256"].r1_gamma, PRESETS["paper256"].batch_size
    (1.0, 64)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True)
class Preset:
    """One preset. ``None`` means "from the resolution" (the rule is named beside each field).

    ``batch_size`` is the reference batch the formulas use (and the default ``--batch-size``).
    """

    batch_size: int | None  # min(4096 // resolution, 32)
    mbstd_group: int | None  # min(batch_size, 4)
    fmaps: float | None  # 1 at >= 512 px, else 0.5 (channel_base = fmaps * 32768)
    learning_rate: float | None  # 0.002 at >= 1024 px, else 0.0025
    r1_gamma: float | None  # 0.0002 * resolution**2 / batch_size
    ema_kimg: float | None  # batch_size * 10 / 32
    ema_rampup: float | None  # None: no ramp-up
    mapping_layers: int
    pl_weight: float = 2.0
    style_mixing: float = 0.9
    d_architecture: str = "resnet"
    latent_dim: int = 512
    w_dim: int = 512
    channel_base: int | None = None  # None: fmaps * 32768
    channel_max: int = 512
    ada_kimg: float = 500.0


PRESETS: dict[str, Preset] = {
    "auto": Preset(None, None, None, None, None, None, 0.05, 2),
    "stylegan2": Preset(32, 4, 1, 0.002, 10.0, 10.0, None, 8),
    "paper256": Preset(64, 8, 0.5, 0.0025, 1.0, 20.0, None, 8),
    "paper512": Preset(64, 8, 1, 0.0025, 0.5, 20.0, None, 8),
    "paper1024": Preset(32, 4, 1, 0.002, 2.0, 10.0, None, 8),
    "cifar": Preset(64, 32, 1, 0.0025, 0.01, 500.0, 0.05, 2, pl_weight=0.0, style_mixing=0.0, d_architecture="orig"),
    # Not an official preset: 128 channels at most and z = w = 128 (about 2.2 M parameters G and D
    # together at 32 px), and ADA moving p five times faster for the short runs a CPU affords.
    "small": Preset(
        32,
        4,
        None,
        0.0025,
        None,
        None,
        0.05,
        2,
        latent_dim=128,
        w_dim=128,
        channel_base=2048,
        channel_max=128,
        ada_kimg=100.0,
    ),
}
