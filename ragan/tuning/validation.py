"""A study's arguments checked and resolved before anything is written: :func:`plan_study` and :class:`StudyPlan`.

Example:
    >>> check_tuner_options("random", {"max_retries_per_trial": 1})
    {'max_retries_per_trial': 1}
    >>> check_tuner_options("random", {"alpha": 1e-4})
    Traceback (most recent call last):
    ragan.errors.RaganError: tuner_options: 'alpha' is not an option of the random tuner; allowed: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragan._common import check_positive_int
from ragan.data.manifest import read_manifest
from ragan.errors import RaganError, check_choice, did_you_mean
from ragan.tuning.hypermodel import SearchSpace, build_search_space, keras_tuner
from ragan.tuning.objective import EXTRACTORS, held_out_split, metric_identity, resolve_metric
from ragan.tuning.oracles import _budget
from ragan.tuning.study import TRIALS_DIR

__all__ = ["DEFAULT_MAX_TRIALS", "TUNERS", "TUNER_OPTIONS", "StudyPlan", "check_tuner_options", "plan_study"]

TUNERS = ("random", "bayesian", "hyperband")
# KerasTuner oracle options a user may pass through ``tuner_options`` (the rest ragan sets).
TUNER_OPTIONS = {
    "random": ("max_retries_per_trial",),
    "bayesian": ("num_initial_points", "alpha", "beta", "max_retries_per_trial"),
    "hyperband": ("hyperband_iterations", "max_retries_per_trial"),
}
DEFAULT_MAX_TRIALS = 10


def check_tuner_options(tuner: str, options) -> dict:
    """``options`` as a dict, if every name is an option of ``tuner`` (and Bayesian's scikit-learn is there)."""
    options = dict(options or {})
    allowed = TUNER_OPTIONS[tuner]
    for name in options:
        if name not in allowed:
            raise RaganError(
                f"tuner_options: {name!r} is not an option of the {tuner} tuner; allowed: "
                f"{', '.join(allowed)}.{did_you_mean(name, allowed)}"
            )
    if tuner == "bayesian":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise RaganError(
                "tuner='bayesian' needs scikit-learn (KerasTuner's Gaussian process); pip install scikit-learn."
            ) from None
    return options


def _validate_first_trial(model_name: str, data, space: SearchSpace, kimg: float) -> None:
    """Plan a trial with the space's first values, so data/option errors surface before the search."""
    from ragan.training.loop import describe_training

    trial_config = space.draw(keras_tuner.HyperParameters())
    describe_training(
        model_name,
        data,
        Path(TRIALS_DIR) / "check",
        config=trial_config.model_config,
        train_config=trial_config.training,
        kimg=kimg,
    )


@dataclass
class StudyPlan:
    """A study's validated settings (what :func:`plan_study` resolved; nothing is written)."""

    model_name: str
    data: Path
    out: Path
    space: SearchSpace
    metric_name: str
    metric: Any
    budget: dict
    max_trials: int | None
    tuner_options: dict
    settings: dict

    def describe(self) -> dict:
        """JSON-ready: the settings, with the search space as readable ranges (``--dry-run``)."""
        described = dict(self.settings)
        described["out"] = str(self.out)
        described["search_space"] = {d.name: d.describe() for d in self.space.dimensions}
        return described


def _model_name(model) -> str:
    from ragan.registry import get_gan

    name = get_gan(model).gan_name if isinstance(model, str) else getattr(model, "gan_name", None)
    if name is None:
        raise RaganError(f"model={model!r} is not a registered GAN name such as 'dcgan'.")
    return name


def _check_arguments(tuner, extractor, out, data, seed) -> None:
    check_choice("tuner", tuner, TUNERS)
    check_choice("extractor", extractor, EXTRACTORS)
    if out is None:
        raise RaganError("out (the study directory) is required.")
    if data is None:
        raise RaganError("data (a prepared dataset directory) is required; make one with 'ragan prepare'.")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RaganError(f"seed={seed!r} must be an integer.")


def plan_study(
    model="dcgan",
    data=None,
    out=None,
    *,
    tuner: str = "random",
    max_trials: int | None = None,
    kimg_per_trial: float = 20.0,
    max_kimg: float | None = None,
    min_kimg: float | None = None,
    factor: int = 3,
    search=None,
    objective="kid",
    extractor: str = "auto",
    objective_images: int = 1000,
    classifier_epochs: int = 10,
    inception_weights=None,
    seed: int = 0,
    tuner_options: Mapping[str, Any] | None = None,
    max_consecutive_failed_trials: int = 3,
) -> StudyPlan:
    """Validate a study's arguments and data without running anything (see :func:`~ragan.tuning.tuner.tune`).

    Example (skipped: it reads a prepared dataset, made with ``ragan prepare``):
        >>> plan = plan_study("dcgan", "prepared", "studies/x", search={"latent_dim": 64})  # doctest: +SKIP
        >>> plan.describe()["budget"]  # doctest: +SKIP
        {'kimg_per_trial': 20.0}
    """
    _check_arguments(tuner, extractor, out, data, seed)
    model_name = _model_name(model)
    if tuner != "hyperband" and max_trials is None:
        max_trials = DEFAULT_MAX_TRIALS
    check_positive_int("max_trials", max_trials, allow_none=True)
    check_positive_int("max_consecutive_failed_trials", max_consecutive_failed_trials)
    check_positive_int("objective_images", objective_images)
    check_positive_int("classifier_epochs", classifier_epochs)
    options = check_tuner_options(tuner, tuner_options)
    space = build_search_space(model_name, search)
    metric_name, metric = resolve_metric(objective)
    budget = _budget(tuner, kimg_per_trial, max_kimg, min_kimg, factor)
    data = Path(data)
    _validate_first_trial(model_name, data, space, budget.get("kimg_per_trial") or budget["min_kimg"])
    held_out_split(read_manifest(data), data)
    settings = {
        "model": model_name,
        "data": str(data.resolve()),
        "tuner": tuner,
        "budget": budget,
        "search_space": space.to_json(),
        "objective": {
            "metric": metric_identity(metric),
            "extractor": extractor,
            "objective_images": objective_images,
            "classifier_epochs": classifier_epochs,
            "inception_weights": None if inception_weights is None else str(inception_weights),
        },
        "seed": seed,
        "tuner_options": options,
        "max_trials": max_trials,
        "max_consecutive_failed_trials": max_consecutive_failed_trials,
    }
    return StudyPlan(model_name, data, Path(out), space, metric_name, metric, budget, max_trials, options, settings)
