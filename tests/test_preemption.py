"""Interrupted training: SIGTERM/SIGINT checkpoint the step, --resume auto, damaged checkpoints, full disks."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import checkpoint_arrays, tiny_prepared  # noqa: F401 (fixture)

import ragan
from ragan._interrupt import Interrupted
from ragan.cli.main import main
from ragan.training.checkpoint import CheckpointManager
from tests.runs import REPO, TINY_FLAGS, TINY_MODEL, TINY_TRAINING, ragan_command


def assert_same_checkpoint(first: Path, second: Path) -> None:
    a, b = checkpoint_arrays(first), checkpoint_arrays(second)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def ragan_lines(text: str) -> list[str]:
    """The lines ragan itself printed (TensorFlow's start-up chatter left out)."""
    return [line for line in text.splitlines() if line.startswith("ragan:")]


def limit_file_size(limit: int):
    """preexec_fn: files the child writes may not grow past ``limit`` bytes (EFBIG, as on a full disk).

    Python ignores SIGXFSZ, so the write fails with an error instead of killing the process.
    """
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_sigint_stops_after_the_step_checkpoints_it_and_marks_the_mlflow_run_killed(tiny_prepared, tmp_path):
    from mlflow import MlflowClient

    from ragan._tf import import_keras

    class CtrlCDuringStep3(import_keras().callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if self.model.g_optimizer.iterations.numpy() == 2:
                signal.raise_signal(signal.SIGINT)

    out = tmp_path / "run"
    previous_handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as caught:
        ragan.train(
            "dcgan",
            data=tiny_prepared,
            out=out,
            config=TINY_MODEL,
            steps=20,
            progress=False,
            callbacks=[CtrlCDuringStep3()],
            **{**TINY_TRAINING, "checkpoint_every": 100},
        )
    assert signal.getsignal(signal.SIGINT) is previous_handler  # the handlers are restored
    error = caught.value
    assert isinstance(error, KeyboardInterrupt) and error.exit_status == 130
    assert error.message.startswith("SIGINT: stopped after step 3/20")
    assert error.message.endswith(f"continue with: ragan train dcgan --out {out} --resume")
    assert [p.name for p in CheckpointManager(out / "checkpoints").checkpoints()] == ["ckpt-000000003.npz"]
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "interrupted" and info["step"] == 3
    assert MlflowClient(info["mlflow"]["tracking_uri"]).get_run(info["mlflow"]["run_id"]).info.status == "KILLED"


def test_damaged_newest_checkpoints_are_reported_and_the_previous_one_is_used(tiny_prepared, tmp_path, capsys):
    out = tmp_path / "run"
    ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=out,
        config=TINY_MODEL,
        steps=6,
        keep_checkpoints=3,
        progress=False,
        **TINY_TRAINING,
    )
    manager = CheckpointManager(out / "checkpoints")
    second, newest = manager.checkpoints()[1:]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated (a full disk, a crash)
    data = bytearray(second.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # corrupted in place (bad storage)
    second.write_bytes(bytes(data))

    assert main(["train", "dcgan", "--out", str(out), "--resume", "auto", "--steps", "8"]) == 0
    captured = capsys.readouterr()
    warnings = ragan_lines(captured.err)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"ragan: warning: checkpoint '{newest}' cannot be read")
    assert warnings[1].startswith(f"ragan: warning: checkpoint '{second}' cannot be read")
    assert all(w.endswith("resuming from the previous one, ckpt-000000002.npz") for w in warnings)
    assert "resuming" in captured.out and "from step 2" in captured.out
    assert json.loads((out / "run.json").read_text())["step"] == 8


def test_resume_auto_starts_fresh_resumes_or_refuses(tiny_prepared, tmp_path, capsys):
    flags = ["--data", str(tiny_prepared), *TINY_FLAGS, "--steps", "2", "--resume", "auto", "--quiet"]
    out = tmp_path / "new"
    assert main(["train", "dcgan", "--out", str(out), *flags]) == 0  # nothing there yet: a new run
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    capsys.readouterr()
    assert main(["train", "dcgan", "--out", str(out), *flags[:-3], "--steps", "4", "--resume", "auto"]) == 0
    assert "from step 2" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["step"] == 4

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a run")
    assert main(["train", "dcgan", "--out", str(other), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"ragan: error: out='{other}' is not empty and holds no ragan run; choose an empty or new directory."
    ]


@pytest.mark.slow
def test_sigterm_mid_training_then_resume_auto_equals_the_uninterrupted_run(tiny_prepared, tmp_path):
    """Fault drill: a pre-empted job (SIGTERM) requeued with the same command ends where a straight run does."""
    from mlflow import MlflowClient

    steps = 40
    out = tmp_path / "preempted"
    command = ragan_command(
        "train",
        "dcgan",
        "--data",
        str(tiny_prepared),
        "--out",
        str(out),
        *TINY_FLAGS,
        "--checkpoint-every",
        "10",
        "--steps",
        str(steps),
        "--resume",
        "auto",
    )
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    manager = CheckpointManager(out / "checkpoints")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None and manager.latest() is None:
            time.sleep(0.05)  # until the run is among its steps
        assert process.poll() is None, f"training ended before it could be stopped: {process.stderr.read()!r}"
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    assert time.monotonic() - stopped < 60
    lines = ragan_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("ragan: SIGTERM: stopped after step "), stderr
    assert lines[0].endswith(f"continue with: ragan train dcgan --out {out} --resume")
    info = json.loads((out / "run.json").read_text())
    stopped_at = info["step"]
    assert info["status"] == "interrupted" and 10 <= stopped_at < steps
    assert f"ckpt-{stopped_at:09d}.npz" in lines[0]
    assert (out / "checkpoints" / f"ckpt-{stopped_at:09d}.npz").is_file()
    client = MlflowClient(info["mlflow"]["tracking_uri"])
    assert client.get_run(info["mlflow"]["run_id"]).info.status == "KILLED"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {stopped_at}" in resumed.stdout
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == steps
    assert client.get_run(info["mlflow"]["run_id"]).info.status == "FINISHED"
    logged = [m.step for m in client.get_metric_history(info["mlflow"]["run_id"], "d_loss")]
    # Every usual tick is logged, and the only other step is the one it stopped at (which may itself
    # be a tick: under load the signal can land on an even step).
    ticks = set(range(2, steps + 1, 2))
    assert ticks <= set(logged) <= ticks | {stopped_at}, sorted(set(logged))

    straight = ragan.train(
        "dcgan",
        data=tiny_prepared,
        out=tmp_path / "straight",
        config=TINY_MODEL,
        progress=False,
        steps=steps,
        **{**TINY_TRAINING, "checkpoint_every": 10},
    )
    final = f"checkpoints/ckpt-{steps:09d}.npz"
    assert_same_checkpoint(straight / final, out / final)


@pytest.mark.slow
def test_disk_full_while_writing_a_checkpoint(tiny_prepared, tmp_path):
    """Fault drill: a write that cannot complete names the file, leaves the previous checkpoint, and
    the same command succeeds once there is space again."""
    out = tmp_path / "run"
    command = ragan_command(
        "train",
        "dcgan",
        "--data",
        str(tiny_prepared),
        "--out",
        str(out),
        *TINY_FLAGS,
        "--resume",
        "auto",
        "--quiet",
    )
    ragan.train("dcgan", data=tiny_prepared, out=out, config=TINY_MODEL, steps=4, progress=False, **TINY_TRAINING)
    manager = CheckpointManager(out / "checkpoints")
    size = manager.latest().stat().st_size

    full = subprocess.run(
        command + ["--steps", "8"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        preexec_fn=limit_file_size(size // 2),
    )
    assert full.returncode == 2, full.stderr
    errors = [line for line in ragan_lines(full.stderr) if line.startswith("ragan: error:")]
    assert errors == [f"ragan: error: {out / 'checkpoints' / 'ckpt-000000006.npz'}: File too large"], full.stderr
    assert "Traceback" not in full.stderr
    assert [p.name for p in manager.checkpoints()] == ["ckpt-000000002.npz", "ckpt-000000004.npz"]
    assert not list(manager.directory.glob("*.tmp"))
    assert CheckpointManager.verify(manager.latest())["step"] == 4

    again = subprocess.run(command + ["--steps", "8"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert again.returncode == 0, again.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "finished" and info["step"] == 8
