"""A trial's length in kimg, and KerasTuner's oracles with ragan's two changes (see :class:`_StudyOracle`).

The budget itself is :meth:`ragan.tuning.config.TuneConfig.budget`.

Example:
    >>> trial_kimg({"kimg_per_epoch": 2.2222222222222223}, {"tuner/epochs": 9})
    20.0
    >>> oracle = make_oracle("random", "kid", 4, {"kimg_per_trial": 1.0}, 0, {}, 3)
    >>> type(oracle).__name__, oracle.max_trials
    ('_RandomOracle', 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragan.tuning.hypermodel import keras_tuner
from ragan.tuning.study import write_json

__all__ = ["make_oracle", "trial_kimg"]


class _StudyOracle:
    """Mixed into KerasTuner's oracles.

    * State files are written atomically (KerasTuner writes them in place, so a ``kill -9``
      during a write would leave a torn ``oracle.json`` that cannot be reloaded).
    * Too many consecutive failures stop the search by answering STOPPED to every tuner (also
      remote workers), instead of raising inside the oracle (which, on a chief, would only
      break one worker's gRPC call and leave the chief waiting).

    The private methods it overrides are checked by :mod:`ragan.tuning._keras_tuner`.
    """

    stop_reason: str | None = None

    def save(self):
        write_json(Path(self._get_oracle_fname()), self.get_state())

    def _save_trial(self, trial):
        write_json(Path(self._get_trial_dir(trial.trial_id)) / "trial.json", trial.get_state())

    def _check_consecutive_failures(self):
        try:
            super()._check_consecutive_failures()
        except RuntimeError:
            self.stop_reason = f"{self.max_consecutive_failed_trials} trials failed in a row"

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        if self.stop_reason is not None and tuner_id not in self.ongoing_trials:
            self.tuner_ids.discard(tuner_id)
            return keras_tuner.engine.trial.Trial(
                self.get_space(), trial_id=str(len(self.trials)), status=keras_tuner.engine.trial.TrialStatus.STOPPED
            )
        return super().create_trial(tuner_id)


class _RandomOracle(_StudyOracle, keras_tuner.oracles.RandomSearchOracle):
    pass


class _BayesianOracle(_StudyOracle, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class _HyperbandOracle(_StudyOracle, keras_tuner.oracles.HyperbandOracle):
    pass


def trial_kimg(budget: dict, values: Mapping[str, Any]) -> float:
    """A trial's training length in kimg (Hyperband: ``tuner/epochs`` x ``kimg_per_epoch``).

    Rounded to 9 decimals so that e.g. 3 x 0.05 kimg is 0.15, not 0.15000000000000002 (which
    would round up to one more training step).

    Example:
        >>> trial_kimg({"kimg_per_epoch": 0.05}, {"tuner/epochs": 3})
        0.15
    """
    if "kimg_per_epoch" in budget:
        return round(int(values["tuner/epochs"]) * budget["kimg_per_epoch"], 9)
    return budget["kimg_per_trial"]


def make_oracle(tuner: str, metric: str, max_trials, budget: dict, seed: int, options: dict, max_failures: int):
    """The study's oracle (it minimises ``metric``); Hyperband's ``max_trials``, when given, caps its trials."""
    objective = keras_tuner.Objective(metric, direction="min")
    # KerasTuner treats seed 0 as "no seed" (it draws a random one), hence the offset.
    common = dict(objective=objective, seed=int(seed) + 1, max_consecutive_failed_trials=max_failures, **options)
    if tuner == "random":
        return _RandomOracle(max_trials=max_trials, **common)
    if tuner == "bayesian":
        return _BayesianOracle(max_trials=max_trials, **common)
    oracle = _HyperbandOracle(max_epochs=budget["max_epochs"], factor=budget["factor"], **common)
    # Hyperband sizes its own brackets; max_trials, when given, caps the number of trials.
    oracle.max_trials = max_trials
    return oracle
