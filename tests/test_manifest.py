"""The prepared-dataset manifest: validation, stable bytes, clear errors, directory checks."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ragan.data.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Manifest,
    ShardInfo,
    SplitInfo,
    read_manifest,
    shard_name,
    verify_dataset,
)
from ragan.errors import RaganError

DOC = Path(__file__).resolve().parents[1] / "docs" / "prepared-format.md"


def write_fake_dataset(directory: Path, shard_sizes=(3, 2), labelled=True) -> Manifest:
    """A dataset directory whose shards are opaque bytes (the manifest checks never parse them)."""
    directory.mkdir(parents=True, exist_ok=True)
    shards = []
    for index, count in enumerate(shard_sizes):
        name = shard_name("train", index, len(shard_sizes))
        content = f"shard {index} with {count} records".encode()
        (directory / name).write_bytes(content)
        shards.append(ShardInfo(name, count, hashlib.sha256(content).hexdigest()))
    total = sum(shard_sizes)
    manifest = Manifest(
        image_size=16,
        channels=1,
        dtype="uint8",
        class_names=["normal", "pneumonia"] if labelled else [],
        labelled=labelled,
        splits={"train": SplitInfo(total, {"normal": 1, "pneumonia": total - 1} if labelled else {}, shards)},
        options={"image_size": 16, "seed": 0},
        source={"kind": "npz", "path": "x.npz"},
        sources=[{"path": f"train_images[{i}]", "sha256": "0" * 64} for i in range(total)],
    )
    manifest.write(directory)
    return manifest


def test_shard_name():
    assert shard_name("train", 0, 4) == "train-00000-of-00004.tfrecord"
    assert shard_name("val", 11, 12) == "val-00011-of-00012.tfrecord"
    with pytest.raises(RaganError, match="split name"):
        shard_name("../evil", 0, 1)
    with pytest.raises(RaganError, match="out of range"):
        shard_name("train", 4, 4)


def test_properties():
    manifest = Manifest(
        image_size=32, channels=3, dtype="uint16", class_names=["a", "b", "c"], labelled=True, splits={}
    )
    assert manifest.image_shape == (32, 32, 3)
    assert manifest.num_classes == 3
    assert manifest.bit_depth == 16 and manifest.max_value == 65535


def test_round_trip_and_byte_identical_output(tmp_path):
    manifest = write_fake_dataset(tmp_path / "a")
    first = (tmp_path / "a" / MANIFEST_NAME).read_bytes()
    again = read_manifest(tmp_path / "a")
    assert again == manifest
    again.write(tmp_path / "a")
    assert (tmp_path / "a" / MANIFEST_NAME).read_bytes() == first
    write_fake_dataset(tmp_path / "b")
    assert (tmp_path / "b" / MANIFEST_NAME).read_bytes() == first
    assert not list((tmp_path / "a").glob("*.tmp")), "the temporary file must be renamed away"
    # read_manifest accepts the manifest file itself too.
    assert read_manifest(tmp_path / "a" / MANIFEST_NAME) == manifest


def test_key_order_follows_the_documented_format():
    documented = re.search(r"## manifest.json\s+```json\n(.*?)```", DOC.read_text(), re.S).group(1)
    top_level_keys = re.findall(r'^  "(\w+)":', documented, re.M)
    manifest = Manifest(image_size=8, channels=1, dtype="uint8", class_names=[], labelled=False, splits={})
    assert list(manifest.to_dict()) == top_level_keys


def test_missing_manifest_says_run_prepare(tmp_path):
    with pytest.raises(RaganError, match=r"is not a prepared ragan dataset: no manifest.json \(run 'ragan prepare'"):
        read_manifest(tmp_path)
    with pytest.raises(RaganError, match="does not exist"):
        read_manifest(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="something-else"), "not a ragan prepared-dataset manifest"),
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer ragan"),
        (lambda d: d.update(channels=2), "field 'channels' must be one of 1, 3, got 2"),
        (lambda d: d.update(channels=True), "field 'channels' must be an integer"),
        (lambda d: d.update(dtype="float32"), "field 'dtype'"),
        (lambda d: d.pop("image_size"), "field 'image_size' is missing"),
        (lambda d: d.update(class_names=["a", "a"]), "duplicate"),
        (lambda d: d.update(encoding="png"), "field 'encoding'"),
        (
            lambda d: d["splits"]["train"]["shards"][0].update(file="../outside.tfrecord"),
            r"splits.train.shards\[0\].file",
        ),
        (
            lambda d: d["splits"]["train"]["shards"][1].update(file=d["splits"]["train"]["shards"][0]["file"]),
            "listed twice",
        ),
        (lambda d: d["splits"]["train"]["shards"][0].update(sha256="xyz"), "sha256"),
        (lambda d: d["splits"]["train"]["class_counts"].update(unknown=1), "not in 'class_names'"),
    ],
)
def test_invalid_fields_name_the_file_and_field(tmp_path, edit, message):
    write_fake_dataset(tmp_path)
    path = tmp_path / MANIFEST_NAME
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(RaganError, match=message) as caught:
        read_manifest(tmp_path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_json_names_the_file(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text('{"format": "ragan-prepared",')
    with pytest.raises(RaganError, match=r"manifest.json' is not valid JSON \(line 1"):
        read_manifest(tmp_path)


def test_verify_accepts_a_consistent_dataset(tmp_path):
    manifest = write_fake_dataset(tmp_path)
    assert verify_dataset(tmp_path, check_hashes=True, splits=["train"]) == manifest
    # Files that are not shards (an exported zip, a README) are fine.
    (tmp_path / "README.txt").write_text("notes")
    verify_dataset(tmp_path)


def test_verify_missing_shard(tmp_path):
    write_fake_dataset(tmp_path)
    missing = tmp_path / shard_name("train", 1, 2)
    missing.unlink()
    with pytest.raises(RaganError, match="is missing") as caught:
        verify_dataset(tmp_path)
    assert str(missing) in str(caught.value)


def test_verify_wrong_counts(tmp_path):
    write_fake_dataset(tmp_path)
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    data["splits"]["train"]["num_examples"] = 6
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(RaganError, match="num_examples=6 but its shards hold 5"):
        verify_dataset(tmp_path)

    data["splits"]["train"]["num_examples"] = 5
    data["splits"]["train"]["class_counts"] = {"normal": 1, "pneumonia": 1}
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(RaganError, match="class_counts adding up to 2"):
        verify_dataset(tmp_path)


def test_unlabelled_dataset_needs_no_class_counts(tmp_path):
    write_fake_dataset(tmp_path, labelled=False)
    assert not verify_dataset(tmp_path).labelled


def test_verify_stray_shard(tmp_path):
    write_fake_dataset(tmp_path)
    stray = tmp_path / "train-00007-of-00008.tfrecord"
    stray.write_bytes(b"left over from an earlier run")
    with pytest.raises(RaganError, match="is not listed in") as caught:
        verify_dataset(tmp_path)
    assert str(stray) in str(caught.value)


def test_verify_empty_and_corrupted_shards(tmp_path):
    write_fake_dataset(tmp_path)
    shard = tmp_path / shard_name("train", 0, 2)
    shard.write_bytes(b"changed content")
    verify_dataset(tmp_path)  # cheap checks do not read the data
    with pytest.raises(RaganError, match="SHA-256"):
        verify_dataset(tmp_path, check_hashes=True)
    shard.write_bytes(b"")
    with pytest.raises(RaganError, match="is empty"):
        verify_dataset(tmp_path)


def test_verify_unknown_split_suggests(tmp_path):
    write_fake_dataset(tmp_path)
    with pytest.raises(RaganError, match=r"split='trian'.*available splits: 'train'.*Did you mean 'train'"):
        verify_dataset(tmp_path, splits=["trian"])


def test_manifest_module_does_not_import_tensorflow():
    code = "import sys, ragan.data.manifest, ragan.datasets; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
