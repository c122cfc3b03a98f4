"""``ragan evaluate``: report.json sections, a self-contained report.html, MLflow artifacts, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ragan.errors import RaganError
from tests.runs import one_line_error, run_cli
from tests.system_tools import ensure_system_tools
from tests.test_mix import CLASS_NAMES, write_pneumonia_pair, write_prepared_dataset

FAST = dict(
    seeds=(0,), synthetic_fractions=(0.5,), epochs=1, batch_size=32, kid_subsets=10, diversity_pairs=20, progress=False
)


@pytest.fixture(scope="module")
def pair(tmp_path_factory, pneumonia_npz):
    return write_pneumonia_pair(tmp_path_factory.mktemp("report_data"), pneumonia_npz)


@pytest.fixture(scope="module")
def generator_run(tmp_path_factory):
    """A training run directory whose run.json points at a real (SQLite) MLflow run."""
    from mlflow import MlflowClient

    run_dir = tmp_path_factory.mktemp("run")
    uri = f"sqlite:///{run_dir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("ragan-test", artifact_location=(run_dir / "mlartifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    (run_dir / "run.json").write_text(
        json.dumps({"mlflow": {"tracking_uri": uri, "experiment": "ragan-test", "run_id": run_id}})
    )
    return run_dir, uri, run_id


@pytest.fixture(scope="module")
def report(pair, generator_run, tmp_path_factory):
    from ragan.evaluation.report import evaluate

    real, synthetic = pair
    out = tmp_path_factory.mktemp("report") / "report"
    return evaluate(real, synthetic, out=out, generator_run=generator_run[0], **FAST)


class _Elements(HTMLParser):
    """Collects tags with their attributes and the id of the section each sits in."""

    def __init__(self):
        super().__init__()
        self.elements = []
        self.stack = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        ids = [a.get("id") for _, a in self.stack if a.get("id")] + ([attrs["id"]] if attrs.get("id") else [])
        self.elements.append((tag, attrs, ids))
        if tag not in ("img", "br", "meta", "line", "circle", "input"):
            self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break

    def inside(self, section, tag=None, cls=None):
        return [
            attrs
            for t, attrs, ids in self.elements
            if section in ids
            and (tag is None or t == tag)
            and (cls is None or cls in (attrs.get("class") or "").split())
        ]


def test_report_json_has_every_section(report):
    data = json.loads(report.json_path.read_text())
    sections = {"real", "synthetic", "settings", "quality", "diversity", "memorisation", "study", "summary", "files"}
    sections |= {"privacy", "per_class"}
    assert sections <= set(data)
    assert data["real"]["train"]["num_examples"] == 200 and data["synthetic"]["num_examples"] == 400
    rows = data["quality"]["rows"]
    compared = {(row["metric"], row["compared"]) for row in rows}
    for metric in ("FID", "KID", "precision", "recall"):
        assert (metric, "synthetic vs real train") in compared and (metric, "real test vs real train") in compared
    for row in rows:
        assert row["extractor"].startswith("ragan_domain_small_cnn:real:seed0:weights_md5=")
        assert row["resize"] == "none (native 28x28)" and row["value"] is not None
    kid = next(row for row in rows if row["metric"] == "KID" and not row["reference"])
    # 200 real train vs 400 synthetic: subsets of half the smaller set, so they differ and spread.
    assert kid["detail"] == "10 subsets of 100" and kid["std"] > 0
    assert 0 < data["diversity"]["synthetic_ms_ssim"] < 1 and data["diversity"]["num_pairs"] == 20
    memorisation = data["memorisation"]
    assert memorisation["num_synthetic"] == 400 and memorisation["num_train"] == 200
    assert len(memorisation["closest_pairs"]) > 0 and memorisation["feature_name"] == rows[0]["extractor"]
    arms = [arm["name"] for arm in data["study"]["arms"]]
    assert arms == ["real", "real_aug", "real+synthetic@0.5", "count_matched@0.5", "synthetic_only"]
    assert any(line.startswith("FID") for line in data["summary"])
    assert any("count_matched@0.5" in line for line in data["summary"])
    for name in ("report.json", "report.html", "study.json", "study.txt", "domain_classifier.keras"):
        assert (report.out / name).is_file(), name
    assert not list(report.out.parent.glob(".*ragan-partial"))


def test_report_states_the_verdict_with_intervals(report):
    data = json.loads(report.json_path.read_text())
    verdict = data["verdict"]
    assert verdict["verdict"] in ("helps", "no evidence either way", "hurts", "no verdict")
    assert verdict["headline"] and any("held-out real images" in s for s in verdict["sentences"])
    comparisons = data["study"]["comparisons"]["auc"]
    assert {(c["arm"], c["baseline"]) for c in comparisons} >= {
        ("real+synthetic@0.5", "real"),
        ("real+synthetic@0.5", "real_aug"),
        ("real+synthetic@0.5", "count_matched@0.5"),
    }
    learned = {arm["name"]: arm["learning"]["learned"] for arm in data["study"]["arms"]}
    for comparison in comparisons:
        # No verdict rests on a baseline that did not learn (one epoch here: the real-only arm may not).
        assert (comparison["verdict"] == "no verdict") == (not learned[comparison["baseline"]]) or (
            not learned[comparison["arm"]] and comparison["verdict"] == "no verdict"
        )
        assert comparison["ci_low"] <= comparison["mean_difference"] <= comparison["ci_high"]
        assert comparison["num_test"] == 100 and comparison["effect_size"] == 0.02
        # 100 test images cannot detect an AUC difference of 0.02.
        assert comparison["underpowered"] is True and comparison["detectable_difference"] > 0.02
        assert f"  {comparison['verdict_line']}" in data["summary"]
    if verdict["verdict"] == "no evidence either way":
        assert any("too small to detect" in s for s in verdict["sentences"])
    assert any("one training seed" in s for s in verdict["sentences"])  # FAST runs one seed
    # The verdict is the first thing in the HTML body, before the summary and every table.
    text = report.html_path.read_text()
    assert text.index('id="verdict"') < text.index('id="summary"') < text.index("<table")
    parser = _Elements()
    parser.feed(text)
    rows = [attrs for tag, attrs, ids in parser.elements if tag == "tr" and "comparison-table" in ids][1:]
    assert [row["data-verdict"] for row in rows] == [c["verdict"] for c in comparisons]


def test_report_privacy_floors_and_per_class(report):
    data = json.loads(report.json_path.read_text())
    privacy = data["privacy"]
    attacks = {attack["key"]: attack for attack in privacy["attacks"]}
    # The fixture's run directory holds an MLflow run but no model: black-box attacks only, and a note.
    assert set(attacks) == {"feature", "pixel"}
    assert any(note.startswith("white-box attack skipped:") for note in privacy["notes"])
    for attack in attacks.values():
        assert attack["num_members"] == 200 and attack["num_nonmembers"] == 100 and attack["num_synthetic"] == 400
        assert attack["ci_low"] <= attack["auc"] <= attack["ci_high"] and set(attack["tpr_at_fpr"]) == {"0.01", "0.1"}
        assert set(attack["floors"]) == {"unseen_as_members", "unseen_as_synthetic"}
        assert attack["floors"]["unseen_as_members"]["num_members"] == 60  # the val split in the members' place
    # The synthetic images are other real images: nothing to find.
    assert privacy["finding"] != "leak" and privacy["flag"] is False
    assert privacy["sentences"][0].startswith("An attacker with the synthetic set ")
    assert data["summary"][0] == privacy["sentences"][0]
    floors = data["quality"]["floors"]
    assert {row["metric"] for row in floors} == {"FID", "KID", "precision", "recall"}
    # 200 real training images split 1 : 2 like the 200 : 400 synthetic comparison.
    assert {(row["num_reference"], row["num_compared"]) for row in floors} == {(67, 133)}
    assert any("synthetic vs real: " in line and "real vs real: " in line for line in data["summary"])
    assert data["diversity"]["ratio"] == pytest.approx(
        data["diversity"]["synthetic_ms_ssim"] / data["diversity"]["real_ms_ssim"]
    )
    rows = {row["class"]: row for row in data["per_class"]["rows"]}
    assert set(rows) == set(CLASS_NAMES)
    for row in rows.values():
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1 and row["tstr_auc"] is not None
        assert set(row["membership"]) == {"feature", "pixel"}
    assert sum(row["num_members"] for row in rows.values()) == 200
    # The first screen: the verdict, then the privacy sentence, then the summary and every table.
    text = report.html_path.read_text()
    assert text.index('id="verdict"') < text.index('id="privacy-verdict"') < text.index('id="summary"')
    parser = _Elements()
    parser.feed(text)
    assert [tr.get("data-attack") for tr in parser.inside("privacy-table", "tr")][1:] == ["feature", "pixel"]
    assert len(parser.inside("floor-table", "tr")) == 1 + 4
    assert [tr.get("data-class") for tr in parser.inside("per-class-table", "tr")][1:] == list(CLASS_NAMES)


def test_report_similarity_table_pairs_nearest_training_images(report, pair):
    from ragan.data.arrays import read_split

    data = json.loads(report.json_path.read_text())
    similarity = data["similarity"]
    assert [row["metric"] for row in similarity["rows"]] == ["PSNR", "SSIM", "MS-GMSD", "MDSI", "HaarPSI"]
    assert "nearest real training image" in similarity["pairing"] and "AIDL21" in similarity["why_not_random_pairs"]
    assert similarity["num_images"] == {"synthetic": 400, "real test": 100} and similarity["num_train"] == 200
    rows = {row["metric"]: row for row in similarity["rows"]}
    for row in rows.values():
        for key in ("synthetic", "real_test"):
            assert (
                row[key]["mean"] is not None
                and row[key]["n"] + row[key]["identical"]
                == similarity["num_images"]["synthetic" if key == "synthetic" else "real test"]
            )
    assert 0 < rows["SSIM"]["synthetic"]["mean"] < 1 and 0 < rows["HaarPSI"]["real_test"]["mean"] < 1
    assert rows["MS-GMSD"]["synthetic"]["mean"] > 0 and rows["PSNR"]["better"] == "higher"
    # PSNR against the nearest image is the best PSNR against any training image (checked for the test images).
    from ragan.evaluation.metrics import psnr

    real, _ = pair
    train, test = read_split(real, "train"), read_split(real, "test")
    best = [psnr(np.repeat(image[None], len(train), 0), train.images, max_value=255).max() for image in test.images]
    assert rows["PSNR"]["real_test"]["mean"] == pytest.approx(np.mean(best), rel=1e-4)
    parser = _Elements()
    parser.feed(report.html_path.read_text())
    assert len(parser.inside("similarity-table", "tr")) == 1 + 5


def test_domain_extractor_file_reproduces_the_features(report, pair):
    """The saved domain classifier is the extractor the report names (same weights hash)."""
    from ragan._tf import import_keras
    from ragan.evaluation.report import _weights_md5

    model = import_keras().saving.load_model(report.out / "domain_classifier.keras", compile=False)
    name = report.data["quality"]["rows"][0]["extractor"]
    assert name.endswith(_weights_md5(model)[:12])


def test_report_html_is_self_contained_with_grids_plot_and_gallery(report):
    text = report.html_path.read_text()
    parser = _Elements()
    parser.feed(text)
    grids = parser.inside("sample-grids", "img")
    assert len(grids) >= 4 and all(img["src"].startswith("data:image/png;base64,") for img in grids)
    plots = parser.inside("study-plot", "figure", "arm-plot")
    assert [plot.get("data-metric") for plot in plots] == ["auc", "accuracy"]
    assert len(parser.inside("study-plot", "svg")) == 2  # inline SVG, not images fetched from elsewhere
    error_bars = [g["id"] for g in parser.inside("study-plot", "g") if g.get("id", "").startswith("error-bar-")]
    # One per arm in each of the two plots.
    assert sorted(error_bars) == sorted(f"error-bar-{m}-{i}" for m in ("auc", "accuracy") for i in range(5))
    pairs = parser.inside("memorisation-gallery", "div", "pair")
    assert len(pairs) == 8
    assert len(parser.inside("memorisation-gallery", "img")) == 16
    # The distance distributions, synthetic against held-out real, one pair of rows per search.
    searches = report.data["memorisation"]["searches"]
    assert len(parser.inside("memorisation-distances", "tr")) == 1 + 2 * len(searches)
    assert len(parser.inside("metric-table", "tr")) == 1 + 8
    assert "ragan_domain_small_cnn" in text and "none (native 28x28)" in text
    # Nothing is fetched from elsewhere: no external scripts, styles or images.
    for tag, attrs, _ in parser.elements:
        for key in ("src", "href"):
            assert not str(attrs.get(key, "")).startswith(("http:", "https:", "//")), (tag, attrs)
    assert "<script" not in text


def test_report_is_logged_to_the_generator_mlflow_run(report, generator_run):
    from mlflow import MlflowClient

    _, uri, run_id = generator_run
    assert report.mlflow["logged"] is True and report.mlflow["run_id"] == run_id
    client = MlflowClient(tracking_uri=uri)
    artifacts = {Path(item.path).name for item in client.list_artifacts(run_id, "evaluation")}
    assert {"report.json", "report.html"} <= artifacts
    metrics = client.get_run(run_id).data.metrics
    fid = next(row for row in report.data["quality"]["rows"] if row["metric"] == "FID" and not row["reference"])
    assert metrics["eval.fid.domain"] == pytest.approx(fid["value"])
    assert "eval.study.real_synthetic_0.5.auc" in metrics


def test_unreachable_mlflow_is_a_warning(tmp_path, capsys):
    from ragan.evaluation.report import _log_to_mlflow

    file = tmp_path / "report.json"
    file.write_text("{}")
    result = _log_to_mlflow({"tracking_uri": "http://127.0.0.1:9", "run_id": "0" * 32}, [file], {"eval.fid": 1.0})
    assert result["logged"] is False and result["error"]
    err = capsys.readouterr().err
    assert err.startswith("ragan: warning: the report was not logged to MLflow") and err.count("\n") == 1


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        ensure_system_tools({"chromium": "chromium"})  # in CI: installed; elsewhere: skipped, saying how
        chromium = shutil.which("chromium")
    from PIL import Image

    screenshot = tmp_path / "report.png"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1200,2000",
        report.html_path.resolve().as_uri(),
    ]
    subprocess.run(command, capture_output=True, timeout=120)
    assert screenshot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2000, 1200)
    # Not blank: text, tables and the X-ray grids give many dark and mid-grey pixels.
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.02
    grey_levels = np.unique(pixels.astype(np.uint8)).size
    assert grey_levels > 100  # the X-ray sample grids are rendered, not just text
    # The first screen opens with the coloured verdict box (green, amber or red), not white.
    colour = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.int16)[60:260, 40:1100]
    from ragan.evaluation.render import VERDICT_CSS

    boxes = {"helps": (234, 247, 239), "none": (255, 248, 230), "hurts": (253, 236, 234)}  # report.html's CSS
    expected = np.array(boxes[VERDICT_CSS[report.data["verdict"]["verdict"]]])
    assert (np.abs(colour - expected).sum(axis=-1) < 6).mean() > 0.2


def test_report_without_study(pair, tmp_path):
    from ragan.evaluation.report import evaluate

    real, synthetic = pair
    result = evaluate(
        real, synthetic, out=tmp_path / "no_study", study=False, memorisation=False, max_images=100, **FAST
    )
    data = result.data
    assert data["study"] is None and data["memorisation"] is None and data["privacy"] is not None
    assert data["quality"]["rows"][0]["num_real"] == 100 and data["quality"]["rows"][0]["num_compared"] == 100
    text = result.html_path.read_text()
    assert "classifier study was not run" in text and "memorisation audit was not run" in text
    with pytest.raises(RaganError, match="exists and is not empty"):
        evaluate(real, synthetic, out=tmp_path / "no_study", study=False, **FAST)


def test_audit_finds_copies_of_training_images_outside_the_metrics_subsample(tmp_path, pneumonia_npz):
    """max_images subsamples the metrics; the memorisation audit must still search every training image."""
    from ragan.evaluation.report import evaluate

    data = np.load(pneumonia_npz)
    train = data["train_images"][:400], data["train_labels"][:400, 0]
    real = write_prepared_dataset(
        tmp_path / "real",
        {
            "train": train,
            "val": (data["val_images"][:40], data["val_labels"][:40, 0]),
            "test": (data["test_images"][:60], data["test_labels"][:60, 0]),
        },
        CLASS_NAMES,
    )
    # 20 independent images and 20 exact copies of training images 300..319 (fewer than max_images,
    # so the synthetic set is not subsampled and its indices stay put).
    copies = slice(300, 320)
    synthetic_images = np.concatenate([data["train_images"][1000:1020], data["train_images"][copies]])
    synthetic_labels = np.concatenate([data["train_labels"][1000:1020, 0], data["train_labels"][copies, 0]])
    synthetic = write_prepared_dataset(
        tmp_path / "synthetic", {"train": (synthetic_images, synthetic_labels)}, CLASS_NAMES, synthetic=True
    )
    result = evaluate(
        real, synthetic, out=tmp_path / "report", study=False, max_images=50, **{**FAST, "kid_subsets": 5}
    )
    audit = result.data["memorisation"]
    assert result.data["quality"]["rows"][0]["num_real"] == 50  # the metrics did subsample
    flagged = set(audit["flagged"])
    assert set(range(20, 40)) <= flagged, f"missed copies: {sorted(set(range(20, 40)) - flagged)}"
    assert not flagged & set(range(20)), f"flagged independent images: {sorted(flagged & set(range(20)))}"
    # Each copy's nearest training image is the one it copies, found beyond the 50-image subsample.
    assert audit["num_train"] == 400
    assert audit["searches"]["pixel"]["nearest_index"][20:] == list(range(300, 320))


@pytest.mark.slow
def test_inception_rows_from_a_local_weights_file(pair, tmp_path):
    """--inception-weights FILE adds InceptionV3 rows, named after the file, next to the domain rows."""
    from ragan._tf import import_keras
    from ragan.evaluation.report import evaluate

    keras = import_keras()
    weights = tmp_path / "inception_notop.weights.h5"
    keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3)
    ).save_weights(weights)
    real, synthetic = pair
    result = evaluate(
        real,
        synthetic,
        out=tmp_path / "report",
        inception_weights=weights,
        study=False,
        memorisation=False,
        max_images=20,
        **FAST,
    )
    rows = result.data["quality"]["rows"]
    inception = [row for row in rows if row["extractor"].startswith("inception_v3_weights:inception_notop")]
    assert {row["metric"] for row in inception} == {"FID", "KID", "precision", "recall"}
    assert all(row["resize"].startswith("bilinear 299x299") and row["feature_dim"] == 2048 for row in inception)
    assert result.data["settings"]["extractors"] == ["domain", "inception"]
    assert any(row["extractor"].startswith("ragan_domain") for row in rows)


def test_evaluate_cli_bad_inputs_are_one_line(pair, tmp_path, pneumonia_npz):
    real, _ = pair
    data = np.load(pneumonia_npz)
    images, labels = data["train_images"][:30], data["train_labels"][:30, 0]
    big = write_prepared_dataset(
        tmp_path / "big", {"train": (np.pad(images, ((0, 0), (2, 2), (2, 2))), labels)}, CLASS_NAMES, synthetic=True
    )
    tumour = write_prepared_dataset(
        tmp_path / "tumour", {"train": (images, labels)}, ["normal", "glioma"], synthetic=True
    )
    cases = [
        (big, "holds 32x32x1 images but real dataset"),
        (tumour, "has classes ['glioma'] that real dataset"),
    ]
    for synthetic, expected in cases:
        result = run_cli("evaluate", "--real", real, "--synthetic", synthetic, "--out", tmp_path / "out", "--quick")
        line = one_line_error(result)
        assert line.startswith("ragan: error: ") and expected in line
        assert not (tmp_path / "out").exists()
    result = run_cli("evaluate", "--real", real, "--synthetic", big, "--out", tmp_path / "out", "--seeds", "0,x")
    assert result.returncode == 2 and "seeds='0,x' is not a valid tuple of int" in result.stderr


@pytest.mark.slow
def test_evaluate_a_trained_gan(tmp_path, pneumonia_npz):
    """The whole chain on real data: prepare -> train a tiny conditional DCGAN -> generate -> evaluate."""
    import ragan

    training = pytest.importorskip("ragan.training.loop")
    data = np.load(pneumonia_npz)
    small = tmp_path / "small.npz"
    np.savez(
        small,
        **{
            f"{split}_{kind}": data[f"{split}_{kind}"][:n]
            for split, n in (("train", 300), ("val", 60), ("test", 100))
            for kind in ("images", "labels")
        },
    )
    prepared = ragan.prepare_dataset(
        small, tmp_path / "prepared", image_size=16, channels=1, seed=0, class_names=CLASS_NAMES, progress=False
    )
    assert prepared.image_size == 16
    run = training.train(
        "dcgan",
        data=tmp_path / "prepared",
        out=tmp_path / "run",
        config={"conditional": True, "base_filters": 8, "latent_dim": 16},
        train_config={"steps": 20, "batch_size": 32, "seed": 0},
        progress=False,
    )
    ragan.generate(run, 200, tmp_path / "synthetic", format="tfrecord", seed=0, progress=False)
    # Balanced conditional output (100 per class) cannot serve f=0.5 in the real proportions
    # (about 80 : 220): that arm is left out with a note, f=0.2 runs.
    report = ragan.evaluate(
        tmp_path / "prepared",
        tmp_path / "synthetic",
        out=tmp_path / "report",
        generator_run=run,
        **dict(FAST, synthetic_fractions=(0.2, 0.5)),
    )
    notes = report.data["study"]["notes"]
    assert any(note.startswith("real+synthetic@0.5 left out: synthetic dataset") for note in notes), notes
    assert report.data["synthetic"]["marked_synthetic"] is True
    assert report.data["synthetic"]["generator"]["model"] == "dcgan"
    assert [arm["name"] for arm in report.data["study"]["arms"]][-1] == "synthetic_only"
    # A 20-step GAN is far from the real images: its FID is worse than held-out real images'.
    rows = {(r["metric"], r["reference"]): r["value"] for r in report.data["quality"]["rows"]}
    assert rows[("FID", False)] > rows[("FID", True)]
    # White-box: the conditional discriminator of the saved model scores every training and test image.
    privacy = report.data["privacy"]
    white = next(attack for attack in privacy["attacks"] if attack["key"] == "discriminator")
    assert white["kind"] == "white-box" and white["name"] == "discriminator of the saved model (step 20)"
    assert white["num_members"] == 300 and white["num_nonmembers"] == 100
    assert any(s.startswith("An attacker with the GAN's discriminator ") for s in privacy["sentences"])
    assert any("last checkpoint (ckpt-000000020.npz) is the saved model's step" in n for n in privacy["notes"])
    assert set(report.data["per_class"]["rows"][0]["membership"]) == {"feature", "pixel", "discriminator"}

    # A newer checkpoint than the saved model (a run continued, then stopped) is attacked as well, with its own D.
    from ragan.evaluation.privacy_audit import discriminator_scores, discriminator_scores_of_run
    from ragan.training.checkpoint import CheckpointManager

    gan = ragan.load_generator(run)
    for weight in gan.discriminator.weights:
        weight.assign(weight * 1.5)
    CheckpointManager(run / "checkpoints").save(gan, step=21)
    images = np.random.default_rng(0).uniform(-1, 1, (40, 16, 16, 1)).astype(np.float32)
    labels = np.repeat([0, 1], 20)
    found, _ = discriminator_scores_of_run(run, images[:20], labels[:20], images[20:], labels[20:], CLASS_NAMES)
    assert found["discriminator_checkpoint"]["name"] == "discriminator of the last checkpoint (step 21)"
    expected = discriminator_scores(gan, images, labels, seed=0)
    np.testing.assert_allclose(found["discriminator_checkpoint"]["member_scores"], expected[:20], rtol=1e-4, atol=1e-4)
    assert not np.allclose(found["discriminator"]["member_scores"], expected[:20], atol=1e-3)


def test_every_evaluate_flag_reaches_the_library_and_defaults_match(monkeypatch, capsys):
    import inspect

    import ragan.evaluation.report as report_module
    from ragan.cli.main import main

    library_defaults = {
        name: p.default
        for name, p in inspect.signature(report_module.evaluate).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    captured = {}

    def fake_evaluate(real, synthetic, *, out, config):
        captured.update(vars(config), real=real, synthetic=synthetic)
        raise SystemExit(0)

    monkeypatch.setattr(report_module, "evaluate", fake_evaluate)
    with pytest.raises(SystemExit):
        main(
            [
                "evaluate",
                "--real",
                "r",
                "--synthetic",
                "s",
                "--out",
                "o",
                "--kid-subsets",
                "7",
                "--diversity-pairs",
                "9",
                "--max-images",
                "300",
                "--add-per-class",
                "5",
                "--rebalance",
                "--effect-size",
                "0.05",
                "--no-privacy",
            ]
        )
    assert captured["effect_size"] == 0.05 and captured["privacy"] is False
    assert captured["kid_subsets"] == 7 and captured["diversity_pairs"] == 9 and captured["max_images"] == 300
    assert captured["add_per_class"] == 5 and captured["rebalance"] is True
    captured.clear()
    with pytest.raises(SystemExit):
        main(["evaluate", "--real", "r", "--synthetic", "s", "--out", "o"])
    for name in (
        "kid_subsets",
        "diversity_pairs",
        "max_images",
        "batch_size",
        "classifier",
        "epochs",
        "rebalance",
        "add_per_class",
        "quick",
        "overwrite",
        "effect_size",
        "privacy",
        "memorisation",
    ):
        assert captured[name] == library_defaults[name], name
    assert tuple(captured["seeds"]) == tuple(library_defaults["seeds"])
    assert tuple(captured["synthetic_fractions"]) == tuple(library_defaults["synthetic_fractions"])


def test_classifiers_trained_in_a_child_process_give_the_same_report(report, pair, tmp_path, monkeypatch):
    """From TRAIN_IN_CHILD_MIN_SIZE px up the study trains in a child process, whose memory goes back to the
    system when it ends. Forced here at 28 px: this process trains nothing, and the study, the domain
    features and every number built on them are the in-process run's."""
    from ragan.evaluation import report as reports

    def not_here(*args, **kwargs):
        raise AssertionError("the classifiers trained in the parent process")

    monkeypatch.setattr(reports, "TRAIN_IN_CHILD_MIN_SIZE", 1)
    monkeypatch.setattr(reports, "_run_study", not_here)
    real, synthetic = pair
    child = reports.evaluate(real, synthetic, out=tmp_path / "child", **FAST)

    def numbers(data):
        arms = {arm["name"]: [run["metrics"] for run in arm["runs"]] for arm in data["study"]["arms"]}
        return arms, data["quality"]["rows"], data["similarity"], data["memorisation"]["flagged"]

    assert numbers(child.data) == numbers(report.data)
    assert child.study.reference_model is not None and (child.out / "domain_classifier.keras").is_file()
    assert (child.out / "study.json").is_file() and not list(tmp_path.glob(".child*"))
    # Bad input found by the child (it reads the datasets first) is the same one line, and nothing is left behind.
    with pytest.raises(RaganError, match=r"^synthetic_class='nope'") as caught:
        reports.evaluate(real, synthetic, out=tmp_path / "bad", synthetic_class="nope", **FAST)
    assert "\n" not in str(caught.value) and not getattr(caught.value, "__notes__", None)
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))
