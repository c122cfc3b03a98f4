"""High-resolution images through every stage: reading splits at an evaluation size, full-resolution
pictures and scores, sample grids for MLflow, and 512/1024-px runs of prepare -> train -> generate -> evaluate.

The fast tests use 16-64 px images (the same code paths, resized); the 512 and 1024-px runs are slow.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ragan.errors import RaganError
from tests.test_mix import write_prepared_dataset

CLASSES = ["a", "b"]


def run_cli(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "ragan", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def textured(count: int, size: int, seed: int = 0, dtype=np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images of two classes (a bright disc / a bright bar at random places) with noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    labels = (np.arange(count) % 2).astype(np.int64)
    top = np.iinfo(dtype).max
    images = np.empty((count, size, size, 1), dtype)
    for index, label in enumerate(labels):
        r, c = rng.integers(size // 4, 3 * size // 4, size=2)
        shape = (rows - r) ** 2 + (cols - c) ** 2 <= (size // 5) ** 2 if label == 0 else np.abs(cols - c) <= size // 10
        picture = 0.15 + 0.6 * shape + rng.normal(0, 0.08, (size, size))
        images[index, :, :, 0] = np.clip(np.rint(picture * top), 0, top).astype(dtype)
    return images, labels


def write_pair(root: Path, size: int, *, dtype=np.uint8, real_count=(24, 12, 16), synthetic_count=16):
    """A real prepared dataset (train/val/test) and a labelled synthetic one of ``size`` px."""
    images, labels = textured(sum(real_count), size, dtype=dtype)
    cuts = np.cumsum(real_count)[:-1]
    parts = dict(zip(("train", "val", "test"), zip(np.split(images, cuts), np.split(labels, cuts))))
    real = write_prepared_dataset(root / "real", parts, CLASSES)
    synthetic_images, synthetic_labels = textured(synthetic_count, size, seed=1, dtype=dtype)
    synthetic = write_prepared_dataset(
        root / "synthetic", {"train": (synthetic_images, synthetic_labels)}, CLASSES, synthetic=True
    )
    return real, synthetic, images


def _report_pictures(report_dir: Path) -> list[Path]:
    """The full-size files the report page links to."""
    html = (report_dir / "report.html").read_text()
    return [report_dir / href for href in re.findall(r'href="(images/[^"]+\.png)"', html)]


# ---------------------------------------------------------------------------------------------
# Reading at an evaluation size, full resolution by index


def test_read_split_resizes_in_batches_and_reads_full_resolution_by_index(tmp_path, monkeypatch):
    from ragan.data import split_records
    from ragan.data.arrays import read_split

    real, _, images = write_pair(tmp_path, 32, dtype=np.uint16)
    # Tiny batches: the split is read in several, and the resized copy must not depend on it.
    monkeypatch.setattr(split_records, "BATCH_BYTES", 3 * 32 * 32 * 2)
    train = read_split(real, "train", image_size=16)
    assert train.images.shape == (24, 16, 16, 1) and train.images.dtype == np.uint16
    assert train.resized and train.full_size == 32 and train.image_size == 16
    # Area resize by 2 is the mean of each 2x2 block, rounded.
    blocks = images[:24].reshape(24, 16, 2, 16, 2, 1).astype(np.float64).mean(axis=(2, 4))
    assert np.abs(train.images.astype(np.float64) - blocks).max() <= 0.5 + 1e-6
    # Full-resolution images come back from the shards, in the order asked.
    np.testing.assert_array_equal(train.full_images([5, 0, 23]), images[[5, 0, 23]])
    native = read_split(real, "train")
    assert not native.resized and native.full_size is None
    np.testing.assert_array_equal(native.full_images([1, 2]), images[[1, 2]])
    with pytest.raises(RaganError, match=r"image_size=64 is not allowed .* whose images are 32x32"):
        read_split(real, "train", image_size=64)


def test_split_records_refuse_a_damaged_shard_and_indices_out_of_range(tmp_path):
    from ragan.data.split_records import SplitRecords

    real, _, _ = write_pair(tmp_path, 16)
    records = SplitRecords(real, "test")
    assert len(records) == 16 and records.read([]).shape == (0, 16, 16, 1)
    with pytest.raises(RaganError, match="record index 16 is out of range"):
        records.read([16])
    shard = next(real.glob("test-*.tfrecord"))
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(RaganError, match=r"holds 15 whole records .* the manifest lists 16"):
        SplitRecords(real, "test")


def test_eval_size_defaults_to_the_image_size_up_to_256():
    from ragan.evaluation.config import EvaluateConfig, eval_size_for

    assert [eval_size_for(size) for size in (28, 256, 512, 1024)] == [28, 256, 256, 256]
    assert eval_size_for(1024, 128) == 128
    with pytest.raises(RaganError, match=r"eval_size=512 is larger than the 256x256 images of real dataset 'r'"):
        eval_size_for(256, 512, name="real dataset 'r'")
    with pytest.raises(RaganError, match="eval_size=4"):
        EvaluateConfig(eval_size=4)


def test_nearest_training_short_list_finds_the_exact_nearest_image():
    from ragan.evaluation.full_resolution import UnitImages, nearest_training
    from ragan.evaluation.metrics import nearest_images

    images, _ = textured(60, 96, seed=3)
    train = UnitImages(images[:40], 255)
    queries = np.clip(train[np.arange(10, 30)] + np.random.default_rng(0).normal(0, 0.05, (20, 96, 96, 1)), -1, 1)
    queries = np.concatenate([queries, UnitImages(images[40:], 255)[np.arange(20)]]).astype(np.float32)
    indices, errors = nearest_training(queries, train, shortlist=4)
    exact_indices, exact_errors = nearest_images(queries, train[np.arange(40)])
    np.testing.assert_array_equal(indices, exact_indices)
    np.testing.assert_allclose(errors, exact_errors, rtol=1e-6)
    assert indices[:20].tolist() == list(range(10, 30))


# ---------------------------------------------------------------------------------------------
# Pictures: thumbnails, full-size files, grids for MLflow


def test_report_pictures_are_thumbnails_linked_to_full_size_files(tmp_path):
    from ragan.evaluation.render import ImageFiles, grid_rows

    images, labels = textured(6, 200, dtype=np.uint16)
    files = ImageFiles(tmp_path)
    rows = grid_rows(labels, CLASSES, np.random.default_rng(0), images.__getitem__, files=files, prefix="synthetic")
    entries = [entry for row in rows for entry in row["images"]]
    assert len(entries) == 6 and all(entry["size"] == 200 for entry in entries)
    for entry in entries:
        with Image.open(tmp_path / entry["href"]) as full:
            assert full.size == (200, 200) and full.mode.startswith("I;16")  # 16 bits kept
            index = int(re.search(r"synthetic-(\d+)\.png", entry["href"]).group(1))
            np.testing.assert_array_equal(np.asarray(full), images[index, :, :, 0])
    small = ImageFiles(tmp_path / "small").entry(images[0, :64, :64], "x")
    assert small["href"] is None and not (tmp_path / "small").exists()


def test_sample_grids_of_large_images_are_logged_downsized(tmp_path):
    from ragan.training.callbacks import GRID_PREVIEW_SIDE, grid_preview, sample_grid

    small = tmp_path / "small.png"
    Image.fromarray(sample_grid(np.zeros((16, 256, 256, 1), np.float32), 4, 4)[..., 0]).save(small)
    assert grid_preview(small) == small  # 1027 px: logged as it is
    big = tmp_path / "grid-00000.004.png"
    Image.fromarray(sample_grid(np.zeros((16, 1024, 1024, 1), np.float32), 4, 4)[..., 0]).save(big)
    preview = grid_preview(big)
    assert preview == tmp_path / "preview" / big.name
    with Image.open(preview) as picture, Image.open(big) as full:
        assert full.size == (4099, 4099) and max(picture.size) <= GRID_PREVIEW_SIDE and picture.size[0] == 1025


# ---------------------------------------------------------------------------------------------
# evaluate with an evaluation size below the image size (fast: 128 px evaluated at 32)


def test_evaluate_below_the_image_size_uses_full_resolution_for_pictures_and_scores(tmp_path):
    from mlflow import MlflowClient

    from ragan.evaluation.report import evaluate

    real, synthetic, _ = write_pair(tmp_path, 128)
    run_dir = tmp_path / "run"  # a training run folder with its own MLflow store, to log the report to
    run_dir.mkdir()
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow.db'}")
    experiment = client.create_experiment("ragan-test", artifact_location=(run_dir / "mlartifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    (run_dir / "run.json").write_text(json.dumps({"mlflow": {"run_id": run_id}}))
    report = evaluate(
        real,
        synthetic,
        out=tmp_path / "report",
        generator_run=run_dir,
        eval_size=32,
        study=False,  # the domain classifier alone: the study's arms add nothing here
        epochs=1,
        kid_subsets=5,
        diversity_pairs=10,
        progress=False,
    )
    data = report.data
    assert data["settings"]["eval_size"] == 32 and data["real"]["eval_size"] == 32
    assert data["resolution"]["image_size"] == 128 and data["resolution"]["eval_size"] == 32
    assert data["resolution"]["resize"].startswith("area 128x128 -> 32x32")
    assert data["real"]["image_shape"] == [128, 128, 1]
    assert all(row["resize"].startswith("area 128x128 -> 32x32") for row in data["quality"]["rows"])
    assert data["similarity"]["image_size"] == 128
    assert "scores at full resolution (128x128)" in data["similarity"]["search"]
    assert "confirmed at full resolution (128x128)" in data["memorisation"]["searches"]["ssim"]["space"]
    html = report.html_path.read_text()
    assert "ran at 32x32 (--eval-size)" in html and "at full resolution (128x128)" in html
    pictures = _report_pictures(report.out)
    assert len(pictures) >= 2 * 2 + 2  # two grid rows of each set, the gallery
    assert all(Image.open(picture).size == (128, 128) for picture in pictures)
    # MLflow gets the pictures too, where report.html's links expect them.
    assert report.mlflow["logged"], report.mlflow
    logged = {item.path for item in client.list_artifacts(run_id, "evaluation/images")}
    assert {f"evaluation/{picture.relative_to(report.out)}" for picture in pictures} <= logged


def test_confirmation_at_full_resolution_rescores_the_ssim_search(tmp_path):
    from ragan.data.arrays import read_split
    from ragan.evaluation.full_resolution import UnitImages, confirm_ssim
    from ragan.evaluation.memorisation import memorisation_audit

    real, _, images = write_pair(tmp_path, 128, real_count=(30, 10, 30))
    # Synthetic image 0 copies training image 3; image 1 copies training image 7 at 32 px only: a
    # +-40 checkerboard on 4x4 blocks averages away under the area resize, not at full resolution.
    checker = ((np.indices((128, 128)).sum(axis=0) % 2) * 80 - 40)[..., None]
    fake = np.concatenate([images[[3]], np.clip(images[[7]].astype(int) + checker, 0, 255), textured(8, 128, 9)[0]])
    synthetic = write_prepared_dataset(
        tmp_path / "synthetic", {"train": (fake.astype(np.uint8), np.zeros(10))}, CLASSES, synthetic=True
    )
    splits = {
        name: read_split(path, split, image_size=32)
        for name, path, split in (("train", real, "train"), ("test", real, "test"), ("synthetic", synthetic, "train"))
    }
    units = {name: UnitImages(split.images, 255, split=split) for name, split in splits.items()}
    report = memorisation_audit(
        units["train"][np.arange(30)], units["synthetic"][np.arange(10)], units["test"][np.arange(30)],
        value_range=(-1.0, 1.0),
    )  # fmt: skip
    before = report.searches["ssim"].nearest_distance.copy()
    assert before[0] < 1e-3 and before[1] < 0.05  # both look like copies at 32 px
    confirm_ssim(report, units["synthetic"], units["test"], units["train"])
    after = report.searches["ssim"]
    assert after.nearest_index[:2].tolist() == [3, 7]
    assert after.nearest_distance[0] == pytest.approx(0.0, abs=1e-6)
    assert after.nearest_distance[1] > 10 * before[1]  # not a copy at 128 px
    assert after.flagged[0] and not after.flagged[1]
    assert after.baseline.size == 30 and "confirmed at full resolution (128x128)" in after.space


# ---------------------------------------------------------------------------------------------
# 512 and 1024 px end to end (slow)


@pytest.mark.slow
def test_512px_16_bit_prepare_train_generate_evaluate(brain_mri_subset, tmp_path):
    prepared, run, synthetic, report = (tmp_path / name for name in ("prepared", "run", "synthetic", "report"))
    result = run_cli(
        "prepare", brain_mri_subset, "--out", prepared, "--image-size", "512", "--channels", "1",
        "--bit-depth", "16", "--split", "0.4,0.2,0.4", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert (manifest["image_size"], manifest["dtype"]) == (512, "uint16")
    result = run_cli(
        "train", "stylegan2", "--data", prepared, "--out", run, "--cfg", "small", "--latent-dim", "8",
        "--w-dim", "8", "--mapping-layers", "1", "--channel-base", "512", "--channel-max", "4", "--augment", "none",
        "--steps", "2", "--batch-size", "2", "--log-every", "1", "--sample-every", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    grid = next((run / "samples").glob("grid-*.png"))
    with Image.open(grid) as full, Image.open(run / "samples" / "preview" / grid.name) as preview:
        assert full.size == (2051, 2051) and preview.size == (1026, 1026)
    logged = list((run / "mlartifacts").rglob(f"samples/{grid.name}"))
    assert logged and Image.open(logged[0]).size == (1026, 1026)
    result = run_cli("generate", run, "--n", "12", "--out", synthetic, "--format", "tfrecord", "--quiet")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((synthetic / "manifest.json").read_text())
    assert (manifest["image_size"], manifest["dtype"]) == (512, "uint16")  # 16 bits from the run's data
    result = run_cli(
        "evaluate", "--real", prepared, "--synthetic", synthetic, "--out", report, "--quick", "--eval-size", "64",
        "--synthetic-class", "glioma_tumor", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads((report / "report.json").read_text())
    assert data["resolution"]["eval_size"] == 64 and data["resolution"]["image_size"] == 512
    html = (report / "report.html").read_text()
    assert "ran at 64x64 (--eval-size)" in html
    pictures = _report_pictures(report)
    assert len(pictures) >= 12 + 8 + 8  # real grid rows (3 a class), the synthetic row, gallery pairs
    for picture in pictures:
        with Image.open(picture) as image:
            assert image.size == (512, 512) and image.mode.startswith("I;16")


@pytest.mark.slow
def test_1024px_evaluate_quick_on_images_of_a_tiny_network(tmp_path):
    from ragan.models import StyleGAN2

    source = tmp_path / "images"
    images, labels = textured(30, 1024, seed=4)
    for index, (image, label) in enumerate(zip(images, labels)):
        (source / CLASSES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(source / CLASSES[label] / f"{index}.png")
    prepared, synthetic, report = tmp_path / "prepared", tmp_path / "synthetic", tmp_path / "report"
    result = run_cli("prepare", source, "--out", prepared, "--image-size", "1024", "--split", "0.5,0.1,0.4", "--quiet")
    assert result.returncode == 0, result.stderr
    tiny = {"cfg": "small", "latent_dim": 8, "w_dim": 8, "mapping_layers": 1, "channel_base": 1024, "channel_max": 4}
    gan = StyleGAN2(tiny, image_size=1024, channels=1)
    gan.compile()
    gan.save(tmp_path / "tiny.keras")
    result = run_cli(
        "generate", tmp_path / "tiny.keras", "--n", "10", "--out", synthetic, "--format", "tfrecord",
        "--bit-depth", "16", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads((synthetic / "manifest.json").read_text())["dtype"] == "uint16"  # asked, not from a run
    result = run_cli(
        "evaluate", "--real", prepared, "--synthetic", synthetic, "--out", report, "--quick", "--synthetic-class", "a"
    )
    assert result.returncode == 0, result.stderr
    assert "evaluating 1024-px images at 256 px" in result.stdout
    data = json.loads((report / "report.json").read_text())
    assert data["settings"]["eval_size"] == 256 and data["resolution"]["image_size"] == 1024
    assert data["similarity"]["image_size"] == 1024
    assert "confirmed at full resolution (1024x1024)" in data["memorisation"]["searches"]["ssim"]["space"]
    html = (report / "report.html").read_text()
    assert "ran at 256x256 (--eval-size)" in html
    pictures = _report_pictures(report)
    assert pictures and all(Image.open(picture).size == (1024, 1024) for picture in pictures)
    modes = {picture.name.split("-")[0]: Image.open(picture).mode for picture in pictures}
    assert modes["real"] == "L" and modes["synthetic"].startswith("I;16")
    # The page stays small: thumbnails, not 1024-px images, are embedded.
    assert (report / "report.html").stat().st_size < 2_000_000


@pytest.mark.slow
@pytest.mark.parametrize("size", [128, 256])
def test_stylegan2_small_trains_and_resumes_at_128_and_256_px(tmp_path, size):
    from training_fixtures import make_prepared

    images, labels = textured(8, size)
    prepared = make_prepared(tmp_path / "data", images, labels, CLASSES)
    run = tmp_path / "run"
    flags = [
        "--data", prepared, "--out", run, "--cfg", "small", "--latent-dim", "8", "--w-dim", "8", "--mapping-layers",
        "1", "--channel-max", "4", "--batch-size", "2", "--log-every", "1", "--checkpoint-every", "1", "--quiet",
    ]  # fmt: skip
    first = run_cli("train", "stylegan2", "--steps", "1", *flags)
    assert first.returncode == 0, first.stderr
    started = json.loads((run / "run.json").read_text())
    resumed = run_cli("train", "stylegan2", "--steps", "2", "--resume", *flags)
    assert resumed.returncode == 0, resumed.stderr
    finished = json.loads((run / "run.json").read_text())
    assert (started["step"], finished["step"], finished["status"]) == (1, 2, "finished")
    assert finished["mlflow"]["run_id"] == started["mlflow"]["run_id"]  # the same MLflow run, continued
    assert (run / "checkpoints" / "ckpt-000000002.npz").is_file()
    grids = sorted((run / "samples").glob("grid-*.png"))
    side = {128: 6 * 128 + 5, 256: 4 * 256 + 3}[size]
    assert len(grids) == 2 and Image.open(grids[-1]).size == (side, side)
    assert not (run / "samples" / "preview").exists()  # small enough for MLflow as it is


def test_white_box_attack_reads_the_full_resolution_images_a_group_at_a_time(tmp_path):
    from training_fixtures import tiny_generator_run

    from ragan.data.arrays import read_split
    from ragan.evaluation.full_resolution import UnitImages
    from ragan.evaluation.privacy_audit import discriminator_scores_of_run

    names = ["normal", "pneumonia"]
    images, labels = textured(50, 16, seed=5)
    real = write_prepared_dataset(
        tmp_path / "real", {"train": (images[:30], labels[:30]), "test": (images[30:], labels[30:])}, names
    )
    (tmp_path / "run").mkdir()
    run = tiny_generator_run(tmp_path / "run")  # a conditional DCGAN of 16 px, classes normal / pneumonia
    splits = {name: read_split(real, name, image_size=8) for name in ("train", "test")}
    lazy = {name: UnitImages(split.images, 255, split=split) for name, split in splits.items()}
    unit = images.astype(np.float32) / 127.5 - 1.0
    expected, _ = discriminator_scores_of_run(run, unit[:30], labels[:30], unit[30:], labels[30:], names)
    found, notes = discriminator_scores_of_run(run, lazy["train"], labels[:30], lazy["test"], labels[30:], names)
    for key in ("member_scores", "nonmember_scores"):
        np.testing.assert_allclose(found["discriminator"][key], expected["discriminator"][key], rtol=1e-5, atol=1e-5)
    # At the eval size the discriminator cannot take them: skipped with a note, as before.
    skipped, notes = discriminator_scores_of_run(
        run, lazy["train"][np.arange(30)], labels[:30], unit[30:], labels[30:], names
    )
    assert skipped == {} and "takes 16x16x1 images, the real dataset holds 8x8x1" in notes[0]
