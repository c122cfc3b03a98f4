"""The README's main job (`ragan demo`) end to end on the bundled sample, and its resume."""

import json
import subprocess
import sys

import pytest

from tests.runs import ragan_command


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_and_resumes(tmp_path):
    out = tmp_path / "demo"
    command = ragan_command(
        "demo",
        "--out",
        str(out),
        "--kimg",
        "0.128",
        "--image-size",
        "16",
        "--n",
        "400",
        "--quick",
    )
    first = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    manifest = json.loads((out / "prepared" / "manifest.json").read_text())
    assert manifest["class_names"] == ["normal", "pneumonia"] and manifest["image_size"] == 16
    run = json.loads((out / "run" / "run.json").read_text())
    assert run["status"] == "finished" and (out / "run" / "model.keras").is_file()
    assert list((out / "run" / "samples").glob("*.png"))
    synthetic = json.loads((out / "synthetic" / "manifest.json").read_text())
    assert synthetic["synthetic"] is True and synthetic["splits"]["train"]["num_examples"] == 400
    # In the real training split's class proportions, so that every mix arm can be served.
    real_counts = manifest["splits"]["train"]["class_counts"]
    synthetic_counts = synthetic["splits"]["train"]["class_counts"]
    real_total = sum(real_counts.values())
    for name, count in real_counts.items():
        assert abs(synthetic_counts[name] - 400 * count / real_total) <= 1
    report = json.loads((out / "report" / "report.json").read_text())
    arms = {arm["name"] for arm in report["study"]["arms"]}
    assert {"real", "real+synthetic@0.2", "real+synthetic@0.5", "count_matched@0.5", "synthetic_only"} <= arms
    assert (out / "report" / "report.html").is_file()
    for name in ("sample grids", "MLflow", "synthetic images", "report"):
        assert name in first.stdout
    # The first screen, in the terminal too: --quick is a smoke test, and the privacy audit's sentences.
    assert "Smoke test (--quick), not a verdict." in first.stdout
    assert "An attacker with the synthetic set " in first.stdout
    assert "An attacker with the GAN's discriminator " in first.stdout
    assert {attack["key"] for attack in report["privacy"]["attacks"]} == {"feature", "pixel", "discriminator"}

    # Re-running reuses the prepared data and resumes the finished run instead of starting over.
    second = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already at" in second.stdout and "(resuming)" in second.stdout
