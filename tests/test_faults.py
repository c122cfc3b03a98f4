"""Fault drills for the stages that publish a folder: prepare, generate, evaluate.

Each drill runs the real CLI in a subprocess, breaks it (SIGTERM, kill -9, a full disk) and checks
that nothing half-written was published and that the same command afterwards gives the same result
as an uninterrupted run. A full disk is simulated with RLIMIT_FSIZE (writes fail with EFBIG, "File
too large"), which needs no root; the training drills are in test_preemption.py.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_preemption import limit_file_size, ragan_lines
from training_fixtures import tiny_generator_run

from tests.runs import ragan_command, run_cli

REPO = Path(__file__).resolve().parents[1]


def folder_digest(folder: Path, ignore=()) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in ignore
    }


def leftovers(out: Path) -> list[str]:
    """Hidden work folders next to ``out`` (``.<name>.ragan-partial`` and the like)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def interrupt_once_started(command: list[str], started, how: int) -> subprocess.CompletedProcess:
    """Run ``command``; send signal ``how`` once ``started()`` is true; return the finished process."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None and not started():
            time.sleep(0.02)
        assert process.poll() is None, f"the command ended before it could be interrupted: {process.stderr.read()}"
        process.send_signal(how)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory) -> Path:
    """A run folder with a tiny conditional DCGAN (untrained: the drills are about files, not quality)."""
    return tiny_generator_run(tmp_path_factory.mktemp("generator"))


@pytest.mark.slow
def test_generate_sigterm_kill_9_and_full_disk_publish_nothing_then_the_same_command_matches(generator_run, tmp_path):
    from ragan.generation import generate

    args = ["generate", generator_run, "--n", "3000", "--batch-size", "64", "--quiet"]
    generate(generator_run, 3000, tmp_path / "reference", progress=False)  # the defaults of the CLI
    expected = folder_digest(tmp_path / "reference")
    assert len(expected) == 3001  # 3000 PNGs and generation.json

    out = tmp_path / "synthetic"
    partial = out.parent / f".{out.name}.ragan-partial"
    command = ragan_command(*args, "--out", out)

    def writing() -> bool:
        return partial.is_dir() and any(partial.rglob("*.png"))

    stopped = interrupt_once_started(command, writing, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    assert ragan_lines(stopped.stderr) == ["ragan: interrupted by SIGTERM; re-run the same command to continue."]
    assert not out.exists() and leftovers(out) == []

    killed = interrupt_once_started(command, writing, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()  # the partial folder may stay; it is never published

    full = run_cli(*args, "--out", out, preexec_fn=limit_file_size(200))  # PNGs of 16x16 noise are larger
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    (line,) = ragan_lines(full.stderr)
    assert line.startswith("ragan: error: ") and line.endswith("File too large") and str(out) in line
    assert not out.exists() and leftovers(out) == []

    again = run_cli(*args, "--out", out)
    assert again.returncode == 0, again.stderr
    assert folder_digest(out) == expected
    assert leftovers(out) == []


@pytest.fixture(scope="module")
def evaluation_inputs(tmp_path_factory, generator_run) -> tuple[Path, Path]:
    """A real prepared dataset (the bundled PneumoniaMNIST sample at 16 px) and synthetic TFRecords."""
    import ragan
    from ragan.generation import generate

    root = tmp_path_factory.mktemp("evaluation")
    real = root / "real"
    ragan.prepare_dataset("sample:pneumoniamnist", real, image_size=16, num_workers=0, progress=False)
    synthetic = root / "synthetic"
    generate(generator_run, 200, synthetic, format="tfrecord", progress=False)
    return real, synthetic


@pytest.mark.slow
def test_evaluate_kill_9_sigterm_and_full_disk_then_the_same_command_gives_the_same_report(evaluation_inputs, tmp_path):
    real, synthetic = evaluation_inputs
    args = [
        "evaluate",
        "--real",
        real,
        "--synthetic",
        synthetic,
        "--no-study",
        "--no-memorisation",
        "--quick",
        "--epochs",
        "1",
        "--kid-subsets",
        "10",
        "--diversity-pairs",
        "20",
        "--quiet",
    ]

    def report(folder: Path) -> dict:
        data = json.loads((folder / "report.json").read_text())
        data.pop("created")
        return data

    reference = run_cli(*args, "--out", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    expected = report(tmp_path / "reference")
    files = sorted(p.name for p in (tmp_path / "reference").iterdir())

    out = tmp_path / "report"
    partial = out.parent / f".{out.name}.ragan-partial"
    command = ragan_command(*args, "--out", out)
    stopped = interrupt_once_started(command, partial.is_dir, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    assert ragan_lines(stopped.stderr)[-1] == "ragan: interrupted by SIGTERM; re-run the same command to continue."
    assert not out.exists() and leftovers(out) == []
    killed = interrupt_once_started(command, partial.is_dir, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL and not out.exists()

    full = run_cli(*args, "--out", out, preexec_fn=limit_file_size(16 << 10))  # the report's files are larger
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    line = ragan_lines(full.stderr)[-1]
    assert line.startswith("ragan: error: ") and ("File too large" in line) and str(out) in line, full.stderr
    assert not out.exists() and leftovers(out) == []

    again = run_cli(*args, "--out", out)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in out.iterdir()) == files
    assert report(out) == expected


@pytest.mark.slow
def test_prepare_full_disk_publishes_nothing_then_the_same_command_matches(tmp_path):
    args = ["prepare", "sample:pneumoniamnist", "--image-size", "16", "--workers", "0", "--quiet"]
    reference = run_cli(*args, "--out", tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr
    expected = folder_digest(tmp_path / "reference", ignore={"manifest.json"})

    out = tmp_path / "prepared"
    full = run_cli(*args, "--out", out, preexec_fn=limit_file_size(8 << 10))  # shards (and the array cache) are larger
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    line = ragan_lines(full.stderr)[-1]
    assert line.startswith("ragan: error: ") and "File too large" in line and str(out.name) in line, full.stderr
    assert not out.exists()

    again = run_cli(*args, "--out", out)
    assert again.returncode == 0, again.stderr
    assert folder_digest(out, ignore={"manifest.json"}) == expected
    assert leftovers(out) == []
