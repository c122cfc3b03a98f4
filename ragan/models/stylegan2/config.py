"""StyleGAN2-ADA's hyperparameters (:class:`StyleGAN2Config`) and their values resolved once
against a preset and a resolution (:class:`StyleGAN2Options`).

Example:
    >>> options = resolve_preset(StyleGAN2Config(cfg="small", r1_gamma=0.5), 32)
    >>> options.r1_gamma, options.channel_max, options.batch_size
    (0.5, 128, 32)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ragan.config import Choice, Config, Float, hparam
from ragan.models.stylegan2.presets import PRESETS

__all__ = ["StyleGAN2Config", "StyleGAN2Options", "resolve_preset"]


@dataclass
class StyleGAN2Config(Config):
    """StyleGAN2-ADA hyperparameters. ``cfg`` picks a preset; every value it sets can be given
    explicitly (``None`` = take it from the preset), as ``--cfg`` and its overrides do in the
    official train.py.

    Example:
        >>> resolve_preset(StyleGAN2Config(cfg="auto"), 64).r1_gamma   # 0.0002 * 64**2 / 32
        0.0256
    """

    cfg: str = hparam(
        "auto",
        help="Preset: auto (from the resolution, as the official --cfg auto), stylegan2, paper256, paper512, "
        "paper1024, cifar, or small (a narrow network that trains on a CPU).",
        choices=tuple(PRESETS),
    )
    latent_dim: int | None = hparam(None, help="Length of z (official z_dim; preset: 512, small 128).", min=1)
    w_dim: int | None = hparam(None, help="Length of w, the intermediate latent (preset: 512, small 128).", min=1)
    mapping_layers: int | None = hparam(
        None,
        help="Dense layers in the mapping network (preset: 2 for auto/cifar/small, else 8).",
        min=1,
        tune=Choice(2, 4, 8),
    )
    channel_base: int | None = hparam(
        None,
        help="Width multiplier: a resolution r gets min(channel_base // r, channel_max) channels "
        "(preset: fmaps x 32768; auto: 16384 below 512 px; small 2048).",
        min=1,
    )
    channel_max: int | None = hparam(None, help="Most channels in any layer (preset: 512, small 128).", min=1)
    conditional: bool = hparam(False, help="Condition G (label embedding) and D (projection) on class labels.")
    g_learning_rate: float | None = hparam(
        None,
        help="Generator Adam learning rate (preset: 0.0025, 0.002 at 1024 px).",
        min=0,
        tune=Float(5e-4, 5e-3, sampling="log"),
    )
    d_learning_rate: float | None = hparam(
        None,
        help="Discriminator Adam learning rate (preset: as the generator's).",
        min=0,
        tune=Float(5e-4, 5e-3, sampling="log"),
    )
    beta_1: float = hparam(0.0, help="Adam beta_1 of both optimizers.", min=0, max=1)
    beta_2: float = hparam(0.99, help="Adam beta_2 of both optimizers.", min=0, max=1)
    r1_gamma: float | None = hparam(
        None,
        help="R1 regularisation weight (preset; auto: 0.0002 * resolution^2 / batch).",
        min=0,
        tune=Float(1e-3, 10.0, sampling="log"),
    )
    r1_interval: int = hparam(16, help="Lazy R1: regularise D every this many D steps (0 turns R1 off).", min=0)
    pl_weight: float | None = hparam(None, help="Path-length regularisation weight (preset: 2, cifar 0).", min=0)
    pl_interval: int = hparam(4, help="Lazy path-length regularisation every this many G steps.", min=1)
    pl_batch_shrink: int = hparam(2, help="Path-length regularisation runs on batch / this many images.", min=1)
    pl_decay: float = hparam(0.01, help="Decay of the running mean of path lengths.", min=0, max=1)
    style_mixing: float | None = hparam(
        None,
        help="Probability of mixing two latents' styles in a training image (preset: 0.9, cifar 0).",
        min=0,
        max=1,
    )
    ema_kimg: float | None = hparam(
        None,
        help="Half-life of the generator EMA in thousands of images (preset; auto: batch * 10 / 32); 0 turns EMA off.",
        min=0,
    )
    ema_rampup: float | None = hparam(
        None,
        help="EMA ramp-up: the half-life is at most this fraction of the images seen so far "
        "(preset: 0.05 for auto/cifar/small; 0 = none).",
        min=0,
    )
    mbstd_group: int | None = hparam(
        None,
        help="Minibatch standard deviation group size (preset; auto: min(batch, 4)).",
        min=1,
    )
    d_architecture: str | None = hparam(
        None,
        help="Discriminator architecture: resnet (preset) or orig (cifar).",
        choices=("resnet", "orig"),
    )
    conv_clamp: float | None = hparam(256.0, help="Clamp of convolution outputs (None = off).", min=0)
    num_fp16_res: int = hparam(
        4,
        help="Under --mixed-precision, the N highest resolutions compute in float16 (bfloat16 on newer GPUs).",
        min=0,
    )
    augment: str = hparam(
        "ada",
        help="Augmentation of every image D sees: ada (adaptive p), fixed (p = augment_p), none.",
        choices=("ada", "fixed", "none"),
    )
    augment_p: float = hparam(
        0.0, help="Augmentation probability: the start for ada, the value for fixed.", min=0, max=1
    )
    augment_pipeline: str = hparam(
        "bgc",
        help="ADA pipeline: bgc (blit, geometric, colour), bg, or c.",
        choices=("bgc", "bg", "c"),
    )
    ada_target: float = hparam(0.6, help="ADA target for E[sign(D(real))].", min=0, max=1)
    ada_interval: int = hparam(4, help="Adjust the ADA probability every this many steps.", min=1)
    ada_kimg: float | None = hparam(
        None,
        help="ADA speed: thousands of images for p to move by 1 (preset: 500, small 100).",
        min=0.001,
    )
    freeze_d: int = hparam(
        0, help="Freeze-D: do not train the discriminator's first N layers (transfer learning).", min=0
    )


@dataclass(frozen=True)
class StyleGAN2Options:
    """Every value a :class:`~ragan.models.stylegan2.model.StyleGAN2` uses, typed and final: the
    explicit ones of its config, the rest from the preset and the resolution. Made once per model
    by :func:`resolve_preset`; ``batch_size`` is the preset's reference batch (the default
    ``--batch-size``), ``image_size`` the resolution it was resolved for.
    """

    cfg: str
    image_size: int
    batch_size: int
    latent_dim: int
    w_dim: int
    mapping_layers: int
    channel_base: int
    channel_max: int
    conditional: bool
    g_learning_rate: float
    d_learning_rate: float
    beta_1: float
    beta_2: float
    r1_gamma: float
    r1_interval: int
    pl_weight: float
    pl_interval: int
    pl_batch_shrink: int
    pl_decay: float
    style_mixing: float
    ema_kimg: float
    ema_rampup: float
    mbstd_group: int
    d_architecture: str
    conv_clamp: float | None
    num_fp16_res: int
    augment: str
    augment_p: float
    augment_pipeline: str
    ada_target: float
    ada_interval: int
    ada_kimg: float
    freeze_d: int

    @property
    def r1_on(self) -> bool:
        """Whether D gets lazy R1 regularisation steps."""
        return self.r1_gamma > 0 and self.r1_interval > 0

    @property
    def pl_on(self) -> bool:
        """Whether G gets lazy path-length regularisation steps."""
        return self.pl_weight > 0

    @property
    def augments(self) -> bool:
        """Whether D's inputs go through the ADA pipeline (with the probability ``p``)."""
        return self.augment != "none"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_preset(config: StyleGAN2Config, image_size: int) -> StyleGAN2Options:
    """Every value the model uses: the explicit ones in ``config``, the rest from ``config.cfg``
    (the official train.py's rules for ``auto`` and for the values a preset leaves to the
    resolution).

    Example:
        >>> resolve_preset(StyleGAN2Config(cfg="small"), 32).channel_max
        128
    """
    preset = PRESETS[config.cfg]
    res = int(image_size)
    batch = preset.batch_size if preset.batch_size is not None else max(min(4096 // res, 32), 1)
    fmaps = preset.fmaps if preset.fmaps is not None else (1 if res >= 512 else 0.5)
    from_preset = {
        "latent_dim": preset.latent_dim,
        "w_dim": preset.w_dim,
        "mapping_layers": preset.mapping_layers,
        "channel_base": preset.channel_base if preset.channel_base is not None else int(fmaps * 32768),
        "channel_max": preset.channel_max,
        "g_learning_rate": preset.learning_rate
        if preset.learning_rate is not None
        else (0.002 if res >= 1024 else 0.0025),
        "r1_gamma": round(float(preset.r1_gamma if preset.r1_gamma is not None else 0.0002 * res**2 / batch), 10),
        "pl_weight": preset.pl_weight,
        "style_mixing": preset.style_mixing,
        "ema_kimg": float(preset.ema_kimg if preset.ema_kimg is not None else batch * 10 / 32),
        "ema_rampup": float(preset.ema_rampup or 0.0),
        "mbstd_group": preset.mbstd_group if preset.mbstd_group is not None else min(batch, 4),
        "d_architecture": preset.d_architecture,
        "ada_kimg": preset.ada_kimg,
    }
    values = config.to_dict()
    for name, value in from_preset.items():
        if values.get(name) is None:
            values[name] = value
    if values["d_learning_rate"] is None:
        values["d_learning_rate"] = values["g_learning_rate"]
    values["batch_size"] = batch
    values["image_size"] = res
    return StyleGAN2Options(**values)
