"""``ragan.tune``: hyperparameter search for a GAN with KerasTuner, every trial an MLflow run.

A study searches the model's declared hyperparameters (see :mod:`ragan.tuning.hypermodel`); each
trial trains with :func:`ragan.train` and is scored by a quality metric of its generator on
held-out real images (see :mod:`ragan.tuning.objective`), which the tuner minimises. Everything
lives in one study directory::

    OUT/
      study.json            the study's settings (a re-run must match them) and its MLflow run
      keras_tuner/          KerasTuner's project: oracle.json, trial_<id>/trial.json
      objective/            the objective's cache: domain classifier, real features, objective.json
      trials/<id>/          each trial's ragan run directory (checkpoints, samples, model.keras)
      trials/<id>.json      each trial's record: status, objective, attempts, failure message
      trials.csv, trials.md, trials.png   the summary of all trials
      best/, best.json      the best trial's generator (for ragan generate / ragan evaluate)
      mlflow.db, mlartifacts/   the MLflow store (when no tracking URI is given)

Tuners: ``"random"`` search, ``"bayesian"`` optimisation (Gaussian process) and ``"hyperband"``.
Random and Bayesian trials train ``kimg_per_trial`` each. Hyperband's budget is counted in kimg:
its shortest trials train ``min_kimg``, its longest ``max_kimg``; a trial promoted to the next round
continues the earlier trial's run from its last checkpoint, which holds the networks, the EMA
generator, the noise state and *both* optimizers (KerasTuner's own Hyperband reloads weights only
and drops the second optimizer's state).

A trial whose training diverges (NaN) is recorded as failed and the search goes on; after
``max_consecutive_failed_trials`` failures in a row the search stops. A study killed (even with
``kill -9``) resumes when the same call is made again: finished trials are kept, the interrupted
one continues from its last checkpoint.

Distributed: with KerasTuner's environment variables ``KERASTUNER_TUNER_ID`` (``chief`` for the
chief, any other id for a worker), ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``, the same
call runs as the chief (it prepares the study, serves the oracle over gRPC, then writes the
summary and exports the best generator) or as a worker (it runs trials). All processes must see
the same ``OUT`` directory.

Example:
    >>> import ragan
    >>> result = ragan.tune("dcgan", "prepared", "studies/dcgan", tuner="bayesian", max_trials=20,
    ...                     kimg_per_trial=50, search={"latent_dim": 128, "g_learning_rate": [1e-4, 5e-4]})
    >>> result.best["trial_id"], result.best["objective"]["value"]         # doctest: +SKIP
    ('07', 0.0123)
    >>> ragan.generate(result.best_dir, n=1000, out="synthetic")
"""

from __future__ import annotations

import csv
import datetime
import gc
import io
import json
import logging
import math
import os
import shutil
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keras_tuner.src.distribute import utils as distribute_utils  # noqa: E402  (after the quiet TF import)
from keras_tuner.src.engine.trial import Trial, TrialStatus  # noqa: E402

from ragan._interrupt import Interrupted, signal_name
from ragan.data.manifest import read_manifest
from ragan.errors import RaganError, check_choice, did_you_mean
from ragan.tuning.hypermodel import GANHyperModel, SearchSpace, TrialConfig, build_search_space, keras_tuner
from ragan.tuning.objective import (
    EXTRACTORS,
    StudyObjective,
    held_out_split,
    load_objective,
    metric_identity,
    prepare_objective,
    resolve_metric,
)

__all__ = [
    "TUNERS",
    "StudyPlan",
    "TuneResult",
    "RaganTuner",
    "StudyContext",
    "distributed_role",
    "export_best",
    "plan_study",
    "serve_oracle",
    "trial_kimg",
    "tune",
    "write_summary",
]

TUNERS = ("random", "bayesian", "hyperband")
# KerasTuner oracle options a user may pass through ``tuner_options`` (the rest ragan sets).
TUNER_OPTIONS = {
    "random": ("max_retries_per_trial",),
    "bayesian": ("num_initial_points", "alpha", "beta", "max_retries_per_trial"),
    "hyperband": ("hyperband_iterations", "max_retries_per_trial"),
}
DEFAULT_MAX_TRIALS = 10
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
# Seconds a worker waits before asking again when Hyperband waits on other workers' trials.
IDLE_WAIT_SECONDS = 1.0
CHIEF_POLL_SECONDS = 0.5
# How long a worker started before the chief waits for the study to appear.
WORKER_WAIT_SECONDS = 1800.0


def _log(progress: bool, message: str) -> None:
    if progress:
        print(f"ragan: {message}", flush=True)


def _warn(message: str) -> None:
    print(f"ragan: warning: {message}", file=sys.stderr, flush=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data) -> None:
    from ragan.training.checkpoint import atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RaganError(f"cannot read '{path}': {error}") from None


# ----------------------------------------------------------------------------------------------
# Distributed roles
# ----------------------------------------------------------------------------------------------
def distributed_role() -> str:
    """``"single"``, ``"chief"`` or ``"worker"``, from KerasTuner's environment variables.

    Example:
        >>> os.environ.pop("KERASTUNER_ORACLE_IP", None); distributed_role()
        'single'
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if not os.environ.get(name):
            raise RaganError(
                f"KERASTUNER_ORACLE_IP is set but {name} is not; distributed tuning needs KERASTUNER_TUNER_ID "
                "('chief' on the chief, e.g. 'tuner0' on a worker), KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT."
            )
    return "chief" if distribute_utils.is_chief_oracle() else "worker"


def serve_oracle(oracle, poll_seconds: float = CHIEF_POLL_SECONDS) -> None:
    """Serve ``oracle`` to the workers over gRPC until the search is over and every worker has left.

    Same protocol as KerasTuner's chief (its ``OracleServicer``), with a short poll so the chief
    exits as soon as the last worker is done, and a clear error when the port cannot be bound.
    The address comes from ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``.

    Example:
        >>> os.environ.update(KERASTUNER_TUNER_ID="chief", KERASTUNER_ORACLE_IP="127.0.0.1",
        ...                   KERASTUNER_ORACLE_PORT="8000")
        >>> serve_oracle(tuner.oracle)      # returns when the workers are done   # doctest: +SKIP
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise RaganError(
            f"the chief cannot listen on {address} (KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT); "
            "is the port in use or the address not local?"
        )
    server.start()
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=2)


# ----------------------------------------------------------------------------------------------
# Oracles: atomic state files and a failure limit that stops the search cleanly
# ----------------------------------------------------------------------------------------------
class _StudyOracle:
    """Mixed into KerasTuner's oracles.

    * State files are written atomically (KerasTuner writes them in place, so a ``kill -9``
      during a write would leave a torn ``oracle.json`` that cannot be reloaded).
    * Too many consecutive failures stop the search by answering STOPPED to every tuner (also
      remote workers), instead of raising inside the oracle (which, on a chief, would only
      break one worker's gRPC call and leave the chief waiting).
    """

    stop_reason: str | None = None

    def save(self):
        _write_json(Path(self._get_oracle_fname()), self.get_state())

    def _save_trial(self, trial):
        _write_json(Path(self._get_trial_dir(trial.trial_id)) / "trial.json", trial.get_state())

    def _check_consecutive_failures(self):
        try:
            super()._check_consecutive_failures()
        except RuntimeError:
            self.stop_reason = f"{self.max_consecutive_failed_trials} trials failed in a row"

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        if self.stop_reason is not None and tuner_id not in self.ongoing_trials:
            self.tuner_ids.discard(tuner_id)
            return Trial(self.get_space(), trial_id=str(len(self.trials)), status=TrialStatus.STOPPED)
        return super().create_trial(tuner_id)


class _RandomOracle(_StudyOracle, keras_tuner.oracles.RandomSearchOracle):
    pass


class _BayesianOracle(_StudyOracle, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class _HyperbandOracle(_StudyOracle, keras_tuner.oracles.HyperbandOracle):
    pass


def _budget(tuner: str, kimg_per_trial, max_kimg, min_kimg, factor) -> dict:
    """The training length of trials, in kimg (and Hyperband's epochs of ``kimg_per_epoch``)."""

    def positive(name, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            raise RaganError(f"{name}={value!r} must be a positive number of kimg.")
        return float(value)

    if tuner != "hyperband":
        return {"kimg_per_trial": positive("kimg_per_trial", kimg_per_trial)}
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2:
        raise RaganError(f"factor={factor!r} must be an integer >= 2 (Hyperband's reduction factor).")
    max_kimg = positive("max_kimg", max_kimg if max_kimg is not None else kimg_per_trial)
    min_kimg = positive("min_kimg", min_kimg if min_kimg is not None else max_kimg / factor**2)
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


def _make_oracle(tuner: str, metric: str, max_trials, budget: dict, seed: int, options: dict, max_failures: int):
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


# ----------------------------------------------------------------------------------------------
# The study
# ----------------------------------------------------------------------------------------------
@dataclass
class StudyContext:
    """What every trial of a study needs (shared by :class:`RaganTuner` and :func:`tune`)."""

    out: Path
    model_name: str
    data: Path
    budget: dict
    metric_name: str
    metric: Any
    settings: dict
    tracking_uri: str | None
    experiment: str
    progress: bool
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
        saved = _read_json(study_file)
        differences = _setting_differences(saved.get("settings", {}), self.settings)
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


def _setting_differences(saved: dict, current: dict) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [
        f"{key}: {saved.get(key)!r} -> {current.get(key)!r}"
        for key in keys
        if key not in RESUMABLE_SETTINGS and saved.get(key) != current.get(key)
    ]


class RaganTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A KerasTuner tuner whose trials are ragan training runs scored by the study's objective.

    ``run_trial`` draws the trial's config from the :class:`GANHyperModel`, trains it with
    :func:`ragan.train` into ``<out>/trials/<id>/`` (continuing the parent trial's checkpoint for a
    Hyperband promotion), tags the trial's MLflow run as a child of the study's run, and returns
    the objective. A diverged trial raises ``FailedTrialError``, so KerasTuner records it as
    failed and goes on. Use it through :func:`tune`.

    Args:
        oracle: a KerasTuner oracle (random search, Bayesian optimisation or Hyperband).
        hypermodel: the study's :class:`GANHyperModel`.
        study: the :class:`StudyContext`.
        **kwargs: ``directory`` and ``project_name`` of KerasTuner's project.

    Example:
        >>> tuner = RaganTuner(oracle, GANHyperModel(space), study=context,
        ...                    directory="studies/x", project_name="keras_tuner")   # doctest: +SKIP
        >>> tuner.search()                                                          # doctest: +SKIP
    """

    def __init__(self, oracle, hypermodel: GANHyperModel, *, study: StudyContext, **kwargs):
        self.study = study
        super().__init__(oracle, hypermodel, **kwargs)

    # ---- the search loop ---------------------------------------------------------------------
    def search(self, *fit_args, **fit_kwargs):
        """Run trials until the oracle stops (the chief serves the oracle instead)."""
        if not self._is_worker():
            self.oracle.verbose = 1 if self.study.progress else 0
            # Written before the first trial, so a kill during it resumes this very study.
            self.save()
        if distribute_utils.is_chief_oracle():
            serve_oracle(self.oracle)
            return
        import grpc
        from keras_tuner.src import config as keras_tuner_config

        # KerasTuner prints a traceback for every failed trial; ragan prints one line for a
        # diverged trial and the traceback only for unexpected errors (see run_trial).
        debug, keras_tuner_config.DEBUG = keras_tuner_config.DEBUG, False
        self.on_search_begin()
        try:
            while True:
                self.pre_create_trial()
                trial = self.oracle.create_trial(self.tuner_id)
                if trial.status == TrialStatus.STOPPED:
                    break
                if trial.status == TrialStatus.IDLE:
                    # Hyperband waits for other workers' trials to finish a round.
                    time.sleep(IDLE_WAIT_SECONDS)
                    continue
                self.on_trial_begin(trial)
                self._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
                self.on_trial_end(trial)
        except grpc.RpcError as error:
            raise RaganError(
                f"lost the chief oracle at {os.environ.get('KERASTUNER_ORACLE_IP')}:"
                f"{os.environ.get('KERASTUNER_ORACLE_PORT')} ({error.code().name}); restart this worker once the "
                "chief runs again."
            ) from None
        finally:
            keras_tuner_config.DEBUG = debug
        self.on_search_end()

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        _write_json(Path(self._get_tuner_fname()), self.get_state())

    # ---- one trial ---------------------------------------------------------------------------
    def run_trial(self, trial, *fit_args, **fit_kwargs):
        """Train and score one trial; return ``{metric: value}`` for the oracle."""
        from ragan.generation import load_generator
        from ragan.training.loop import train

        study = self.study
        if self._is_worker():
            study.load_shared_state()
        values = dict(trial.hyperparameters.values)
        trial_id = str(trial.trial_id)
        run_dir = study.trial_dir(trial_id)
        parent_id = values.get("tuner/trial_id")
        kimg = trial_kimg(study.budget, values)
        record = self._start_record(trial_id, values, kimg, parent_id)
        started = time.perf_counter()
        _log(
            study.progress,
            f"trial {trial_id}: {kimg:g} kimg" + (f", continuing trial {parent_id}" if parent_id else ""),
        )
        _clear_keras_session()
        try:
            trial_config: TrialConfig = self.hypermodel.build(trial.hyperparameters)
            trial_config = study.with_study_seed(trial_config)
            resume = _prepare_run_dir(run_dir, trial_config, study.trial_dir(parent_id) if parent_id else None)
            train(
                study.model_name,
                study.data,
                run_dir,
                config=trial_config.model_config,
                train_config=trial_config.training,
                kimg=kimg,
                resume=resume,
                tracking_uri=study.tracking_uri,
                experiment=study.experiment,
                progress=study.progress,
                mlflow_tags=_trial_start_tags(study, trial_id),
            )
            result = study.objective.evaluate(load_generator(run_dir))
        except Interrupted as error:
            if not error.message.startswith("SIG"):
                raise
            # The trial's training checkpointed the step it was in and marked its MLflow run KILLED;
            # its record stays RUNNING, so the same command continues this trial from there.
            raise Interrupted(
                error.signum,
                f"{signal_name(error.signum)}: trial {trial_id} stopped; its run '{run_dir}' checkpointed the step "
                "it was in; re-run the same 'ragan tune' command to continue the study from there.",
            ) from None
        except Exception as error:
            failed_on = "RaganError" if isinstance(error, RaganError) else type(error).__name__
            message = _first_line(error) if isinstance(error, RaganError) else f"{failed_on}: {_first_line(error)}"
            record.update(status="FAILED", message=message, seconds=round(time.perf_counter() - started, 3))
            self._finish_record(record, run_dir)
            _log(study.progress, f"trial {trial_id} failed: {message}")
            if isinstance(error, RaganError):
                # A user-level failure (divergence, an invalid combination): not retried.
                raise keras_tuner.errors.FailedTrialError(message) from error
            traceback.print_exc()
            raise
        record.update(status="COMPLETED", objective=result, seconds=round(time.perf_counter() - started, 3))
        self._finish_record(record, run_dir)
        _log(
            study.progress,
            f"trial {trial_id}: {result['metric']}={result['value']:.6g}"
            + (f" ± {result['std']:.2g}" if result.get("std") is not None else "")
            + f" ({result['extractor']}) in {record['seconds']:.0f} s",
        )
        return {study.metric_name: result["value"]}

    def _start_record(self, trial_id: str, values: dict, kimg: float, parent_id) -> dict:
        path = self.study.record_path(trial_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = _read_json(path) if path.is_file() else {}
        attempts = list(record.get("attempts", []))
        attempts.append({"started": _now(), "tuner_id": self.tuner_id, "pid": os.getpid()})
        record = {
            "format": "ragan-tune-trial",
            "trial_id": trial_id,
            "status": "RUNNING",
            "tuner_id": self.tuner_id,
            "hyperparameters": {k: v for k, v in values.items() if not k.startswith("tuner/")},
            "tuner_values": {k: v for k, v in values.items() if k.startswith("tuner/")},
            "kimg": kimg,
            "continued_from": parent_id,
            "run_dir": f"{TRIALS_DIR}/{trial_id}",
            "attempts": attempts,
        }
        _write_json(path, record)
        return record

    def _finish_record(self, record: dict, run_dir: Path) -> None:
        study = self.study
        run_info = {}
        if (run_dir / "run.json").is_file():
            try:
                run_info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                run_info = {}
        tracking = run_info.get("mlflow") or {}
        record["mlflow_run_id"] = tracking.get("run_id")
        record["steps"] = run_info.get("step")
        record["finished"] = _now()
        _write_json(study.record_path(record["trial_id"]), record)
        if tracking.get("run_id"):
            _tag_trial_run(study, record, tracking.get("tracking_uri") or study.tracking_uri)


def _clear_keras_session() -> None:
    """Free the previous trial's graphs and layer-name counters (trials share one process)."""
    from ragan._tf import import_keras

    import_keras().utils.clear_session()
    gc.collect()


def _prepare_run_dir(run_dir: Path, trial_config: TrialConfig, parent_dir: Path | None) -> bool:
    """Get ``run_dir`` ready for ``train``; return whether to resume it.

    * A run of this very configuration is already there (a retried or resumed trial): continue it.
    * Hyperband promotion: copy the parent trial's config and newest checkpoint (networks, EMA,
      noise state and both optimizers), so training continues where the parent stopped; the
      MLflow run is new (``run.json`` is not copied).
    * Anything else left behind by an interrupted start is removed.
    """
    from ragan.training.checkpoint import CheckpointManager
    from ragan.training.config import RESUMABLE_CHANGES, TrainConfig

    config_file = run_dir / "config.json"
    if config_file.is_file():
        saved = _read_json(config_file)
        wanted_training = TrainConfig.from_dict(trial_config.training).to_dict()
        same_model = saved.get("model_config") == trial_config.model_config.to_dict()
        same_training = all(
            saved.get("training", {}).get(name) == value
            for name, value in wanted_training.items()
            if name not in RESUMABLE_CHANGES
        )
        if same_model and same_training:
            return True
    if run_dir.exists():
        shutil.rmtree(run_dir)
    if parent_dir is None:
        return False
    latest = CheckpointManager(parent_dir / "checkpoints").latest()
    if latest is None or not (parent_dir / "config.json").is_file():
        raise RaganError(
            f"Hyperband continues the trial in '{parent_dir}', but it holds no checkpoint to continue from."
        )
    partial = run_dir.parent / f".{run_dir.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    (partial / "checkpoints").mkdir(parents=True)
    shutil.copy2(parent_dir / "config.json", partial / "config.json")
    shutil.copy2(latest, partial / "checkpoints" / latest.name)
    os.replace(partial, run_dir)
    return True


def _trial_start_tags(study: StudyContext, trial_id: str) -> dict:
    """Tags a trial's MLflow run gets when it starts: nested under the study's run at once, so a
    running (or killed) trial shows up in its place, not only once it has finished."""
    tags = {"ragan.study": str(study.out.resolve()), "ragan.trial_id": str(trial_id)}
    if study.parent_run_id:
        tags["mlflow.parentRunId"] = study.parent_run_id
    return tags


def _tag_trial_run(study: StudyContext, record: dict, tracking_uri: str) -> None:
    """Make the trial's MLflow run a child of the study's run; log its objective and status."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, RunTag

        tags = {
            **_trial_start_tags(study, record["trial_id"]),
            "mlflow.runName": f"{study.out.resolve().name}/trial-{record['trial_id']}",
            "ragan.trial_status": record["status"],
            "ragan.tuner_id": record["tuner_id"],
            "ragan.trial.hyperparameters": json.dumps(record["hyperparameters"], default=str)[:5000],
        }
        if record.get("continued_from") is not None:
            tags["ragan.continued_from_trial"] = str(record["continued_from"])
        if record.get("message"):
            tags["ragan.trial_failure"] = record["message"][:5000]
        metrics = []
        result = record.get("objective")
        stamp = int(time.time() * 1000)
        if result:
            tags["ragan.objective.extractor"] = result["extractor"]
            tags["ragan.objective.split"] = result["split"]
            metrics.append(Metric(f"objective.{result['metric']}", result["value"], stamp, record.get("steps") or 0))
            if result.get("std") is not None:
                metrics.append(
                    Metric(f"objective.{result['metric']}_std", result["std"], stamp, record.get("steps") or 0)
                )
        # MLflow logs store migrations etc. at INFO; keep them off the terminal.
        logger = logging.getLogger("mlflow")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            MlflowClient(tracking_uri=tracking_uri).log_batch(
                record["mlflow_run_id"], metrics=metrics, tags=[RunTag(k, str(v)) for k, v in tags.items()]
            )
        finally:
            logger.setLevel(level)
    except Exception as error:  # noqa: BLE001 - tracking never fails a trial
        _warn(f"could not tag trial {record['trial_id']}'s MLflow run ({_first_line(error)}).")


# ----------------------------------------------------------------------------------------------
# Summary and export
# ----------------------------------------------------------------------------------------------
def _trial_rows(out: Path, oracle_trials: Mapping[str, Any]) -> list[dict]:
    """One row per trial: the oracle's status and score, with the trial record's details."""
    rows = []
    for trial_id in sorted(oracle_trials, key=lambda t: (len(str(t)), str(t))):
        trial = oracle_trials[trial_id]
        path = out / TRIALS_DIR / f"{trial_id}.json"
        record = _read_json(path) if path.is_file() else {}
        status = trial.status or record.get("status", "UNKNOWN")
        objective = record.get("objective") or {}
        value = trial.score if status == TrialStatus.COMPLETED else None
        rows.append(
            {
                "trial_id": str(trial_id),
                "status": status,
                "value": None if value is None else float(value),
                "std": objective.get("std"),
                "extractor": objective.get("extractor"),
                "kimg": record.get("kimg"),
                "steps": record.get("steps"),
                "seconds": record.get("seconds"),
                "continued_from": record.get("continued_from"),
                "tuner_id": record.get("tuner_id"),
                "attempts": len(record.get("attempts", [])),
                "mlflow_run_id": record.get("mlflow_run_id"),
                "hyperparameters": record.get("hyperparameters")
                or {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")},
                "message": record.get("message") or "",
            }
        )
    return rows


def _format(value, precise: bool = False) -> str:
    """Table text of a value: ``""`` for None; floats to 6 digits, or exactly (``repr``) for CSV."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if precise else f"{value:.6g}"
    return str(value)


def write_summary(out: Path, rows: list[dict], metric: str) -> list[Path]:
    """Write ``trials.csv``, ``trials.md`` and ``trials.png`` (objective per trial) into ``out``.

    Example:
        >>> trials = [{"trial_id": "0", "status": "COMPLETED", "value": 0.1, ...}]
        >>> write_summary(Path("study"), trials, "kid")  # doctest: +SKIP
    """
    names = sorted({name for row in rows for name in row["hyperparameters"]})
    columns = [
        "trial_id",
        "status",
        metric,
        f"{metric}_std",
        "extractor",
        "kimg",
        "steps",
        "seconds",
        "continued_from",
        "tuner_id",
        "attempts",
        "mlflow_run_id",
        *names,
        "message",
    ]

    def cells(row, precise=False):
        base = {
            "trial_id": row["trial_id"],
            "status": row["status"],
            metric: row["value"],
            f"{metric}_std": row["std"],
            "extractor": row["extractor"],
            "kimg": row["kimg"],
            "steps": row["steps"],
            "seconds": row["seconds"],
            "continued_from": row["continued_from"],
            "tuner_id": row["tuner_id"],
            "attempts": row["attempts"],
            "mlflow_run_id": row["mlflow_run_id"],
            "message": row["message"],
        }
        base.update({name: row["hyperparameters"].get(name) for name in names})
        return [_format(base[column], precise) for column in columns]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(cells(row, precise=True))
    csv_path = out / "trials.csv"
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")

    shown = [c for c in columns if c not in ("mlflow_run_id", "extractor")]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in rows:
        values = dict(zip(columns, cells(row)))
        lines.append("| " + " | ".join(values[c].replace("|", "/") for c in shown) + " |")
    extractors = sorted({row["extractor"] for row in rows if row["extractor"]})
    if extractors:
        lines += ["", f"{metric} computed with features from: {', '.join(extractors)} (lower is better)."]
    md_path = out / "trials.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    png_path = out / "trials.png"
    _plot_trials(rows, metric).save(png_path)
    return [csv_path, md_path, png_path]


def _plot_trials(rows: list[dict], metric: str):
    """A PNG plot: objective per trial (dots), best so far (line), failed trials (red crosses)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 720, 380
    left, right, top, bottom = 80, 20, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((left, 12), f"{metric} per trial (lower is better)", fill="black", font=font)
    plot_w, plot_h = width - left - right, height - top - bottom
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    values = [row["value"] for row in rows if row["value"] is not None]
    count = max(len(rows), 1)

    def x_of(index: int) -> float:
        return left + (index + 0.5) * plot_w / count

    if values:
        low, high = min(values), max(values)
        if high - low < 1e-12:
            low, high = low - 0.5 * abs(low or 1.0), high + 0.5 * abs(high or 1.0)
        margin = 0.08 * (high - low)
        low, high = low - margin, high + margin

        def y_of(value: float) -> float:
            return top + plot_h - (value - low) / (high - low) * plot_h

        for fraction in (0.0, 0.5, 1.0):
            value = low + fraction * (high - low)
            y = y_of(value)
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((4, y - 6), f"{value:.4g}", fill="black", font=font)
        best, previous = math.inf, None
        for index, row in enumerate(rows):
            if row["value"] is None:
                continue
            best = min(best, row["value"])
            point = (x_of(index), y_of(best))
            if previous is not None:
                draw.line([previous, (point[0], previous[1]), point], fill=(0, 150, 0), width=2)
            previous = point
        for index, row in enumerate(rows):
            if row["value"] is not None:
                x, y = x_of(index), y_of(row["value"])
                draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(31, 119, 180))
    for index, row in enumerate(rows):
        x = x_of(index)
        if row["value"] is None:
            y = top + plot_h - 10
            draw.line([x - 5, y - 5, x + 5, y + 5], fill=(214, 39, 40), width=2)
            draw.line([x - 5, y + 5, x + 5, y - 5], fill=(214, 39, 40), width=2)
        if count <= 40 or index % max(1, count // 20) == 0:
            draw.text((x - 6, top + plot_h + 6), row["trial_id"], fill="black", font=font)
    draw.text(
        (left, height - 22), "trial (blue: objective, green: best so far, red x: failed)", fill="black", font=font
    )
    return image


def export_best(out: Path, best_row: dict, metric: str, study_run_id: str | None) -> dict:
    """Copy the best trial's generator into ``out/best`` (a run directory) and write ``best.json``.

    ``out/best`` holds ``model.keras``, ``run.json``, ``config.json`` and the last sample grid, so
    ``ragan generate OUT/best`` and ``ragan evaluate --run OUT/best`` use it directly; its
    ``run.json`` keeps the trial's MLflow run, where ``ragan evaluate`` logs its report.

    Args:
        out: the study directory.
        best_row: the best trial's row (see :func:`write_summary`).
        metric: the objective's name.
        study_run_id: the study's MLflow run id (recorded in ``best.json``).

    Returns:
        The content of ``best.json``.

    Example:
        >>> export_best(Path("studies/x"), best_row, "kid", None)["generator"]   # doctest: +SKIP
        '/abs/studies/x/best'
    """
    source = out / TRIALS_DIR / best_row["trial_id"]
    run_info = _read_json(source / "run.json")
    partial = out / f".{BEST_DIR}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    shutil.copy2(source / run_info.get("model", "model.keras"), partial / "model.keras")
    shutil.copy2(source / "config.json", partial / "config.json")
    if run_info.get("samples") and (source / run_info["samples"]).is_file():
        (partial / "samples").mkdir()
        shutil.copy2(source / run_info["samples"], partial / run_info["samples"])
    run_info.pop("checkpoint", None)  # checkpoints stay with the trial
    run_info["model"] = "model.keras"
    run_info["tuning"] = {
        "study": str(out.resolve()),
        "trial_id": best_row["trial_id"],
        "trial_dir": str(source.resolve()),
    }
    _write_json(partial / "run.json", run_info)
    best = out / BEST_DIR
    previous = out / f".{BEST_DIR}.previous"
    if previous.exists():
        shutil.rmtree(previous)
    if best.exists():
        os.replace(best, previous)
    os.replace(partial, best)
    shutil.rmtree(previous, ignore_errors=True)
    summary = {
        "format": "ragan-tune-best",
        "trial_id": best_row["trial_id"],
        "objective": {
            "metric": metric,
            "value": best_row["value"],
            "std": best_row["std"],
            "extractor": best_row["extractor"],
        },
        "hyperparameters": best_row["hyperparameters"],
        "kimg": best_row["kimg"],
        "run_dir": str(source.resolve()),
        "generator": str(best.resolve()),
        "mlflow": {"trial_run_id": best_row["mlflow_run_id"], "study_run_id": study_run_id},
    }
    _write_json(out / BEST_FILE, summary)
    return summary


# ----------------------------------------------------------------------------------------------
# tune()
# ----------------------------------------------------------------------------------------------
@dataclass
class TuneResult:
    """What :func:`tune` did.

    Attributes:
        out: the study directory.
        role: ``"single"``, ``"chief"`` or ``"worker"``.
        metric: the objective's name (``"kid"``, ``"fid"`` or a function's name).
        extractor: the feature extractor the objective used.
        trials: one dict per trial (the rows of ``trials.csv``); a worker lists the trials it ran.
        best: the content of ``best.json`` (``None`` on workers or when no trial completed).
        stop_reason: why the search stopped early (too many failures), else ``None``.
        mlflow: ``{"tracking_uri", "experiment", "run_id"}`` of the study's MLflow run.

    Example:
        >>> result = ragan.tune("dcgan", "prepared", "studies/x", max_trials=5)   # doctest: +SKIP
        >>> print("\\n".join(result.summary()))                                   # doctest: +SKIP
    """

    out: Path
    role: str
    metric: str
    extractor: str
    trials: list[dict] = field(default_factory=list)
    best: dict | None = None
    stop_reason: str | None = None
    mlflow: dict = field(default_factory=dict)

    @property
    def best_dir(self) -> Path | None:
        """``out/best``: the best trial's generator, a run directory ``ragan generate`` accepts."""
        return self.out / BEST_DIR if self.best is not None else None

    @property
    def completed(self) -> list[dict]:
        return [t for t in self.trials if t["status"] == TrialStatus.COMPLETED]

    @property
    def failed(self) -> list[dict]:
        return [t for t in self.trials if t["status"] in (TrialStatus.FAILED, TrialStatus.INVALID)]

    def summary(self) -> list[str]:
        """Lines for the terminal: trial counts, the best trial and where everything is."""
        from ragan.tracking import ui_command

        lines = [
            f"study '{self.out}' ({self.role}): {len(self.completed)} trial(s) completed, {len(self.failed)} failed; "
            f"objective {self.metric} with {self.extractor} features (lower is better)"
        ]
        if self.stop_reason:
            lines.append(f"  stopped early: {self.stop_reason}")
        if self.best is not None:
            values = ", ".join(f"{k}={_format(v)}" for k, v in sorted(self.best["hyperparameters"].items()))
            lines += [
                f"  best trial: {self.best['trial_id']} with {self.metric}={self.best['objective']['value']:.6g}",
                f"  best hyperparameters: {values}",
                f"  best generator: {self.best_dir}   (ragan generate {self.best_dir} --n 100 --out synthetic)",
            ]
        if self.role != "worker":
            lines.append(f"  trials: {self.out / 'trials.csv'}, {self.out / 'trials.md'}, {self.out / 'trials.png'}")
        if self.mlflow.get("run_id"):
            lines.append(
                f"  MLflow: study run {self.mlflow['run_id']} (experiment {self.mlflow['experiment']!r}) "
                f"at {self.mlflow['tracking_uri']}"
            )
            command = ui_command(self.mlflow["tracking_uri"])
            if command:
                lines.append(f"          view it with: {command}")
        return lines


def _check_positive_int(name: str, value, *, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RaganError(f"{name}={value!r} must be a positive integer.")
    return value


def _check_tuner_options(tuner: str, options) -> dict:
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


def _open_study(out: Path, settings: dict, overwrite: bool, progress: bool) -> dict:
    """Create, resume or (with ``overwrite``) restart the study in ``out``; return study.json's content."""
    study_file = out / STUDY_FILE
    if overwrite:
        for name in STUDY_ENTRIES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    if study_file.is_file():
        saved = _read_json(study_file)
        differences = _setting_differences(saved.get("settings", {}), settings)
        if differences:
            raise RaganError(
                f"'{out}' holds a study started with other settings ({'; '.join(differences)}); re-run the "
                "original command to resume it, pass overwrite=True (--overwrite) to start over, or choose another "
                "--out."
            )
        _log(progress, f"resuming the study in '{out}'")
        saved["settings"] = settings
        _write_json(study_file, saved)
        return saved
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
    out.mkdir(parents=True, exist_ok=True)
    study = {"format": "ragan-study", "format_version": 1, "created": _now(), "settings": settings, "mlflow": {}}
    _write_json(study_file, study)
    return study


def _wait_for_chief(out: Path, progress: bool, timeout: float = WORKER_WAIT_SECONDS) -> None:
    """A worker waits until the chief has created the study (its ``study.json``)."""
    deadline = time.monotonic() + timeout
    if not (out / STUDY_FILE).is_file():
        _log(
            progress,
            f"worker {os.environ.get('KERASTUNER_TUNER_ID')}: waiting for the chief to create the study in '{out}'",
        )
    while not (out / STUDY_FILE).is_file():
        if time.monotonic() > deadline:
            raise RaganError(
                f"no study appeared in '{out}' within {timeout:.0f} s; start the chief (KERASTUNER_TUNER_ID=chief) "
                "with the same command, and let every process see the same --out directory."
            )
        time.sleep(1.0)


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
    """Validate a study's arguments and data without running anything (see :func:`tune`).

    Example:
        >>> plan = plan_study("dcgan", "prepared", "studies/x", search={"latent_dim": 64})  # doctest: +SKIP
        >>> plan.describe()["budget"]  # doctest: +SKIP
        {'kimg_per_trial': 20.0}
    """
    from ragan.registry import get_gan

    check_choice("tuner", tuner, TUNERS)
    check_choice("extractor", extractor, EXTRACTORS)
    if out is None:
        raise RaganError("out (the study directory) is required.")
    if data is None:
        raise RaganError("data (a prepared dataset directory) is required; make one with 'ragan prepare'.")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise RaganError(f"seed={seed!r} must be an integer.")
    model_name = get_gan(model).gan_name if isinstance(model, str) else getattr(model, "gan_name", None)
    if model_name is None:
        raise RaganError(f"model={model!r} is not a registered GAN name such as 'dcgan'.")
    if tuner != "hyperband":
        max_trials = DEFAULT_MAX_TRIALS if max_trials is None else max_trials
    _check_positive_int("max_trials", max_trials, allow_none=True)
    _check_positive_int("max_consecutive_failed_trials", max_consecutive_failed_trials)
    _check_positive_int("objective_images", objective_images)
    _check_positive_int("classifier_epochs", classifier_epochs)
    options = _check_tuner_options(tuner, tuner_options)
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
    return StudyPlan(
        model_name=model_name,
        data=data,
        out=Path(out),
        space=space,
        metric_name=metric_name,
        metric=metric,
        budget=budget,
        max_trials=max_trials,
        tuner_options=options,
        settings=settings,
    )


def tune(
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
    search: Mapping[str, Any] | str | os.PathLike | None = None,
    objective="kid",
    extractor: str = "auto",
    objective_images: int = 1000,
    classifier_epochs: int = 10,
    inception_weights=None,
    seed: int = 0,
    tuner_options: Mapping[str, Any] | None = None,
    max_consecutive_failed_trials: int = 3,
    tracking_uri: str | None = None,
    experiment: str = "ragan",
    overwrite: bool = False,
    progress: bool = True,
) -> TuneResult:
    """Search a GAN's hyperparameters; every trial is a ragan training run and an MLflow run.

    Args:
        model: a registered GAN name (``"dcgan"``, ``"wgan_gp"``, ...).
        data: the prepared dataset: ``train`` trains, ``val`` (else ``test``) scores.
        out: the study directory (new, or a study to resume with the same call).
        tuner: ``"random"``, ``"bayesian"`` or ``"hyperband"``.
        max_trials: random/Bayesian: number of trials (default 10); Hyperband: an optional cap
            (default: one full Hyperband iteration). A resumed study may raise it.
        kimg_per_trial: random/Bayesian: training length of every trial, in kimg.
        max_kimg: Hyperband: training length of its longest trials (default ``kimg_per_trial``).
        min_kimg: Hyperband: of its shortest trials (default ``max_kimg / factor**2``).
        factor: Hyperband's reduction factor (trials kept per round = 1/factor).
        search: changes to the declared search space: a mapping or a YAML/JSON file; see
            :mod:`ragan.tuning.hypermodel` (fix a value, narrow a range, add a range or choices).
        objective: ``"kid"`` (default), ``"fid"``, a function ``f(real, fake) -> float`` of two
            ``[-1, 1]`` image arrays (lower is better) or its path ``"module:function"``.
        extractor: features of KID/FID: ``"auto"``, ``"domain"``, ``"pixels"`` or ``"inception"``.
        objective_images: held-out real images compared (and as many generated), at most.
        classifier_epochs: training epochs of the domain feature classifier.
        inception_weights: a local InceptionV3 weights file for ``extractor="inception"``.
        seed: seed of the search, the objective, and the trials' training (unless searched/fixed).
        tuner_options: extra KerasTuner oracle options: ``max_retries_per_trial`` (all),
            ``num_initial_points``/``alpha``/``beta`` (bayesian), ``hyperband_iterations``.
        max_consecutive_failed_trials: stop the search after this many failed trials in a row.
        tracking_uri: MLflow tracking URI (default ``MLFLOW_TRACKING_URI`` or ``sqlite:///OUT/mlflow.db``).
        experiment: MLflow experiment of the study run and the trial runs.
        overwrite: delete the study in ``out`` (not the MLflow store) and start a new one.
        progress: print progress (KerasTuner's trial table and ragan's training ticks).

    Returns:
        A :class:`TuneResult`; ``result.best_dir`` is the best generator.

    Raises:
        RaganError: invalid arguments or data, a study in ``out`` with other settings, a chief
            that cannot listen, or no trial completed.

    Example:
        >>> result = ragan.tune("wgan_gp", "prepared", "studies/wgan", tuner="hyperband", max_kimg=100,
        ...                     search="search.yaml")                            # doctest: +SKIP
        >>> ragan.generate(result.best_dir, n=500, out="synthetic")             # doctest: +SKIP
    """
    role = distributed_role()
    plan = plan_study(
        model,
        data,
        out,
        tuner=tuner,
        max_trials=max_trials,
        kimg_per_trial=kimg_per_trial,
        max_kimg=max_kimg,
        min_kimg=min_kimg,
        factor=factor,
        search=search,
        objective=objective,
        extractor=extractor,
        objective_images=objective_images,
        classifier_epochs=classifier_epochs,
        inception_weights=inception_weights,
        seed=seed,
        tuner_options=tuner_options,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
    )
    out, data, space, budget, settings = plan.out, plan.data, plan.space, plan.budget, plan.settings
    model_name, metric_name, metric = plan.model_name, plan.metric_name, plan.metric
    max_trials, options = plan.max_trials, plan.tuner_options
    context = StudyContext(
        out=out,
        model_name=model_name,
        data=data,
        budget=budget,
        metric_name=metric_name,
        metric=metric,
        settings=settings,
        tracking_uri=tracking_uri,
        experiment=experiment,
        progress=progress,
        role=role,
    )

    study_tracker = None
    study: dict = {}
    if role != "worker":
        study = _open_study(out, settings, overwrite, progress)
        context.objective = prepare_objective(
            data,
            out / OBJECTIVE_DIR,
            metric=metric,
            extractor=extractor,
            max_images=objective_images,
            classifier_epochs=classifier_epochs,
            inception_weights=inception_weights,
            seed=seed,
            progress=progress,
        )
        study_tracker = _start_study_run(out, study, space, settings, context, experiment, tracking_uri)
        context.parent_run_id = study_tracker.run_id
        context.tracking_uri = study_tracker.tracking_uri
        study["mlflow"] = {
            "tracking_uri": study_tracker.tracking_uri,
            "experiment": experiment,
            "run_id": study_tracker.run_id,
        }
        _write_json(out / STUDY_FILE, study)
        _log(
            progress,
            f"{tuner} search over {len(space.searched)} hyperparameter(s) of {model_name}"
            + (f", up to {max_trials} trial(s)" if max_trials else "")
            + f"; objective: {metric_name} "
            f"({context.objective.extractor_name}) on the '{context.objective.split}' split -> '{out}'",
        )
    else:
        _wait_for_chief(out, progress)

    oracle = _make_oracle(tuner, metric_name, max_trials, budget, seed, options, max_consecutive_failed_trials)
    status = "FAILED"
    try:
        ragan_tuner = RaganTuner(
            oracle, GANHyperModel(space), study=context, directory=str(out), project_name=PROJECT_DIR, overwrite=False
        )
        ragan_tuner.search()
        status = "FINISHED"
    except keras_tuner.errors.FatalError as error:
        raise RaganError(_first_line(error)) from None
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if study_tracker is not None and status != "FINISHED":
            study_tracker.finish(status)

    extractor_name = context.objective.extractor_name if context.objective is not None else extractor
    if role == "worker":
        mine = [
            row
            for row in (_read_json(p) for p in sorted((out / TRIALS_DIR).glob("*.json")))
            if row.get("tuner_id") == ragan_tuner.tuner_id
        ]
        trials = [
            {
                "trial_id": r["trial_id"],
                "status": r["status"],
                "value": (r.get("objective") or {}).get("value"),
                "hyperparameters": r.get("hyperparameters", {}),
                "message": r.get("message", ""),
            }
            for r in mine
        ]
        return TuneResult(
            out=out,
            role=role,
            metric=metric_name,
            extractor=extractor_name,
            trials=trials,
            mlflow={"tracking_uri": context.tracking_uri, "experiment": experiment, "run_id": context.parent_run_id},
        )

    try:
        rows = _trial_rows(out, oracle.trials)
        summary_files = write_summary(out, rows, metric_name)
        completed = [row for row in rows if row["status"] == TrialStatus.COMPLETED and row["value"] is not None]
        best = None
        if completed:
            best_row = min(completed, key=lambda row: row["value"])
            best = export_best(out, best_row, metric_name, study_tracker.run_id)
        _finish_study_run(study_tracker, rows, best, metric_name, summary_files, out)
    finally:
        study_tracker.finish("FINISHED")
    result = TuneResult(
        out=out,
        role=role,
        metric=metric_name,
        extractor=extractor_name,
        trials=rows,
        best=best,
        stop_reason=oracle.stop_reason,
        mlflow=dict(study["mlflow"]),
    )
    if progress:
        print("\n".join(result.summary()), flush=True)
    if best is None:
        first = next((row["message"] for row in rows if row["message"]), "no trial ran")
        raise RaganError(
            f"no trial of the study in '{out}' completed ({len(rows)} ran; first failure: {first}); see "
            f"{out / 'trials.md'}."
        )
    return result


# ----------------------------------------------------------------------------------------------
# The study's MLflow run
# ----------------------------------------------------------------------------------------------
def _start_study_run(
    out: Path, study: dict, space: SearchSpace, settings: dict, context: StudyContext, experiment: str, tracking_uri
):
    from ragan._version import __version__
    from ragan.tracking import RunTracker

    tracking = study.get("mlflow") or {}
    tracker = RunTracker(tracking_uri or tracking.get("tracking_uri"), experiment, out)
    params = {
        "tune.model": settings["model"],
        "tune.tuner": settings["tuner"],
        "tune.max_trials": settings["max_trials"],
        "tune.seed": settings["seed"],
        "tune.data": settings["data"],
        "tune.objective": context.metric_name,
        "tune.objective.extractor": context.objective.extractor_name,
        "tune.objective.split": context.objective.split,
        "tune.objective.images": context.objective.num_real,
        **{f"tune.budget.{k}": v for k, v in settings["budget"].items()},
        **{f"tune.option.{k}": v for k, v in settings["tuner_options"].items()},
        **space.params(),
    }
    tracker.start(
        run_id=tracking.get("run_id"),
        run_name=f"{out.resolve().name} ({settings['tuner']} search)",
        params=params,
        tags={
            "ragan.study": str(out.resolve()),
            "ragan.model": settings["model"],
            "ragan.tuner": settings["tuner"],
            "ragan.version": __version__,
            "ragan.kind": "tuning-study",
        },
    )
    tracker.wait_started()
    if tracker.run_id is None:
        _warn(f"the study is not recorded in MLflow ({tracker.failure}); trials are still tracked on their own.")
    return tracker


def _finish_study_run(tracker, rows: list[dict], best: dict | None, metric: str, files: list[Path], out: Path) -> None:
    for index, row in enumerate(rows):
        if row["value"] is not None:
            step = int(row["trial_id"]) if row["trial_id"].isdigit() else index
            tracker.log_metrics({f"trial.{metric}": row["value"]}, step=step)
    completed = sum(1 for row in rows if row["status"] == TrialStatus.COMPLETED)
    tracker.log_metrics({"trials.completed": completed, "trials.failed": len(rows) - completed}, step=0)
    if best is not None:
        tracker.log_metrics({f"best.{metric}": best["objective"]["value"]}, step=0)
        tracker.set_tags(
            {
                "ragan.best_trial_id": best["trial_id"],
                "ragan.best_run_id": best["mlflow"]["trial_run_id"] or "",
                "ragan.best_generator": best["generator"],
            }
        )
        tracker.log_artifact(out / BEST_FILE, "tuning")
    for path in files:
        tracker.log_artifact(path, "tuning")
    tracker.log_artifact(out / STUDY_FILE, "tuning")
