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


def mlflow_target(generator_run, tracking_uri: str | None = None) -> dict:
    """Where the report of ``generator_run`` is logged: its MLflow run id (from its ``run.json``)
    and a tracking URI that comes from the user, never from the run folder.

    A run folder may come from someone else, and the report holds grids of real images: so the
    URI is ``tracking_uri`` (``--tracking-uri``), else ``MLFLOW_TRACKING_URI``, else the run
    folder's own SQLite store (``RUN/mlflow.db``, whose artifacts must then stay inside the run
    folder, see :func:`log_to_mlflow`). A different URI recorded in ``run.json`` is only noted.

    Returns:
        ``{"run_dir", "run_id", "tracking_uri", "uri_source", "recorded_tracking_uri"}``.

    Raises:
        RaganError: no ``run.json``, or one that is not a JSON object.

    Example:
        >>> _ = Path("run").mkdir()
        >>> _ = Path("run/run.json").write_text('{"mlflow": {"run_id": "abc", "tracking_uri": "http://elsewhere"}}')
        >>> target = mlflow_target("run", tracking_uri="sqlite:///mine.db")
        >>> target["tracking_uri"], target["recorded_tracking_uri"]
        ('sqlite:///mine.db', 'http://elsewhere')
    """
    from ragan.tracking import default_tracking_uri

    run_dir = Path(generator_run)
    run_file = run_dir / RUN_FILE if run_dir.is_dir() else run_dir
    if not run_file.is_file():
        raise RaganError(
            f"generator_run='{generator_run}' has no {RUN_FILE}; pass the training run directory (--run RUN_DIR)."
        )
    info = read_json(run_file)
    if not isinstance(info, dict):
        raise RaganError(f"{run_file}: expected a JSON object, got {type(info).__name__}.")
    tracking = info.get("mlflow") if isinstance(info.get("mlflow"), dict) else {}
    run_id = tracking.get("run_id") or info.get("mlflow_run_id")
    recorded = tracking.get("tracking_uri") or info.get("mlflow_tracking_uri")
    if tracking_uri:
        uri, source = str(tracking_uri), "--tracking-uri"
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        uri, source = os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI"
    else:
        uri, source = default_tracking_uri(run_file.parent), "the run folder's own store"
    return {
        "run_dir": str(run_file.parent),
        "run_id": run_id if isinstance(run_id, str) else None,
        "tracking_uri": uri,
        "uri_source": source,
        "recorded_tracking_uri": recorded if isinstance(recorded, str) else None,
    }


def describe_target(target: dict) -> list[str]:
    """The lines that say where the report goes (and which recorded URI is not used).

    Example:
        >>> describe_target({"tracking_uri": "sqlite:///m.db", "uri_source": "--tracking-uri",
        ...                  "recorded_tracking_uri": "http://elsewhere"})  # doctest: +NORMALIZE_WHITESPACE
        ['MLflow: logging the report to sqlite:///m.db (from --tracking-uri)',
         "MLflow: run.json records the tracking URI 'http://elsewhere', which is not used; pass
          --tracking-uri 'http://elsewhere' to log there"]
    """
    lines = [f"MLflow: logging the report to {target['tracking_uri']} (from {target.get('uri_source', 'the caller')})"]
    recorded = target.get("recorded_tracking_uri")
    if recorded and not _same_uri(recorded, target["tracking_uri"]):
        lines.append(
            f"MLflow: run.json records the tracking URI {recorded!r}, which is not used; "
            f"pass --tracking-uri {recorded!r} to log there"
        )
    return lines


def _same_uri(first: str, second: str) -> bool:
    """Equal URIs, or two ``sqlite:///`` URIs of the same file."""
    prefix = "sqlite:///"
    if first.startswith(prefix) and second.startswith(prefix):
        return os.path.realpath(first[len(prefix) :]) == os.path.realpath(second[len(prefix) :])
    return first == second


def metric_key(text: str) -> str:
    """``text`` with every character MLflow keys do not allow (alphanumerics, ``_-./`` and space) as ``_``."""
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", text)


def log_to_mlflow(target: dict, files: Sequence[Path], metrics: dict) -> dict:
    """Log files (and folders, as ``evaluation/<name>/``) as artifacts under ``evaluation/`` and metrics to an
    existing run; never raises."""
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


def _check_local_artifacts(artifact_uri: str, run_dir: str) -> None:
    """Refuse an artifact location outside the run folder (a server, a bucket, another folder)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri or "")
    local = unquote(parsed.path) if parsed.scheme == "file" else (artifact_uri if not parsed.scheme else None)
    root = os.path.realpath(run_dir)
    if local is None or os.path.commonpath([root, os.path.realpath(local)]) != root:
        raise RaganError(
            "the run folder's MLflow store keeps artifacts outside the run folder; pass --tracking-uri "
            f"(or set MLFLOW_TRACKING_URI) to log to a store of your own (artifacts at {artifact_uri!r})"
        )


def _log_files_and_metrics(target: dict, files: Sequence[Path], metrics: dict) -> None:
    """The MLflow calls: the files as artifacts under ``evaluation/``, the finite metrics in batches of 500."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri=target.get("tracking_uri"))
    run = client.get_run(target["run_id"])  # a clear failure when the run is not in this store
    if target.get("uri_source") == "the run folder's own store":
        # That store came with the run folder: its artifact location must not send the files elsewhere.
        _check_local_artifacts(run.info.artifact_uri, target["run_dir"])
    for path in files:
        if Path(path).is_dir():  # the report's full-size pictures, which report.html links to
            client.log_artifacts(target["run_id"], str(path), f"evaluation/{Path(path).name}")
        else:
            client.log_artifact(target["run_id"], str(path), "evaluation")
    timestamp = int(time.time() * 1000)
    entries = [
        Metric(metric_key(k), float(v), timestamp, 0)
        for k, v in metrics.items()
        if v is not None and math.isfinite(float(v))
    ]
    for start in range(0, len(entries), 500):
        client.log_batch(target["run_id"], metrics=entries[start : start + 500])
