"""MLflow tracking against a real ``mlflow server``: what a run logs, and surviving its loss."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import tiny_prepared  # noqa: F401 (fixture)

import ragan
from ragan.cli.main import main
from ragan.tracking import RunTracker, default_tracking_uri, resolve_tracking_uri, ui_command
from tests.runs import TINY_MODEL
from tests.runs import TINY_TRAINING as TINY_RUN

TINY_TRAINING = {**TINY_RUN, "steps": 6, "sample_every": 4}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MlflowServer:
    """``mlflow server`` on a free local port with an SQLite store, in its own process group."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.directory = directory
        self.start()

    def start(self) -> None:
        """Start the server (again: same port, same store) and wait until it answers."""
        directory = self.directory
        self.log = open(directory / "server.log", "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{directory / 'server.db'}",
                "--default-artifact-root",
                str(directory / "artifacts"),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(directory / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlflow server did not become ready in 120 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            # The server was started in its own session: its group id is its pid.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path)
    yield server
    server.stop()


@pytest.mark.slow
def test_training_run_is_recorded_on_the_server(mlflow_server, tiny_prepared, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    run = ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=tmp_path / "run",
        config=TINY_MODEL,
        tracking_uri=mlflow_server.uri,
        experiment="tracking-test",
        progress=False,
        **TINY_TRAINING,
    )
    info = json.loads((run / "run.json").read_text())["mlflow"]
    assert info["tracking_uri"] == mlflow_server.uri and info["failure"] is None
    client = MlflowClient(mlflow_server.uri)
    record = client.get_run(info["run_id"])
    assert record.info.status == "FINISHED"
    assert client.get_experiment(record.info.experiment_id).name == "tracking-test"
    params = record.data.params
    assert params["model.latent_dim"] == "16" and params["model.conditional"] == "True"
    assert params["training.steps"] == "6" and params["data.class_names"] == "['disc', 'bar']"
    for name in ("d_loss", "g_loss", "images_per_sec", "sec_per_kimg"):
        history = client.get_metric_history(info["run_id"], name)
        assert [m.step for m in history] == [2, 4, 6], name
        assert all(np.isfinite(m.value) for m in history)
    grids = {a.path for a in client.list_artifacts(info["run_id"], "samples")}
    assert grids == {"samples/grid-00000.032.png", "samples/grid-00000.048.png"}
    assert "config.json" in {a.path for a in client.list_artifacts(info["run_id"])}

    # The logged model is what `ragan generate runs:/ID/model --tracking-uri URI` loads.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    gan = ragan.load_generator(f"runs:/{info['run_id']}/model", tracking_uri=mlflow_server.uri)
    assert gan.class_names == ["disc", "bar"]
    assert gan.generate(2, labels=[0, 1], seed=0).shape == (2, 16, 16, 1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)  # or from the environment
    assert ragan.load_generator(f"runs:/{info['run_id']}/model").class_names == ["disc", "bar"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    out = tmp_path / "from_mlflow"
    assert (
        main(
            [
                "generate",
                f"runs:/{info['run_id']}/model",
                "--tracking-uri",
                mlflow_server.uri,
                "--n",
                "4",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert len(list(out.rglob("*.png"))) == 4
    # No local store was created when a server was given.
    assert not (run / "mlflow.db").exists()


@pytest.mark.slow
def test_server_lost_mid_run_warns_and_training_finishes(mlflow_server, tiny_prepared, tmp_path, capfd, monkeypatch):
    from ragan._tf import import_keras

    monkeypatch.setattr("ragan.tracking.RECONNECT_TIMEOUT", 3.0)  # the server never comes back here

    class KillServerAfterFirstTick(import_keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                mlflow_server.stop()

    started = time.monotonic()
    run = ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=tmp_path / "run",
        config=TINY_MODEL,
        tracking_uri=mlflow_server.uri,
        progress=False,
        callbacks=[KillServerAfterFirstTick()],
        **TINY_TRAINING,
    )
    assert time.monotonic() - started < 120
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and (run / "model.keras").is_file()
    assert info["mlflow"]["failure"]
    warnings = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"ragan: warning: MLflow tracking at {mlflow_server.uri} is unreachable")
    assert warnings[0].endswith("sent when it answers again; training continues.")
    assert warnings[1].startswith(f"ragan: warning: MLflow tracking at {mlflow_server.uri} failed (unreachable until")
    assert warnings[1].endswith("training continues without tracking.")


@pytest.mark.slow
def test_server_stopped_and_restarted_mid_run_receives_every_tick(mlflow_server, tiny_prepared, tmp_path, capfd):
    """Fault drill: the metrics logged while the server was down reach it; the run ends FINISHED."""
    from mlflow import MlflowClient

    from ragan._tf import import_keras

    class StopAfterTick1RestartAfterTick3(import_keras().callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                mlflow_server.stop()
            elif epoch == 2:
                mlflow_server.start()

    run = ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=tmp_path / "run",
        config=TINY_MODEL,
        tracking_uri=mlflow_server.uri,
        progress=False,
        callbacks=[StopAfterTick1RestartAfterTick3()],
        **{**TINY_TRAINING, "steps": 8},
    )
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["mlflow"]["failure"] is None
    client = MlflowClient(mlflow_server.uri)
    record = client.get_run(info["mlflow"]["run_id"])
    assert record.info.status == "FINISHED"
    for name in ("d_loss", "g_loss", "images_per_sec"):
        assert [m.step for m in client.get_metric_history(record.info.run_id, name)] == [2, 4, 6, 8], name
    grids = {a.path for a in client.list_artifacts(record.info.run_id, "samples")}
    assert grids == {"samples/grid-00000.032.png", "samples/grid-00000.064.png"}
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ragan:")]
    assert len(err) == 2 and "is unreachable" in err[0] and "answers again" in err[1], err


def test_unreachable_server_from_the_start(tiny_prepared, tmp_path, capfd):
    uri = f"http://127.0.0.1:{free_port()}"
    run = ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=tmp_path / "run",
        config=TINY_MODEL,
        tracking_uri=uri,
        progress=False,
        **{**TINY_TRAINING, "steps": 2},
    )
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "failed" in err[0] and uri in err[0]


def test_tracking_uri_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    expected = f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert resolve_tracking_uri(None, tmp_path) == expected == default_tracking_uri(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert resolve_tracking_uri(None, tmp_path) == "http://tracking:5000"
    assert resolve_tracking_uri("http://other:1", tmp_path) == "http://other:1"
    assert ui_command("http://tracking:5000") is None
    assert ui_command("sqlite:////x/mlflow.db") == "mlflow ui --backend-store-uri sqlite:////x/mlflow.db"


def test_disabled_tracker_does_nothing(tmp_path):
    tracker = RunTracker(None, "ragan", tmp_path, enabled=False)
    tracker.start(params={"a": 1})
    tracker.log_metrics({"loss": 1.0}, step=1)
    tracker.finish()
    assert tracker.run_id is None and not any(tmp_path.iterdir())


def test_only_a_server_that_cannot_be_reached_is_waited_for():
    import requests
    from mlflow.exceptions import MlflowException

    from ragan.tracking import _unreachable

    try:
        try:
            raise requests.exceptions.ConnectionError("Connection refused")
        except requests.exceptions.ConnectionError as cause:
            raise MlflowException(f"API request to http://127.0.0.1:1 failed with exception {cause}")  # noqa: B904
    except MlflowException as error:  # how MLflow's REST client reports a server that is down
        down = error
    assert _unreachable(down)
    assert not _unreachable(MlflowException("RESOURCE_DOES_NOT_EXIST: run not found"))
    assert not _unreachable(OSError(28, "No space left on device"))


def test_records_kept_while_unreachable_are_sent_in_order(tmp_path, monkeypatch, capfd):
    from mlflow import MlflowClient

    monkeypatch.setattr("ragan.tracking.RETRY_SECONDS", 0.05)
    down = {"now": False}
    send = RunTracker._do_log_metrics

    def flaky(self, *args):
        if down["now"]:
            raise ConnectionError("Connection refused")
        return send(self, *args)

    monkeypatch.setattr(RunTracker, "_do_log_metrics", flaky)
    tracker = RunTracker(None, "ragan", tmp_path)
    tracker.start(params={"a": 1})
    tracker.log_metrics({"loss": 1.0}, step=1)
    down["now"] = True
    tracker.log_metrics({"loss": 2.0}, step=2)
    deadline = time.monotonic() + 60
    while tracker._unreachable_reason is None and time.monotonic() < deadline:  # noqa: SLF001
        time.sleep(0.01)
    tracker.log_metrics({"loss": 3.0}, step=3)
    down["now"] = False
    tracker.log_metrics({"loss": 4.0}, step=4)
    tracker.finish()
    assert tracker.failure is None
    client = MlflowClient(tracker.tracking_uri)
    history = client.get_metric_history(tracker.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert client.get_run(tracker.run_id).info.status == "FINISHED"
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ragan:")]
    assert len(err) == 2 and "is unreachable (ConnectionError: Connection refused)" in err[0]
    assert err[1].startswith(f"ragan: warning: MLflow tracking at {tracker.tracking_uri} answers again;")
