"""Files from strangers other than network pickles (issue #19): class names that try to be paths,
a run folder that chooses where reports go, a YAML alias bomb, symbolic links out of an input
folder, and two stages writing the same output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ragan._files import PartialLock, path_inside
from ragan._untrusted import check_class_name, safe_yaml_load
from ragan.cli.main import main
from ragan.errors import RaganError

REPO = Path(__file__).resolve().parents[1]
FAST = dict(image_size=8, num_workers=0, progress=False, split=(1.0, 0.0, 0.0))
ESCAPES = ["../../escaped", "/abs/escaped", "..", ".", "a/b", "a\\b", "x\0y", "line\nbreak", "", "   "]


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def _images(folder: Path, names: list[str], start: int = 10) -> Path:
    """Distinct flat images (prepare drops exact duplicates)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        Image.fromarray(np.full((8, 8), start + 20 * index, np.uint8)).save(folder / name)
    return folder


# ----------------------------------------------------------------------------------------------
# Class names are labels, never paths
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ESCAPES)
def test_a_class_name_that_is_a_path_is_refused(name):
    with pytest.raises(RaganError, match=r"^labels\.csv line 2: class name .* is not allowed \(") as error:
        check_class_name(name, "labels.csv line 2")
    assert "\n" not in str(error.value) and "\0" not in str(error.value)


@pytest.mark.parametrize("name", ["pneumonia", "COVID-19", "grade 2", "Ødem", "a..b", ".hidden"])
def test_ordinary_class_names_pass(name):
    assert check_class_name(name, "x") == name


def test_path_inside_keeps_every_written_file_in_its_folder(tmp_path):
    out = tmp_path / "out"
    assert path_inside(out, "normal", "a.png") == out / "normal" / "a.png"
    for parts in (("..", "x.png"), ("/etc", "x.png"), ("a/../../x.png",), ("",)):
        with pytest.raises(RaganError, match="not inside the folder"):
            path_inside(out, *parts)
    # A folder inside the output that is a link to elsewhere is outside too.
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(RaganError, match="refused to write 'linked/x.png'"):
        path_inside(out, "linked", "x.png")


def _labelled_folder(tmp_path: Path, labels: list[str]) -> tuple[Path, Path]:
    images = _images(tmp_path / "images", [f"img{i}.png" for i in range(len(labels))])
    table = tmp_path / "labels.csv"
    table.write_text("file,label\n" + "".join(f"img{i}.png,{label}\n" for i, label in enumerate(labels)))
    return images, table


@pytest.mark.parametrize(
    "labels, label_map, fragment",
    [
        (["a", "../../escaped", "a", "b"], None, "labels.csv' line 3: class name '../../escaped'"),
        (["a", "/abs/escaped", "b", "b"], None, "class name '/abs/escaped'"),
        (["a", "b", "a", "b"], "a=../x,b=y", "label_map value for 'a': class name '../x'"),
    ],
)
def test_prepare_refuses_path_class_names_from_a_labels_csv_or_label_map(tmp_path, labels, label_map, fragment):
    images, table = _labelled_folder(tmp_path, labels)
    out = tmp_path / "out"
    args = ["prepare", images, "--out", out, "--labels-csv", table, "--path-column", "file"]
    args += ["--label-column", "label", "--image-size", "8", "--quiet"]
    if label_map:
        args += ["--label-map", label_map]
    result = subprocess.run(
        [sys.executable, "-m", "ragan", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert fragment in line and "a class name is a label, not a path" in line, line
    assert {path.split("/")[0] for path in _files_under(tmp_path)} == {"images", "labels.csv"}
    assert not out.exists() and not (tmp_path / "escaped").exists() and not Path("/abs/escaped").exists()


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ("/abs/escaped/b.png", r"zip entry '/abs/escaped/b\.png'.*class name '/' is not allowed"),
        ("a\\..\\..\\escaped/b.png", r"escaped/b\.png'.*is not allowed \(it contains '\\\\'\)"),
    ],
)
def test_prepare_refuses_zip_entries_that_are_paths(tmp_path, entry, fragment):
    from ragan.data.prepare import prepare_dataset

    archive = tmp_path / "data.zip"
    picture = tmp_path / "p.png"
    Image.fromarray(np.full((8, 8), 99, np.uint8)).save(picture)
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(picture, "normal/a.png")
        handle.writestr(zipfile.ZipInfo(entry), picture.read_bytes())  # ZipInfo keeps the name as it is
    assert entry in zipfile.ZipFile(archive).namelist()
    with pytest.raises(RaganError, match=fragment):
        prepare_dataset(archive, tmp_path / "out", **FAST)
    assert not (tmp_path / "out").exists()


def test_prepare_refuses_class_names_that_are_paths(tmp_path):
    from ragan.data.prepare import prepare_dataset

    folder = _images(tmp_path / "folder" / "x", ["1.png", "2.png"])
    _images(folder.parent / "y", ["3.png", "4.png"], start=100)
    with pytest.raises(RaganError, match=r"^class_names: class name '\.\./y'"):
        prepare_dataset(folder.parent, tmp_path / "out", class_names=["x", "../y"], **FAST)
    assert not (tmp_path / "out").exists()


def test_a_manifest_read_back_with_a_path_class_name_is_refused(tmp_path):
    from training_fixtures import make_prepared, tiny_images

    from ragan.data.manifest import read_manifest

    images, labels = tiny_images(8, 8)
    data = make_prepared(tmp_path / "data", images, labels, ["disc", "bar"])
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["class_names"] = ["disc", "../../escaped"]
    manifest["splits"]["train"]["class_counts"] = {"disc": 4, "../../escaped": 4}
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RaganError, match=r"manifest\.json: field 'class_names': class name '\.\./\.\./escaped'"):
        read_manifest(data)


def test_import_weights_refuses_path_class_names_before_reading_anything(tmp_path, capsys):
    out = tmp_path / "imported"
    assert main(["import-weights", str(tmp_path / "missing.pkl"), "--out", str(out), "--class-names", "a,../b,c"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--class-names: class name '../b' is not allowed" in line
    assert _files_under(tmp_path) == set()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A conditional run folder whose run.json names classes that are paths."""
    from training_fixtures import tiny_generator_run

    run = tmp_path_factory.mktemp("hostile") / "run"
    run.mkdir()
    tiny_generator_run(run)
    (run / "run.json").write_text(json.dumps({"model": "model.keras", "class_names": ["../../escaped", "/tmp/x"]}))
    return run


def test_generate_refuses_class_names_from_a_run_folder(hostile_run, tmp_path):
    from ragan.generation import generate

    before = _files_under(hostile_run.parent)
    with pytest.raises(RaganError, match=r"run\.json: class_names: class name '\.\./\.\./escaped' is not allowed"):
        generate(hostile_run, 4, tmp_path / "out", progress=False)
    assert _files_under(tmp_path) == set() and _files_under(hostile_run.parent) == before


def test_generate_refuses_a_model_file_outside_the_run_folder(hostile_run, tmp_path):
    from ragan.generation import generate

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"model": "../hostile/run/model.keras"}))
    with pytest.raises(RaganError, match=r"refused to read '\.\./hostile/run/model\.keras': it is not inside"):
        generate(run, 2, tmp_path / "out", progress=False)


def test_the_png_writer_keeps_class_folders_inside_out(hostile_run, tmp_path):
    """A GAN given directly (no run.json to check) with path class names: the writer refuses."""
    from ragan.generation import generate, load_generator

    gan = load_generator(_clean_copy(hostile_run, tmp_path))
    gan.class_names = ["../../escaped", "fine"]
    out = tmp_path / "deep" / "er" / "out"
    with pytest.raises(RaganError, match=r"refused to write '\.\./\.\./escaped/synthetic-000000\.png'"):
        generate(gan, 4, out, progress=False)
    assert not out.exists() and not (tmp_path / "deep" / "escaped").exists()
    assert _files_under(tmp_path / "deep") == {"er"}  # the partial folder is cleaned up


def _clean_copy(run: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "clean-run"
    shutil.copytree(run, copy)
    (copy / "run.json").write_text(json.dumps({"model": "model.keras", "class_names": ["a", "b"]}))
    return copy


@pytest.mark.slow
def test_cli_generate_from_a_hostile_run_folder_is_one_line_and_writes_nothing(hostile_run, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "ragan", "generate", str(hostile_run), "--n", "4", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert "class name '../../escaped' is not allowed" in _one_line(result.stderr)
    assert _files_under(tmp_path) == set() and not (hostile_run.parent.parent / "escaped").exists()


# ----------------------------------------------------------------------------------------------
# evaluate --run: the tracking URI is the user's
# ----------------------------------------------------------------------------------------------
def _run_folder(tmp_path: Path, recorded: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"mlflow": {"run_id": "0" * 32, "tracking_uri": recorded}}))
    return run


def test_the_tracking_uri_recorded_in_a_run_folder_is_not_used(tmp_path, monkeypatch):
    from ragan.evaluation.report_mlflow import describe_target, mlflow_target

    run = _run_folder(tmp_path, "http://collector.example:5000")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    target = mlflow_target(run)
    assert target["tracking_uri"] == f"sqlite:///{run.resolve() / 'mlflow.db'}"
    lines = describe_target(target)
    assert lines[0].endswith("(from the run folder's own store)")
    assert "records the tracking URI 'http://collector.example:5000', which is not used" in lines[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mine.db")
    assert mlflow_target(run)["tracking_uri"] == "sqlite:///mine.db"
    # Only given explicitly is the recorded URI used.
    target = mlflow_target(run, tracking_uri="http://collector.example:5000")
    assert target["tracking_uri"] == "http://collector.example:5000" and len(describe_target(target)) == 1


@pytest.mark.slow
def test_a_run_folder_store_cannot_send_artifacts_elsewhere(tmp_path, monkeypatch, capsys):
    from mlflow import MlflowClient

    from ragan.evaluation.report_mlflow import log_to_mlflow, mlflow_target

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = tmp_path / "run"
    run.mkdir()
    elsewhere = tmp_path / "collector"
    client = MlflowClient(tracking_uri=f"sqlite:///{run / 'mlflow.db'}")
    experiment = client.create_experiment("x", artifact_location=elsewhere.as_uri())
    run_id = client.create_run(experiment).info.run_id
    (run / "run.json").write_text(json.dumps({"mlflow": {"run_id": run_id, "tracking_uri": "http://elsewhere"}}))
    report = tmp_path / "report.json"
    report.write_text("{}")
    result = log_to_mlflow(mlflow_target(run), [report], {"eval.fid": 1.0})
    assert result["logged"] is False and "outside the run folder" in result["error"]
    assert not elsewhere.exists()
    assert "not logged to MLflow" in capsys.readouterr().err


def test_evaluate_has_a_tracking_uri_flag():
    from ragan.cli.main import build_parser
    from ragan.evaluation.config import EvaluateConfig

    argv = [
        "evaluate",
        "--real",
        "r",
        "--synthetic",
        "s",
        "--out",
        "o",
        "--run",
        "x",
        "--tracking-uri",
        "sqlite:///m.db",
    ]
    config = EvaluateConfig.from_cli(build_parser(argv).parse_args(argv))
    assert (config.generator_run, config.tracking_uri) == ("x", "sqlite:///m.db")
    assert "tracking_uri" not in config.settings()  # where a report is logged is not what its numbers depend on


# ----------------------------------------------------------------------------------------------
# YAML configs
# ----------------------------------------------------------------------------------------------
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
)

MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "wb") as err:
    status = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=err).returncode
print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""

LOAD_CONFIG = """
import sys
from ragan.config import load_overrides
from ragan.errors import RaganError
try:
    load_overrides(sys.argv[1])
except RaganError as error:
    print(f"ragan: error: {error}", file=sys.stderr)
    sys.exit(2)
"""


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 1024  # 9**9 "lol"s once expanded
    err = tmp_path / "err.txt"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(err), sys.executable, "-c", LOAD_CONFIG, str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.perf_counter() - started
    status, peak_kib = map(int, result.stdout.split())
    assert status == 2 and "anchors and aliases (&name, *name) are not allowed" in _one_line(err.read_text())
    assert peak_kib < 150 * 1024 and seconds < 30, (peak_kib, seconds)


def test_config_files_are_capped_and_plain(tmp_path):
    from ragan.config import load_overrides

    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (1 << 20) + "\n")
    with pytest.raises(RaganError, match="over 1,048,576 bytes"):
        load_overrides(big)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("a: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(RaganError, match="is not valid"):
        load_overrides(tagged)
    assert not Path("pwned").exists()
    with pytest.raises(RaganError, match="more than one YAML document"):
        safe_yaml_load("a: 1\n---\nb: 2\n", "two.yaml")
    ok = tmp_path / "ok.yaml"
    ok.write_text("latent_dim: 64\nlearning_rate: 0.0002\n")
    assert load_overrides(ok) == {"latent_dim": 64, "learning_rate": 0.0002}


# ----------------------------------------------------------------------------------------------
# Symbolic links out of an input folder
# ----------------------------------------------------------------------------------------------
def test_prepare_skips_links_out_of_the_input_unless_asked(tmp_path):
    from ragan.data.prepare import prepare_dataset

    secret = _images(tmp_path / "private", ["secret.png"], start=200)
    data = tmp_path / "received"
    _images(data / "a", ["1.png", "2.png"])
    _images(data / "b", ["3.png", "4.png"], start=100)
    (data / "a" / "innocent.png").symlink_to(secret / "secret.png")
    manifest = prepare_dataset(data, tmp_path / "out", **FAST)
    assert {s["path"] for s in manifest.sources} == {"a/1.png", "a/2.png", "b/3.png", "b/4.png"}
    skipped = {entry["path"]: entry["reason"] for entry in manifest.skipped}
    assert "outside the input folder" in skipped["a/innocent.png"]
    manifest = prepare_dataset(data, tmp_path / "out2", follow_symlinks=True, **FAST)
    assert "a/innocent.png" in {s["path"] for s in manifest.sources}


# ----------------------------------------------------------------------------------------------
# Two stages writing one output
# ----------------------------------------------------------------------------------------------
def test_a_second_generate_into_the_same_output_stops_without_deleting_the_first(tmp_path):
    from training_fixtures import tiny_generator_run

    from ragan.generation import generate

    run = tmp_path / "run"
    run.mkdir()
    tiny_generator_run(run)
    out = tmp_path / "out"
    partial = out.parent / f".{out.name}.ragan-partial"
    with PartialLock(partial, "generate"):  # as a running `ragan generate` holds it
        (partial / "synthetic-000000.png").write_bytes(b"the first run's image")
        with pytest.raises(RaganError, match=r"another 'ragan generate' is writing '.*\.out\.ragan-partial'"):
            generate(run, 2, out, progress=False)
        assert (partial / "synthetic-000000.png").read_bytes() == b"the first run's image"
    # Once the first one is gone, the leftovers of an interrupted run are cleared and replaced.
    result = generate(run, 2, out, progress=False)
    pngs = sorted(out.rglob("*.png"))
    assert result.num_images == 2 and len(pngs) == 2 and not partial.exists()
    assert all(path.read_bytes()[:4] == b"\x89PNG" for path in pngs)


def test_a_second_train_in_the_same_run_folder_stops(tmp_path):
    from training_fixtures import make_prepared, tiny_images

    import ragan

    images, labels = tiny_images(16, 16)
    data = make_prepared(tmp_path / "data", images, labels, ["disc", "bar"])
    run = tmp_path / "run"
    with PartialLock(run, "train"):
        with pytest.raises(RaganError, match=r"another 'ragan train' is writing"):
            ragan.train(
                "dcgan",
                data=data,
                out=run,
                config={"latent_dim": 8, "base_filters": 8},
                train_config={"steps": 1, "batch_size": 8},
                progress=False,
            )
    assert _files_under(run) == set()
