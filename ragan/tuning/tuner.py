"""``ragan.tune``: hyperparameter search for a GAN with KerasTuner, every trial an MLflow run.

A study searches the model's declared hyperparameters (see :mod:`ragan.tuning.hypermodel`); each
trial trains with :func:`ragan.train` and is scored by a quality metric of its generator on
held-out real images (see :mod:`ragan.tuning.objective`), which the tuner minimises. Everything
lives in one study directory::

The work is split by job: :mod:`~ragan.tuning.validation` (:func:`plan_study`),
:mod:`~ragan.tuning.study` (the study directory), :mod:`~ragan.tuning.oracles`,
:mod:`~ragan.tuning.trials` (:class:`RaganTuner`), :mod:`~ragan.tuning.summary`,
:mod:`~ragan.tuning.export`, :mod:`~ragan.tuning.mlflow_runs` and :mod:`~ragan.tuning.distributed`;
this module runs them in order and re-exports their public names. Everything lives in one study directory::

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
    >>> search = {"latent_dim": 128, "g_learning_rate": [1e-4, 5e-4]}
    >>> result = ragan.tune("dcgan", "prepared", "studies/dcgan", tuner="bayesian", max_trials=20,  # doctest: +SKIP
    ...                     kimg_per_trial=50, search=search)
    >>> result.best["trial_id"], result.best["objective"]["value"]         # doctest: +SKIP
    ('07', 0.0123)
    >>> ragan.generate(result.best_dir, n=1000, out="synthetic")                # doctest: +SKIP

(Skipped: a study trains GANs on a prepared dataset, far longer than an example.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ragan._common import first_line
from ragan._logging import stage_output
from ragan.config import takes_options
from ragan.errors import RaganError
from ragan.tuning import _keras_tuner
from ragan.tuning.config import TuneConfig
from ragan.tuning.distributed import (
    CHIEF_POLL_SECONDS,
    WORKER_WAIT_SECONDS,
    distributed_role,
    serve_oracle,
    wait_for_chief,
)
from ragan.tuning.export import export_best
from ragan.tuning.hypermodel import GANHyperModel, keras_tuner
from ragan.tuning.mlflow_runs import finish_study_run, start_study_run
from ragan.tuning.objective import prepare_objective
from ragan.tuning.oracles import make_oracle, trial_kimg
from ragan.tuning.study import (
    BEST_DIR,
    BEST_FILE,
    OBJECTIVE_DIR,
    PROJECT_DIR,
    RESUMABLE_SETTINGS,
    STUDY_ENTRIES,
    STUDY_FILE,
    SUMMARY_FILES,
    TRIALS_DIR,
    StudyContext,
    open_study,
    write_json,
)
from ragan.tuning.summary import format_value, trial_rows, worker_rows, write_summary
from ragan.tuning.trials import IDLE_WAIT_SECONDS, RaganTuner
from ragan.tuning.validation import DEFAULT_MAX_TRIALS, TUNER_OPTIONS, TUNERS, StudyPlan, plan_study

logger = logging.getLogger(__name__)

__all__ = [
    "TUNERS",
    "StudyPlan",
    "TuneConfig",
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
# Re-exported from the modules that now hold them (``from ragan.tuning.tuner import ...`` keeps working).
_REEXPORTED = (
    BEST_FILE,
    CHIEF_POLL_SECONDS,
    DEFAULT_MAX_TRIALS,
    IDLE_WAIT_SECONDS,
    RESUMABLE_SETTINGS,
    STUDY_ENTRIES,
    SUMMARY_FILES,
    TRIALS_DIR,
    TUNER_OPTIONS,
    WORKER_WAIT_SECONDS,
)

COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
FAILED = (keras_tuner.engine.trial.TrialStatus.FAILED, keras_tuner.engine.trial.TrialStatus.INVALID)


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
        >>> trials = [{"trial_id": "0", "status": "COMPLETED"}, {"trial_id": "1", "status": "FAILED"}]
        >>> result = TuneResult(Path("studies/x"), "single", "kid", "pixels_16x16", trials=trials)
        >>> print("\\n".join(result.summary()))
        study 'studies/x' (single): 1 trial(s) completed, 1 failed;
        objective kid with pixels_16x16 features (lower is better)
          trials: studies/x/trials.csv, studies/x/trials.md, studies/x/trials.png
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
        return [t for t in self.trials if t["status"] == COMPLETED]

    @property
    def failed(self) -> list[dict]:
        return [t for t in self.trials if t["status"] in FAILED]

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
            values = ", ".join(f"{k}={format_value(v)}" for k, v in sorted(self.best["hyperparameters"].items()))
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


@takes_options(TuneConfig)
def tune(model="dcgan", data=None, out=None, *, config=None, progress: bool = True, **options) -> TuneResult:
    """Search a GAN's hyperparameters; every trial is a ragan training run and an MLflow run.

    Args:
        model: a registered GAN name (``"dcgan"``, ``"wgan_gp"``, ...).
        data: the prepared dataset: ``train`` trains, ``val`` (else ``test``) scores.
        out: the study directory (new, or a study to resume with the same call).
        config: the options as a :class:`~ragan.tuning.config.TuneConfig`, a dict or a YAML/JSON
            file; keyword options win over it.
        progress: ``False``: warnings only, no trial table or training ticks (see :mod:`ragan._logging`).

    Returns:
        A :class:`TuneResult`; ``result.best_dir`` is the best generator.

    Raises:
        RaganError: invalid arguments or data, a study in ``out`` with other settings, a chief
            that cannot listen, or no trial completed.

    Example (skipped: a study trains GANs on a prepared dataset, far longer than an example):
        >>> result = ragan.tune("wgan_gp", "prepared", "studies/wgan", tuner="hyperband", max_kimg=100,
        ...                     search="search.yaml")                            # doctest: +SKIP
        >>> ragan.generate(result.best_dir, n=500, out="synthetic")             # doctest: +SKIP
    """
    _keras_tuner.require_internals()
    role = distributed_role()
    plan = plan_study(model, data, out, config=TuneConfig.resolve(config, options))
    config = plan.config
    context = _study_context(plan, config.tracking_uri, config.experiment, role)
    objective_options = dict(
        extractor=config.extractor,
        max_images=config.objective_images,
        classifier_epochs=config.classifier_epochs,
        inception_weights=config.inception_weights,
    )
    with stage_output(progress):
        tracker = _open_or_join_study(plan, context, objective_options, config.overwrite)
        oracle = _study_oracle(plan)
        ragan_tuner = _search(plan, context, oracle, tracker)
        if role == "worker":
            return _worker_result(plan, context, ragan_tuner.tuner_id)
        result = _conclude(plan, context, oracle, tracker)
        _report(result)
    return result


# What a study's context takes over from its plan, unchanged.
_FROM_PLAN = ("out", "model_name", "data", "budget", "metric_name", "metric", "settings")


def _study_context(plan: StudyPlan, tracking_uri, experiment: str, role: str) -> StudyContext:
    shared = {name: getattr(plan, name) for name in _FROM_PLAN}
    return StudyContext(**shared, tracking_uri=tracking_uri, experiment=experiment, role=role)


def _open_or_join_study(plan: StudyPlan, context: StudyContext, objective_options: dict, overwrite: bool):
    """Chief or single process: open the study, prepare its objective, start its MLflow run (return its tracker).

    A worker waits for the chief to have done so (and returns ``None``).
    """
    out = plan.out
    if context.role == "worker":
        wait_for_chief(out)
        return None
    study = open_study(out, plan.settings, overwrite)
    context.objective = prepare_objective(
        plan.data,
        out / OBJECTIVE_DIR,
        metric=plan.metric,
        seed=plan.settings["seed"],
        **objective_options,
    )
    tracker = start_study_run(out, study, plan.space, plan.settings, context, context.experiment, context.tracking_uri)
    context.parent_run_id = tracker.run_id
    context.tracking_uri = tracker.tracking_uri
    study["mlflow"] = {"tracking_uri": tracker.tracking_uri, "experiment": context.experiment, "run_id": tracker.run_id}
    write_json(out / STUDY_FILE, study)
    logger.info(
        f"{plan.settings['tuner']} search over {len(plan.space.searched)} hyperparameter(s) of {plan.model_name}"
        + (f", up to {plan.max_trials} trial(s)" if plan.max_trials else "")
        + f"; objective: {plan.metric_name} "
        f"({context.objective.extractor_name}) on the '{context.objective.split}' split -> '{out}'",
    )
    return tracker


def _study_oracle(plan: StudyPlan):
    settings = plan.settings
    return make_oracle(
        settings["tuner"],
        plan.metric_name,
        plan.max_trials,
        plan.budget,
        settings["seed"],
        plan.tuner_options,
        settings["max_consecutive_failed_trials"],
    )


def _search(plan: StudyPlan, context: StudyContext, oracle, tracker) -> RaganTuner:
    """Run the search; a study run that does not finish is marked FAILED (or KILLED on Ctrl-C)."""
    status = "FAILED"
    try:
        ragan_tuner = RaganTuner(
            oracle,
            GANHyperModel(plan.space),
            study=context,
            directory=str(plan.out),
            project_name=PROJECT_DIR,
            overwrite=False,
        )
        ragan_tuner.search()
        status = "FINISHED"
    except keras_tuner.errors.FatalError as error:
        raise RaganError(first_line(error)) from None
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if tracker is not None and status != "FINISHED":
            tracker.finish(status)
    return ragan_tuner


def _mlflow_of(context: StudyContext) -> dict:
    return {"tracking_uri": context.tracking_uri, "experiment": context.experiment, "run_id": context.parent_run_id}


def _extractor_name(plan: StudyPlan, context: StudyContext) -> str:
    """The objective's feature extractor (the one asked for, on a worker that has not loaded the objective)."""
    if context.objective is not None:
        return context.objective.extractor_name
    return plan.settings["objective"]["extractor"]


def _worker_result(plan: StudyPlan, context: StudyContext, tuner_id: str) -> TuneResult:
    return TuneResult(
        out=plan.out,
        role=context.role,
        metric=plan.metric_name,
        extractor=_extractor_name(plan, context),
        trials=worker_rows(plan.out, tuner_id),
        mlflow=_mlflow_of(context),
    )


def _conclude(plan: StudyPlan, context: StudyContext, oracle, tracker) -> TuneResult:
    """Chief or single process: summarise the trials, export the best, finish the study's MLflow run."""
    out, metric = plan.out, plan.metric_name
    try:
        rows = trial_rows(out, oracle.trials)
        summary_files = write_summary(out, rows, metric)
        completed = [row for row in rows if row["status"] == COMPLETED and row["value"] is not None]
        best = None
        if completed:
            best = export_best(out, min(completed, key=lambda row: row["value"]), metric, tracker.run_id)
        finish_study_run(tracker, rows, best, metric, summary_files, out)
    finally:
        tracker.finish("FINISHED")
    return TuneResult(
        out=out,
        role=context.role,
        metric=metric,
        extractor=_extractor_name(plan, context),
        trials=rows,
        best=best,
        stop_reason=oracle.stop_reason,
        mlflow=_mlflow_of(context),
    )


def _report(result: TuneResult) -> None:
    """Log the result's summary; raise when no trial completed."""
    logger.info("\n".join(result.summary()))
    if result.best is None:
        first = next((row["message"] for row in result.trials if row["message"]), "no trial ran")
        raise RaganError(
            f"no trial of the study in '{result.out}' completed ({len(result.trials)} ran; first failure: {first}); "
            f"see {result.out / 'trials.md'}."
        )
