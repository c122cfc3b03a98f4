"""MedMNIST loading (local file, folder, cache, download) and the bundled PneumoniaMNIST sample."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading

import numpy as np
import pytest

import ragan.datasets as datasets
from ragan.datasets import (
    load_medmnist,
    load_sample,
    make_sample,
    medmnist_file_name,
    medmnist_info,
    medmnist_url,
    sample_path,
)
from ragan.errors import RaganError

KEYS = sorted(f"{split}_{kind}" for split in ("train", "val", "test") for kind in ("images", "labels"))


def test_info_and_urls():
    info = medmnist_info("PneumoniaMNIST")
    assert info["class_names"] == ["normal", "pneumonia"]
    assert info["md5"][28] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert info["urls"][28] == "https://zenodo.org/records/10519652/files/pneumoniamnist.npz"
    assert info["urls"][64].endswith("/pneumoniamnist_64.npz")
    assert medmnist_file_name("bloodmnist", 224) == "bloodmnist_224.npz"
    assert medmnist_url("breastmnist", 128).endswith("/breastmnist_128.npz")
    for name in datasets.MEDMNIST:
        entry = medmnist_info(name)
        assert entry["channels"] in (1, 3) and len(entry["class_names"]) >= 2
        assert set(entry["md5"]) == set(datasets.MEDMNIST_SIZES)
    # The returned dict is a copy: editing it does not change the table.
    info["class_names"].append("oops")
    assert medmnist_info("pneumoniamnist")["class_names"] == ["normal", "pneumonia"]


def test_unknown_name_and_size():
    with pytest.raises(RaganError, match=r"'pneumonimnist' is not known.*Did you mean 'pneumoniamnist'"):
        medmnist_info("pneumonimnist")
    with pytest.raises(RaganError, match="size=32 is not allowed"):
        load_medmnist("pneumoniamnist", size=32, path=sample_path())


def test_load_from_the_official_file(pneumonia_npz):
    arrays = load_medmnist("pneumoniamnist", path=pneumonia_npz)
    assert sorted(arrays) == KEYS
    assert arrays["train_images"].shape == (4708, 28, 28) and arrays["train_images"].dtype == np.uint8
    assert arrays["train_labels"].shape == (4708, 1)
    assert [len(arrays[f"{s}_images"]) for s in ("train", "val", "test")] == [4708, 524, 624]
    assert np.bincount(arrays["train_labels"][:, 0]).tolist() == [1214, 3494]


def test_load_from_a_folder_and_the_cache(tmp_path, monkeypatch):
    shutil.copy(sample_path(), tmp_path / "pneumoniamnist.npz")
    from_folder = load_medmnist("pneumoniamnist", path=tmp_path)
    np.testing.assert_array_equal(from_folder["test_images"], load_sample()["test_images"])
    # The same folder as cache: found without download.
    from_cache = load_medmnist("pneumoniamnist", cache_dir=tmp_path)
    assert from_cache["train_images"].shape == (400, 28, 28)
    # $RAGAN_CACHE is the default cache root.
    monkeypatch.setenv("RAGAN_CACHE", str(tmp_path / "root"))
    assert datasets.default_cache_dir() == tmp_path / "root" / "medmnist"


def test_folder_without_the_file(tmp_path):
    with pytest.raises(RaganError, match="holds no pneumoniamnist_64.npz"):
        load_medmnist("pneumoniamnist", path=tmp_path, size=64)


def test_size_mismatch(tmp_path):
    shutil.copy(sample_path(), tmp_path / "pneumoniamnist_64.npz")
    with pytest.raises(RaganError, match="are 28x28 px, not size=64"):
        load_medmnist("pneumoniamnist", path=tmp_path, size=64)


def test_bad_files(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("this is not an npz file")
    with pytest.raises(RaganError, match="not a readable .npz file"):
        load_medmnist(path=text)
    partial = tmp_path / "partial.npz"
    np.savez(partial, train_images=np.zeros((2, 28, 28), np.uint8), train_labels=np.zeros((2, 1)))
    with pytest.raises(RaganError, match="keys val_images, val_labels, test_images, test_labels are missing"):
        load_medmnist(path=partial)
    mismatched = tmp_path / "mismatched.npz"
    arrays = load_sample()
    arrays["val_labels"] = arrays["val_labels"][:10]
    np.savez(mismatched, **arrays)
    with pytest.raises(RaganError, match="val_labels holds 10 labels for 60 images"):
        load_medmnist(path=mismatched)


def test_nothing_cached_and_no_download(tmp_path):
    with pytest.raises(RaganError, match=r"not in the cache.*download=True.*path=\.\.\."):
        load_medmnist("pneumoniamnist", cache_dir=tmp_path)


@pytest.fixture
def local_server(tmp_path, monkeypatch):
    """Serve a folder over HTTP on 127.0.0.1 and point the MedMNIST URLs at it."""
    served = tmp_path / "served"
    served.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(datasets, "MEDMNIST_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield served
    server.shutdown()
    server.server_close()


def test_download_checks_md5_and_is_atomic(local_server, tmp_path, monkeypatch):
    shutil.copy(sample_path(), local_server / "pneumoniamnist.npz")
    cache = tmp_path / "cache"
    # The served file is the small sample, so the official MD5 cannot match: nothing is kept.
    with pytest.raises(RaganError, match="has MD5 .* expected 28209eda62fecd6e6a2d98b1501bb15f; it was deleted"):
        load_medmnist("pneumoniamnist", download=True, cache_dir=cache)
    assert list(cache.iterdir()) == []

    served_md5 = hashlib.md5(sample_path().read_bytes()).hexdigest()
    monkeypatch.setitem(datasets.MEDMNIST["pneumoniamnist"]["md5"], 28, served_md5)
    arrays = load_medmnist("pneumoniamnist", download=True, cache_dir=cache)
    assert [p.name for p in cache.iterdir()] == ["pneumoniamnist.npz"]
    np.testing.assert_array_equal(arrays["train_images"], load_sample()["train_images"])
    # Now cached: found without download.
    assert load_medmnist("pneumoniamnist", cache_dir=cache)["val_images"].shape == (60, 28, 28)


def test_download_failure_says_to_pass_path(local_server, tmp_path):
    with pytest.raises(RaganError, match=r"could not download .*pneumoniamnist_64.npz.*path=\.\.\."):
        load_medmnist("pneumoniamnist", size=64, download=True, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_bundled_sample():
    path = sample_path("pneumoniamnist")
    assert path.is_file() and path.stat().st_size < 500_000
    arrays = load_sample()
    assert sorted(arrays) == KEYS
    assert [len(arrays[f"{s}_images"]) for s in ("train", "val", "test")] == [400, 60, 100]
    assert arrays["train_images"].shape[1:] == (28, 28) and arrays["train_labels"].shape == (400, 1)
    # The original train split is 25.8 % normal (1214 / 4708); a stratified draw keeps that.
    normal_fraction = np.mean(arrays["train_labels"] == 0)
    assert 0.24 < normal_fraction < 0.28
    # Different images, not copies of one.
    assert len(np.unique(arrays["train_images"].reshape(400, -1), axis=0)) == 400
    credit = (path.parent / "README.md").read_text()
    assert "CC BY 4.0" in credit and "Kermany" in credit and "MedMNIST v2" in credit
    with pytest.raises(RaganError, match="Did you mean 'pneumoniamnist'"):
        sample_path("pneumonia")


def test_make_sample_reproduces_the_bundled_file(pneumonia_npz, tmp_path):
    rebuilt = make_sample(pneumonia_npz, tmp_path / "sample.npz", n_train=400, n_val=60, n_test=100, seed=0)
    assert rebuilt.read_bytes() == sample_path().read_bytes()
    original = load_medmnist(path=pneumonia_npz)
    sample = load_sample()
    for split, wanted in (("train", 400), ("val", 60), ("test", 100)):
        source_counts = np.bincount(original[f"{split}_labels"][:, 0])
        expected = wanted * source_counts / source_counts.sum()
        got = np.bincount(sample[f"{split}_labels"][:, 0], minlength=len(source_counts))
        assert np.all(np.abs(got - expected) < 1), (split, got, expected)
        # Every sampled image is one of the originals of the same split, with its own label.
        originals = {
            row.tobytes(): int(label)
            for row, label in zip(original[f"{split}_images"], original[f"{split}_labels"][:, 0])
        }
        for image, label in zip(sample[f"{split}_images"], sample[f"{split}_labels"][:, 0]):
            assert originals[image.tobytes()] == label


def test_make_sample_rejects_too_many(tmp_path):
    with pytest.raises(RaganError, match="n_val=61 is not allowed; the source has 60 val images"):
        make_sample(sample_path(), tmp_path / "x.npz", n_train=10, n_val=61, n_test=5)
    small = make_sample(sample_path(), tmp_path / "small.npz", n_train=10, n_val=4, n_test=5, seed=1)
    assert load_medmnist(path=small)["train_images"].shape == (10, 28, 28)
