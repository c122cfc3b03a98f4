"""The options of ``ragan tune`` (:class:`TuneConfig`), declared once.

The same declaration gives the ``ragan tune`` flags, the keywords of :func:`ragan.tune` and
:func:`~ragan.tuning.validation.plan_study`, and the keys of its ``--config`` file. This module
imports neither KerasTuner nor TensorFlow, so ``ragan tune --help`` stays fast.

Example:
    >>> TuneConfig(tuner="hyperband", max_kimg=0.45, factor=3).budget()["max_epochs"]
    9
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragan.config import StageConfig, hparam
from ragan.errors import RaganError, did_you_mean

__all__ = ["DEFAULT_MAX_TRIALS", "EXTRACTORS", "TUNERS", "TUNER_OPTIONS", "TuneConfig"]

TUNERS = ("random", "bayesian", "hyperband")
# KerasTuner oracle options a user may pass through ``tuner_options`` (the rest ragan sets).
TUNER_OPTIONS = {
    "random": ("max_retries_per_trial",),
    "bayesian": ("num_initial_points", "alpha", "beta", "max_retries_per_trial"),
    "hyperband": ("hyperband_iterations", "max_retries_per_trial"),
}
EXTRACTORS = ("auto", "domain", "pixels", "inception")
DEFAULT_MAX_TRIALS = 10


def _positive_kimg(name: str, value: float) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise RaganError(f"{name}={value!r} must be a positive number of kimg.")
    return value


def _search(name: str, value):
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise RaganError(f"{name}={value!r} is not allowed; give a mapping (name: value or range) or a YAML/JSON file.")


def _objective(name: str, value):
    if isinstance(value, str) or callable(value):
        return value
    raise RaganError(f"{name}={value!r} is not allowed; give 'kid', 'fid', a function or 'module:function'.")


def _tuner_options(name: str, value) -> dict:
    """A mapping, or ``NAME=VALUE`` words (values read as YAML scalars: ``3`` -> 3, ``true`` -> True)."""
    if isinstance(value, Mapping):
        return {str(key): item for key, item in value.items()}
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
        raise RaganError(f"{name}={value!r} is not allowed; give a mapping or NAME=VALUE words.")
    import yaml

    options = {}
    for word in (part for w in words for part in w.split(",")):
        key, sep, text = word.partition("=")
        if not sep or not key.strip():
            raise RaganError(f"{name}: {word!r}: write NAME=VALUE, e.g. max_retries_per_trial=1.")
        options[key.strip()] = _scalar(yaml.safe_load(text.strip()))
    return options


def _scalar(value):
    """YAML 1.1 reads ``1e-4`` as a string; a number is meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@dataclass
class TuneConfig(StageConfig):
    """The options of :func:`ragan.tune` and ``ragan tune`` (see :class:`~ragan.config.StageConfig`).

    Example:
        >>> TuneConfig(tuner_options=["alpha=1e-4"], tuner="bayesian").tuner_options
        {'alpha': 0.0001}
        >>> TuneConfig(tuner_options={"alpha": 1e-4})
        Traceback (most recent call last):
        ragan.errors.RaganError: tuner_options: 'alpha' is not an option of the random tuner; allowed: ...
    """

    tuner: str = hparam("random", help="The search algorithm.", choices=TUNERS)
    max_trials: int | None = hparam(
        None,
        help=f"random/bayesian: number of trials (default {DEFAULT_MAX_TRIALS}); hyperband: an optional cap "
        "(default one full Hyperband iteration). A resumed study may raise it.",
        min=1,
    )
    kimg_per_trial: float = hparam(
        20.0, help="random/bayesian: training length of every trial in kimg.", check=_positive_kimg
    )
    max_kimg: float | None = hparam(
        None, help="hyperband: training length of its longest trials (default kimg_per_trial).", check=_positive_kimg
    )
    min_kimg: float | None = hparam(
        None,
        help="hyperband: training length of its shortest trials (default max_kimg / factor^2).",
        check=_positive_kimg,
    )
    factor: int = hparam(3, help="hyperband: reduction factor (trials kept per round = 1/factor).", min=2)
    search: Any = hparam(
        None,
        help="Changes to the declared search space, a mapping or a YAML/JSON file: name: value (fix) | [low, high] "
        "(narrow) | [a, b, c] (choices) | {min:, max:, sampling:} | {choices: [...]}.",
        check=_search,
        metavar="FILE",
    )
    objective: Any = hparam(
        "kid",
        help="kid, fid, a function f(real, fake) -> float of two [-1, 1] image arrays (lower is better), or its "
        "path module:function.",
        check=_objective,
    )
    extractor: str = hparam(
        "auto",
        help="Features of KID/FID: auto (domain for labelled data, else pixels), domain (a classifier trained on the "
        "real train split), pixels or inception.",
        choices=EXTRACTORS,
    )
    inception_weights: str | None = hparam(
        None, help="Local InceptionV3 weights for extractor inception ('imagenet' downloads).", metavar="FILE"
    )
    objective_images: int = hparam(1000, help="Held-out real images compared, and as many generated.", min=2)
    classifier_epochs: int = hparam(10, help="Epochs of the domain feature classifier.", min=1)
    seed: int = hparam(0, help="Seed of the search, the objective and the trials' training (unless searched).")
    tuner_options: Any = hparam(
        None,
        help="KerasTuner oracle options NAME=VALUE: max_retries_per_trial; bayesian: num_initial_points, alpha, beta; "
        "hyperband: hyperband_iterations.",
        check=_tuner_options,
        flag="--tuner-option",
        metavar="NAME=VALUE",
        repeat="+",
    )
    max_consecutive_failed_trials: int = hparam(3, help="Stop after this many failed trials in a row.", min=1)
    tracking_uri: str | None = hparam(
        None, help="MLflow tracking URI (default MLFLOW_TRACKING_URI, else sqlite:///OUT/mlflow.db).", metavar="URI"
    )
    experiment: str = hparam("ragan", help="MLflow experiment of the study run and its trial runs.")
    overwrite: bool = hparam(
        False, help="Delete the study in the output folder and start over (the MLflow store stays)."
    )

    def validate(self) -> None:
        allowed = TUNER_OPTIONS[self.tuner]
        for name in self.tuner_options or {}:
            if name not in allowed:
                raise RaganError(
                    f"tuner_options: {name!r} is not an option of the {self.tuner} tuner; allowed: "
                    f"{', '.join(allowed)}.{did_you_mean(name, allowed)}"
                )

    @property
    def trials(self) -> int | None:
        """``max_trials``, with random and Bayesian search's default."""
        if self.tuner != "hyperband" and self.max_trials is None:
            return DEFAULT_MAX_TRIALS
        return self.max_trials

    def budget(self) -> dict:
        """The training length of trials in kimg (and Hyperband's epochs of ``kimg_per_epoch``)."""
        if self.tuner != "hyperband":
            return {"kimg_per_trial": self.kimg_per_trial}
        factor = self.factor
        max_kimg = self.max_kimg if self.max_kimg is not None else self.kimg_per_trial
        min_kimg = self.min_kimg if self.min_kimg is not None else max_kimg / factor**2
        epochs = round(max_kimg / min_kimg)
        if min_kimg > max_kimg or epochs < factor:
            raise RaganError(
                f"Hyperband needs max_kimg/min_kimg >= factor to have rounds to halve; got max_kimg={max_kimg:g}, "
                f"min_kimg={min_kimg:g}, factor={factor}."
            )
        # One Hyperband "epoch" is kimg_per_epoch; the longest trials train exactly max_kimg.
        return {
            "max_kimg": max_kimg,
            "min_kimg": min_kimg,
            "factor": factor,
            "max_epochs": epochs,
            "kimg_per_epoch": max_kimg / epochs,
        }
