"""The runnable examples: each one's ``--quick`` mode runs in a subprocess and writes its outputs.

Subprocesses, because the examples are scripts run as ``python examples/x.py`` (and two of them
configure TensorFlow devices or start worker processes, which must happen before TF starts).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_example(name: str, out: Path, *extra: str, timeout: int = 600) -> str:
    """Run ``examples/<name>.py --quick --out OUT``; return its stdout, failing with its stderr."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "MLFLOW_TRACKING_URI")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--quick", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=out.parent,
    )
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result.stdout


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_finished_run(run: Path, gan: str = "dcgan") -> dict:
    info = read_json(run / "run.json")
    assert info["status"] == "finished" and info["gan"] == gan
    assert (run / "model.keras").is_file() and (run / "config.json").is_file()
    assert list((run / "samples").glob("grid-*.png"))
    return info


def test_every_example_has_a_docstring_with_quick_and_is_listed_in_the_readme():
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 6
    for script in scripts:
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        assert docstring and "--quick" in docstring, f"{script.name}: the docstring must say how to run --quick"
        assert f"examples/{script.name}" in readme, f"{script.name} is missing from examples/README.md"


@pytest.mark.slow
def test_quick_start(tmp_path):
    out = tmp_path / "quick"
    stdout = run_example("quick_start", out)
    assert read_json(out / "prepared" / "manifest.json")["class_names"] == ["normal", "pneumonia"]
    assert_finished_run(out / "run")
    synthetic = read_json(out / "synthetic" / "manifest.json")
    assert synthetic["synthetic"] and synthetic["splits"]["train"]["num_examples"] == 64
    assert (out / "report" / "report.html").is_file() and (out / "report" / "report.json").is_file()
    assert str(out / "report" / "report.html") in stdout


def test_dicom_input_windows_groups_patients_and_leaks_no_phi(tmp_path):
    out = tmp_path / "dicom"
    stdout = run_example("dicom_input", out)
    windowed = read_json(out / "prepared-window" / "manifest.json")
    full = read_json(out / "prepared-16bit" / "manifest.json")
    assert (windowed["dtype"], full["dtype"]) == ("uint8", "uint16")
    assert windowed["options"]["bit_depth"] == 8 and full["options"]["bit_depth"] == 16
    # 6 demo patients x 3 slices; every patient's slices share one split.
    for manifest in (windowed, full):
        assert len(manifest["sources"]) == 18
        splits_of = {}
        for source in manifest["sources"]:
            splits_of.setdefault(source["group"], set()).add(source["split"])
        assert len(splits_of) == 6 and all(len(s) == 1 for s in splits_of.values())
    # The demo's patient data (written into the input headers) appears in no output file.
    outputs = [p for p in out.glob("prepared-*/*") if p.is_file()]
    assert outputs
    for secret in (b"DEMO-PATIENT", b"Doe^Jane", b"Demo General Hospital", b"19700101"):
        assert all(secret not in p.read_bytes() for p in outputs), secret
    assert "none found in the output" in stdout


@pytest.mark.slow
def test_custom_folder_dataset_on_brain_mri(tmp_path, brain_mri_dir):
    out = tmp_path / "mri"
    run_example("custom_folder_dataset", out, "--data", str(brain_mri_dir / "Training"))
    manifest = read_json(out / "prepared" / "manifest.json")
    assert manifest["class_names"] == sorted(p.name for p in (brain_mri_dir / "Training").iterdir() if p.is_dir())
    assert manifest["image_size"] == 16 and manifest["options"]["resize_mode"] == "pad"
    # Grouped by the example's patient CSV: no group in two splits.
    splits_of = {}
    for source in manifest["sources"]:
        splits_of.setdefault(source["group"], set()).add(source["split"])
    assert all(len(s) == 1 for s in splits_of.values())
    assert_finished_run(out / "run")
    # Per class: topped up to the largest class plus 2, in one folder per class.
    counts = manifest["splits"]["train"]["class_counts"]
    for name, count in counts.items():
        generated = list((out / "synthetic" / name).glob("*.png"))
        assert len(generated) == max(counts.values()) - count + 2, name


@pytest.mark.slow
def test_custom_gan_through_the_cli(tmp_path):
    out = tmp_path / "lsgan"
    stdout = run_example("custom_gan", out)
    assert "generator_target" in stdout  # `ragan hparams lsgan` listed the new hyperparameter
    info = assert_finished_run(out / "run", gan="lsgan")
    assert info["conditional"] is True
    config = read_json(out / "run" / "config.json")
    assert config["model"] == "lsgan"
    assert (
        len(list((out / "synthetic" / "normal").glob("*.png"))),
        len(list((out / "synthetic" / "pneumonia").glob("*.png"))),
    ) == (16, 16)
    assert "loaded LSGAN" in stdout


@pytest.mark.slow
def test_augmentation_study(tmp_path):
    out = tmp_path / "study"
    run_example("augmentation_study", out)
    study = read_json(out / "report" / "study.json")
    arms = {arm["name"] for arm in study["arms"]}
    assert {"real", "real+synthetic@0.2", "count_matched@0.2"} <= arms
    assert (out / "report" / "report.html").is_file()
    mixed = read_json(out / "mixed" / "manifest.json")
    real = read_json(out / "prepared" / "manifest.json")
    n_real = real["splits"]["train"]["num_examples"]
    assert mixed["splits"]["train"]["num_examples"] == n_real + round(0.2 / 0.8 * n_real)
    assert mixed["splits"]["test"] == real["splits"]["test"]


@pytest.mark.slow
def test_distributed_training_mirrored_and_two_workers(tmp_path):
    out = tmp_path / "distributed"
    stdout = run_example("distributed_training", out)
    assert "mirrored over 2 devices" in stdout
    assert "multi-worker over 2 workers (2 replicas)" in stdout
    for run in ("mirrored", "multi_worker"):
        assert assert_finished_run(out / run)["step"] == 4
    assert "multi-worker over 2 workers" in (out / "worker-1.log").read_text()


@pytest.mark.slow
def test_tune_quick(tmp_path):
    out = tmp_path / "tune"
    stdout = run_example("tune_quick", out)
    study = out / "study"
    for summary in ("trials.csv", "trials.md", "trials.png"):
        assert (study / summary).is_file(), summary
    rows = (study / "trials.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2  # a header and the two trials of --quick
    assert_finished_run(study / "best")
    synthetic = read_json(out / "synthetic" / "manifest.json")
    assert synthetic["synthetic"] is True and synthetic["splits"]["train"]["num_examples"] == 40
    assert "best trial" in stdout and "kid=" in stdout


@pytest.mark.slow
@pytest.mark.skipif(
    not (REPO.parent / "shared" / "data" / "stylegan2_ada_fixtures").is_dir(),
    reason="../shared/data/stylegan2_ada_fixtures (the official-format test networks) is absent",
)
def test_transfer_learning_from_an_official_pickle(tmp_path):
    out = tmp_path / "tl"
    stdout = run_example("transfer_learning", out)
    assert "imported sg2ada-32px-gray-uncond.pkl" in stdout
    assert len(list((out / "before").rglob("*.png"))) == 8 and len(list((out / "after").rglob("*.png"))) == 8
    info = read_json(out / "finetuned" / "run.json")
    assert info["status"] == "finished"
    config = read_json(out / "finetuned" / "config.json")
    assert config["model_config"]["freeze_d"] == 4 and config["model_config"]["channel_max"] == 64
