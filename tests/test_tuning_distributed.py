"""Distributed tuning on loopback: a chief oracle and two workers of ``ragan tune`` over gRPC.

The three processes run the very same command and differ only in KerasTuner's environment
variables (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``), as a
user would start them on several machines sharing the study directory.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_tuning import TINY, TRIAL_KIMG, _mlflow_runs, study_data  # noqa: F401  (pytest fixture)

from tests.runs import ragan_command

REPO = Path(__file__).resolve().parents[1]
TIME_LIMIT_SECONDS = 420


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_on_loopback(study_data, tmp_path):  # noqa: F811 (fixture)
    out = tmp_path / "study"
    command = ragan_command(
        "tune",
        "dcgan",
        "--data",
        str(study_data),
        "--out",
        str(out),
        "--max-trials",
        "3",
        "--kimg-per-trial",
        str(TRIAL_KIMG),
        "--extractor",
        "pixels",
        "--objective-images",
        "32",
        "--range",
        "g_learning_rate=1e-4,1e-3",
        "--set",
        *(f"{k}={v}" for k, v in {**TINY, "d_learning_rate": 2e-4}.items()),
        "--quiet",
    )
    port = str(_free_port())
    processes = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "KERASTUNER_TUNER_ID": tuner_id,
            "KERASTUNER_ORACLE_IP": "127.0.0.1",
            "KERASTUNER_ORACLE_PORT": port,
        }
        log = open(tmp_path / f"{tuner_id}.log", "w")
        processes[tuner_id] = (
            subprocess.Popen(
                command, cwd=tmp_path, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            ),
            log,
        )
    deadline = time.monotonic() + TIME_LIMIT_SECONDS
    try:
        while any(process.poll() is None for process, _ in processes.values()):
            assert time.monotonic() < deadline, f"the study did not finish within {TIME_LIMIT_SECONDS} s"
            time.sleep(1)
    finally:
        for process, log in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            log.close()
    for tuner_id, (process, _) in processes.items():
        assert process.returncode == 0, f"{tuner_id}:\n" + (tmp_path / f"{tuner_id}.log").read_text()[-3000:]

    # Every trial ran on a worker (the chief only serves the oracle), and both workers worked.
    records = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]
    assert sorted(r["trial_id"] for r in records) == ["0", "1", "2"]
    assert all(r["status"] == "COMPLETED" for r in records)
    assert {r["tuner_id"] for r in records} == {"tuner0", "tuner1"}
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["COMPLETED"] * 3

    # The chief wrote the summary and exported the best worker-trained generator.
    best = json.loads((out / "best.json").read_text())
    assert float(best["objective"]["value"]) == min(float(row["kid"]) for row in rows)
    assert (out / "best" / "model.keras").is_file()
    assert "best trial" in (tmp_path / "chief.log").read_text()

    # All trial runs, logged by the workers, are children of the chief's study run.
    study = json.loads((out / "study.json").read_text())
    runs, _ = _mlflow_runs(study["mlflow"]["tracking_uri"])
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == study["mlflow"]["run_id"]]
    assert sorted(r.data.tags["ragan.trial_id"] for r in children) == ["0", "1", "2"]
    assert {r.data.tags["ragan.tuner_id"] for r in children} == {"tuner0", "tuner1"}
