"""A study's arguments checked and resolved before anything is written: :func:`plan_study` and :class:`StudyPlan`.

Example:
    >>> check_tuner_options("random", {"max_retries_per_trial": 1})
    {'max_retries_per_trial': 1}
    >>> check_tuner_options("random", {"alpha": 1e-4})
    Traceback (most recent call last):
    ragan.errors.RaganError: tuner_options: 'alpha' is not an option of the random tuner; allowed: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragan.config import takes_options
from ragan.data.manifest import read_manifest
from ragan.errors import RaganError
from ragan.tuning.config import DEFAULT_MAX_TRIALS, TUNER_OPTIONS, TUNERS, TuneConfig
from ragan.tuning.hypermodel import SearchSpace, build_search_space, keras_tuner
from ragan.tuning.objective import held_out_split, metric_identity, resolve_metric
from ragan.tuning.study import TRIALS_DIR

__all__ = ["DEFAULT_MAX_TRIALS", "TUNERS", "TUNER_OPTIONS", "StudyPlan", "check_tuner_options", "plan_study"]


def check_tuner_options(tuner: str, options) -> dict:
    """``options`` as a dict, if every name is an option of ``tuner`` (and Bayesian's scikit-learn is there)."""
    options = TuneConfig(tuner=tuner, tuner_options=options).tuner_options or {}
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
    config: TuneConfig

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


@takes_options(TuneConfig)
def plan_study(model="dcgan", data=None, out=None, *, config=None, **options) -> StudyPlan:
    """Validate a study's options and data without running anything (see :func:`~ragan.tuning.tuner.tune`).

    Example (skipped: it reads a prepared dataset, made with ``ragan prepare``):
        >>> plan = plan_study("dcgan", "prepared", "studies/x", search={"latent_dim": 64})  # doctest: +SKIP
        >>> plan.describe()["budget"]  # doctest: +SKIP
        {'kimg_per_trial': 20.0}
    """
    config = TuneConfig.resolve(config, options)
    if out is None:
        raise RaganError("out (the study directory) is required.")
    if data is None:
        raise RaganError("data (a prepared dataset directory) is required; make one with 'ragan prepare'.")
    model_name = _model_name(model)
    tuner_options = check_tuner_options(config.tuner, config.tuner_options)
    space = build_search_space(model_name, config.search)
    metric_name, metric = resolve_metric(config.objective)
    budget = config.budget()
    data = Path(data)
    _validate_first_trial(model_name, data, space, budget.get("kimg_per_trial") or budget["min_kimg"])
    held_out_split(read_manifest(data), data)
    settings = {
        "model": model_name,
        "data": str(data.resolve()),
        "tuner": config.tuner,
        "budget": budget,
        "search_space": space.to_json(),
        "objective": {
            "metric": metric_identity(metric),
            "extractor": config.extractor,
            "objective_images": config.objective_images,
            "classifier_epochs": config.classifier_epochs,
            "inception_weights": config.inception_weights,
        },
        "seed": config.seed,
        "tuner_options": tuner_options,
        "max_trials": config.trials,
        "max_consecutive_failed_trials": config.max_consecutive_failed_trials,
    }
    return StudyPlan(
        model_name, data, Path(out), space, metric_name, metric, budget, config.trials, tuner_options, settings, config
    )
