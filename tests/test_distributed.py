"""tf.distribute on CPU: MirroredStrategy over two logical CPUs, and two local workers via TF_CONFIG.

Both run in subprocesses: logical devices and multi-worker collectives must be configured before
TensorFlow starts, which has already happened in the pytest process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import tiny_prepared  # noqa: F401 (fixture)

from ragan.training.checkpoint import CheckpointManager
from tests.runs import REPO, TINY_MODEL, TINY_TRAINING, flags, ragan_command

TINY_FLAGS = flags({**TINY_MODEL, **TINY_TRAINING, "steps": 4, "sample_every": 2})


def environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def assert_finished_run(run: Path, steps: int) -> None:
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == steps
    assert (run / "model.keras").is_file()
    latest = CheckpointManager(run / "checkpoints").latest()
    assert latest is not None and CheckpointManager.read_meta(latest)["step"] == steps
    with np.load(latest) as data:
        assert all(np.all(np.isfinite(data[k])) for k in data.files if data[k].dtype.kind == "f")


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus_resumes_exactly(tiny_prepared, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from ragan._tf import import_tf
        tf = import_tf()
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import ragan
        from ragan.cli.main import main
        data, out = sys.argv[1], sys.argv[2]
        flags = sys.argv[3:]
        # The whole run through the CLI, then the same run in two sessions through the library.
        assert main(["train", "dcgan", "--data", data, "--out", out + "/straight", *flags]) == 0
        options = dict(config={"latent_dim": 16, "base_filters": 8, "conditional": True}, batch_size=8,
                       log_every=2, checkpoint_every=2, sample_every=2, distribution="mirrored", progress=False)
        ragan.train("dcgan", data=data, out=out + "/split", steps=2, **options)
        ragan.train("dcgan", out=out + "/split", resume=True, steps=4, progress=False)
        """
    )
    out = tmp_path / "mirrored"
    result = subprocess.run(
        [sys.executable, "-c", script, str(tiny_prepared), str(out), "--distribution", "mirrored", *TINY_FLAGS],
        capture_output=True,
        text=True,
        timeout=400,
        env=environment(),
    )
    assert result.returncode == 0, result.stderr
    assert "on mirrored over 2 devices" in result.stdout
    assert_finished_run(out / "straight", 4)
    assert_finished_run(out / "split", 4)
    final = "checkpoints/ckpt-000000004.npz"
    with np.load(out / "straight" / final) as straight, np.load(out / "split" / final) as split:
        assert straight.files == split.files
        for key in straight.files:
            if key != "__meta__":
                np.testing.assert_array_equal(straight[key], split[key], err_msg=key)


@pytest.mark.slow
def test_two_local_workers_with_tf_config(tiny_prepared, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    out = tmp_path / "multiworker"
    command = ragan_command("train", "dcgan", "--data", tiny_prepared, "--out", out, *TINY_FLAGS)
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(TF_CONFIG=tf_config)
            )
        )
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=400))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
        assert "multi-worker over 2 workers (2 replicas)" in stdout
    assert_finished_run(out, 4)
    # Only the chief (worker 0) recorded the run; worker 1 wrote to a scratch directory.
    assert "MLflow:" in outputs[0][0] and "MLflow:" not in outputs[1][0]
    grids = sorted(p.name for p in (out / "samples").iterdir())
    assert grids == ["grid-00000.016.png", "grid-00000.032.png"]


@pytest.mark.parametrize(
    "cluster, task, chief",
    [
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1}, False),
        ({"chief": ["a:1"], "worker": ["b:2"]}, {"type": "worker", "index": 0}, False),
        ({"chief": ["a:1"], "worker": ["b:2"]}, {"type": "chief", "index": 0}, True),
    ],
)
def test_only_the_chief_prints_the_quiet_summary(monkeypatch, cluster, task, chief):
    from ragan.cli.train import _is_chief_process

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert _is_chief_process() is chief


def consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive free local ports (Slurm's workers on a node use such a run)."""
    for _ in range(50):
        first = free_ports(1)[0]
        if first + count > 65535:
            continue
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no run of free ports found")


def slurm_environment(rank: int, tasks: int) -> dict:
    """The variables ``srun --ntasks=2`` gives each task on one node (no TF_CONFIG)."""
    return environment(
        SLURM_JOB_ID="4242",
        SLURM_NTASKS=str(tasks),
        SLURM_STEP_NUM_TASKS=str(tasks),
        SLURM_PROCID=str(rank),
        SLURM_LOCALID=str(rank),
        SLURM_NODEID="0",
        SLURM_STEP_NODELIST="127.0.0.1",
        SLURM_STEP_TASKS_PER_NODE=str(tasks),
        SLURM_JOB_NUM_NODES="1",
        RAGAN_SLURM_PORT=str(consecutive_free_ports(tasks)) if rank == 0 else "",
    )


@pytest.mark.slow
def test_two_slurm_tasks_without_tf_config_stop_together_on_sigterm_and_resume(tiny_prepared, tmp_path):
    """srun-style workers build their cluster from Slurm's variables; a SIGTERM to one worker stops
    both after the same step (no hang), and the same command with --resume auto continues the run."""
    out = tmp_path / "slurm"
    base = ragan_command(
        "train",
        "dcgan",
        "--data",
        str(tiny_prepared),
        "--out",
        str(out),
        *TINY_FLAGS,
        "--checkpoint-every",
        "10",
        "--sample-every",
        "1000",
        "--resume",
        "auto",
    )

    def start(steps: int) -> list[subprocess.Popen]:
        environments = [slurm_environment(rank, 2) for rank in range(2)]
        environments[1]["RAGAN_SLURM_PORT"] = environments[0]["RAGAN_SLURM_PORT"]
        return [
            subprocess.Popen(
                base + ["--steps", str(steps)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for env in environments
        ]

    def finish(workers) -> list[tuple[str, str]]:
        try:
            return [worker.communicate(timeout=400) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()

    workers = start(steps=400)
    manager = CheckpointManager(out / "checkpoints")
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and manager.latest() is None and all(w.poll() is None for w in workers):
        time.sleep(0.1)
    assert all(w.poll() is None for w in workers), "a worker ended before it could be stopped"
    workers[1].send_signal(signal.SIGTERM)  # the non-chief only: the chief must follow, not wait forever
    outputs = finish(workers)
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 143, stderr
        assert "multi-worker over 2 workers (2 replicas)" in stdout
    steps = {int(re.search(r"ragan: SIGTERM: stopped after step (\d+)/", stderr).group(1)) for _, stderr in outputs}
    assert len(steps) == 1
    stopped_at = steps.pop()
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and info["step"] == stopped_at
    assert manager.latest().name == f"ckpt-{stopped_at:09d}.npz"

    workers = start(steps=stopped_at + 2)
    outputs = finish(workers)
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
        assert f"from step {stopped_at}" in stdout
    assert_finished_run(out, stopped_at + 2)


def test_slurm_batch_script_without_srun_is_refused(monkeypatch):
    from ragan.errors import RaganError
    from ragan.training.strategy import is_chief_process, slurm_step_tasks

    for name in ("TF_CONFIG", "SLURM_STEP_NUM_TASKS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "4")
    with pytest.raises(RaganError, match="start training with srun"):
        slurm_step_tasks()
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert slurm_step_tasks() == 4 and is_chief_process() is False
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert is_chief_process() is True
