"""``prepare`` with labels from a CSV, include/exclude globs and the segmentation-mask check.

Layouts of real public datasets, in miniature: BUSI (class folders with ``_mask`` files next to
the images), ISIC 2020 (a flat folder and ``train.csv`` with extension-less ``image_name``),
CheXpert (nested patient folders, a CSV whose paths start with the dataset's folder name).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ragan.data.manifest import read_manifest
from ragan.data.prepare import partial_dir_for, prepare_dataset
from ragan.data.selection import mask_name_pattern, match_rows, parse_label_map
from ragan.errors import RaganError
from tests import filemakers
from tests.runs import run_cli

FAST = dict(image_size=16, num_workers=0, progress=False)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def busi(tmp_path_factory) -> Path:
    return filemakers.write_busi_like(tmp_path_factory.mktemp("busi") / "Dataset_BUSI_with_GT")


@pytest.fixture(scope="module")
def isic(tmp_path_factory) -> tuple[Path, Path]:
    return filemakers.write_isic_like(tmp_path_factory.mktemp("isic"))


@pytest.fixture(scope="module")
def chexpert(tmp_path_factory) -> tuple[Path, Path]:
    return filemakers.write_chexpert_like(tmp_path_factory.mktemp("chexpert"))


# --------------------------------------------------------------------------- masks and globs


def test_masks_next_to_images_stop_the_run_before_any_work(busi, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(
        RaganError,
        match=r"segmentation masks.*'benign/benign \(1\)_mask.png'.*--exclude '\*_mask\*'"
        r".*--allow-masks",
    ):
        prepare_dataset(busi, out, **FAST)
    assert not out.exists() and not partial_dir_for(out).exists()


def test_exclude_drops_the_masks_and_allow_masks_keeps_them(busi, tmp_path):
    manifest = prepare_dataset(busi, tmp_path / "images", exclude="*_mask*", **FAST)
    paths = [source["path"] for source in manifest.sources]
    assert len(paths) == 12 and not any("mask" in path for path in paths)
    assert manifest.class_names == ["benign", "malignant", "normal"]
    assert manifest.source["excluded"] == 15 and manifest.options["exclude"] == ["*_mask*"]

    kept = prepare_dataset(busi, tmp_path / "all", allow_masks=True, **FAST)
    assert len(kept.sources) + len(kept.duplicates) == 27 and kept.options["allow_masks"] is True


def test_include_keeps_only_matching_paths(busi, tmp_path):
    manifest = prepare_dataset(
        busi, tmp_path / "out", include=["benign/*", "normal/*"], exclude=["*_mask*"], split=(0.5, 0.5, 0.0), **FAST
    )
    assert manifest.class_names == ["benign", "normal"]
    assert all(s["path"].split("/")[0] in ("benign", "normal") for s in manifest.sources)
    with pytest.raises(RaganError, match=r"include=\['\*.dcm'\] leave no file"):
        prepare_dataset(busi, tmp_path / "none", include="*.dcm", **FAST)


def test_a_mask_like_name_on_a_real_image_is_not_a_mask(tmp_path):
    folder = tmp_path / "in"
    for index in range(4):
        filemakers.write_image(folder, f"label_{index}.png", filemakers._textured(index))  # many grey values
    manifest = prepare_dataset(folder, tmp_path / "out", split=(1.0, 0.0, 0.0), **FAST)
    assert manifest.splits["train"].num_examples == 4


def test_mask_name_patterns():
    assert mask_name_pattern("benign/benign (12)_mask_1.png") == "*_mask*"
    assert mask_name_pattern("case_7-seg.png") == "*-seg*"
    assert mask_name_pattern("masks/case7.png") == "masks/*"
    assert mask_name_pattern("train/labels/case7.png") == "*/labels/*"
    assert mask_name_pattern("malignant (3).png") is None and mask_name_pattern("mask_rcnn_free.jpg") == "*mask*"


# --------------------------------------------------------------------------- labels CSV


def test_isic_like_csv_labels_with_label_map(isic, tmp_path):
    images, table = isic
    manifest = prepare_dataset(
        images,
        tmp_path / "out",
        labels_csv=table,
        path_column="image_name",
        label_column="diagnosis",
        split=(0.5, 0.5, 0.0),
        label_map={"nevus": "benign", "seborrheic keratosis": "benign", "melanoma": "malignant"},
        class_names=["malignant", "benign", "unknown"],
        **FAST,
    )
    assert manifest.class_names == ["malignant", "benign", "unknown"] and manifest.labelled
    by_path = {s["path"]: s["label"] for s in manifest.sources}
    assert by_path["ISIC_1000001.jpg"] == "malignant" and by_path["ISIC_1000002.jpg"] == "benign"
    assert len(by_path) == 12
    # The image without a row is left out and listed; the row without an image is counted and listed.
    assert {"path": "ISIC_8888888.jpg", "reason": "no row in labels_csv 'train.csv'"} in manifest.skipped
    record = manifest.source["labels_csv"]
    assert record["images_matched"] == 12 and record["images_without_row"] == 1 and record["rows_without_image"] == 1
    assert record["rows_without_image_listed"] == [{"line": 14, "path": "ISIC_9999999"}]
    assert manifest.options["labels_csv"] == "train.csv" and manifest.options["label_column"] == "diagnosis"
    total = {name: sum(split.class_counts[name] for split in manifest.splits.values()) for name in manifest.class_names}
    assert total == {"malignant": 3, "benign": 6, "unknown": 3}


def test_integer_labels_named_by_class_names(isic, tmp_path):
    images, table = isic
    manifest = prepare_dataset(
        images,
        tmp_path / "out",
        labels_csv=table,
        path_column="image_name",
        label_column="target",
        class_names=["benign", "malignant"],
        split=(0.5, 0.5, 0.0),
        **FAST,
    )
    assert manifest.class_names == ["benign", "malignant"]
    assert {s["label"] for s in manifest.sources} == {"benign", "malignant"}


@pytest.mark.parametrize(
    "options, message",
    [
        (
            dict(path_column="image", label_column="target"),
            r"path_column='image' is not a column.*Did you mean 'image_name'",
        ),
        (dict(path_column="image_name", label_column="targt"), r"label_column='targt' is not a column"),
        (dict(path_column="patient_id", label_column="target"), r"path_column='patient_id' .*matches no file"),
        (dict(path_column="image_name", label_column="target", label_map="0=x,1=x"), r"single class \('x'\)"),
        (dict(path_column="image_name", label_column="target", label_map="0=x,7=y"), r"label_map names values.*'7'"),
        (dict(path_column="image_name", label_column="target", label_map="nonsense"), r"label_map='nonsense'"),
        (dict(path_column="image_name"), r"labels_csv needs label_column"),
        (dict(path_column="image_name", label_column="target", class_names=["a", "b", "c", "d"]), r"class_names="),
    ],
)
def test_labels_csv_errors_before_any_work(isic, tmp_path, options, message):
    images, table = isic
    out = tmp_path / "out"
    with pytest.raises(RaganError, match=message):
        prepare_dataset(images, out, labels_csv=table, **options, **FAST)
    assert not out.exists() and not partial_dir_for(out).exists()


def test_csv_options_need_a_folder_or_zip_and_a_csv(tmp_path, isic):
    with pytest.raises(RaganError, match="only apply with labels_csv"):
        prepare_dataset(isic[0], tmp_path / "a", label_column="target", **FAST)
    with pytest.raises(RaganError, match="folder or .zip"):
        prepare_dataset("sample:pneumoniamnist", tmp_path / "b", exclude="*x*", **FAST)


def test_chexpert_like_csv_with_patient_groups_from_the_same_file(chexpert, tmp_path):
    images, table = chexpert
    manifest = prepare_dataset(
        images,
        tmp_path / "out",
        labels_csv=table,
        path_column="Path",
        label_column="Pleural Effusion",
        label_map="1.0=effusion,0.0=no effusion,-1.0=uncertain",
        group_by="csv",
        group_column="Patient",
        split=(0.5, 0.5, 0.0),
        **FAST,
    )
    assert sorted(manifest.class_names) == ["effusion", "no effusion", "uncertain"]
    assert len(manifest.sources) == 12 and manifest.options["group_by"] == "csv"
    # Both studies of a patient sit in one split; the group hash is the same for both.
    split_of_patient = {}
    for source in manifest.sources:
        patient = source["path"].split("/")[0]
        assert split_of_patient.setdefault(patient, source["split"]) == source["split"]
        assert source["group"] is not None and "patient" not in source["group"]
    assert set(split_of_patient.values()) == {"train", "val"}


def test_labels_csv_in_a_zip(isic, tmp_path):
    import zipfile

    images, table = isic
    archive = tmp_path / "isic.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(images.iterdir()):
            handle.write(path, f"train/{path.name}")
    manifest = prepare_dataset(
        archive,
        tmp_path / "out",
        labels_csv=table,
        path_column="image_name",
        label_column="target",
        split=(0.5, 0.5, 0.0),
        **FAST,
    )
    assert manifest.class_names == ["0", "1"] and len(manifest.sources) == 12


def test_match_rows_and_label_map_parsing():
    assert match_rows(["p1/s1/v.jpg", "p2/s1/v.jpg"], ["X/train/p2/s1/v.jpg", "v.jpg", "p1/s1/v"]) == ([2, 0], [1])
    assert parse_label_map({"a": "b"}) == {"a": "b"}
    with pytest.raises(RaganError, match="VALUE=CLASS"):
        parse_label_map("a:b")


# --------------------------------------------------------------------------- CLI


def test_cli_labels_csv_and_exclude(isic, busi, tmp_path):
    images, table = isic
    result = run_cli(
        "prepare",
        images,
        "--out",
        tmp_path / "isic",
        "--labels-csv",
        table,
        "--path-column",
        "image_name",
        "--label-column",
        "benign_malignant",
        "--image-size",
        "16",
        "--workers",
        "0",
        "--quiet",
        "--split",
        "0.5,0.5,0",
    )
    assert result.returncode == 0, result.stderr
    assert "1 images without a row" in result.stdout and "1 rows without an image" in result.stdout
    assert json.loads((tmp_path / "isic" / "manifest.json").read_text())["class_names"] == ["benign", "malignant"]

    masks = run_cli("prepare", busi, "--out", tmp_path / "busi", "--image-size", "16", "--workers", "0", "--quiet")
    lines = [line for line in masks.stderr.splitlines() if line.strip()]
    assert masks.returncode == 2 and len(lines) == 1 and "--exclude '*_mask*'" in lines[0]
    result = run_cli(
        "prepare",
        busi,
        "--out",
        tmp_path / "busi",
        "--image-size",
        "16",
        "--workers",
        "0",
        "--quiet",
        "--exclude",
        "*_mask*",
        "--exclude",
        "normal/*",
        "--split",
        "0.5,0.5,0",
    )
    assert result.returncode == 0, result.stderr
    assert read_manifest(tmp_path / "busi").class_names == ["benign", "malignant"]
