"""``ragan mix``: real + synthetic prepared datasets with every record's origin recorded.

Also home of :func:`write_prepared_dataset`, which the evaluation tests use to write small
prepared datasets straight from PneumoniaMNIST arrays (no dependency on ``ragan prepare``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragan.errors import RaganError
from tests.runs import run_cli

CLASS_NAMES = ["normal", "pneumonia"]
# Real: PneumoniaMNIST slices; "synthetic": other real training images, marked synthetic.
REAL_SLICES = {"train": slice(0, 200), "val": slice(0, 60), "test": slice(0, 100)}
SYNTHETIC_SLICE = slice(1000, 1400)


def write_prepared_dataset(directory, splits, class_names, *, synthetic=False, labelled=True, generator=None):
    """Write a prepared dataset (one shard per split) from ``{split: (images, labels)}`` arrays.

    Real records get one ``sources`` entry each (``"<split>_images[<i>]"``); synthetic ones get
    ``source_id = -1`` as the format prescribes.
    """
    from ragan.data.manifest import Manifest, SplitInfo, shard_name
    from ragan.data.tfrecord import ShardWriter

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    infos, sources = {}, []
    images = None
    for split, (images, labels) in splits.items():
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        labels = np.asarray(labels).reshape(-1)
        with ShardWriter(directory / shard_name(split, 0, 1)) as writer:
            for index, (image, label) in enumerate(zip(images, labels)):
                source_id = -1
                if not synthetic:
                    source_id = len(sources)
                    sources.append(
                        {"path": f"{split}_images[{index}]", "label": class_names[int(label)], "split": split}
                    )
                writer.write(image, int(label) if labelled else -1, source_id)
        counts = {name: int(np.sum(labels == c)) for c, name in enumerate(class_names)} if labelled else {}
        infos[split] = SplitInfo(len(images), counts, [writer.info()])
    manifest = Manifest(
        image_size=int(images.shape[1]),
        channels=int(images.shape[3]),
        dtype=str(images.dtype),
        class_names=list(class_names) if labelled else [],
        labelled=labelled,
        splits=infos,
        sources=sources,
        synthetic=synthetic,
        generator=(generator or {"model": "test-fixture"}) if synthetic else None,
        source={"kind": "npz", "path": "pneumoniamnist.npz"},
    )
    manifest.write(directory)
    return directory


def write_pneumonia_pair(root: Path, npz: Path) -> tuple[Path, Path]:
    """The standard real/synthetic pair of the evaluation tests (200/60/100 real, 400 synthetic)."""
    data = np.load(npz)
    real = write_prepared_dataset(
        root / "real",
        {
            split: (data[f"{split}_images"][part], data[f"{split}_labels"][part, 0])
            for split, part in REAL_SLICES.items()
        },
        CLASS_NAMES,
    )
    synthetic = write_prepared_dataset(
        root / "synthetic",
        {"train": (data["train_images"][SYNTHETIC_SLICE], data["train_labels"][SYNTHETIC_SLICE, 0])},
        CLASS_NAMES,
        synthetic=True,
    )
    return real, synthetic


@pytest.fixture(scope="module")
def pair(tmp_path_factory, pneumonia_npz):
    return write_pneumonia_pair(tmp_path_factory.mktemp("mix"), pneumonia_npz)


def _by_source(split):
    return {int(s): i for i, s in enumerate(split.source_ids)}


def test_mix_counts_origins_and_pixels(pair, tmp_path):
    from ragan.data.arrays import read_split
    from ragan.data.manifest import read_manifest, verify_dataset
    from ragan.evaluation.mix import mix_datasets

    real, synthetic = pair
    result = mix_datasets(real, synthetic, tmp_path / "mixed", synthetic_fraction=0.3, seed=0)
    # 0.3 / 0.7 * 200 = 85.7 -> 86 synthetic images, spread like the real classes (41 : 159).
    assert (result.num_real, result.num_synthetic) == (200, 86)
    assert result.synthetic_class_counts == {"normal": 18, "pneumonia": 68}
    assert abs(result.synthetic_fraction - 0.3) < 0.005

    out = tmp_path / "mixed"
    manifest = verify_dataset(out, check_hashes=True)
    assert manifest.splits["train"].num_examples == 286
    assert manifest.splits["train"].class_counts == {"normal": 41 + 18, "pneumonia": 159 + 68}
    assert manifest.source["kind"] == "mix" and manifest.source["train_origins"] == {"real": 200, "synthetic": 86}
    assert manifest.synthetic is False and manifest.options["mix"] == {"synthetic_fraction": 0.3, "seed": 0}

    mixed = read_split(out, "train")
    real_train = read_split(real, "train")
    synthetic_train = read_split(synthetic, "train")
    first, end = manifest.source["synthetic_source_ids"]
    origins = [manifest.sources[s]["origin"] for s in mixed.source_ids]
    assert origins.count("real") == 200 and origins.count("synthetic") == 86
    real_index = _by_source(real_train)
    picked = set()
    for image, label, source_id in zip(mixed.images, mixed.labels, mixed.source_ids):
        entry = manifest.sources[source_id]
        if entry["origin"] == "real":
            original = real_index[int(source_id)]
            np.testing.assert_array_equal(image, real_train.images[original])
            assert label == real_train.labels[original]
        else:
            assert first <= source_id < end
            index = int(entry["path"][len("train[") : -1])
            np.testing.assert_array_equal(image, synthetic_train.images[index])
            assert label == synthetic_train.labels[index] and entry["label"] == CLASS_NAMES[label]
            picked.add(index)
    assert len(picked) == 86  # drawn without replacement
    # Record order is shuffled: synthetic records are not all at the end.
    positions = np.flatnonzero([o == "synthetic" for o in origins])
    assert positions.min() < 200

    # val and test are the real shards, byte for byte.
    real_manifest = read_manifest(real)
    for split in ("val", "test"):
        assert manifest.splits[split].to_dict() == real_manifest.splits[split].to_dict()
        for shard in manifest.splits[split].shards:
            assert (out / shard.file).read_bytes() == (Path(real) / shard.file).read_bytes()
    assert not list(tmp_path.glob(".*ragan-partial"))

    # The mix is an ordinary prepared dataset for the rest of ragan.
    import ragan

    images, labels = next(iter(ragan.load_dataset(out, "train", batch_size=300, shuffle=False)))
    assert images.shape == (286, 28, 28, 1) and float(images.numpy().min()) >= -1.0


def test_mix_rules_and_determinism(pair, tmp_path, pneumonia_npz):
    from ragan.evaluation.mix import mix_datasets

    real, synthetic = pair
    per_class = mix_datasets(real, synthetic, tmp_path / "per_class", add_per_class=10, seed=1)
    assert per_class.synthetic_class_counts == {"normal": 10, "pneumonia": 10}
    with pytest.raises(RaganError, match="holds 105 images of class 'normal' but rebalance needs 118"):
        mix_datasets(real, synthetic, tmp_path / "balanced", rebalance=True, seed=1)
    data = np.load(pneumonia_npz)
    normal = np.flatnonzero(data["train_labels"][1000:, 0] == 0)[:150] + 1000
    synthetic = write_prepared_dataset(
        tmp_path / "normal_rich", {"train": (data["train_images"][normal], np.zeros(150))}, CLASS_NAMES, synthetic=True
    )
    balanced = mix_datasets(real, synthetic, tmp_path / "balanced", rebalance=True, seed=1)
    assert balanced.synthetic_class_counts == {"normal": 118}
    assert balanced.manifest.splits["train"].class_counts == {"normal": 159, "pneumonia": 159}
    again = mix_datasets(real, synthetic, tmp_path / "balanced_again", rebalance=True, seed=1)
    assert again.manifest.splits["train"].shards[0].sha256 == balanced.manifest.splits["train"].shards[0].sha256
    other = mix_datasets(real, synthetic, tmp_path / "balanced_seed2", rebalance=True, seed=2)
    assert other.manifest.splits["train"].shards[0].sha256 != balanced.manifest.splits["train"].shards[0].sha256


def test_synthetic_addition_counts():
    from ragan.evaluation.mix import synthetic_addition_counts

    assert synthetic_addition_counts([100, 300], [500, 500], synthetic_fraction=0.5).tolist() == [100, 300]
    assert synthetic_addition_counts([100, 300], [500, 500], synthetic_fraction=0.0).tolist() == [0, 0]
    # Only the classes the synthetic set has receive images (here: all 400 go to class 0).
    assert synthetic_addition_counts([100, 300], [500, 0], synthetic_fraction=0.5).tolist() == [400, 0]
    assert synthetic_addition_counts([100, 300, 50], [9, 9, 9], add_per_class=3).tolist() == [3, 3, 3]
    assert synthetic_addition_counts([100, 300, 50], [999, 0, 999], rebalance=True).tolist() == [200, 0, 250]
    with pytest.raises(RaganError, match="holds 40 images of class 'a' but synthetic_fraction=0.5 needs 100"):
        synthetic_addition_counts([100, 300], [40, 500], synthetic_fraction=0.5, class_names=["a", "b"])
    with pytest.raises(RaganError, match="exactly one of"):
        synthetic_addition_counts([1, 2], [3, 4], synthetic_fraction=0.2, rebalance=True)
    with pytest.raises(RaganError, match=r"must be in \[0, 1\)"):
        synthetic_addition_counts([1, 2], [3, 4], synthetic_fraction=1.0)


def test_mix_converts_8_bit_synthetic_to_16_bit_real(tmp_path):
    from ragan.data.arrays import read_split
    from ragan.evaluation.mix import mix_datasets

    rng = np.random.default_rng(0)
    real16 = rng.integers(0, 65536, (12, 16, 16, 1), dtype=np.uint16)
    fake8 = rng.integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
    labels = np.array([0, 1] * 6)
    real = write_prepared_dataset(tmp_path / "real16", {"train": (real16, labels)}, ["a", "b"])
    fake = write_prepared_dataset(tmp_path / "fake8", {"train": (fake8, labels[:6])}, ["a", "b"], synthetic=True)
    result = mix_datasets(real, fake, tmp_path / "mixed16", add_per_class=3)
    mixed = read_split(result.out, "train")
    assert mixed.images.dtype == np.uint16 and len(mixed) == 18
    synthetic_rows = [i for i, s in enumerate(mixed.source_ids) if result.manifest.sources[s]["origin"] == "synthetic"]
    for row in synthetic_rows:
        index = int(result.manifest.sources[mixed.source_ids[row]]["path"][len("train[") : -1])
        np.testing.assert_array_equal(mixed.images[row], fake8[index].astype(np.uint16) * 257)


def test_mix_bad_inputs(pair, tmp_path, pneumonia_npz):
    from ragan.evaluation.mix import mix_datasets

    real, synthetic = pair
    data = np.load(pneumonia_npz)
    big = np.pad(data["train_images"][:20], ((0, 0), (2, 2), (2, 2)))
    wrong_size = write_prepared_dataset(
        tmp_path / "s32", {"train": (big, data["train_labels"][:20, 0])}, CLASS_NAMES, synthetic=True
    )
    with pytest.raises(RaganError, match=r"s32' holds 32x32x1 images but real dataset .* holds 28x28x1"):
        mix_datasets(real, wrong_size, tmp_path / "x", synthetic_fraction=0.2)
    rgb = np.repeat(data["train_images"][:20, ..., None], 3, axis=-1)
    wrong_channels = write_prepared_dataset(
        tmp_path / "rgb", {"train": (rgb, data["train_labels"][:20, 0])}, CLASS_NAMES, synthetic=True
    )
    with pytest.raises(RaganError, match="28x28x3 images but real dataset"):
        mix_datasets(real, wrong_channels, tmp_path / "x", synthetic_fraction=0.2)
    twenty = (data["train_images"][:20], data["train_labels"][:20, 0])
    other_classes = write_prepared_dataset(tmp_path / "tumour", {"train": twenty}, ["normal", "tumour"], synthetic=True)
    with pytest.raises(RaganError, match=r"has classes \['tumour'\] that real dataset .* lacks"):
        mix_datasets(real, other_classes, tmp_path / "x", synthetic_fraction=0.2)
    unlabelled = write_prepared_dataset(
        tmp_path / "unlabelled",
        {"train": (data["train_images"][:20], np.zeros(20))},
        CLASS_NAMES,
        synthetic=True,
        labelled=False,
    )
    with pytest.raises(RaganError, match="unlabelled .* synthetic_class"):
        mix_datasets(real, unlabelled, tmp_path / "x", add_per_class=5)
    result = mix_datasets(real, unlabelled, tmp_path / "one_class", add_per_class=5, synthetic_class="normal")
    assert result.synthetic_class_counts == {"normal": 5}
    with pytest.raises(RaganError, match="holds 20 images of class 'normal' but add_per_class=30 needs 30"):
        mix_datasets(real, unlabelled, tmp_path / "too_many", add_per_class=30, synthetic_class="normal")
    assert not (tmp_path / "too_many").exists() and not list(tmp_path.glob(".*ragan-partial"))
    with pytest.raises(RaganError, match="exists and is not empty"):
        mix_datasets(real, synthetic, tmp_path / "one_class", add_per_class=5, synthetic_class="normal")
    with pytest.raises(RaganError, match="not a prepared ragan dataset"):
        mix_datasets(real, tmp_path / "missing", tmp_path / "x", synthetic_fraction=0.2)


def test_mix_cli(pair, tmp_path):
    real, synthetic = pair
    result = run_cli(
        "mix",
        "--real",
        real,
        "--synthetic",
        synthetic,
        "--synthetic-fraction",
        "0.5",
        "--out",
        tmp_path / "mixed",
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr
    assert "200 real + 200 synthetic" in result.stdout
    manifest = json.loads((tmp_path / "mixed" / "manifest.json").read_text())
    assert manifest["source"]["seed"] == 3 and manifest["splits"]["train"]["num_examples"] == 400

    failed = run_cli(
        "mix", "--real", real, "--synthetic", synthetic, "--synthetic-fraction", "0.9", "--out", tmp_path / "too_much"
    )
    assert failed.returncode == 2
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in failed.stderr, failed.stderr
    assert lines[0].startswith("ragan: error: synthetic dataset") and "synthetic_fraction=0.9 needs" in lines[0]
    assert not (tmp_path / "too_much").exists()
