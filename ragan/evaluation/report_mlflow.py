"""Logging the evaluation report to the generator's MLflow run (artifacts and headline metrics).

A tracking failure is a one-line warning, never an error: the report is in its directory either way.

Example:
    >>> metric_key("eval.study.real+synthetic@0.5.auc")
    'eval.study.real_synthetic_0.5.auc'
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ragan._common import first_line, muted_loggers, read_json
from ragan.errors import RaganError
from ragan.training.run_files import RUN_FILE

logger = logging.getLogger(__name__)

__all__ = ["log_to_mlflow", "metric_key", "mlflow_target"]


def mlflow_target(generator_run) -> dict:
    """``{"tracking_uri", "run_id"}`` from a run directory's ``run.json`` (RaganError when unusable)."""
    run_dir = Path(generator_run)
    run_file = run_dir / RUN_FILE if run_dir.is_dir() else run_dir
    if not run_file.is_file():
        raise RaganError(
            f"generator_run='{generator_run}' has no {RUN_FILE}; pass the training run directory (--run RUN_DIR)."
        )
    info = read_json(run_file)
    tracking = info.get("mlflow") if isinstance(info.get("mlflow"), dict) else {}
    run_id = tracking.get("run_id") or info.get("mlflow_run_id")
    uri = tracking.get("tracking_uri") or info.get("mlflow_tracking_uri")
    return {"run_dir": str(run_dir), "run_id": run_id, "tracking_uri": uri}


def metric_key(text: str) -> str:
    """``text`` with every character MLflow keys do not allow (alphanumerics, ``_-./`` and space) as ``_``."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", text)


def log_to_mlflow(target: dict, files: Sequence[Path], metrics: dict) -> dict:
    """Log files as artifacts under ``evaluation/`` and metrics to an existing run; never raises."""
    from ragan.tracking import HTTP_ENVIRONMENT

    result = dict(target, logged=False, error=None)
    if not target.get("run_id"):
        result["error"] = "run.json names no MLflow run id (tracking was off or failed during training)"
        logger.warning(f"not logged to MLflow: {result['error']}.")
        return result
    saved = {key: os.environ.get(key) for key in HTTP_ENVIRONMENT}
    for key, value in HTTP_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    try:
        with muted_loggers("mlflow", "alembic", "urllib3", "sqlalchemy"):
            _log_files_and_metrics(target, files, metrics)
        result["logged"] = True
    except Exception as error:  # noqa: BLE001 - a tracking failure must not lose the report
        message = str(error).strip()
        result["error"] = f"{type(error).__name__}: {first_line(error) if message else ''}"
        logger.warning(
            f"the report was not logged to MLflow at {target.get('tracking_uri')} "
            f"({result['error']}); the files are in the output directory."
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return result


def _log_files_and_metrics(target: dict, files: Sequence[Path], metrics: dict) -> None:
    """The MLflow calls: the files as artifacts under ``evaluation/``, the finite metrics in batches of 500."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=target.get("tracking_uri"))
    client.get_run(target["run_id"])  # a clear failure when the run is not in this store
    for path in files:
        client.log_artifact(target["run_id"], str(path), "evaluation")
    timestamp = int(time.time() * 1000)
    entries = [
        Metric(metric_key(k), float(v), timestamp, 0)
        for k, v in metrics.items()
        if v is not None and math.isfinite(float(v))
    ]
    for start in range(0, len(entries), 500):
        client.log_batch(target["run_id"], metrics=entries[start : start + 500])
