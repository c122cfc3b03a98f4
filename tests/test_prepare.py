"""ragan.prepare_dataset on real files: every input kind, splits, groups, bad files, resume, privacy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ragan.data.prepare as prepare_module
from ragan.data.inputs import DecodeOptions, decode_source
from ragan.data.manifest import read_manifest, verify_dataset
from ragan.data.prepare import partial_dir_for, prepare_dataset
from ragan.data.preprocess import preprocess_frame
from ragan.data.readers import array_to_frame, read_file
from ragan.data.splits import grouped_split, parse_split_ratios, shard_count, stratified_split
from ragan.errors import RaganError
from tests import filemakers
from tests.runs import ragan_command

FAST = dict(image_size=16, num_workers=0, progress=False)


# --------------------------------------------------------------------------- helpers


def read_records(out: Path) -> dict[str, list[tuple[np.ndarray, int, int]]]:
    """Parse every shard with TensorFlow: split -> [(image, label, source_id)] in file order."""
    from ragan._tf import import_tf
    from ragan.data.tfrecord import decode_batch_fn

    tf = import_tf()
    manifest = read_manifest(out)
    decode = decode_batch_fn(manifest)
    records = {}
    for name, split in manifest.splits.items():
        records[name] = []
        files = [str(out / shard.file) for shard in split.shards]
        if not files:
            continue
        for images, labels, source_ids in tf.data.TFRecordDataset(files).batch(64).map(decode).as_numpy_iterator():
            records[name].extend(zip(images, labels.tolist(), source_ids.tolist()))
    return records


def all_file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def expected_image(path, **options) -> np.ndarray:
    """What a worker makes of one file (8-bit images take the 8-bit path, see test_eight_bit_path_...)."""
    decode_options = DecodeOptions(
        options.get("image_size", 16),
        options.get("channels", 1),
        options.get("bit_depth", 8),
        options.get("resize_mode", "crop"),
        "auto",
    )
    return decode_source(("file", str(path), "image"), decode_options)[0]


@pytest.mark.parametrize("size, channels, resize_mode", [(16, 1, "crop"), (100, 3, "pad"), (64, 1, "stretch")])
def test_eight_bit_path_stays_within_a_few_levels_of_the_float_path(brain_mri_subset, size, channels, resize_mode):
    # 8-bit images with an 8-bit output are decoded once, as small as JPEG allows, and resized in
    # Pillow's 8-bit arithmetic; the float path (16-bit outputs) is the reference.
    for path in sorted(brain_mri_subset.rglob("*.jpg"))[:6]:
        fast = expected_image(path, image_size=size, channels=channels, resize_mode=resize_mode).astype(int)
        exact = preprocess_frame(
            read_file(path)[0].pixels, image_size=size, channels=channels, bit_depth=8, resize_mode=resize_mode
        ).astype(int)
        assert fast.shape == exact.shape == (size, size, channels)
        assert np.abs(fast - exact).mean() < 1.0 and np.abs(fast - exact).max() <= 16


def test_eight_bit_path_without_resizing_is_exact(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = expected_image(tmp_path / "a.png", image_size=24)
    np.testing.assert_array_equal(image[..., 0], pixels)
    # A 16-bit output still takes the float path, unchanged.
    wide = expected_image(tmp_path / "a.png", image_size=24, bit_depth=16)
    np.testing.assert_array_equal(wide[..., 0], pixels.astype(np.uint16) * 257)


def small_npz(source: Path, target: Path, counts=(40, 10, 10)) -> Path:
    """A slice of a MedMNIST npz (first N of each split), for speed."""
    with np.load(source) as npz:
        arrays = {}
        for split, count in zip(("train", "val", "test"), counts):
            arrays[f"{split}_images"] = npz[f"{split}_images"][:count]
            arrays[f"{split}_labels"] = npz[f"{split}_labels"][:count]
    np.savez(target, **arrays)
    return target


# --------------------------------------------------------------------------- input kinds


def test_class_folders_give_stratified_splits_whose_records_match_the_sources(brain_mri_subset, tmp_path):
    out = tmp_path / "prepared"
    manifest = prepare_dataset(brain_mri_subset, out, **FAST)

    classes = sorted(p.name for p in brain_mri_subset.iterdir())
    assert manifest.labelled and manifest.class_names == classes
    # 8 images per class, 0.8/0.1/0.1 -> 6/1/1 of every class.
    for name, expected in (("train", 6), ("val", 1), ("test", 1)):
        assert manifest.splits[name].class_counts == {c: expected for c in classes}
    verify_dataset(out, check_hashes=True)
    assert not partial_dir_for(out).exists()

    records = read_records(out)
    assert sum(len(r) for r in records.values()) == 32
    for split, split_records in records.items():
        for image, label, source_id in split_records:
            source = manifest.sources[source_id]
            assert source["split"] == split and source["frames"] == 1
            assert manifest.class_names[label] == source["label"] == source["path"].split("/")[0]
            np.testing.assert_array_equal(image, expected_image(brain_mri_subset / source["path"]))
    assert {s["path"] for s in manifest.sources} == {
        p.relative_to(brain_mri_subset).as_posix() for p in brain_mri_subset.rglob("*.jpg")
    }


def test_flat_folder_with_odd_names_is_unlabelled(tmp_path):
    folder = tmp_path / "flat"
    names = ["scan 1 ü.png", "niño (2).jpg", "画像.bmp", "x y.tif"]
    for index, name in enumerate(names):
        filemakers.write_image(folder, name, filemakers.gradient(20 + index, 30, 255 - 10 * index))
    manifest = prepare_dataset(folder, tmp_path / "out", split=(1.0, 0.0, 0.0), resize_mode="pad", **FAST)

    assert not manifest.labelled and manifest.class_names == []
    assert list(manifest.splits) == ["train"] and manifest.splits["train"].class_counts == {}
    assert sorted(s["path"] for s in manifest.sources) == sorted(names)
    records = read_records(tmp_path / "out")["train"]
    assert len(records) == 4 and {label for _, label, _ in records} == {-1}
    for image, _, source_id in records:
        path = folder / manifest.sources[source_id]["path"]
        np.testing.assert_array_equal(image, expected_image(path, resize_mode="pad"))
    text = (tmp_path / "out" / "manifest.json").read_text(encoding="utf-8")
    assert "画像.bmp" in text  # unicode kept as is, not escaped


def test_16_bit_pngs_keep_their_precision(tmp_path):
    folder = tmp_path / "ct16"
    # 1000 and 1100 both round to 4 in 8 bits; 16 bits must keep them apart.
    filemakers.write_png16(folder, "a.png", np.full((20, 20), 1000, np.uint16))
    filemakers.write_png16(folder, "b.png", np.full((20, 20), 1100, np.uint16))
    filemakers.write_png16(folder, "ramp.png", filemakers.gradient(16, 16, 65535, np.uint16))

    manifest = prepare_dataset(folder, tmp_path / "out16", bit_depth=16, split=(1.0, 0.0, 0.0), **FAST)
    assert manifest.dtype == "uint16"
    by_path = {manifest.sources[sid]["path"]: image for image, _, sid in read_records(tmp_path / "out16")["train"]}
    assert by_path["a.png"].dtype == np.uint16
    assert np.all(by_path["a.png"] == 1000) and np.all(by_path["b.png"] == 1100)
    np.testing.assert_array_equal(by_path["ramp.png"][..., 0], filemakers.gradient(16, 16, 65535, np.uint16))

    prepare_dataset(folder, tmp_path / "out8", bit_depth=8, split=(1.0, 0.0, 0.0), **FAST)
    eight = {
        read_manifest(tmp_path / "out8").sources[sid]["path"]: image
        for image, _, sid in read_records(tmp_path / "out8")["train"]
    }
    np.testing.assert_array_equal(eight["a.png"], eight["b.png"])  # what 16 bits avoided


def test_every_pillow_mode_is_prepared(tmp_path):
    folder = tmp_path / "modes"
    layout = {
        "1": "png",
        "L": "png",
        "LA": "png",
        "RGB": "jpg",
        "RGBA": "png",
        "P": "png",
        "P-colour": "bmp",
        "P-transparent": "png",
        "CMYK": "jpg",
        "I;16": "png",
        "I;16B": "tif",
        "I": "tif",
        "F": "tif",
    }
    for mode, extension in layout.items():
        filemakers.write_mode_image(folder, f"mode {mode.replace(';', '_')}.{extension}", mode)
    manifest = prepare_dataset(folder, tmp_path / "out", channels=3, split=(1.0, 0.0, 0.0), dedupe=False, **FAST)
    assert manifest.skipped == []
    assert manifest.splits["train"].num_examples == len(layout)
    for image, _, source_id in read_records(tmp_path / "out")["train"]:
        assert image.shape == (16, 16, 3)
        np.testing.assert_array_equal(image, expected_image(folder / manifest.sources[source_id]["path"], channels=3))


def test_dicom_window_option_reaches_the_reader(tmp_path):
    from ragan.data.readers import DicomWindow

    folder = tmp_path / "ct"
    filemakers.write_dicom_copy(folder, "ct.dcm", "CT_small.dcm")
    results = {}
    for name, window in (("auto", "auto"), ("narrow", (40, 80)), ("full", None)):
        prepare_dataset(folder, tmp_path / name, window=window, bit_depth=16, split=(1.0, 0.0, 0.0), **FAST)
        [(image, _, _)] = read_records(tmp_path / name)["train"]
        frame = read_file(folder / "ct.dcm", window=DicomWindow(*window) if isinstance(window, tuple) else window)[0]
        np.testing.assert_array_equal(image, preprocess_frame(frame.pixels, image_size=16, channels=1, bit_depth=16))
        results[name] = image
    assert not np.array_equal(results["auto"], results["narrow"])
    assert not np.array_equal(results["narrow"], results["full"])
    assert read_manifest(tmp_path / "narrow").options["window"] == [40.0, 80.0]


def _dicom_folder(root: Path, patients: int = 6) -> dict[str, list[str]]:
    """Two classes of DICOM files, two files per patient; returns patient id -> relative paths."""
    files = defaultdict(list)
    for index in range(patients):
        patient = f"{filemakers.PATIENT_ID}-{index}"
        name = f"Doe^Patient{index}^Ragan"
        klass = "ct" if index % 2 == 0 else "mr"
        testfile = "CT_small.dcm" if klass == "ct" else "MR_small.dcm"
        for series in range(2):
            relative = f"{klass}/p{index}_s{series}.dcm"
            filemakers.write_dicom_copy(
                root / klass,
                f"p{index}_s{series}.dcm",
                testfile,
                patient_id=patient,
                patient_name=name,
                SeriesNumber=series + 1,
            )
            files[patient].append(relative)
    # A multi-frame file (15 frames) of one more patient.
    patient = f"{filemakers.PATIENT_ID}-multi"
    filemakers.write_dicom_copy(
        root / "ct", "dose.dcm", "rtdose.dcm", patient_id=patient, patient_name="Doe^Multi^Frame"
    )
    files[patient].append("ct/dose.dcm")
    return files


def test_dicom_grouped_by_patient_without_leaking_identifiers(tmp_path):
    root = tmp_path / "dicom"
    patients = _dicom_folder(root)
    out = tmp_path / "out"
    manifest = prepare_dataset(
        root, out, group_by="dicom", split=(0.5, 0.25, 0.25), bit_depth=16, export_zip=False, **FAST
    )

    by_path = {s["path"]: s for s in manifest.sources}
    for patient, paths in patients.items():
        assert len({by_path[p]["group"] for p in paths}) == 1, patient  # one hash per patient
        assert len({by_path[p]["split"] for p in paths}) == 1, f"patient {patient} is in two splits"
    assert len({s["group"] for s in manifest.sources}) == len(patients)
    assert len({s["split"] for s in manifest.sources}) >= 2  # the groups were spread over splits

    # The multi-frame file gives 15 records, all in its split.
    dose_id = next(i for i, s in enumerate(manifest.sources) if s["path"] == "ct/dose.dcm")
    assert manifest.sources[dose_id]["frames"] == 15
    records = read_records(out)
    holders = {split for split, rs in records.items() for _, _, sid in rs if sid == dose_id}
    assert holders == {manifest.sources[dose_id]["split"]}
    assert sum(sid == dose_id for rs in records.values() for _, _, sid in rs) == 15

    # No patient identifier reaches any output byte, in any encoding a writer might use.
    secrets = [filemakers.PATIENT_ID, *patients, "Doe^Patient", "Doe^Multi^Frame", "Patient0^Ragan"]
    for path, data in all_file_bytes(out).items():
        for secret in secrets:
            for encoded in (secret.encode("utf-8"), secret.encode("utf-16-le")):
                assert encoded not in data, f"{secret!r} found in {path}"


def test_group_hashes_are_reproducible_but_not_plain_hashes_of_the_id(tmp_path):
    import hashlib

    root = tmp_path / "dicom"
    _dicom_folder(root, patients=2)
    first = prepare_dataset(root, tmp_path / "a", group_by="dicom", **FAST)
    second = prepare_dataset(root, tmp_path / "b", group_by="dicom", **FAST)
    assert [s["group"] for s in first.sources] == [s["group"] for s in second.sources]
    plain = hashlib.sha256(f"{filemakers.PATIENT_ID}-0".encode()).hexdigest()
    assert plain not in {s["group"] for s in first.sources}


def test_zip_of_class_folders_equals_the_folder(brain_mri_subset, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(brain_mri_subset.rglob("*.jpg")):
            handle.write(path, "Training/" + path.relative_to(brain_mri_subset).as_posix())
        handle.writestr("Training/README.txt", "not an image")
        handle.writestr("__MACOSX/._junk.jpg", "mac clutter")
    from_zip = prepare_dataset(archive, tmp_path / "from_zip", shards_per_split=2, **FAST)
    from_folder = prepare_dataset(brain_mri_subset, tmp_path / "from_folder", shards_per_split=2, **FAST)

    assert from_zip.class_names == from_folder.class_names
    assert from_zip.skipped == [{"path": "Training/README.txt", "reason": "not an image: unsupported extension '.txt'"}]
    assert [s["path"] for s in from_zip.sources] == ["Training/" + s["path"] for s in from_folder.sources]
    # Same images, labels, order and splits: the shards are byte-identical.
    for split in from_folder.splits:
        assert [s.sha256 for s in from_zip.splits[split].shards] == [s.sha256 for s in from_folder.splits[split].shards]


def test_npz_keeps_its_splits_or_resplits(pneumonia_npz, tmp_path):
    npz = small_npz(pneumonia_npz, tmp_path / "small.npz")
    manifest = prepare_dataset(npz, tmp_path / "kept", class_names=["normal", "pneumonia"], **FAST)
    assert manifest.class_names == ["normal", "pneumonia"] and manifest.source["splits"] == "from input"
    kept = {name: split.num_examples for name, split in manifest.splits.items()}
    assert sum(kept.values()) + len(manifest.duplicates) == 60
    with np.load(npz) as arrays:
        for split, records in read_records(tmp_path / "kept").items():
            for image, label, source_id in records:
                path = manifest.sources[source_id]["path"]  # e.g. "val_images[3]"
                key, index = path[:-1].split("[")
                assert key == f"{split}_images"
                expected = preprocess_frame(
                    array_to_frame(arrays[key][int(index)]).pixels, image_size=16, channels=1, bit_depth=8
                )
                np.testing.assert_array_equal(image, expected)
                assert label == int(arrays[key.replace("images", "labels")][int(index), 0])

    resplit = prepare_dataset(npz, tmp_path / "resplit", resplit=True, split=(0.5, 0.5, 0.0), **FAST)
    assert list(resplit.splits) == ["train", "val"] and resplit.class_names == ["0", "1"]
    assert abs(resplit.splits["train"].num_examples - resplit.splits["val"].num_examples) <= 2
    # Ratios without resplit would be silently ignored (the input's splits are kept): refused.
    with pytest.raises(RaganError, match=r"split=\[0.5, 0.5, 0.0\] needs resplit=True"):
        prepare_dataset(npz, tmp_path / "ignored", split=(0.5, 0.5, 0.0), **FAST)
    assert not (tmp_path / "ignored").exists()


@pytest.mark.slow
def test_full_pneumoniamnist_npz(pneumonia_npz, tmp_path):
    manifest = prepare_dataset(pneumonia_npz, tmp_path / "out", image_size=28, num_workers=2, progress=False)
    counts = {name: split.num_examples for name, split in manifest.splits.items()}
    assert sum(counts.values()) + len(manifest.duplicates) == 4708 + 524 + 624
    assert counts["train"] + sum(d["path"].startswith("train") for d in manifest.duplicates) == 4708
    # At 28 px nothing is resized: the records are the original pixels.
    with np.load(pneumonia_npz) as arrays:
        images = arrays["test_images"]
        for image, _, source_id in read_records(tmp_path / "out")["test"][:50]:
            index = int(manifest.sources[source_id]["path"][len("test_images[") : -1])
            np.testing.assert_array_equal(image[..., 0], images[index])


def test_bundled_sample_and_medmnist_cache(pneumonia_npz, tmp_path, monkeypatch):
    sample = prepare_dataset("sample:pneumoniamnist", tmp_path / "sample", **FAST)
    assert sample.class_names == ["normal", "pneumonia"] and sample.source == {
        "kind": "sample",
        "name": "pneumoniamnist",
        "splits": "from input",
    }
    assert sum(s.num_examples for s in sample.splits.values()) + len(sample.duplicates) == 400 + 60 + 100

    cache = tmp_path / "cache" / "medmnist"
    cache.mkdir(parents=True)
    small_npz(pneumonia_npz, cache / "pneumoniamnist.npz", counts=(20, 5, 5))
    monkeypatch.setenv("RAGAN_CACHE", str(tmp_path / "cache"))
    medmnist = prepare_dataset("medmnist:pneumoniamnist", tmp_path / "medmnist", **FAST)
    assert medmnist.class_names == ["normal", "pneumonia"]
    assert sum(s.num_examples for s in medmnist.splits.values()) + len(medmnist.duplicates) == 30


def test_tfds_dataset_offline_with_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from ragan._tf import import_tf

    tf = import_tf()
    counts = {"train": 12, "test": 4}

    def fake_split(self, split, decoders=None, read_config=None, **kwargs):
        offset = 0 if str(split) == "train" else 5  # no test image equals a train image

        def examples():
            for index in range(counts[str(split)]):
                image = np.full((28, 28, 1), offset + 10 * index, np.uint8)  # distinct content per example
                yield {"image": image, "label": index % 3}

        spec = {"image": tf.TensorSpec((28, 28, 1), tf.uint8), "label": tf.TensorSpec((), tf.int64)}
        return tf.data.Dataset.from_generator(examples, output_signature=spec)

    metadata = tmp_path / "tfds"
    policy = tfds.testing.MockPolicy.USE_FILES
    with tfds.testing.mock_data(policy=policy, data_dir=str(metadata), as_dataset_fn=fake_split):
        builder = tfds.builder("mnist")  # write the split list a prepared dataset would have
        builder.info.set_splits(
            tfds.core.SplitDict(
                [tfds.core.SplitInfo(name=name, shard_lengths=[count], num_bytes=0) for name, count in counts.items()]
            )
        )
        Path(builder.data_dir).mkdir(parents=True, exist_ok=True)
        builder.info.write_to_directory(builder.data_dir)
    with tfds.testing.mock_data(policy=policy, data_dir=str(metadata), as_dataset_fn=fake_split):
        manifest = prepare_dataset("tfds:mnist", tmp_path / "out", **FAST)

    assert manifest.source["kind"] == "tfds" and manifest.source["splits"] == "from input"
    assert manifest.class_names == [str(i) for i in range(10)]
    assert {n: s.num_examples for n, s in manifest.splits.items()} == {"train": 12, "test": 4}
    for split, records in read_records(tmp_path / "out").items():
        for image, label, source_id in records:
            path = manifest.sources[source_id]["path"]
            index = int(path.split("[")[1][:-1])
            assert path.startswith(split) and label == index % 3
            assert np.all(image == (0 if split == "train" else 5) + 10 * index)


# --------------------------------------------------------------------------- behaviours


def _folder_with_bad_files(root: Path) -> Path:
    for index in range(4):
        filemakers.write_image(root / "a", f"good{index}.png", filemakers.gradient(12, 12, 200 - 40 * index))
        filemakers.write_image(root / "b", f"good{index}.jpg", filemakers.gradient(12, 14, 250 - 30 * index))
    filemakers.write_empty(root / "a", "empty.png")
    filemakers.write_truncated(root / "a", "truncated.png")
    filemakers.write_text_as_image(root / "b", "notes.jpg")
    filemakers.write_png_bomb(root / "b", "bomb.png")
    (root / "b" / "readme.txt").write_text("hello")
    os.symlink(root / "nowhere.png", root / "a" / "dangling.png")
    return root


def test_bad_files_are_skipped_with_reasons(tmp_path):
    root = _folder_with_bad_files(tmp_path / "messy")
    manifest = prepare_dataset(root, tmp_path / "out", split=(1.0, 0.0, 0.0), **FAST)

    reasons = {entry["path"]: entry["reason"] for entry in manifest.skipped}
    assert set(reasons) == {
        "a/empty.png",
        "a/truncated.png",
        "b/notes.jpg",
        "b/bomb.png",
        "b/readme.txt",
        "a/dangling.png",
    }
    assert "empty" in reasons["a/empty.png"] and "truncated" in reasons["a/truncated.png"]
    assert "decompression bomb" in reasons["b/bomb.png"] and "not an image" in reasons["b/notes.jpg"]
    assert manifest.splits["train"].num_examples == 8
    assert manifest.splits["train"].class_counts == {"a": 4, "b": 4}
    failed = {s["path"]: s["frames"] for s in manifest.sources if s["frames"] == 0}
    assert set(failed) == {"a/truncated.png", "b/notes.jpg", "b/bomb.png"}  # found only when decoded


def test_strict_stops_at_the_first_bad_file(tmp_path):
    root = _folder_with_bad_files(tmp_path / "messy")
    with pytest.raises(RaganError, match=r"a/dangling\.png"):
        prepare_dataset(root, tmp_path / "out", strict=True, **FAST)
    assert not (tmp_path / "out").exists() and not partial_dir_for(tmp_path / "out").exists()

    # A file that fails only when decoded stops the run too, naming it.
    decode_only = tmp_path / "decode_only"
    for index in range(3):
        filemakers.write_image(decode_only, f"ok{index}.png", filemakers.gradient(12, 12, 100 + index))
    filemakers.write_truncated(decode_only, "broken.png")
    with pytest.raises(RaganError, match=r"'broken\.png'.*truncated"):
        prepare_dataset(decode_only, tmp_path / "out2", strict=True, split=(1.0, 0.0, 0.0), **FAST)
    assert not (tmp_path / "out2").exists()


def test_exact_duplicates_are_listed_and_removed(brain_mri_subset, tmp_path):
    root = tmp_path / "dups"
    shutil.copytree(brain_mri_subset, root)
    original = sorted((root / "glioma_tumor").iterdir())[0]
    shutil.copyfile(original, root / "glioma_tumor" / "zz copy.jpg")
    shutil.copyfile(original, root / "no_tumor" / "misfiled.jpg")

    manifest = prepare_dataset(root, tmp_path / "out", **FAST)
    first = original.relative_to(root).as_posix()
    assert sorted(manifest.duplicates, key=lambda d: d["path"]) == [
        {"path": "glioma_tumor/zz copy.jpg", "duplicate_of": first},
        {"path": "no_tumor/misfiled.jpg", "duplicate_of": first},
    ]
    assert sum(s.num_examples for s in manifest.splits.values()) == 32
    assert first in {s["path"] for s in manifest.sources}

    kept = prepare_dataset(root, tmp_path / "kept", dedupe=False, **FAST)
    assert kept.duplicates == [] and sum(s.num_examples for s in kept.splits.values()) == 34


def test_same_seed_gives_byte_identical_output_whatever_the_workers(brain_mri_subset, tmp_path):
    options = dict(image_size=16, shards_per_split=2, export_zip=True, progress=False)
    prepare_dataset(brain_mri_subset, tmp_path / "one", num_workers=0, **options)
    prepare_dataset(brain_mri_subset, tmp_path / "two", num_workers=2, **options)
    first, second = all_file_bytes(tmp_path / "one"), all_file_bytes(tmp_path / "two")
    assert sorted(first) == sorted(second) and "dataset.zip" in first
    for name in first:
        assert first[name] == second[name], name

    other_seed = prepare_dataset(brain_mri_subset, tmp_path / "three", num_workers=0, seed=1, **options)
    assert (
        other_seed.splits["train"].shards[0].sha256 != read_manifest(tmp_path / "one").splits["train"].shards[0].sha256
    )


def test_stylegan_zip_export(brain_mri_subset, tmp_path):
    manifest = prepare_dataset(brain_mri_subset, tmp_path / "out", export_zip=True, channels=3, **FAST)
    with zipfile.ZipFile(tmp_path / "out" / "dataset.zip") as archive:
        labels = json.loads(archive.read("dataset.json"))["labels"]
        assert len(labels) == manifest.splits["train"].num_examples == 24
        assert labels[0][0] == "00000/img00000000.png"
        train = read_records(tmp_path / "out")["train"]
        for (name, label), (image, record_label, _) in zip(labels, train):
            png = Image.open(archive.open(name))
            assert png.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(png), image)
            assert label == record_label
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["labels"] == labels


def test_interrupted_run_leaves_no_output_and_resumes_to_the_same_bytes(brain_mri_subset, tmp_path, monkeypatch):
    options = dict(shards_per_split=3, **FAST)
    prepare_dataset(brain_mri_subset, tmp_path / "reference", **options)

    out = tmp_path / "out"
    real_append = prepare_module._append_journal
    calls = []

    def crash_after_first_shard(partial, entry):
        real_append(partial, entry)
        calls.append(entry["file"])
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C right after the first shard

    monkeypatch.setattr(prepare_module, "_append_journal", crash_after_first_shard)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(brain_mri_subset, out, **options)
    monkeypatch.setattr(prepare_module, "_append_journal", real_append)

    partial = partial_dir_for(out)
    assert not out.exists() and partial.is_dir()
    assert not (partial / "manifest.json").exists()
    finished = partial / calls[0]
    inode = finished.stat().st_ino

    prepare_dataset(brain_mri_subset, out, **options)
    assert not partial.exists()
    assert (out / calls[0]).stat().st_ino == inode  # the finished shard was kept, not rewritten
    assert all_file_bytes(out) == all_file_bytes(tmp_path / "reference")


def test_a_different_plan_discards_the_partial_output(brain_mri_subset, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def crash(partial, entry):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "_append_journal", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(brain_mri_subset, out, seed=0, shards_per_split=3, **FAST)
    monkeypatch.undo()
    assert partial_dir_for(out).is_dir()

    prepare_dataset(brain_mri_subset, out, seed=5, shards_per_split=3, **FAST)
    prepare_dataset(brain_mri_subset, tmp_path / "fresh", seed=5, shards_per_split=3, **FAST)
    assert all_file_bytes(out) == all_file_bytes(tmp_path / "fresh")


def test_output_folder_rules(brain_mri_subset, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("precious")
    with pytest.raises(RaganError, match=r"out=.*is not empty.*overwrite"):
        prepare_dataset(brain_mri_subset, out, **FAST)
    assert (out / "old.txt").read_text() == "precious"

    def crash(partial, entry):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare_module, "_append_journal", crash)
        with pytest.raises(KeyboardInterrupt):
            prepare_dataset(brain_mri_subset, out, overwrite=True, **FAST)
    assert (out / "old.txt").read_text() == "precious"  # replaced only by a complete dataset

    prepare_dataset(brain_mri_subset, out, overwrite=True, **FAST)
    assert not (out / "old.txt").exists() and (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial or old folder left

    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_dataset(brain_mri_subset, empty, **FAST)
    assert (empty / "manifest.json").is_file()

    with pytest.raises(RaganError, match="inside the input folder"):
        prepare_dataset(brain_mri_subset, brain_mri_subset / "prepared", **FAST)


@pytest.mark.parametrize(
    "options, named",
    [
        (dict(image_size=2), "image_size=2"),
        (dict(channels=2), "channels=2"),
        (dict(bit_depth=12), "bit_depth=12"),
        (dict(resize_mode="squash"), "resize_mode='squash'"),
        (dict(split=(0.8, 0.3, 0.1)), "split="),
        (dict(split="0.9,0.1"), "split="),
        (dict(seed=-1), "seed=-1"),
        (dict(group_by="patient"), "group_by='patient'"),
        (dict(group_by="csv"), "group_csv"),
        (dict(group_column="pid"), "group_csv and group_column"),
        (dict(window="widest"), "window"),
        (dict(class_names="a,b"), "class_names="),
        (dict(shards_per_split=0), "shards_per_split=0"),
        (dict(num_workers=-1), "num_workers=-1"),
        (dict(export_zip=True, bit_depth=16), "export_zip"),
        (dict(dedupe="maybe"), "dedupe='maybe'"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_option(brain_mri_subset, tmp_path, options, named):
    with pytest.raises(RaganError) as caught:
        prepare_dataset(brain_mri_subset, tmp_path / "out", **{**FAST, **options})
    assert named in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists() and not partial_dir_for(tmp_path / "out").exists()


@pytest.mark.parametrize("make", ["missing", "empty", "only_text", "single_file"])
def test_missing_or_empty_input_is_an_error(tmp_path, make):
    target = tmp_path / "input"
    if make == "empty":
        target.mkdir()
    elif make == "only_text":
        target.mkdir()
        (target / "notes.txt").write_text("x")
    elif make == "single_file":
        target = filemakers.write_image(tmp_path, "one.png", filemakers.gradient())
    with pytest.raises(RaganError, match=str(target.name)):
        prepare_dataset(target, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists() and not partial_dir_for(tmp_path / "out").exists()


def test_input_whose_every_image_is_broken_is_an_error(tmp_path):
    folder = tmp_path / "broken"
    filemakers.write_truncated(folder, "a.png")
    filemakers.write_text_as_image(folder, "b.jpg")
    with pytest.raises(RaganError, match=r"no image of the input could be used \(2 files skipped"):
        prepare_dataset(folder, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists() and not partial_dir_for(tmp_path / "out").exists()


def test_class_names_order_folders_and_rename_integer_labels(brain_mri_subset, tmp_path):
    wanted = sorted(p.name for p in brain_mri_subset.iterdir())[::-1]
    manifest = prepare_dataset(brain_mri_subset, tmp_path / "out", class_names=wanted, **FAST)
    assert manifest.class_names == wanted
    for _, label, source_id in read_records(tmp_path / "out")["train"]:
        assert wanted[label] == manifest.sources[source_id]["label"]
    with pytest.raises(RaganError, match="missing"):
        prepare_dataset(brain_mri_subset, tmp_path / "bad", class_names=wanted[:2], **FAST)


def test_grouping_by_csv_keeps_each_patient_in_one_split(brain_mri_subset, tmp_path):
    rows = ["file,patient"]
    paths = sorted(p.relative_to(brain_mri_subset).as_posix() for p in brain_mri_subset.rglob("*.jpg"))
    for index, path in enumerate(paths):
        rows.append(f'"{path}",patient-{index // 3}')  # three images per patient
    table = tmp_path / "patients.csv"
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")

    manifest = prepare_dataset(
        brain_mri_subset,
        tmp_path / "out",
        group_by="csv",
        group_csv=table,
        group_column="patient",
        split=(0.5, 0.25, 0.25),
        **FAST,
    )
    splits_per_group = defaultdict(set)
    for source in manifest.sources:
        splits_per_group[source["group"]].add(source["split"])
    assert len(splits_per_group) == 11 and all(len(s) == 1 for s in splits_per_group.values())
    assert "patient-" not in (tmp_path / "out" / "manifest.json").read_text()

    table.write_text("\n".join(rows[:-1]) + "\n", encoding="utf-8")  # one image missing
    with pytest.raises(RaganError, match=r"no \(unambiguous\) 'patient' for 1 of 32"):
        prepare_dataset(
            brain_mri_subset, tmp_path / "out2", group_by="csv", group_csv=table, group_column="patient", **FAST
        )
    with pytest.raises(RaganError, match="Did you mean 'patient'"):
        prepare_dataset(
            brain_mri_subset, tmp_path / "out3", group_by="csv", group_csv=table, group_column="patients", **FAST
        )


def test_workers_never_import_tensorflow():
    from ragan._tf import import_tf

    import_tf()  # the parent has TensorFlow; the workers must not inherit or import it
    with prepare_module._worker_pool(1) as pool:
        assert pool.submit(eval, "'tensorflow' in __import__('sys').modules").result() is False
        assert pool.submit(eval, "'ragan.data.inputs' in __import__('sys').modules").result() is True


def test_a_script_without_main_guard_still_works(brain_mri_subset, tmp_path):
    # spawn/forkserver workers re-run an unguarded main script unless prepare keeps it from them.
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import ragan\n"
        f"ragan.prepare_dataset({str(brain_mri_subset)!r}, {str(tmp_path / 'out')!r}, image_size=16, "
        "num_workers=2, progress=False)\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_decode_source_reports_reasons_instead_of_raising(tmp_path):
    options = DecodeOptions(16, 1, 8, "crop", "auto")
    bomb = filemakers.write_png_bomb(tmp_path)
    from ragan.data.readers import ImageReadError

    with pytest.raises(ImageReadError, match="decompression bomb"):
        decode_source(("file", str(bomb), "image"), options)


# --------------------------------------------------------------------------- split rules


def test_stratified_split_keeps_class_proportions():
    labels = ["a"] * 100 + ["b"] * 30 + ["c"] * 9
    assigned = stratified_split(labels, (0.8, 0.1, 0.1), seed=3)
    counts = Counter(zip(labels, assigned))
    assert [counts[("a", s)] for s in ("train", "val", "test")] == [80, 10, 10]
    assert [counts[("b", s)] for s in ("train", "val", "test")] == [24, 3, 3]
    assert [counts[("c", s)] for s in ("train", "val", "test")] == [7, 1, 1]
    assert assigned == stratified_split(labels, (0.8, 0.1, 0.1), seed=3)
    assert assigned != stratified_split(labels, (0.8, 0.1, 0.1), seed=4)


def test_grouped_split_never_splits_a_group_and_tracks_the_ratios():
    rng = np.random.default_rng(0)
    groups = [f"p{g}" for g in rng.integers(0, 60, size=400)]
    labels = ["x" if int(g[1:]) % 3 else "y" for g in groups]
    assigned = grouped_split(labels, groups, (0.7, 0.15, 0.15), seed=1)
    per_group = defaultdict(set)
    for group, split in zip(groups, assigned):
        per_group[group].add(split)
    assert all(len(splits) == 1 for splits in per_group.values())
    shares = Counter(assigned)
    assert abs(shares["train"] / 400 - 0.7) < 0.06 and shares["val"] > 0 and shares["test"] > 0


def test_split_ratio_parsing_and_shard_counts():
    assert parse_split_ratios("0.7,0.3,0") == (0.7, 0.3, 0.0)
    for bad in ("0.5,0.5,0.5", "0,0.5,0.5", "a,b,c", (0.8, 0.2)):
        with pytest.raises(RaganError):
            parse_split_ratios(bad)
    assert shard_count(10, 1, requested=None) == 1
    assert shard_count(10_000, 300 << 20) == 5
    assert shard_count(3, 300 << 20, requested=10) == 3


@pytest.mark.parametrize("channels", [1, 3])
def test_prepare_then_load_dataset_gives_back_the_pixels_and_labels(tmp_path, channels):
    """The whole data path as users run it: image files -> ragan prepare -> load_dataset."""
    from PIL import Image

    from ragan.data.pipeline import load_dataset

    rng = np.random.default_rng(channels)
    originals = {}
    for class_name in ("normal", "pneumonia"):
        (tmp_path / "in" / class_name).mkdir(parents=True)
        for index in range(12):
            pixels = rng.integers(0, 256, size=(16, 16, channels), dtype=np.uint8)
            mode, array = ("L", pixels[..., 0]) if channels == 1 else ("RGB", pixels)
            Image.fromarray(array, mode).save(tmp_path / "in" / class_name / f"scan {index}.png")
            originals[pixels.tobytes()] = class_name
    manifest = prepare_dataset(
        tmp_path / "in",
        tmp_path / "prepared",
        image_size=16,
        channels=channels,
        split=(0.5, 0.25, 0.25),
        progress=False,
    )
    seen = {}
    for split in ("train", "val", "test"):
        dataset = load_dataset(tmp_path / "prepared", split, batch_size=5, shuffle=False)
        for images, labels in dataset:
            # [-1, 1] floats back to the stored uint8 values.
            restored = np.rint((images.numpy() + 1.0) * 127.5).astype(np.uint8)
            for image, label in zip(restored, labels.numpy()):
                seen[image.tobytes()] = manifest.class_names[int(label)]
    assert seen == originals  # every image once, pixel for pixel, with its class


@pytest.mark.slow
def test_kill_9_mid_run_then_the_same_command_finishes_to_the_same_bytes(brain_mri_dir, tmp_path):
    """A real SIGKILL of `ragan prepare` (worker processes and all), not a simulated exception."""
    import signal
    import time

    source = brain_mri_dir / "Training"
    out = tmp_path / "out"
    command = ragan_command(
        "prepare",
        str(source),
        "--out",
        str(out),
        "--image-size",
        "16",
        "--shards-per-split",
        "8",
        "--quiet",
    )
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    journal = partial_dir_for(out) / prepare_module.JOURNAL_FILE
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert process.poll() is None, "prepare finished before it could be killed: " + process.stderr.read().decode()
    os.killpg(process.pid, signal.SIGKILL)  # the whole process group: the decoding workers too
    process.wait()
    assert not out.exists() and partial_dir_for(out).is_dir()

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not partial_dir_for(out).exists()
    reference = subprocess.run(
        command[:6] + [str(tmp_path / "reference")] + command[7:], capture_output=True, text=True, timeout=600
    )
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert all_file_bytes(out) == all_file_bytes(tmp_path / "reference")
