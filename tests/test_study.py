"""The classifier study: every arm, several seeds, the count-matched control, honest errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ragan.errors import RaganError
from ragan.evaluation.classifier import CLASSIFIER_VERSION
from tests.test_mix import CLASS_NAMES, write_pneumonia_pair, write_prepared_dataset


@pytest.fixture(scope="module")
def pair(tmp_path_factory, pneumonia_npz):
    return write_pneumonia_pair(tmp_path_factory.mktemp("study"), pneumonia_npz)


@pytest.fixture(scope="module")
def study(pair, tmp_path_factory):
    from ragan.evaluation.study import classifier_study

    real, synthetic = pair
    out = tmp_path_factory.mktemp("study_out")
    result = classifier_study(
        real, synthetic, synthetic_fractions=(0.0, 0.5), seeds=(0, 1), epochs=1, batch_size=32, out=out, progress=False
    )
    return result, out


def test_study_runs_every_arm_with_every_seed(study):
    result, out = study
    names = [arm.name for arm in result.arms]
    assert names == ["real", "real_aug", "real+synthetic@0.5", "count_matched@0.5", "synthetic_only"]
    for arm in result.arms:
        assert [run["seed"] for run in arm.runs] == [0, 1]
        for run in arm.runs:
            metrics = run["metrics"]
            assert metrics["num_examples"] == 100  # the real test split, for every arm
            assert 0.0 <= metrics["auc"] <= 1.0 and run["epochs_trained"] == 1
        summary = arm.summary()
        values = arm.values("auc")
        assert summary["auc"]["mean"] == pytest.approx(np.mean(values))
        assert summary["auc"]["std"] == pytest.approx(np.std(values, ddof=1))
        assert summary["auc"]["n"] == 2
    assert any("fraction 0" in note for note in result.notes)
    assert result.reference_model is not None and result.reference_model.output_shape == (None, 2)


def test_study_training_sets_and_control(study):
    result, _ = study
    arms = {arm.name: arm for arm in result.arms}
    assert arms["real"].composition == {"real": 200, "synthetic": 0, "repeated_real": 0}
    assert arms["real"].class_counts == {"normal": 41, "pneumonia": 159}
    assert arms["real_aug"].augmentation == "standard" and arms["real"].augmentation == "none"
    # f = 0.5: as many synthetic images as real ones, in the real class proportions.
    mixed = arms["real+synthetic@0.5"]
    assert mixed.composition == {"real": 200, "synthetic": 200, "repeated_real": 0}
    assert mixed.class_counts == {"normal": 82, "pneumonia": 318} and mixed.synthetic_fraction == 0.5
    control = arms["count_matched@0.5"]
    assert mixed.control == "count_matched@0.5"
    assert control.composition == {"real": 200, "synthetic": 0, "repeated_real": 200}
    assert control.class_counts == mixed.class_counts and control.augmentation == "standard (repeated copies)"
    assert arms["synthetic_only"].composition == {"real": 0, "synthetic": 400, "repeated_real": 0}


def test_study_result_serialises_and_compares(study):
    result, out = study
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert {"settings", "data", "definitions", "arms", "comparisons", "notes"} <= set(data)
    assert data["data"]["test"] == {"num_examples": 100, "class_counts": {"normal": 43, "pneumonia": 57}}
    assert data["settings"]["seeds"] == [0, 1] and "count_matched" in data["definitions"]
    # The architecture is named as the user chose it, with the version of what that name builds.
    saved = json.loads((out / "study.json").read_text())["settings"]
    assert saved["classifier"] == "small_cnn" and saved["classifier_version"] == CLASSIFIER_VERSION
    pairs = {(c["arm"], c["baseline"]) for c in data["comparisons"]["auc"]}
    assert pairs == {
        ("real+synthetic@0.5", "count_matched@0.5"),
        ("real+synthetic@0.5", "real_aug"),
        ("real+synthetic@0.5", "real"),
        ("synthetic_only", "real_aug"),
        ("synthetic_only", "real"),
    }
    comparison = next(c for c in data["comparisons"]["auc"] if c["baseline"] == "count_matched@0.5")
    arms = {arm.name: arm for arm in result.arms}
    expected = [
        a - b for a, b in zip(arms["real+synthetic@0.5"].values("auc"), arms["count_matched@0.5"].values("auc"))
    ]
    assert comparison["mean_difference"] == pytest.approx(np.mean(expected))
    assert comparison["wins"] == sum(d > 0 for d in expected)
    # The interval, its verdict and the power warning: 100 test images cannot detect 0.02 AUC.
    assert comparison["ci_low"] <= comparison["mean_difference"] <= comparison["ci_high"]
    assert comparison["verdict"] in ("helps", "no evidence either way", "hurts", "no verdict")
    assert comparison["num_test"] == 100 and comparison["underpowered"] is True
    # One epoch: a baseline that did not learn gets no verdict (every arm carries its learning check).
    learned = {arm["name"]: arm["learning"]["learned"] for arm in data["arms"]}
    if not learned["count_matched@0.5"]:
        assert comparison["verdict"] == "no verdict" and "count_matched@0.5" in comparison["not_learned"]
        assert comparison["verdict_line"].startswith("real+synthetic@0.5 vs count_matched@0.5: no verdict - the ")
    else:
        assert comparison["verdict_line"].startswith(
            f"real+synthetic@0.5 vs count_matched@0.5: {comparison['verdict']} (AUC"
        )
    assert [v["arm"] for v in data["verdicts"]] == ["real+synthetic@0.5", "synthetic_only"]
    # The kept test predictions reproduce every run's AUC (the intervals are recomputable from study.json).
    from ragan.evaluation.classifier import roc_auc_one_vs_rest

    for arm in data["arms"]:
        for run in arm["runs"]:
            auc, _ = roc_auc_one_vs_rest(data["test_labels"], run["test_probabilities"])
            assert auc == pytest.approx(run["metrics"]["auc"], abs=1e-6)
    assert "Paired AUC differences" in result.table()
    assert json.loads((out / "study.json").read_text())["arms"][0]["name"] == "real"
    table = (out / "study.txt").read_text()
    for arm in result.arms:
        assert arm.name in table
    assert "±" in table and "n=100" in table


def test_same_seed_gives_the_same_run(pair, study):
    from ragan.evaluation.study import classifier_study

    result, _ = study
    real, synthetic = pair
    again = classifier_study(
        real,
        synthetic,
        arms=["count_matched"],
        synthetic_fractions=(0.5,),
        seeds=(1,),
        epochs=1,
        batch_size=32,
        progress=False,
    )
    first = next(arm for arm in result.arms if arm.name == "count_matched@0.5").runs[1]["metrics"]
    assert again.arms[0].runs[0]["metrics"]["auc"] == pytest.approx(first["auc"], abs=1e-6)


def test_repeated_real_images_cycle_before_repeating():
    from ragan.evaluation.study import _repeat_per_class

    labels = np.array([0] * 5 + [1] * 3)
    chosen = _repeat_per_class(labels, np.array([4, 7]), np.random.default_rng(0))
    zeros, ones = chosen[labels[chosen] == 0], chosen[labels[chosen] == 1]
    assert len(zeros) == 4 and len(set(zeros)) == 4  # fewer than the class size: no repeats
    assert len(ones) == 7 and np.bincount(ones - 5).tolist() in ([3, 2, 2], [2, 3, 2], [2, 2, 3])


def test_study_rebalance_and_per_class_arms_are_planned():
    from ragan.evaluation.study import _plan_arms

    plans, _ = _plan_arms(["real", "real+synthetic", "count_matched"], [0.2], 25, True, True)
    names = [plan.name for plan in plans]
    assert names == [
        "real",
        "real+synthetic@0.2",
        "count_matched@0.2",
        "real+synthetic+25/class",
        "count_matched+25/class",
        "real+synthetic_rebalance",
        "count_matched_rebalance",
    ]


def test_study_bad_inputs(pair, tmp_path, pneumonia_npz):
    from ragan.evaluation.study import classifier_study, load_study_data

    real, synthetic = pair
    data = np.load(pneumonia_npz)
    images, labels = data["train_images"][:30], data["train_labels"][:30, 0]
    big = write_prepared_dataset(
        tmp_path / "big", {"train": (np.pad(images, ((0, 0), (2, 2), (2, 2))), labels)}, CLASS_NAMES, synthetic=True
    )
    with pytest.raises(RaganError, match=r"synthetic dataset '.*big' holds 32x32x1 images but real dataset"):
        classifier_study(real, big, seeds=(0,), epochs=1)
    rgb = write_prepared_dataset(
        tmp_path / "rgb", {"train": (np.repeat(images[..., None], 3, -1), labels)}, CLASS_NAMES, synthetic=True
    )
    with pytest.raises(RaganError, match="28x28x3 images but real dataset .* 28x28x1"):
        classifier_study(real, rgb, seeds=(0,), epochs=1)
    tumour = write_prepared_dataset(
        tmp_path / "tumour", {"train": (images, labels)}, ["normal", "glioma"], synthetic=True
    )
    with pytest.raises(RaganError, match=r"has classes \['glioma'\] that real dataset"):
        classifier_study(real, tumour, seeds=(0,), epochs=1)
    empty = write_prepared_dataset(tmp_path / "empty", {"train": (images[:0], labels[:0])}, CLASS_NAMES, synthetic=True)
    with pytest.raises(RaganError, match="empty.* holds no images"):
        classifier_study(real, empty, seeds=(0,), epochs=1)
    no_test = write_prepared_dataset(
        tmp_path / "no_test", {"train": (images, labels), "val": (images, labels)}, CLASS_NAMES
    )
    with pytest.raises(RaganError, match="no 'test' split"):
        classifier_study(no_test, synthetic, seeds=(0,), epochs=1)
    unlabelled = write_prepared_dataset(
        tmp_path / "unlabelled", {"train": (images, np.zeros(30))}, CLASS_NAMES, synthetic=True, labelled=False
    )
    with pytest.raises(RaganError, match="unlabelled .* synthetic_class"):
        classifier_study(real, unlabelled, seeds=(0,), epochs=1)
    one_class = load_study_data(real, unlabelled, synthetic_class="pneumonia")
    assert one_class.synthetic_labels.tolist() == [1] * 30
    with pytest.raises(RaganError, match="synthetic_class='pneumona' is not a class.*Did you mean 'pneumonia'"):
        load_study_data(real, unlabelled, synthetic_class="pneumona")
    # Asking for more synthetic images than exist fails before any training.
    with pytest.raises(RaganError, match="holds 105 images of class 'normal' but rebalance needs 118"):
        classifier_study(real, synthetic, rebalance=True, synthetic_fractions=(), seeds=(0,), epochs=1)
    with pytest.raises(RaganError, match=r"arms: 'real\+synth' is not an arm kind.*Did you mean 'real\+synthetic'"):
        classifier_study(real, synthetic, arms=["real+synth"], seeds=(0,))
    with pytest.raises(RaganError, match="need a synthetic dataset"):
        classifier_study(real, None, arms=["synthetic_only"], seeds=(0,))
    with pytest.raises(RaganError, match="repeated seeds"):
        classifier_study(real, synthetic, seeds=(0, 0))
    with pytest.raises(RaganError, match=r"each fraction must be in \[0, 1\)"):
        classifier_study(real, synthetic, synthetic_fractions=(0.2, 1.5))


@pytest.mark.slow
def test_per_class_and_rebalance_arms_train_end_to_end(pair, tmp_path, pneumonia_npz):
    """The arms that add N per class and that rebalance the minority class, trained end to end."""
    from ragan.evaluation.study import classifier_study

    real, _ = pair
    data = np.load(pneumonia_npz)
    labels = data["train_labels"][1000:3000, 0]
    normal = np.flatnonzero(labels == 0)[:130] + 1000
    pneumonia = np.flatnonzero(labels == 1)[:30] + 1000
    chosen = np.concatenate([normal, pneumonia])
    synthetic = write_prepared_dataset(
        tmp_path / "synthetic",
        {"train": (data["train_images"][chosen], data["train_labels"][chosen, 0])},
        CLASS_NAMES,
        synthetic=True,
    )
    result = classifier_study(
        real,
        synthetic,
        synthetic_fractions=(),
        add_per_class=20,
        rebalance=True,
        seeds=(0,),
        epochs=1,
        batch_size=32,
        progress=False,
    )
    arms = {arm.name: arm for arm in result.arms}
    assert list(arms) == [
        "real",
        "real_aug",
        "real+synthetic+20/class",
        "count_matched+20/class",
        "real+synthetic_rebalance",
        "count_matched_rebalance",
        "synthetic_only",
    ]
    assert arms["real+synthetic+20/class"].composition == {"real": 200, "synthetic": 40, "repeated_real": 0}
    assert arms["real+synthetic+20/class"].class_counts == {"normal": 61, "pneumonia": 179}
    assert arms["count_matched+20/class"].composition == {"real": 200, "synthetic": 0, "repeated_real": 40}
    # Rebalancing tops the minority class (41 normal) up to the majority (159 pneumonia).
    assert arms["real+synthetic_rebalance"].class_counts == {"normal": 159, "pneumonia": 159}
    assert arms["count_matched_rebalance"].class_counts == {"normal": 159, "pneumonia": 159}
    for arm in result.arms:
        assert len(arm.runs) == 1 and arm.runs[0]["metrics"]["num_examples"] == 100
        assert 0.0 <= arm.runs[0]["metrics"]["auc"] <= 1.0


@pytest.mark.slow
def test_the_study_trains_the_efficientnet_family(pair):
    """The EfficientNet family the study offers beside the small CNN, one arm (each costs ~30 s here)."""
    from ragan.evaluation.study import classifier_study

    real, synthetic = pair
    result = classifier_study(
        real,
        synthetic,
        arms=("real",),
        seeds=(0,),
        epochs=1,
        batch_size=32,
        classifier="efficientnet_b0",
        progress=False,
    )
    assert [arm.name for arm in result.arms] == ["real"]
    assert result.arms[0].runs[0]["metrics"]["num_examples"] == 100
    assert 0.0 <= result.arms[0].runs[0]["metrics"]["auc"] <= 1.0
    assert result.settings["classifier"] == "efficientnet_b0"
    assert any("efficientnet" in layer.name for layer in result.reference_model.layers)
