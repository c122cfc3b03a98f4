"""The study's MLflow run, and the tags that nest each trial's run under it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ragan._common import first_line, muted_loggers
from ragan.tuning.hypermodel import SearchSpace, keras_tuner
from ragan.tuning.study import BEST_FILE, STUDY_FILE, StudyContext, warn

__all__ = ["finish_study_run", "start_study_run", "tag_trial_run", "trial_start_tags"]

COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED


def trial_start_tags(study: StudyContext, trial_id: str) -> dict:
    """Tags a trial's MLflow run gets when it starts: nested under the study's run at once, so a
    running (or killed) trial shows up in its place, not only once it has finished."""
    tags = {"ragan.study": str(study.out.resolve()), "ragan.trial_id": str(trial_id)}
    if study.parent_run_id:
        tags["mlflow.parentRunId"] = study.parent_run_id
    return tags


def tag_trial_run(study: StudyContext, record: dict, tracking_uri: str) -> None:
    """Make the trial's MLflow run a child of the study's run; log its objective and status."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import RunTag

        tags = {
            **trial_start_tags(study, record["trial_id"]),
            "mlflow.runName": f"{study.out.resolve().name}/trial-{record['trial_id']}",
            "ragan.trial_status": record["status"],
            "ragan.tuner_id": record["tuner_id"],
            "ragan.trial.hyperparameters": json.dumps(record["hyperparameters"], default=str)[:5000],
        }
        if record.get("continued_from") is not None:
            tags["ragan.continued_from_trial"] = str(record["continued_from"])
        if record.get("message"):
            tags["ragan.trial_failure"] = record["message"][:5000]
        metrics = _objective_metrics(record, tags)
        # MLflow logs store migrations etc. at INFO; keep them off the terminal.
        with muted_loggers("mlflow"):
            MlflowClient(tracking_uri=tracking_uri).log_batch(
                record["mlflow_run_id"], metrics=metrics, tags=[RunTag(k, str(v)) for k, v in tags.items()]
            )
    except Exception as error:  # noqa: BLE001 - tracking never fails a trial
        warn(f"could not tag trial {record['trial_id']}'s MLflow run ({first_line(error)}).")


def _objective_metrics(record: dict, tags: dict) -> list:
    """The trial's objective (and its std) as MLflow metrics; its extractor and split go into ``tags``."""
    from mlflow.entities import Metric

    result = record.get("objective")
    if not result:
        return []
    stamp, step = int(time.time() * 1000), record.get("steps") or 0
    tags["ragan.objective.extractor"] = result["extractor"]
    tags["ragan.objective.split"] = result["split"]
    metrics = [Metric(f"objective.{result['metric']}", result["value"], stamp, step)]
    if result.get("std") is not None:
        metrics.append(Metric(f"objective.{result['metric']}_std", result["std"], stamp, step))
    return metrics


def start_study_run(
    out: Path, study: dict, space: SearchSpace, settings: dict, context: StudyContext, experiment: str, tracking_uri
):
    """Start (or, for a resumed study, reopen) the study's MLflow run; return its ``RunTracker``."""
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
        warn(f"the study is not recorded in MLflow ({tracker.failure}); trials are still tracked on their own.")
    return tracker


def finish_study_run(tracker, rows: list[dict], best: dict | None, metric: str, files: list[Path], out: Path) -> None:
    """Log the trials' objectives, the counts, the best trial and the summary files to the study's run."""
    for index, row in enumerate(rows):
        if row["value"] is not None:
            step = int(row["trial_id"]) if row["trial_id"].isdigit() else index
            tracker.log_metrics({f"trial.{metric}": row["value"]}, step=step)
    completed = sum(1 for row in rows if row["status"] == COMPLETED)
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
