"""The study directory: its layout, ``study.json`` (create, resume, restart) and what every trial shares.

Example:
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "study"
    >>> open_study(out, {"seed": 0}, overwrite=False)["format"]
    'ragan-study'
    >>> sorted(p.name for p in out.iterdir())
    ['study.json']
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragan._common import read_json
from ragan.errors import RaganError
from ragan.tuning.hypermodel import TrialConfig, keras_tuner
from ragan.tuning.objective import StudyObjective, load_objective

logger = logging.getLogger(__name__)

__all__ = [
    "BEST_DIR",
    "BEST_FILE",
    "OBJECTIVE_DIR",
    "PROJECT_DIR",
    "RESUMABLE_SETTINGS",
    "STUDY_ENTRIES",
    "STUDY_FILE",
    "SUMMARY_FILES",
    "TRIALS_DIR",
    "StudyContext",
    "open_study",
    "setting_differences",
]

STUDY_FILE = "study.json"
PROJECT_DIR = "keras_tuner"
OBJECTIVE_DIR = "objective"
TRIALS_DIR = "trials"
BEST_DIR = "best"
BEST_FILE = "best.json"
SUMMARY_FILES = ("trials.csv", "trials.md", "trials.png")
# What --overwrite removes; the MLflow store stays, so earlier studies remain visible there.
STUDY_ENTRIES = (STUDY_FILE, PROJECT_DIR, OBJECTIVE_DIR, TRIALS_DIR, BEST_DIR, BEST_FILE, *SUMMARY_FILES)
# Settings a resumed study may change.
RESUMABLE_SETTINGS = ("max_trials", "max_consecutive_failed_trials")


def warn(message: str) -> None:
    """A problem that does not stop the study, through the ``ragan`` logger."""
    logger.warning(message)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_json(path: Path, data) -> None:
    from ragan.training.checkpoint import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


@dataclass
class StudyContext:
    """What every trial of a study needs (shared by :class:`~ragan.tuning.trials.RaganTuner` and :func:`tune`)."""

    out: Path
    model_name: str
    data: Path
    budget: dict
    metric_name: str
    metric: Any
    settings: dict
    tracking_uri: str | None
    experiment: str
    role: str
    objective: StudyObjective | None = None
    parent_run_id: str | None = None
    _checked: bool = field(default=False, repr=False)

    def with_study_seed(self, trial_config: TrialConfig) -> TrialConfig:
        """Trials train with the study's seed unless the search fixes or searches ``seed``."""
        training = {"seed": self.settings["seed"], **trial_config.training}
        return TrialConfig(model_config=trial_config.model_config, training=training)

    def trial_dir(self, trial_id: str) -> Path:
        return self.out / TRIALS_DIR / str(trial_id)

    def record_path(self, trial_id: str) -> Path:
        return self.out / TRIALS_DIR / f"{trial_id}.json"

    def load_shared_state(self) -> None:
        """Workers: the study the chief prepared (settings check, MLflow parent run, objective)."""
        if self._checked:
            return
        study_file = self.out / STUDY_FILE
        if not study_file.is_file():
            raise keras_tuner.errors.FatalError(
                f"'{self.out}' holds no {STUDY_FILE}: start the chief (KERASTUNER_TUNER_ID=chief) with the same "
                "command first, and let every process see the same --out directory."
            )
        saved = read_json(study_file)
        differences = setting_differences(saved.get("settings", {}), self.settings)
        if differences:
            raise keras_tuner.errors.FatalError(
                f"this worker's settings differ from the study in '{self.out}' ({'; '.join(differences)}); "
                "run every process of a study with the same command."
            )
        tracking = saved.get("mlflow") or {}
        self.parent_run_id = tracking.get("run_id")
        self.tracking_uri = tracking.get("tracking_uri") or self.tracking_uri
        if self.objective is None:
            self.objective = load_objective(self.out / OBJECTIVE_DIR, self.metric)
        self._checked = True


def setting_differences(saved: dict, current: dict) -> list[str]:
    """``"key: old -> new"`` for each setting that differs, except those a resumed study may change.

    Example:
        >>> setting_differences({"tuner": "random", "max_trials": 5}, {"tuner": "bayesian", "max_trials": 9})
        ["tuner: 'random' -> 'bayesian'"]
    """
    keys = sorted(set(saved) | set(current))
    return [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in keys
        if key not in RESUMABLE_SETTINGS and saved.get(key) != current.get(key)
    ]


def open_study(out: Path, settings: dict, overwrite: bool) -> dict:
    """Create, resume or (with ``overwrite``) restart the study in ``out``; return study.json's content."""
    study_file = out / STUDY_FILE
    if overwrite:
        _remove_study(out)
    if study_file.is_file():
        return _resume_study(out, settings)
    _check_empty(out)
    out.mkdir(parents=True, exist_ok=True)
    study = {"format": "ragan-study", "format_version": 1, "created": now(), "settings": settings, "mlflow": {}}
    write_json(study_file, study)
    return study


def _remove_study(out: Path) -> None:
    for name in STUDY_ENTRIES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _resume_study(out: Path, settings: dict) -> dict:
    saved = read_json(out / STUDY_FILE)
    differences = setting_differences(saved.get("settings", {}), settings)
    if differences:
        raise RaganError(
            f"'{out}' holds a study started with other settings ({'; '.join(differences)}); re-run the "
            "original command to resume it, pass overwrite=True (--overwrite) to start over, or choose another "
            "--out."
        )
    logger.info(f"resuming the study in '{out}'")
    saved["settings"] = settings
    write_json(out / STUDY_FILE, saved)
    return saved


def _check_empty(out: Path) -> None:
    """A new study needs an empty or new ``out`` (an MLflow store or KerasTuner's empty project may be there)."""
    if out.exists() and not out.is_dir():
        raise RaganError(f"out='{out}' exists and is not a directory.")
    # A worker started before the chief may already have made KerasTuner's (empty) project folder.
    ignored = {"mlflow.db", "mlartifacts"}
    if not (out / PROJECT_DIR / "oracle.json").exists():
        ignored.add(PROJECT_DIR)
    leftovers = [p.name for p in out.iterdir() if p.name not in ignored] if out.is_dir() else []
    if leftovers:
        raise RaganError(
            f"out='{out}' is not empty and holds no ragan study ({', '.join(sorted(leftovers)[:5])}); choose an "
            "empty or new directory."
        )
