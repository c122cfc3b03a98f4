"""The trial runner: :class:`RaganTuner` trains and scores each trial, and keeps its record ``trials/<id>.json``."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import time
import traceback
from pathlib import Path

from ragan._common import first_line, read_json
from ragan._interrupt import Interrupted, signal_name
from ragan._logging import bars_enabled
from ragan.errors import RaganError
from ragan.training.run_files import CHECKPOINT_DIR, CONFIG_FILE, RUN_FILE
from ragan.tuning import _keras_tuner
from ragan.tuning.distributed import serve_oracle
from ragan.tuning.hypermodel import GANHyperModel, TrialConfig, keras_tuner
from ragan.tuning.mlflow_runs import tag_trial_run, trial_start_tags
from ragan.tuning.oracles import trial_kimg
from ragan.tuning.study import TRIALS_DIR, StudyContext, now, write_json

logger = logging.getLogger(__name__)

__all__ = ["RaganTuner"]

TrialStatus = keras_tuner.engine.trial.TrialStatus
# Seconds a worker waits before asking again when Hyperband waits on other workers' trials.
IDLE_WAIT_SECONDS = 1.0


class RaganTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A KerasTuner tuner whose trials are ragan training runs scored by the study's objective.

    ``run_trial`` draws the trial's config from the :class:`GANHyperModel`, trains it with
    :func:`ragan.train` into ``<out>/trials/<id>/`` (continuing the parent trial's checkpoint for a
    Hyperband promotion), tags the trial's MLflow run as a child of the study's run, and returns
    the objective. A diverged trial raises ``FailedTrialError``, so KerasTuner records it as
    failed and goes on. Use it through :func:`~ragan.tuning.tuner.tune`.

    Args:
        oracle: a KerasTuner oracle (random search, Bayesian optimisation or Hyperband).
        hypermodel: the study's :class:`GANHyperModel`.
        study: the :class:`~ragan.tuning.study.StudyContext`.
        **kwargs: ``directory`` and ``project_name`` of KerasTuner's project.

    Example (a search trains GANs, far longer than an example):
        >>> tuner = RaganTuner(oracle, GANHyperModel(space), study=context,
        ...                    directory="studies/x", project_name="keras_tuner")   # doctest: +SKIP
        >>> tuner.search()                                                          # doctest: +SKIP
    """

    def __init__(self, oracle, hypermodel: GANHyperModel, *, study: StudyContext, **kwargs):
        _keras_tuner.require_internals()
        self.study = study
        super().__init__(oracle, hypermodel, **kwargs)

    # ---- the search loop ---------------------------------------------------------------------
    def search(self, *fit_args, **fit_kwargs):
        """Run trials until the oracle stops (the chief serves the oracle instead)."""
        if not self._is_worker():
            self.oracle.verbose = 1 if bars_enabled() else 0
            # Written before the first trial, so a kill during it resumes this very study.
            self.save()
        if _keras_tuner.is_chief_oracle():
            serve_oracle(self.oracle)
            return
        import grpc

        # KerasTuner prints a traceback for every failed trial; ragan prints one line for a
        # diverged trial and the traceback only for unexpected errors (see run_trial).
        with _keras_tuner.quiet_trial_tracebacks():
            self.on_search_begin()
            try:
                self._trial_loop(*fit_args, **fit_kwargs)
            except grpc.RpcError as error:
                raise RaganError(
                    f"lost the chief oracle at {os.environ.get('KERASTUNER_ORACLE_IP')}:"
                    f"{os.environ.get('KERASTUNER_ORACLE_PORT')} ({error.code().name}); restart this worker once "
                    "the chief runs again."
                ) from None
        self.on_search_end()

    def _trial_loop(self, *fit_args, **fit_kwargs) -> None:
        while True:
            self.pre_create_trial()
            trial = self.oracle.create_trial(self.tuner_id)
            if trial.status == TrialStatus.STOPPED:
                return
            if trial.status == TrialStatus.IDLE:
                # Hyperband waits for other workers' trials to finish a round.
                time.sleep(IDLE_WAIT_SECONDS)
                continue
            self.on_trial_begin(trial)
            self._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
            self.on_trial_end(trial)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        write_json(Path(self._get_tuner_fname()), self.get_state())

    # ---- one trial ---------------------------------------------------------------------------
    def run_trial(self, trial, *fit_args, **fit_kwargs):
        """Train and score one trial; return ``{metric: value}`` for the oracle."""
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
        logger.info(
            f"trial {trial_id}: {kimg:g} kimg" + (f", continuing trial {parent_id}" if parent_id else ""),
        )
        try:
            result = self._train_and_score(trial, run_dir, kimg, parent_id)
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
            self._record_failure(record, run_dir, error, time.perf_counter() - started)
            if isinstance(error, RaganError):
                # A user-level failure (divergence, an invalid combination): not retried.
                raise keras_tuner.errors.FailedTrialError(record["message"]) from error
            traceback.print_exc()
            raise
        record.update(status="COMPLETED", objective=result, seconds=round(time.perf_counter() - started, 3))
        self._finish_record(record, run_dir)
        logger.info(
            f"trial {trial_id}: {result['metric']}={result['value']:.6g}"
            + (f" ± {result['std']:.2g}" if result.get("std") is not None else "")
            + f" ({result['extractor']}) in {record['seconds']:.0f} s",
        )
        return {study.metric_name: result["value"]}

    def _train_and_score(self, trial, run_dir: Path, kimg: float, parent_id) -> dict:
        """Train the trial's configuration into ``run_dir``; return the objective of its generator."""
        from ragan.generation import load_generator
        from ragan.training.loop import train

        study = self.study
        _clear_keras_session()
        trial_config: TrialConfig = self.hypermodel.build(trial.hyperparameters)
        trial_config = study.with_study_seed(trial_config)
        resume = prepare_run_dir(run_dir, trial_config, study.trial_dir(parent_id) if parent_id else None)
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
            mlflow_tags=trial_start_tags(study, str(trial.trial_id)),
        )
        return study.objective.evaluate(load_generator(run_dir))

    def _record_failure(self, record: dict, run_dir: Path, error: Exception, seconds: float) -> None:
        if isinstance(error, RaganError):
            message = first_line(error)
        else:
            message = f"{type(error).__name__}: {first_line(error)}"
        record.update(status="FAILED", message=message, seconds=round(seconds, 3))
        self._finish_record(record, run_dir)
        logger.info(f"trial {record['trial_id']} failed: {message}")

    def _start_record(self, trial_id: str, values: dict, kimg: float, parent_id) -> dict:
        path = self.study.record_path(trial_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = read_json(path) if path.is_file() else {}
        attempts = list(record.get("attempts", []))
        attempts.append({"started": now(), "tuner_id": self.tuner_id, "pid": os.getpid()})
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
        write_json(path, record)
        return record

    def _finish_record(self, record: dict, run_dir: Path) -> None:
        study = self.study
        try:
            run_info = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
        except RaganError:
            run_info = {}
        tracking = run_info.get("mlflow") or {}
        record["mlflow_run_id"] = tracking.get("run_id")
        record["steps"] = run_info.get("step")
        record["finished"] = now()
        write_json(study.record_path(record["trial_id"]), record)
        if tracking.get("run_id"):
            tag_trial_run(study, record, tracking.get("tracking_uri") or study.tracking_uri)


def _clear_keras_session() -> None:
    """Free the previous trial's graphs and layer-name counters (trials share one process)."""
    from ragan._tf import import_keras

    import_keras().utils.clear_session()
    gc.collect()


def prepare_run_dir(run_dir: Path, trial_config: TrialConfig, parent_dir: Path | None) -> bool:
    """Get ``run_dir`` ready for ``train``; return whether to resume it.

    * A run of this very configuration is already there (a retried or resumed trial): continue it.
    * Hyperband promotion: copy the parent trial's config and newest checkpoint (networks, EMA,
      noise state and both optimizers), so training continues where the parent stopped; the
      MLflow run is new (``run.json`` is not copied).
    * Anything else left behind by an interrupted start is removed.
    """
    if _same_run_there(run_dir, trial_config):
        return True
    if run_dir.exists():
        shutil.rmtree(run_dir)
    if parent_dir is None:
        return False
    _copy_parent_checkpoint(parent_dir, run_dir)
    return True


def _same_run_there(run_dir: Path, trial_config: TrialConfig) -> bool:
    from ragan.training.config import RESUMABLE_CHANGES, TrainConfig

    config_file = run_dir / CONFIG_FILE
    if not config_file.is_file():
        return False
    saved = read_json(config_file)
    wanted_training = TrainConfig.from_dict(trial_config.training).to_dict()
    same_model = saved.get("model_config") == trial_config.model_config.to_dict()
    same_training = all(
        saved.get("training", {}).get(name) == value
        for name, value in wanted_training.items()
        if name not in RESUMABLE_CHANGES
    )
    return same_model and same_training


def _copy_parent_checkpoint(parent_dir: Path, run_dir: Path) -> None:
    from ragan.training.checkpoint import CheckpointManager

    latest = CheckpointManager(parent_dir / CHECKPOINT_DIR).latest()
    if latest is None or not (parent_dir / CONFIG_FILE).is_file():
        raise RaganError(
            f"Hyperband continues the trial in '{parent_dir}', but it holds no checkpoint to continue from."
        )
    partial = run_dir.parent / f".{run_dir.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    (partial / CHECKPOINT_DIR).mkdir(parents=True)
    shutil.copy2(parent_dir / CONFIG_FILE, partial / CONFIG_FILE)
    shutil.copy2(latest, partial / CHECKPOINT_DIR / latest.name)
    os.replace(partial, run_dir)
