"""``ragan prepare``: options map to library arguments, a readable summary, one-line errors."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ragan.data.prepare as prepare_module
from ragan.cli.main import main
from tests import filemakers
from tests.runs import one_line_error, run_cli

REPO = Path(__file__).resolve().parents[1]
LIBRARY_PREPARE = prepare_module.prepare_dataset  # before any test replaces it


def test_cli_prepares_a_folder_and_prints_a_summary(brain_mri_subset, tmp_path):
    out = tmp_path / "prepared"
    result = run_cli(
        "prepare",
        brain_mri_subset,
        "--out",
        out,
        "--image-size",
        "16",
        "--workers",
        "0",
        "--quiet",
        "--shards-per-split",
        "2",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "prepare:" not in result.stderr  # --quiet: no bars

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["image_size"] == 16 and len(manifest["splits"]["train"]["shards"]) == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Prepared 32 images (16x16, 1 channel, uint8)") and str(out) in lines[0]
    header = lines[1].split()
    assert header == ["split", "examples", *manifest["class_names"]]
    train = lines[2].split()
    assert train[0] == "train" and train[1] == str(manifest["splits"]["train"]["num_examples"])
    assert train[2:] == [str(manifest["splits"]["train"]["class_counts"][c]) for c in manifest["class_names"]]
    assert "Skipped 0 unusable files and 0 exact duplicates" in result.stdout


def test_every_cli_option_maps_to_one_library_argument(tmp_path, monkeypatch, capsys):
    captured = {}

    def fake_prepare(input, out, *, config):
        captured.update(vars(config), input=input, out=out)
        from ragan.data.manifest import Manifest

        return Manifest(
            image_size=config.image_size,
            channels=config.channels,
            dtype="uint8",
            class_names=[],
            labelled=False,
            splits={},
        )

    monkeypatch.setattr(prepare_module, "prepare_dataset", fake_prepare)
    table = tmp_path / "groups.csv"
    table.write_text("path,pid\n")
    status = main(
        [
            "prepare",
            "in_dir",
            "--out",
            "out_dir",
            "--image-size",
            "32",
            "--channels",
            "3",
            "--bit-depth",
            "16",
            "--resize",
            "pad",
            "--split",
            "0.7,0.2,0.1",
            "--resplit",
            "--seed",
            "7",
            "--group-by",
            "csv",
            "--group-csv",
            str(table),
            "--group-column",
            "pid",
            "--window",
            "40,400",
            "--class-names",
            "a, b",
            "--keep-duplicates",
            "--strict",
            "--overwrite",
            "--shards-per-split",
            "3",
            "--workers",
            "2",
            "--quiet",
            "--follow-symlinks",
        ]
    )
    assert status == 0
    assert captured == dict(
        input="in_dir",
        out="out_dir",
        image_size=32,
        channels=3,
        bit_depth=16,
        resize_mode="pad",
        split=(0.7, 0.2, 0.1),
        resplit=True,
        seed=7,
        group_by="csv",
        group_csv=str(table),
        group_column="pid",
        window="40,400",
        class_names=("a", "b"),
        labels_csv=None,
        path_column=None,
        label_column=None,
        label_map=None,
        include=None,
        exclude=None,
        allow_masks=False,
        dedupe=False,
        strict=True,
        overwrite=True,
        export_zip=False,
        shards_per_split=3,
        num_workers=2,
        follow_symlinks=True,
    )
    captured.clear()
    assert (
        main(
            [
                "prepare",
                "in_dir",
                "--out",
                "out_dir",
                "--labels-csv",
                "train.csv",
                "--path-column",
                "image_name",
                "--label-column",
                "target",
                "--label-map",
                "0=benign,1=malignant",
                "--include",
                "train/*",
                "--include",
                "extra/*",
                "--exclude",
                "*_mask*",
                "--allow-masks",
                "--export-zip",
            ]
        )
        == 0
    )
    assert {
        key: captured[key]
        for key in (
            "labels_csv",
            "path_column",
            "label_column",
            "label_map",
            "include",
            "exclude",
            "allow_masks",
            "export_zip",
        )
    } == dict(
        labels_csv="train.csv",
        path_column="image_name",
        label_column="target",
        label_map={"0": "benign", "1": "malignant"},
        include=("train/*", "extra/*"),
        exclude=("*_mask*",),
        allow_masks=True,
        export_zip=True,
    )
    # And the defaults are the library's defaults.
    captured.clear()
    assert main(["prepare", "in_dir", "--out", "out_dir"]) == 0
    defaults = {
        name: p.default
        for name, p in inspect.signature(LIBRARY_PREPARE).parameters.items()
        if p.default is not inspect.Parameter.empty and name not in ("config", "progress")
    }
    for name, value in defaults.items():
        assert captured[name] == value, name


@pytest.mark.parametrize(
    "args, expected",
    [
        (["{missing}", "--out", "{out}"], "does not exist"),
        (["{folder}", "--out", "{nonempty}"], "is not empty"),
        (["{folder}", "--out", "{out}", "--split", "0.8,0.3,0.1"], "split="),
        (["{folder}", "--out", "{out}", "--resize", "zoom"], "resize_mode='zoom'"),
        (["{folder}", "--out", "{out}", "--window", "sideways"], "window"),
        (["{folder}", "--out", "{out}", "--group-by", "csv"], "group_csv"),
        (["{folder}", "--out", "{out}", "--group-by", "patient"], "group_by='patient' is not allowed"),
        (["{folder}", "--out", "{out}", "--no-such-option"], "unrecognized arguments"),
        (["{folder}", "--out", "{out}", "--strict", "--workers", "0", "--quiet"], "notes.txt"),
        (["{folder}"], "--out"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(tmp_path, args, expected):
    folder = tmp_path / "images"
    for index in range(3):
        filemakers.write_image(folder / "a", f"{index}.png", filemakers.gradient(10, 10, 100 + index))
    (folder / "a" / "notes.txt").write_text("not an image")
    nonempty = tmp_path / "nonempty"
    nonempty.mkdir()
    (nonempty / "keep.txt").write_text("x")
    values = dict(folder=folder, missing=tmp_path / "missing", out=tmp_path / "out", nonempty=nonempty)
    line = one_line_error(run_cli("prepare", *[arg.format(**values) for arg in args]))
    assert expected in line
    assert not (tmp_path / "out").exists()
    assert (nonempty / "keep.txt").is_file()
