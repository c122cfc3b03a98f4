"""Tests of ``ragan.tune`` / ``ragan tune``: search space, objective, tuners, failures, resume.

The studies are tiny (16 px, 1 channel, 64 training and 32 held-out images, 8 base filters,
trials of 0.08 kimg = 5 steps of 16 images) so that each trial takes seconds on a CPU.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from training_fixtures import tiny_images, tiny_prepared  # noqa: F401  (pytest fixture)

from ragan.cli.main import main
from ragan.data.manifest import Manifest, SplitInfo, shard_name
from ragan.data.tfrecord import ShardWriter
from ragan.errors import RaganError
from tests.runs import ragan_command, run_main

REPO = Path(__file__).resolve().parents[1]
# Fixed hyperparameters that keep every trial tiny; each test leaves something to search.
TINY = {"base_filters": 8, "latent_dim": 16, "batch_size": 16, "log_every": 5, "beta_1": 0.5}
TRIAL_KIMG = 0.08  # 5 steps of 16 images


def make_study_data(
    directory: Path, *, train: int = 64, held_out: int = 32, split: str = "val", labelled: bool = True
) -> Path:
    """A prepared dataset with a ``train`` and a held-out split, written with the real writer."""
    directory.mkdir(parents=True, exist_ok=True)
    images, labels = tiny_images(train + held_out)
    class_names = ["disc", "bar"] if labelled else []
    splits = {}
    for name, part in (("train", slice(0, train)), (split, slice(train, None))):
        with ShardWriter(directory / shard_name(name, 0, 1)) as writer:
            for index in range(len(images))[part]:
                writer.write(images[index], label=int(labels[index]) if labelled else -1, source_id=index)
        counts = {c: int(np.sum(labels[part] == k)) for k, c in enumerate(class_names)}
        splits[name] = SplitInfo(num_examples=len(labels[part]), class_counts=counts, shards=[writer.info()])
    Manifest(
        image_size=16,
        channels=1,
        dtype="uint8",
        class_names=class_names,
        labelled=labelled,
        splits=splits,
        source={"kind": "test", "path": "tiny_images"},
        sources=[{"path": f"tiny[{i}]", "sha256": "0" * 64} for i in range(len(images))],
    ).write(directory)
    return directory


@pytest.fixture(scope="session")
def study_data(tmp_path_factory) -> Path:
    return make_study_data(tmp_path_factory.mktemp("study_data"))


def _mlflow_runs(tracking_uri: str, experiment: str = "ragan") -> dict:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return {run.info.run_id: run for run in client.search_runs([found.experiment_id])}, client


def _checkpoint_iterations(path: Path) -> dict:
    """``{optimizer variable path: value}`` of the optimizers' iteration counters in a checkpoint."""
    with np.load(path) as data:
        meta = json.loads(bytes(data["__meta__"]).decode("utf-8"))
        return {
            record["path"]: int(data[f"v{index:05d}"])
            for index, record in enumerate(meta["variables"])
            if record["path"].endswith("/iteration")
        }


# ---------------------------------------------------------------------------------------------
# Search space
# ---------------------------------------------------------------------------------------------
def test_search_space_is_the_declared_ranges():
    from ragan.registry import get_gan
    from ragan.training.config import TrainConfig
    from ragan.tuning.hypermodel import build_search_space

    space = build_search_space("wgan_gp")
    declared = [s for s in get_gan("wgan_gp").config_class.hparams() if s.tune is not None]
    declared += [s for s in TrainConfig.hparams() if s.tune is not None]
    assert [(d.name, d.range) for d in space.searched] == [(s.name, s.tune) for s in declared]
    assert {d.origin for d in space.dimensions} == {"declared"}
    assert "gp_weight" in [d.name for d in space.searched]  # a model-specific declaration


def _samples(space, count=40):
    """``count`` configs drawn with random values of every searched dimension."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    space.draw(hp)
    configs = []
    for seed in range(count):
        drawn = hp.copy()
        drawn.values = {p.name: p.random_sample(seed * 31 + 7) for p in hp.space}
        configs.append(space.draw(drawn))
    return configs


def test_search_space_fix_narrow_widen_and_choices():
    from ragan.config import Float
    from ragan.tuning.hypermodel import build_search_space

    space = build_search_space(
        "dcgan",
        {
            "latent_dim": 64,  # fixed
            "g_learning_rate": [1e-4, 5e-4],  # narrowed, keeps log sampling
            "beta_1": [0.5],  # a declared choice, narrowed
            "ema_decay": {"min": 0.99, "max": 0.999},  # not declared: a user range
            "d-learning-rate": {"choices": [1e-4, 3e-4]},  # a float as a choice
            "batch_size": 16,  # a training option, fixed
        },
    )
    by_name = {d.name: d for d in space.dimensions}
    assert by_name["latent_dim"].origin == "fixed" and by_name["latent_dim"].value == 64
    assert by_name["g_learning_rate"].range == Float(1e-4, 5e-4, sampling="log")
    assert by_name["g_learning_rate"].origin == "narrowed"
    assert by_name["ema_decay"].origin == "user" and by_name["ema_decay"].section == "model"
    assert by_name["batch_size"].section == "training"
    configs = _samples(space)
    assert {c.model_config.latent_dim for c in configs} == {64}
    assert all(1e-4 <= c.model_config.g_learning_rate <= 5e-4 for c in configs)
    assert {c.model_config.d_learning_rate for c in configs} == {1e-4, 3e-4}
    assert {c.model_config.beta_1 for c in configs} == {0.5}
    assert all(0.99 <= c.model_config.ema_decay <= 0.999 for c in configs)
    assert len({c.model_config.ema_decay for c in configs}) > 10
    assert {c.training["batch_size"] for c in configs} == {16}
    # Untouched declared ranges are still searched.
    assert {c.model_config.base_filters for c in configs} == {32, 64, 128}


@pytest.mark.parametrize(
    "search, message",
    [
        ({"latent_dm": 64}, "Did you mean 'latent_dim'"),
        ({"kimg": 5}, "training length"),
        ({"steps": 5}, "training length"),
        ({"beta_1": 2.0}, "above its maximum"),
        ({"g_learning_rate": [1e-3, 1e-4]}, "low <= high"),
        ({"g_learning_rate": {"min": 0.0, "max": 1e-3}}, "log sampling needs min > 0"),
        ({"ema_decay": [0.9, 0.99]}, "ambiguous"),
        ({"ema_decay": {"min": 0.9}}, "a range is written"),
        ({"augment": {"min": 1, "max": 2}}, "only int and float"),
        (
            {
                "latent_dim": 64,
                "base_filters": 8,
                "g_learning_rate": 1e-4,
                "d_learning_rate": 1e-4,
                "beta_1": 0.5,
                "batch_size": 16,
            },
            "every hyperparameter of the study is fixed",
        ),
    ],
)
def test_search_space_errors_are_one_line(search, message):
    from ragan.tuning.hypermodel import build_search_space

    with pytest.raises(RaganError, match=message) as caught:
        build_search_space("dcgan", search)
    assert "\n" not in str(caught.value)


def test_search_file_then_flags(tmp_path):
    from ragan.cli.main import build_parser
    from ragan.cli.tune import search_from_args
    from ragan.tuning.hypermodel import build_search_space

    search_file = tmp_path / "search.yaml"
    search_file.write_text("latent_dim: 64\ng_learning_rate: [0.0001, 0.0005]\nd_steps: {choices: [1, 2]}\n")
    argv = [
        "tune",
        "dcgan",
        "--data",
        "d",
        "--out",
        "o",
        "--search",
        str(search_file),
        "--set",
        "latent_dim=128",
        "base_filters=32",
        "--range",
        "ema_decay=0.99,0.9999,log",
        "--choices",
        "beta_1=0.0",
    ]
    args = build_parser(argv).parse_args(argv)
    spec = search_from_args(args)
    space = {d.name: d for d in build_search_space("dcgan", spec).dimensions}
    assert space["latent_dim"].value == 128  # the flag wins over the file
    assert space["base_filters"].value == 32
    assert space["g_learning_rate"].describe() == "log 0.0001..0.0005"
    assert space["d_steps"].range.values == (1, 2)
    assert space["ema_decay"].describe() == "log 0.99..0.9999"
    assert space["beta_1"].range.values == (0.0,)


def test_cli_help_shows_the_declared_search_space(capsys):
    from ragan.registry import get_gan

    with pytest.raises(SystemExit) as exit_info:
        main(["tune", "wgan_gp", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "search space of wgan_gp" in text
    for spec in get_gan("wgan_gp").config_class.hparams():
        if spec.tune is not None:
            line = next(line for line in text.splitlines() if line.strip().startswith(spec.name + " "))
            assert spec.tune.describe() in line


def test_cli_unknown_hyperparameter_is_one_line_error(study_data, tmp_path, capsys):
    code, out, err = run_main(
        [
            "tune",
            "dcgan",
            "--data",
            str(study_data),
            "--out",
            str(tmp_path / "s"),
            "--set",
            "latent_dm=64",
            "--dry-run",
        ],
        capsys,
    )
    assert code == 2
    assert err.count("\n") == 1 and "Did you mean 'latent_dim'" in err
    assert not (tmp_path / "s").exists()


def test_cli_dry_run_prints_the_resolved_study(study_data, tmp_path, capsys):
    code, out, err = run_main(
        [
            "tune",
            "dcgan",
            "--data",
            str(study_data),
            "--out",
            str(tmp_path / "s"),
            "--tuner",
            "hyperband",
            "--max-kimg",
            "0.9",
            "--factor",
            "3",
            "--range",
            "g_learning_rate=1e-4,2e-4",
            "--set",
            "batch_size=16",
            "--dry-run",
        ],
        capsys,
    )
    assert code == 0, err
    described = json.loads(out)
    assert described["tuner"] == "hyperband"
    assert described["budget"]["max_epochs"] == 9 and described["budget"]["min_kimg"] == pytest.approx(0.1)
    assert described["search_space"]["g_learning_rate"] == "log 0.0001..0.0002"
    assert described["search_space"]["batch_size"] == "fixed 16"
    assert not (tmp_path / "s").exists()


def test_study_needs_a_held_out_split(tiny_prepared, tmp_path):  # noqa: F811 (fixture)
    import ragan

    with pytest.raises(RaganError, match="no held-out split"):
        ragan.tune("dcgan", tiny_prepared, tmp_path / "s", search=TINY, kimg_per_trial=TRIAL_KIMG)
    assert not (tmp_path / "s").exists()


def test_budget_in_kimg():
    from ragan.tuning.config import TuneConfig
    from ragan.tuning.tuner import trial_kimg

    budget = TuneConfig(tuner="hyperband", kimg_per_trial=20.0, max_kimg=0.45, factor=3).budget()
    assert budget["max_epochs"] == 9 and budget["kimg_per_epoch"] == pytest.approx(0.05)
    # 3 epochs of 0.05 kimg must be 0.15 kimg exactly (not 0.15000000000000002 -> an extra step).
    assert trial_kimg(budget, {"tuner/epochs": 3}) == 0.15
    assert trial_kimg(budget, {"tuner/epochs": 9}) == pytest.approx(0.45)
    assert trial_kimg(TuneConfig(kimg_per_trial=2.5).budget(), {}) == 2.5
    with pytest.raises(RaganError, match="max_kimg/min_kimg >= factor"):
        TuneConfig(tuner="hyperband", kimg_per_trial=1.0, max_kimg=1.0, min_kimg=0.5, factor=3).budget()
    with pytest.raises(RaganError, match="kimg_per_trial"):
        TuneConfig(kimg_per_trial=0)


# ---------------------------------------------------------------------------------------------
# KerasTuner internals (ragan/tuning/_keras_tuner.py)
# ---------------------------------------------------------------------------------------------
def test_keras_tuner_internals_ragan_relies_on_are_there():
    import keras_tuner

    from ragan.tuning import _keras_tuner

    missing = _keras_tuner.missing_internals()
    assert not missing, (
        f"keras-tuner {keras_tuner.__version__} changed internals ragan relies on: {'; '.join(missing)}. "
        f"ragan is tested with keras-tuner{_keras_tuner.TESTED_RANGE}; adapt ragan/tuning/_keras_tuner.py "
        "(and its users) or keep the pin in setup.py."
    )


def test_keras_tuner_tested_range_is_the_pin_in_setup_py():
    import keras_tuner
    from packaging.specifiers import SpecifierSet

    from ragan.tuning._keras_tuner import TESTED_RANGE

    setup = (Path(__file__).resolve().parents[1] / "setup.py").read_text(encoding="utf-8")
    assert f'"keras-tuner{TESTED_RANGE}"' in setup, f"setup.py no longer pins keras-tuner{TESTED_RANGE}"
    assert keras_tuner.__version__ in SpecifierSet(TESTED_RANGE), (
        f"installed keras-tuner {keras_tuner.__version__} is outside the tested range {TESTED_RANGE}"
    )


def test_only_the_internals_module_imports_keras_tuner_src():
    root = Path(__file__).resolve().parents[1] / "ragan"
    users = sorted(
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if "keras_tuner.src" in path.read_text(encoding="utf-8") and path.name != "_keras_tuner.py"
    )
    assert users == [], f"import KerasTuner's private modules through ragan/tuning/_keras_tuner.py: {users}"


@pytest.mark.parametrize(
    "owner, name, replacement, named",
    [
        ("keras_tuner.engine.base_tuner.BaseTuner", "_try_run_and_update_trial", None, "_try_run_and_update_trial"),
        ("keras_tuner.src.distribute.oracle_chief", "exit_chief", lambda oracle, force: True, "exit_chief"),
        ("keras_tuner.src.config", "DEBUG", None, "keras_tuner.src.config.DEBUG"),
    ],
)
def test_a_changed_keras_tuner_internal_is_a_one_line_error(monkeypatch, owner, name, replacement, named):
    from ragan.tuning import _keras_tuner

    target = _keras_tuner._resolve(owner)
    if replacement is None:
        monkeypatch.delattr(target, name)
    else:
        monkeypatch.setattr(target, name, replacement)
    _keras_tuner.require_internals.cache_clear()
    try:
        with pytest.raises(RaganError) as raised:
            _keras_tuner.require_internals()
    finally:
        _keras_tuner.require_internals.cache_clear()
    message = str(raised.value)
    assert "\n" not in message and named in message
    assert "keras-tuner>=1.4.8,<1.5" in message and "lacks internals" in message


def test_a_missing_private_function_is_a_one_line_error_where_ragan_calls_it(monkeypatch):
    from ragan.tuning import _keras_tuner

    monkeypatch.delattr(_keras_tuner._resolve("keras_tuner.src.distribute.utils"), "is_chief_oracle")
    _keras_tuner.require_internals.cache_clear()
    try:
        with pytest.raises(RaganError, match=r"keras_tuner\.src\.distribute\.utils\.is_chief_oracle.*keras-tuner>="):
            _keras_tuner.is_chief_oracle()
    finally:
        _keras_tuner.require_internals.cache_clear()


# ---------------------------------------------------------------------------------------------
# Objective pieces
# ---------------------------------------------------------------------------------------------
def test_resolve_metric():
    from ragan.tuning.objective import resolve_metric

    assert resolve_metric("fid") == ("fid", "fid")
    name, function = resolve_metric("numpy:mean")
    assert name == "mean" and function is np.mean
    with pytest.raises(RaganError, match="Did you mean 'mean'"):
        resolve_metric("numpy:maen")
    with pytest.raises(RaganError, match="cannot import"):
        resolve_metric("no_such_module_xyz:f")
    with pytest.raises(RaganError, match="Did you mean 'kid'"):
        resolve_metric("kdi")


def test_pixel_extractor_features_are_the_downsampled_images():
    from ragan.tuning.objective import pixel_extractor

    images = np.random.default_rng(0).uniform(-1, 1, size=(3, 64, 64, 1)).astype(np.float32)
    extractor = pixel_extractor(64, 1)
    features = extractor(images)
    assert extractor.name == "pixels_32x32" and features.shape == (3, 32 * 32)
    # Area downsampling by 2 = the mean of each 2x2 block.
    expected = images.reshape(3, 32, 2, 32, 2).mean(axis=(2, 4)).reshape(3, -1)
    np.testing.assert_allclose(features, expected, atol=1e-5)


def test_summary_files(tmp_path):
    from PIL import Image

    from ragan.tuning.tuner import write_summary

    rows = [
        {
            "trial_id": str(i),
            "status": status,
            "value": value,
            "std": None,
            "extractor": "pixels_16x16",
            "kimg": 0.08,
            "steps": 5,
            "seconds": 1.0,
            "continued_from": None,
            "tuner_id": "tuner0",
            "attempts": 1,
            "mlflow_run_id": None,
            "hyperparameters": {"g_learning_rate": lr},
            "message": message,
        }
        for i, (status, value, lr, message) in enumerate(
            [
                ("COMPLETED", 0.3, 1e-4, ""),
                ("FAILED", None, 1e30, "training diverged: g_loss=nan"),
                ("COMPLETED", 0.1, 2e-4, ""),
            ]
        )
    ]
    paths = write_summary(tmp_path, rows, "kid")
    assert [p.name for p in paths] == ["trials.csv", "trials.md", "trials.png"]
    with open(tmp_path / "trials.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["status"] for r in table] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert float(table[2]["kid"]) == 0.1 and table[1]["kid"] == ""
    assert "diverged" in table[1]["message"] and float(table[1]["g_learning_rate"]) == 1e30
    assert "pixels_16x16" in (tmp_path / "trials.md").read_text()
    with Image.open(tmp_path / "trials.png") as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    assert image.size == (720, 380)
    # Not blank: mostly white background, but with drawn text, axes and markers.
    assert (pixels != 255).any(axis=-1).mean() > 0.01 and (pixels == 255).all(axis=-1).mean() > 0.5
    # The failed trial's red cross and the completed trials' blue dots are drawn.
    assert np.any(np.all(pixels == (214, 39, 40), axis=-1))
    assert np.any(np.all(pixels == (31, 119, 180), axis=-1))
    # The plot follows the trial values: other values, another picture; no failed trial, no red cross.
    rows[1].update(status="COMPLETED", value=0.2)
    rows[2]["value"] = 0.05
    write_summary(tmp_path, rows, "kid")
    with Image.open(tmp_path / "trials.png") as image:
        changed = np.asarray(image.convert("RGB"))
    assert changed.shape == pixels.shape and np.any(changed != pixels)
    assert not np.any(np.all(changed == (214, 39, 40), axis=-1))
    assert np.all(changed == (31, 119, 180), axis=-1).sum() > np.all(pixels == (31, 119, 180), axis=-1).sum()


def test_import_ragan_does_not_import_matplotlib():
    code = "import sys, ragan; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------
# Studies
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_random_study_records_failed_trial_exports_best_and_nests_mlflow_runs(study_data, tmp_path):
    import ragan

    out = tmp_path / "study"
    # Two values: the search space is exhausted after two trials, one of which diverges (NaN).
    search = {**TINY, "d_learning_rate": 2e-4, "g_learning_rate": {"choices": [2e-4, 1e30]}}
    arguments = dict(
        tuner="random",
        max_trials=4,
        kimg_per_trial=TRIAL_KIMG,
        search=search,
        classifier_epochs=2,
        objective_images=32,
        progress=False,
    )
    result = ragan.tune("dcgan", study_data, out, **arguments)

    assert len(result.trials) == 2
    failed = [t for t in result.trials if t["status"] == "FAILED"]
    completed = [t for t in result.trials if t["status"] == "COMPLETED"]
    assert len(failed) == 1 and len(completed) == 1
    assert failed[0]["hyperparameters"]["g_learning_rate"] == 1e30
    assert "diverged" in failed[0]["message"]
    assert completed[0]["value"] is not None and np.isfinite(completed[0]["value"])

    # The objective names its extractor: the domain classifier trained on the real data.
    objective = json.loads((out / "objective" / "objective.json").read_text())
    assert objective["split"] == "val" and objective["num_real"] == 32
    assert result.extractor.startswith("ragan_domain_small_cnn:")
    assert completed[0]["extractor"] == result.extractor

    # The best generator is usable by the next stages as a run directory.
    best = json.loads((out / "best.json").read_text())
    assert best["trial_id"] == completed[0]["trial_id"] == result.best["trial_id"]
    assert best["objective"]["value"] == completed[0]["value"]
    generated = ragan.generate(out / "best", n=6, out=tmp_path / "synthetic", progress=False)
    assert generated.num_images == 6 and len(list((tmp_path / "synthetic").rglob("*.png"))) == 6
    gan = ragan.load_generator(out / "best")
    assert gan.generate(2, seed=0).shape == (2, 16, 16, 1)
    # `ragan evaluate --run OUT/best` logs its report to the best trial's MLflow run.
    from ragan.evaluation.report import _mlflow_target

    assert _mlflow_target(out / "best")["run_id"] == best["mlflow"]["trial_run_id"] == completed[0]["mlflow_run_id"]

    # MLflow: every trial is a child of the study's run; the objective is logged on the trial.
    study = json.loads((out / "study.json").read_text())
    runs, client = _mlflow_runs(study["mlflow"]["tracking_uri"])
    study_run_id = study["mlflow"]["run_id"]
    children = {
        r.data.tags.get("ragan.trial_id"): r
        for r in runs.values()
        if r.data.tags.get("mlflow.parentRunId") == study_run_id
    }
    assert set(children) == {t["trial_id"] for t in result.trials}
    good = children[completed[0]["trial_id"]]
    assert good.data.metrics["objective.kid"] == pytest.approx(completed[0]["value"])
    assert good.data.params["model.base_filters"] == "8"  # the trial's resolved hyperparameters
    assert "d_loss" in good.data.metrics  # its training curves
    assert {a.path for a in client.list_artifacts(good.info.run_id)} >= {"samples", "model"}
    bad = children[failed[0]["trial_id"]]
    assert bad.data.tags["ragan.trial_status"] == "FAILED" and "diverged" in bad.data.tags["ragan.trial_failure"]
    study_run = runs[study_run_id]
    assert study_run.info.status == "FINISHED"
    assert study_run.data.params["space.g_learning_rate"] == "{0.0002, 1e+30}"
    assert study_run.data.tags["ragan.best_trial_id"] == best["trial_id"]
    artifacts = {a.path for a in client.list_artifacts(study_run_id, "tuning")}
    assert {"tuning/trials.csv", "tuning/trials.png", "tuning/best.json"} <= artifacts

    # The same call again resumes the finished study: nothing is trained again.
    model_time = (out / "trials" / completed[0]["trial_id"] / "model.keras").stat().st_mtime_ns
    again = ragan.tune("dcgan", study_data, out, **arguments)
    assert [t["trial_id"] for t in again.trials] == [t["trial_id"] for t in result.trials]
    assert (out / "trials" / completed[0]["trial_id"] / "model.keras").stat().st_mtime_ns == model_time
    for trial in result.trials:
        record = json.loads((out / "trials" / f"{trial['trial_id']}.json").read_text())
        assert len(record["attempts"]) == 1
    # Other settings in the same directory are refused (and name what changed).
    with pytest.raises(RaganError, match="tuner: 'random' -> 'bayesian'"):
        ragan.tune("dcgan", study_data, out, **{**arguments, "tuner": "bayesian"})


@pytest.mark.slow
def test_consecutive_failures_stop_the_search(study_data, tmp_path):
    import ragan

    out = tmp_path / "study"
    search = {**TINY, "d_learning_rate": 2e-4, "g_learning_rate": {"choices": [1e30, 2e30, 3e30]}}
    with pytest.raises(RaganError, match="no trial of the study .* completed .*diverged"):
        ragan.tune(
            "dcgan",
            study_data,
            out,
            max_trials=5,
            kimg_per_trial=TRIAL_KIMG,
            search=search,
            max_consecutive_failed_trials=2,
            extractor="pixels",
            objective_images=32,
            progress=False,
        )
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    # Stopped after two failures in a row, although a third value and more trials were left.
    assert [row["status"] for row in rows] == ["FAILED", "FAILED"]
    assert not (out / "best").exists()


@pytest.mark.slow
def test_bayesian_study(study_data, tmp_path):
    import ragan

    search = {**TINY, "d_learning_rate": 2e-4, "g_learning_rate": [1e-4, 1e-3]}
    result = ragan.tune(
        "dcgan",
        study_data,
        tmp_path / "study",
        tuner="bayesian",
        max_trials=3,
        tuner_options={"num_initial_points": 2},
        kimg_per_trial=TRIAL_KIMG,
        search=search,
        extractor="pixels",
        objective_images=32,
        progress=False,
    )
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * 3
    rates = [t["hyperparameters"]["g_learning_rate"] for t in result.trials]
    assert len(set(rates)) == 3 and all(1e-4 <= r <= 1e-3 for r in rates)
    assert result.extractor == "pixels_16x16"
    assert result.best["objective"]["value"] == min(t["value"] for t in result.trials)


@pytest.mark.slow
def test_fid_and_user_function_objectives(study_data, tmp_path):
    import ragan

    search = {**TINY, "d_learning_rate": 2e-4, "g_learning_rate": {"choices": [1e-4, 1e-3]}}
    common = dict(
        tuner="random",
        max_trials=2,
        kimg_per_trial=TRIAL_KIMG,
        search=search,
        extractor="pixels",
        objective_images=32,
        progress=False,
    )
    fid = ragan.tune("dcgan", study_data, tmp_path / "fid", objective="fid", **common)
    assert fid.metric == "fid" and [t["status"] for t in fid.trials] == ["COMPLETED"] * 2
    assert all(t["value"] > 0 for t in fid.trials)
    assert fid.best["objective"]["value"] == min(t["value"] for t in fid.trials)

    calls = []

    def brightness_gap(real, fake):
        """A user's objective: how far the mean brightness is from the real images'."""
        gap = abs(float(real.mean()) - float(fake.mean()))
        calls.append((real.shape, fake.shape, float(fake.min()), float(fake.max()), gap))
        return gap

    mine = ragan.tune("dcgan", study_data, tmp_path / "mine", objective=brightness_gap, **common)
    assert mine.metric == "brightness_gap" and len(calls) == 2
    for real_shape, fake_shape, low, high, _ in calls:
        assert real_shape == fake_shape == (32, 16, 16, 1) and -1.0 <= low <= high <= 1.0
    assert [t["status"] for t in mine.trials] == ["COMPLETED"] * 2
    assert sorted(t["value"] for t in mine.trials) == pytest.approx(sorted(call[-1] for call in calls))
    assert mine.best["objective"]["value"] == min(t["value"] for t in mine.trials)


@pytest.mark.slow
def test_hyperband_promotion_continues_both_optimizers(study_data, tmp_path):
    import ragan

    out = tmp_path / "study"
    search = {**TINY, "d_learning_rate": 2e-4, "g_learning_rate": [1e-4, 1e-3]}
    # max_epochs = 0.16 / 0.08 = 2 with factor 2: two 5-step trials, then the better one
    # continues to 10 steps (the cap of 3 trials stops before the next bracket).
    result = ragan.tune(
        "dcgan",
        study_data,
        out,
        tuner="hyperband",
        max_trials=3,
        max_kimg=2 * TRIAL_KIMG,
        min_kimg=TRIAL_KIMG,
        factor=2,
        search=search,
        extractor="pixels",
        objective_images=32,
        progress=False,
    )
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * 3
    first, second, promoted = result.trials
    assert first["kimg"] == second["kimg"] == TRIAL_KIMG and promoted["kimg"] == 2 * TRIAL_KIMG
    parent = min((first, second), key=lambda t: t["value"])
    assert promoted["continued_from"] == parent["trial_id"]
    assert promoted["hyperparameters"] == parent["hyperparameters"]

    parent_ckpt = out / "trials" / parent["trial_id"] / "checkpoints" / "ckpt-000000005.npz"
    final_ckpt = out / "trials" / promoted["trial_id"] / "checkpoints" / "ckpt-000000010.npz"
    assert set(_checkpoint_iterations(parent_ckpt).values()) == {5}
    # Both optimizers continued from the parent's 5 iterations (fresh optimizers would be at 5).
    continued = _checkpoint_iterations(final_ckpt)
    assert len(continued) == 2 and set(continued.values()) == {10}
    # ...and only the 5 new steps were trained: the run resumed at the parent's step.
    study = json.loads((out / "study.json").read_text())
    runs, _ = _mlflow_runs(study["mlflow"]["tracking_uri"])
    run = next(r for r in runs.values() if r.data.tags.get("ragan.trial_id") == promoted["trial_id"])
    assert run.data.tags["ragan.resumed_at_step"] == "5"
    assert run.data.tags["ragan.continued_from_trial"] == parent["trial_id"]
    assert run.info.run_id != parent["mlflow_run_id"]


def _completed_trials(project: Path) -> list[str]:
    done = []
    for path in project.glob("trial_*/trial.json"):
        try:
            state = json.loads(path.read_text())
        except ValueError:
            continue
        if state.get("status") == "COMPLETED":
            done.append(state["trial_id"])
    return done


def _running_trials(out: Path) -> list[str]:
    """Trials whose record exists but which KerasTuner has not completed."""
    done = set(_completed_trials(out / "keras_tuner"))
    return [p.stem for p in (out / "trials").glob("*.json") if p.stem not in done]


@pytest.mark.slow
def test_killed_study_resumes_without_repeating_finished_trials(study_data, tmp_path):
    out = tmp_path / "study"
    command = ragan_command(
        "tune",
        "dcgan",
        "--data",
        str(study_data),
        "--out",
        str(out),
        "--max-trials",
        "2",
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
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # Killed while the second trial runs: one trial finished, one interrupted mid-way.
        deadline = time.monotonic() + 300
        while not (_completed_trials(out / "keras_tuner") and _running_trials(out)):
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no trial completed and another started within 300 s"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        process.stderr.close()
    finished_before = _completed_trials(out / "keras_tuner")
    model_times = {t: (out / "trials" / t / "model.keras").stat().st_mtime_ns for t in finished_before}
    records = {p.stem: json.loads(p.read_text()) for p in (out / "trials").glob("*.json")}
    interrupted = [t for t, record in records.items() if t not in finished_before]
    assert finished_before and interrupted, (finished_before, sorted(records))

    rerun = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "best trial" in rerun.stdout
    assert sorted(_completed_trials(out / "keras_tuner")) == ["0", "1"]
    for trial_id in finished_before:
        record = json.loads((out / "trials" / f"{trial_id}.json").read_text())
        assert len(record["attempts"]) == 1, f"finished trial {trial_id} ran again"
        assert (out / "trials" / trial_id / "model.keras").stat().st_mtime_ns == model_times[trial_id]
    for trial_id in interrupted:  # killed while running: run again, under the same id
        assert len(json.loads((out / "trials" / f"{trial_id}.json").read_text())["attempts"]) == 2
    with open(out / "trials.csv") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["COMPLETED"] * 2
    assert (out / "best" / "model.keras").is_file()


@pytest.mark.slow
def test_sigterm_during_a_trial_checkpoints_it_and_the_same_command_continues_it(study_data, tmp_path):
    from ragan.training.checkpoint import CheckpointManager

    out = tmp_path / "study"
    command = ragan_command(
        "tune",
        "dcgan",
        "--data",
        str(study_data),
        "--out",
        str(out),
        "--max-trials",
        "1",
        "--kimg-per-trial",
        "0.8",
        "--extractor",
        "pixels",
        "--objective-images",
        "32",
        "--range",
        "g_learning_rate=1e-4,1e-3",
        "--set",
        *(f"{k}={v}" for k, v in {**TINY, "d_learning_rate": 2e-4, "checkpoint_every": 5}.items()),
        "--quiet",
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    checkpoints = CheckpointManager(out / "trials" / "0" / "checkpoints")
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and checkpoints.latest() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read()[-2000:]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.startswith("ragan:")]
    assert lines == [
        f"ragan: SIGTERM: trial 0 stopped; its run '{out / 'trials' / '0'}' checkpointed the step it "
        "was in; re-run the same 'ragan tune' command to continue the study from there."
    ]
    trial_run = json.loads((out / "trials" / "0" / "run.json").read_text())
    stopped_at = trial_run["step"]
    assert trial_run["status"] == "interrupted" and 5 <= stopped_at < 50
    runs, client = _mlflow_runs(trial_run["mlflow"]["tracking_uri"])
    assert runs[trial_run["mlflow"]["run_id"]].info.status == "KILLED"
    study = json.loads((out / "study.json").read_text())
    assert runs[study["mlflow"]["run_id"]].info.status == "KILLED"

    rerun = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=400)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trial_run = json.loads((out / "trials" / "0" / "run.json").read_text())
    assert trial_run["status"] == "finished" and trial_run["step"] == 50
    record = client.get_run(trial_run["mlflow"]["run_id"])
    assert record.info.status == "FINISHED" and record.data.tags["ragan.resumed_at_step"] == str(stopped_at)
