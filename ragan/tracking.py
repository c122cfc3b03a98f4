"""MLflow tracking of training runs, which never gets in training's way.

Every training run is one MLflow run: parameters from the resolved configuration (``model.*``,
``training.*``, ``data.*``), losses and timings per tick, the sample grids, ``config.json`` and the
final model (artifact folder ``model/``, loadable with ``ragan.load_generator("runs:/<id>/model")``).

Where runs go:

* ``tracking_uri`` argument (``--tracking-uri``), else the ``MLFLOW_TRACKING_URI`` environment
  variable, else an SQLite store inside the run directory (``sqlite:///RUN_DIR/mlflow.db``, artifacts
  in ``RUN_DIR/mlartifacts``). MLflow 3's plain file store needs an opt-in, so it is not the default.
* A remote server gets short HTTP timeouts and few retries (``MLFLOW_HTTP_REQUEST_TIMEOUT``,
  ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``; values the user already
  set are kept) for the duration of the run.

All MLflow calls run on one background thread, in order: a slow server never slows training.
A server that stops answering mid-run (restarted, network cut) costs nothing: ragan prints one
warning line, keeps the run's records (metrics with their original step and time, tags,
artifacts, the final status) in order in memory and sends them when the server answers again,
trying every ``RETRY_SECONDS`` while the run goes on and for up to ``reconnect_timeout`` seconds
when it ends. Any other failure (disk full, bad URI, a server that never answered, or one still
down at the end) prints one warning line, drops the rest of the run's tracking and training
carries on; :attr:`RunTracker.failure` says why.
``mlflow.tensorflow.autolog`` is deliberately not used: it hung with repeating datasets and
logged the wrong optimizer for GANs; everything is logged explicitly through ``MlflowClient``.

Example:
    >>> tracker = RunTracker(None, "ragan", "runs/demo")
    >>> tracker.start(params={"model.latent_dim": 64})
    >>> tracker.log_metrics({"g_loss": 0.7}, step=50)
    >>> tracker.finish()
    >>> tracker.run_id                                      # doctest: +SKIP
    '3f2c...'
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ragan._common import muted_loggers

logger = logging.getLogger(__name__)

__all__ = ["RunTracker", "default_tracking_uri", "resolve_tracking_uri", "ui_command"]

# Short HTTP timeouts so that an unreachable server costs seconds, not the default minutes
# (120 s timeout, 7 retries with exponential backoff).
HTTP_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
# MLflow limits one log_batch call to 100 parameters.
_PARAMS_PER_CALL = 100
_QUIET_LOGGERS = ("mlflow", "alembic", "urllib3", "sqlalchemy")
# While the server is unreachable, buffered records are retried at most this often.
RETRY_SECONDS = 5.0
# How long finish() keeps retrying an unreachable server before giving up (seconds).
RECONNECT_TIMEOUT = 120.0


def default_tracking_uri(run_dir: str | os.PathLike) -> str:
    """``sqlite:///<absolute run dir>/mlflow.db``: the store used when no URI is given."""
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def resolve_tracking_uri(tracking_uri: str | None, run_dir: str | os.PathLike) -> str:
    """The URI a run logs to: the argument, else ``MLFLOW_TRACKING_URI``, else the run's SQLite store."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(run_dir)


def ui_command(tracking_uri: str) -> str | None:
    """The command that shows a local store in the MLflow UI (``None`` for a server URI)."""
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        return None
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def _local_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a local SQLite store go next to the database, not to ``./mlruns`` of the CWD."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    database = Path(tracking_uri[len(prefix) :])
    return (database.parent / "mlartifacts").resolve().as_uri()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(error).__name__}: {message}"[:300] if message else type(error).__name__


def _unreachable(error: BaseException) -> bool:
    """Whether ``error`` means the server could not be reached (worth retrying), not a refusal."""
    transient: tuple = (ConnectionError, TimeoutError)
    refused: tuple = ()
    try:  # MLflow's HTTP client (a dependency of MLflow, not of ragan)
        import requests

        transient += (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
        refused = (requests.exceptions.InvalidURL,)
    except ImportError:
        pass
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, refused):
            return False
        if isinstance(error, transient):
            return True
        error = error.__cause__ or error.__context__
    return False


def _warn(message: str) -> None:
    logger.warning(message)


class RunTracker:
    """One MLflow run, logged from a background thread; failures turn tracking off, not training.

    Args:
        tracking_uri: MLflow tracking URI; ``None`` = ``MLFLOW_TRACKING_URI`` or the run's SQLite store.
        experiment: experiment name (created when missing).
        run_dir: the training run directory (home of the default store).
        enabled: ``False`` makes every method a no-op (non-chief workers).
        warn: receives the one warning line when tracking fails.
        on_start: called with the run id once the MLflow run exists (on the tracking thread).
        reconnect_timeout: seconds :meth:`finish` waits for an unreachable server to come back
            (default ``RECONNECT_TIMEOUT``); a shorter ``finish(timeout=...)`` wins.

    Attributes:
        run_id: the MLflow run id once started (``None`` before, or when tracking failed at start).
        experiment_id: the experiment's id.
        failure: ``None``, or one line saying why tracking stopped.

    Example:
        >>> tracker = RunTracker("http://127.0.0.1:5000", "ragan", "runs/x")
        >>> tracker.start(run_name="x", params={"training.kimg": "2"})
        >>> tracker.finish("FINISHED")
    """

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str,
        run_dir: str | os.PathLike,
        *,
        enabled: bool = True,
        warn: Callable[[str], None] = _warn,
        on_start: Callable[[str], None] | None = None,
        reconnect_timeout: float | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.tracking_uri = resolve_tracking_uri(tracking_uri, run_dir)
        self.experiment = experiment
        self.enabled = enabled
        self.warn = warn
        self.on_start = on_start
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.failure: str | None = None
        self.resumed = False
        self._client = None
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._saved_environment: dict[str, str | None] = {}
        self.reconnect_timeout = RECONNECT_TIMEOUT if reconnect_timeout is None else float(reconnect_timeout)
        # Records waiting for an unreachable server, in order, and when it was last tried.
        self._pending: list = []
        self._last_attempt = 0.0
        self._deadline: float | None = None
        self._unreachable_reason: str | None = None

    # ------------------------------------------------------------------ public API (non-blocking)
    def start(
        self,
        *,
        run_id: str | None = None,
        run_name: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Create (or, given ``run_id``, reopen) the MLflow run and log ``params`` and ``tags``.

        Returns at once; the work happens on the tracking thread. Reopening an existing run
        logs only parameters it does not have yet (MLflow parameters cannot change); changed
        values are recorded in the tag ``ragan.changed_on_resume``.
        """
        if not self.enabled:
            self._started.set()
            return
        for key, value in HTTP_ENVIRONMENT.items():
            self._saved_environment[key] = os.environ.get(key)
            os.environ.setdefault(key, value)
        self._thread = threading.Thread(target=self._work, name="ragan-mlflow", daemon=True)
        self._thread.start()
        self._queue.put((self._do_start, (run_id, run_name, dict(params or {}), dict(tags or {}))))

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Log numeric metrics at training ``step`` (non-finite values are skipped)."""
        clean = {}
        for key, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if number == number and abs(number) != float("inf"):
                clean[key] = number
        if clean:
            self._submit(self._do_log_metrics, clean, int(step), int(time.time() * 1000))

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set run tags (strings)."""
        self._submit(self._do_set_tags, {k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Upload the file ``path`` (which must not change until :meth:`finish`) under ``artifact_path``."""
        self._submit(self._do_log_artifact, str(path), artifact_path)

    def wait_started(self, timeout: float = 60.0) -> str | None:
        """Block until the run exists (or tracking failed); return the run id or ``None``."""
        if self.enabled and self._thread is not None:
            self._started.wait(timeout)
        return self.run_id

    def finish(self, status: str = "FINISHED", timeout: float = 300.0) -> None:
        """Log what is queued, mark the run ``status`` (FINISHED, FAILED or KILLED), stop the thread.

        Records kept while the server was unreachable are sent first; an unreachable server is
        retried for at most ``min(timeout, reconnect_timeout)`` seconds.
        """
        if not self.enabled or self._thread is None:
            return
        self._submit(self._do_finish, status)
        self._deadline = time.monotonic() + max(0.0, min(timeout - 5.0, self.reconnect_timeout))
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive() and self.failure is None:
            self.failure = f"MLflow did not finish logging within {timeout:.0f} s"
            self.warn(f"MLflow tracking at {self.tracking_uri} {self.failure}; the run may be incomplete there.")
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environment.clear()

    @property
    def active(self) -> bool:
        return self.enabled and self.failure is None

    def describe(self) -> list[str]:
        """Lines telling the user where the run is recorded (for the end-of-training summary)."""
        if not self.enabled:
            return []
        if self.failure is not None or self.run_id is None:
            return [f"MLflow: not recorded ({self.failure or 'tracking did not start'})"]
        lines = [f"MLflow: run {self.run_id} in experiment {self.experiment!r} at {self.tracking_uri}"]
        command = ui_command(self.tracking_uri)
        if command:
            lines.append(f"  view it with: {command}")
        elif self.experiment_id is not None:
            base = self.tracking_uri.rstrip("/")
            lines.append(f"  view it at: {base}/#/experiments/{self.experiment_id}/runs/{self.run_id}")
        return lines

    # ------------------------------------------------------------------ tracking thread
    def _submit(self, function, *args) -> None:
        if self.enabled and self._thread is not None and self.failure is None:
            self._queue.put((function, args))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._drain()
                return
            if self.failure is not None:
                continue
            self._pending.append(item)
            if len(self._pending) == 1 or time.monotonic() - self._last_attempt >= RETRY_SECONDS:
                self._send_pending()

    def _drain(self) -> None:
        """At the end: retry what an unreachable server has not taken yet, until the deadline."""
        while self._pending and self.failure is None:
            wait = RETRY_SECONDS - (time.monotonic() - self._last_attempt)
            if self._deadline is not None and time.monotonic() + max(wait, 0.0) > self._deadline:
                self._fail(
                    f"unreachable until the run ended; {len(self._pending)} record(s) not logged: "
                    f"{self._unreachable_reason}"
                )
                return
            if wait > 0:
                time.sleep(wait)
            self._send_pending()

    def _send_pending(self) -> None:
        """Send the buffered records in order; keep the rest when the server cannot be reached."""
        was_down = self._unreachable_reason is not None
        sent = 0
        while self._pending and self.failure is None:
            function, args = self._pending[0]
            self._last_attempt = time.monotonic()
            try:
                with muted_loggers(*_QUIET_LOGGERS, level=logging.CRITICAL):
                    function(*args)
            except BaseException as error:  # noqa: BLE001 - any tracking failure must not stop training
                if function != self._do_start and _unreachable(error):
                    if self._unreachable_reason is None:
                        self.warn(
                            f"MLflow tracking at {self.tracking_uri} is unreachable ({_first_line(error)}); "
                            "its records are kept and sent when it answers again; training continues."
                        )
                    self._unreachable_reason = _first_line(error)
                    return
                self._fail(_first_line(error))
                return
            finally:
                if function == self._do_start:
                    self._started.set()
            self._pending.pop(0)
            sent += 1
        if was_down and not self._pending and self.failure is None:
            self._unreachable_reason = None
            self.warn(f"MLflow tracking at {self.tracking_uri} answers again; {sent} kept record(s) sent.")

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self._pending.clear()
        self.warn(f"MLflow tracking at {self.tracking_uri} failed ({reason}); training continues without tracking.")

    def _do_start(self, run_id, run_name, params, tags) -> None:
        with muted_loggers(*_QUIET_LOGGERS, level=logging.CRITICAL):
            from mlflow import MlflowClient
            from mlflow.entities import Param, RunTag

        client = MlflowClient(tracking_uri=self.tracking_uri)
        self._client = client
        run = None
        if run_id:
            try:
                run = client.get_run(run_id)
            except Exception:  # noqa: BLE001 - e.g. resumed against another store: start a new run
                run = None
        if run is not None:
            self.run_id = run.info.run_id
            self.experiment_id = run.info.experiment_id
            self.resumed = True
            client.update_run(self.run_id, status="RUNNING")
            existing = dict(run.data.params)
        else:
            experiment = client.get_experiment_by_name(self.experiment)
            if experiment is None:
                self.experiment_id = client.create_experiment(
                    self.experiment, artifact_location=_local_artifact_location(self.tracking_uri)
                )
            else:
                self.experiment_id = experiment.experiment_id
            created = client.create_run(self.experiment_id, run_name=run_name, tags=dict(tags))
            self.run_id = created.info.run_id
            existing = {}
            tags = {}
        new_params = {k: str(v)[:6000] for k, v in params.items() if k not in existing}
        changed = {k: str(v) for k, v in params.items() if k in existing and existing[k] != str(v)[:6000]}
        items = [Param(k, v) for k, v in new_params.items()]
        for start in range(0, len(items), _PARAMS_PER_CALL):
            client.log_batch(self.run_id, params=items[start : start + _PARAMS_PER_CALL])
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        if changed:
            summary = ", ".join(f"{k}={v}" for k, v in sorted(changed.items()))
            run_tags.append(RunTag("ragan.changed_on_resume", summary))
        if run_tags:
            client.log_batch(self.run_id, tags=run_tags)
        if self.on_start is not None:
            self.on_start(self.run_id)

    def _do_log_metrics(self, metrics, step, timestamp) -> None:
        from mlflow.entities import Metric

        if self.run_id is None:
            return
        entries = [Metric(key, value, timestamp, step) for key, value in metrics.items()]
        self._client.log_batch(self.run_id, metrics=entries)

    def _do_set_tags(self, tags) -> None:
        from mlflow.entities import RunTag

        if self.run_id is not None:
            self._client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _do_log_artifact(self, path, artifact_path) -> None:
        if self.run_id is not None:
            self._client.log_artifact(self.run_id, path, artifact_path)

    def _do_finish(self, status) -> None:
        if self.run_id is not None:
            self._client.set_terminated(self.run_id, status=status)
