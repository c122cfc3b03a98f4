"""benchmarks/gpu_check.py: a clear refusal without a GPU, and its code run on tiny CPU settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.slow  # imports TensorFlow in a subprocess
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "no GPU" in result.stderr
    assert result.stdout == ""


@pytest.mark.slow
def test_the_measurement_runs_on_tiny_cpu_settings(tmp_path):
    tiny = {"latent_dim": 16, "w_dim": 16, "channel_base": 128, "channel_max": 16, "r1_interval": 0, "pl_weight": 0}
    out = tmp_path / "gpu.json"
    command = [sys.executable, str(SCRIPT), "--device", "cpu", "--cfgs", "small", "--size", "16", "--channels", "1"]
    command += ["--tick-steps", "1", "--ticks", "1", "--skip-mirrored", "--overrides", json.dumps(tiny)]
    result = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True, timeout=900, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())["speed"]
    assert [(row["precision"], row["policy"]) for row in rows] == [("fp32", "float32"), ("mixed", "mixed_float16")]
    assert all(row["finite"] and row["sec_per_kimg"] > 0 for row in rows)
    assert "small" in result.stdout and "mixed_float16" in result.stdout
