"""``ragan evaluate``: bad input is one RaganError line before the classifier study, never after it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from ragan.errors import RaganError
from tests.runs import one_line_error, run_cli
from tests.test_mix import CLASS_NAMES, write_prepared_dataset

FAST = dict(
    seeds=(0,), synthetic_fractions=(0.5,), epochs=1, batch_size=32, kid_subsets=5, diversity_pairs=10, progress=False
)
# The checks read the datasets and may build InceptionV3; the study they guard takes minutes to hours.
QUICK_SECONDS = 90


def _shrink(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), Image.BOX)) for image in images])


def _write_pair(root, npz, *, size: int = 28, num_test: int = 30):
    """Real (60 train / 20 val / ``num_test`` test) and 40 "synthetic" PneumoniaMNIST images of ``size`` px."""
    data = np.load(npz)
    parts = {"train": slice(0, 60), "val": slice(0, 20), "test": slice(0, num_test)}

    def images(key, part):
        chosen = data[key][part]
        return chosen if size == 28 else _shrink(chosen, size)

    real = write_prepared_dataset(
        root / "real",
        {split: (images(f"{split}_images", part), data[f"{split}_labels"][part, 0]) for split, part in parts.items()},
        CLASS_NAMES,
    )
    synthetic = write_prepared_dataset(
        root / "synthetic",
        {"train": (images("train_images", slice(1000, 1040)), data["train_labels"][1000:1040, 0])},
        CLASS_NAMES,
        synthetic=True,
    )
    return real, synthetic


@pytest.fixture(scope="module")
def pair(tmp_path_factory, pneumonia_npz):
    return _write_pair(tmp_path_factory.mktemp("checks"), pneumonia_npz)


@pytest.fixture
def no_training(monkeypatch):
    """Any classifier training (the study, or the domain classifier without it) fails the test."""
    import ragan.evaluation.classifier
    import ragan.evaluation.study

    def refuse(*args, **kwargs):
        raise AssertionError("study must not run")

    monkeypatch.setattr(ragan.evaluation.study, "classifier_study", refuse)
    monkeypatch.setattr(ragan.evaluation.classifier, "train_classifier", refuse)


def _fails_fast(tmp_path, real, synthetic, match, **options):
    from ragan.evaluation.report import evaluate

    out = tmp_path / "report"
    start = time.monotonic()
    with pytest.raises(RaganError, match=match) as caught:
        evaluate(real, synthetic, out=out, **{**FAST, **options})
    assert time.monotonic() - start < QUICK_SECONDS
    assert "\n" not in str(caught.value)
    assert not out.exists()
    assert not list(tmp_path.glob(".*ragan-partial"))
    return str(caught.value)


def test_missing_inception_weights_file(pair, tmp_path, no_training):
    real, synthetic = pair
    missing = tmp_path / "inception_notop.h5"
    message = _fails_fast(tmp_path, real, synthetic, "no such file", inception_weights=missing)
    assert message.startswith(f"inception_weights='{missing}': no such file")


def test_unloadable_inception_weights_file(pair, tmp_path, no_training):
    real, synthetic = pair
    broken = tmp_path / "inception_notop.weights.h5"
    broken.write_bytes(b"not an HDF5 file")
    message = _fails_fast(tmp_path, real, synthetic, "could not be loaded into InceptionV3", inception_weights=broken)
    assert message.startswith(f"inception_weights='{broken}': could not be loaded")


def test_inception_offline_without_weights(pair, tmp_path, no_training, monkeypatch):
    from urllib.error import URLError

    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    real, synthetic = pair
    message = _fails_fast(tmp_path, real, synthetic, "could not be downloaded", extractor="inception")
    assert message.startswith("inception_weights='imagenet': the InceptionV3 ImageNet weights could not be downloaded")
    assert message.endswith("pass its local path as inception_weights=")


@pytest.mark.parametrize(
    "value, problem",
    [
        (0, "is below its minimum 1"),
        (-3, "is below its minimum 1"),
        (2.5, "is not a valid int"),
        (True, "is not a valid int"),
    ],
)
def test_add_per_class_must_be_a_positive_integer(pair, tmp_path, no_training, value, problem):
    real, synthetic = pair
    message = _fails_fast(tmp_path, real, synthetic, problem, add_per_class=value)
    assert message.startswith(f"add_per_class={value!r} {problem}")


def test_classifier_study_rejects_add_per_class_even_when_skipping_unavailable_arms(pair, monkeypatch):
    import ragan.evaluation.classifier
    from ragan.evaluation.study import classifier_study

    def refuse(*args, **kwargs):
        raise AssertionError("no classifier may be trained")

    monkeypatch.setattr(ragan.evaluation.classifier, "train_classifier", refuse)
    real, synthetic = pair
    with pytest.raises(RaganError, match=r"^add_per_class=0 is not allowed; it must be a positive integer"):
        classifier_study(real, synthetic, add_per_class=0, skip_unavailable=True, seeds=(0,), epochs=1, progress=False)


def test_real_test_split_with_too_few_images(tmp_path, pneumonia_npz, no_training):
    real, synthetic = _write_pair(tmp_path / "data", pneumonia_npz, num_test=3)
    message = _fails_fast(tmp_path, real, synthetic, "fewer than the 10")
    assert message.startswith(f"real dataset '{real}': the 'test' split holds 3 image(s)")
    assert "fake" not in message


def test_images_smaller_than_the_ms_ssim_window_skip_diversity(tmp_path, pneumonia_npz):
    from ragan.evaluation.report import evaluate

    real, synthetic = _write_pair(tmp_path / "data", pneumonia_npz, size=8)
    result = evaluate(real, synthetic, out=tmp_path / "report", study=False, **FAST)
    reason = "MS-SSIM diversity skipped: 8x8 images are smaller than its 11x11 window"
    data = json.loads(result.json_path.read_text())
    assert data["diversity"]["skipped"] == reason
    assert data["diversity"]["synthetic_ms_ssim"] is None and data["diversity"]["real_ms_ssim"] is None
    assert any("SSIM search skipped" in note for note in data["memorisation"]["notes"])
    assert not any(line.startswith("Diversity:") for line in data["summary"])
    assert reason in result.html_path.read_text()
    assert any(row["metric"] == "FID" and row["value"] is not None for row in data["quality"]["rows"])


def test_cli_missing_inception_weights_is_one_line(pair, tmp_path):
    real, synthetic = pair
    missing = tmp_path / "inception_notop.h5"
    out = tmp_path / "out"
    result = run_cli(
        "evaluate",
        "--real",
        real,
        "--synthetic",
        synthetic,
        "--out",
        out,
        "--inception-weights",
        missing,
        "--quick",
        "--quiet",
    )
    line = one_line_error(result)
    assert line.startswith(f"ragan: error: inception_weights='{missing}': no such file"), line
    assert not out.exists() and not list(tmp_path.glob(".*ragan-partial"))
