"""Hyperparameter tuning: KerasTuner searches over a GAN's declared hyperparameters.

* :func:`tune` (also ``ragan.tune`` and ``ragan tune MODEL``): run a study (random search,
  Bayesian optimisation or Hyperband), every trial a ragan training run and an MLflow run,
  scored by a quality metric on held-out real images; the best generator lands in ``OUT/best``.
* :mod:`~ragan.tuning.hypermodel`: the search space from the declared hyperparameters
  (:func:`build_search_space`) and the KerasTuner :class:`GANHyperModel`.
* :mod:`~ragan.tuning.objective`: the objective (KID by default) and its feature extractors.
* The study's jobs, each in its module: :mod:`~ragan.tuning.validation` (``plan_study``),
  :mod:`~ragan.tuning.study` (the study directory), :mod:`~ragan.tuning.oracles`,
  :mod:`~ragan.tuning.trials` (the trial runner), :mod:`~ragan.tuning.summary` (``trials.csv|md|png``),
  :mod:`~ragan.tuning.export` (``best/``), :mod:`~ragan.tuning.mlflow_runs` and
  :mod:`~ragan.tuning.distributed`; KerasTuner's internals only in :mod:`~ragan.tuning._keras_tuner`.

Names are imported on first use: ``import ragan.tuning`` does not import TensorFlow.

Example (skipped: a study trains GANs on a prepared dataset, far longer than an example):
    >>> import ragan
    >>> result = ragan.tune("dcgan", "prepared", "studies/dcgan", max_trials=8, kimg_per_trial=20)  # doctest: +SKIP
    >>> result.best_dir                                                                          # doctest: +SKIP
    PosixPath('studies/dcgan/best')
"""

from __future__ import annotations

from ragan._lazy import lazy_attributes

_LAZY = {
    "tune": "tuner",
    "TuneResult": "tuner",
    "RaganTuner": "tuner",
    "TUNERS": "tuner",
    "GANHyperModel": "hypermodel",
    "SearchSpace": "hypermodel",
    "SearchDimension": "hypermodel",
    "build_search_space": "hypermodel",
    "describe_declared": "hypermodel",
    "StudyObjective": "objective",
    "prepare_objective": "objective",
    "load_objective": "objective",
    "pixel_extractor": "objective",
    "METRICS": "objective",
    "EXTRACTORS": "objective",
}
_SUBMODULES = ("tuner", "hypermodel", "objective")

__all__ = [*_LAZY, *_SUBMODULES]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
