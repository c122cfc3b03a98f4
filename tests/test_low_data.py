"""benchmarks/low_data.py: the low-data table's pieces, and its --quick run end to end (resumed from its cache)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "low_data.py"
PNEUMONIA = REPO.parent / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist.npz"


def load_script():
    spec = importlib.util.spec_from_file_location("low_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["low_data"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_script(*args, timeout=900):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def test_subsets_are_stratified_and_nested():
    low_data = load_script()
    labels = np.repeat([0, 1, 2], [100, 300, 40])
    small, large = low_data.nested_subset(labels, 0.05, 0), low_data.nested_subset(labels, 0.25, 0)
    assert np.bincount(labels[small]).tolist() == [5, 15, 2]
    assert np.bincount(labels[large]).tolist() == [25, 75, 10]
    assert set(small) <= set(large)  # labelling more images keeps the ones already labelled
    assert not np.array_equal(small, low_data.nested_subset(labels, 0.05, 1))


def test_the_next_fraction_and_the_synthetic_fraction_of_a_count():
    low_data = load_script()
    assert [low_data.next_fraction(f) for f in (0.05, 0.1, 0.25)] == [0.1, 0.25, 0.5]
    # The study adds round(f / (1 - f) * n_real) synthetic images: 0.5x, 1x and 3x the real count.
    for multiplier in (0.5, 1.0, 3.0):
        f = low_data.synthetic_fraction_of(multiplier)
        assert round(f / (1 - f) * 236) == round(multiplier * 236)


def test_refuses_a_cache_inside_the_repository_in_one_line():
    result = run_script("--cache", REPO / "cache-here", "--estimate", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "outside the repository" in result.stderr
    assert not (REPO / "cache-here").exists()


@pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"{PNEUMONIA} (the shared test data) is absent")
def test_estimate_prints_every_stage_and_a_total_without_training(tmp_path):
    result = run_script("--cache", tmp_path / "cache", "--estimate", "--datasets", "pneumoniamnist", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pretraining" in result.stdout and "count-matched 3x" in result.stdout and "all:" in result.stdout
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"{PNEUMONIA} (the shared test data) is absent")
def test_a_freeze_d_choice_from_an_earlier_run_skips_the_first_row_variants(tmp_path):
    def stylegan2_runs(*extra):
        args = ("--cache", tmp_path / "cache", "--estimate", "--datasets", "pneumoniamnist", "--fractions", "0.1")
        result = run_script(*args, *extra, timeout=120)
        assert result.returncode == 0, result.stderr
        (line,) = [line for line in result.stdout.splitlines() if "StyleGAN2 small, 30 kimg each" in line]
        return int(line.split("each")[1].split("x")[0])

    # The first row trains sg2, the transfer, the Freeze-D transfer and the fixed-augment variant ...
    assert stylegan2_runs() == 4
    # ... unless an earlier run's first row chose Freeze-D: then sg2 and the chosen transfer only.
    assert stylegan2_runs("--freeze-d-choice", "0") == 2
    low_data = load_script()
    settings, _ = low_data.parse_settings(["--cache", str(tmp_path / "cache"), "--freeze-d-choice", "4"])
    experiment = low_data.Experiment(settings, low_data.Clock())
    assert experiment.freeze_choice == 4 and experiment.first_row_done
    refused = run_script("--cache", tmp_path / "cache", "--estimate", "--freeze-d-choice", "-1", timeout=120)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "low_data.py: --freeze-d-choice -1: a number of discriminator layers, 0 or more."
    )


@pytest.mark.slow
@pytest.mark.skipif(not PNEUMONIA.is_file(), reason=f"{PNEUMONIA} (the shared test data) is absent")
def test_quick_run_measures_every_arm_and_a_second_run_takes_everything_from_the_cache(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ("--cache", cache, "--out", out, "--quick")
    first = run_script(*args)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert (out / "table.md").is_file() and (out / "low-data.png").stat().st_size > 10_000
    (row,) = results["datasets"]["pneumoniamnist"]["rows"]
    assert row["fraction"] == 0.05 and row["num_labelled"] == 236 and row["next_fraction"] == 0.1
    arms = {arm["name"]: arm for arm in row["arms"]}
    expected = {"real", "real_aug", "real@10%", "count_matched@0.5x", "count_matched@1x", "count_matched@3x"}
    for generator in ("dcgan", "sg2", "sg2_transfer", "sg2_transfer_freezed"):
        expected |= {f"{generator}+syn@1x", f"{generator}:synthetic_only"}
    best = row["choices"]["best_generator"]["chosen"]
    expected |= {f"{best}+syn@1x psi0.7", f"{best}+syn@0.5x", f"{best}+syn@3x"}
    assert expected <= set(arms), expected - set(arms)
    # The best generator is the one with the highest validation AUC (never the test AUC).
    val = row["choices"]["best_generator"]["val_auc"]
    assert val[best] == max(v for v in val.values() if v is not None)
    assert all(
        len(arm["runs"]) == 2 and 0 <= arm["auc_ci_low"] <= arm["auc_mean"] <= arm["auc_ci_high"]
        for arm in arms.values()
    )
    assert arms[f"{best}+syn@3x"]["composition"] == {"real": 236, "synthetic": 708, "repeated_real": 0}
    assert arms["count_matched@1x"]["composition"]["repeated_real"] == 236
    # Every real + synthetic arm against real, real + augmentation, its control and the next fraction's real arm.
    baselines = {c["baseline"] for c in row["comparisons"] if c["arm"] == "dcgan+syn@1x"}
    assert baselines == {"real", "real_aug", "count_matched@1x", "real@10%"}
    assert all(c["verdict"] in ("helps", "no evidence either way", "hurts", "no verdict") for c in row["comparisons"])
    # Every GAN run reports ADA's p and E[sign(D(real))] at its end; the Freeze-D choice is made by validation.
    for name in ("sg2", "sg2_transfer", "sg2_transfer_freezed"):
        final = row["gans"][name]["final"]
        assert row["gans"][name]["status"] == "finished" and -1 <= final["real_sign"] <= 1 and final["augment_p"] >= 0
    assert row["choices"]["freeze_d"]["chosen"] in (0, 1)
    assert results["datasets"]["pneumoniamnist"]["pretraining"]["status"] == "finished"
    assert "E[sign(D(real))]" in first.stdout and "| real |" in (out / "table.md").read_text()

    second = run_script(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    # Nothing ran again: every stage (the deterministic refusal of the filter's set included) came from the cache.
    lines = second.stdout.splitlines()
    assert sum(": cached" in line for line in lines) > 20
    assert not [line for line in lines if line.endswith(" ...") or "done in" in line]
    again = json.loads((out / "results.json").read_text())
    assert [a["auc_mean"] for a in again["datasets"]["pneumoniamnist"]["rows"][0]["arms"]] == [
        a["auc_mean"] for a in row["arms"]
    ]
