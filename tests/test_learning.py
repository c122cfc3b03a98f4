"""No verdict on a classifier that did not learn: a study whose baseline is forced to chance (pure NumPy, fast)."""

from __future__ import annotations

import numpy as np

from ragan.evaluation.classifier import classification_metrics
from ragan.evaluation.statistics import NO_VERDICT, learning_check, metric_interval
from ragan.evaluation.study_result import ArmResult, StudyResult
from ragan.evaluation.verdict import SMOKE_TEST, plain_verdict, summary_lines

NAMES = ["normal", "pneumonia"]


def _probabilities(labels, separation, rng):
    """Two-class probabilities; separation 0 = a classifier forced to chance (noise, unrelated to the labels)."""
    positive = np.clip(0.5 + separation * (labels - 0.5) + rng.normal(0, 0.2, labels.size), 0.01, 0.99)
    return np.stack([1 - positive, positive], axis=1)


def _study(separations: dict, epochs_trained: int = 3, epochs: int = 3, num_test: int = 200) -> StudyResult:
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(num_test * 2 // 5, int), np.ones(num_test - num_test * 2 // 5, int)]
    kinds = {"real": "real", "real_aug": "real_aug", "real+synthetic@0.5": "real+synthetic"}
    kinds.update({"count_matched@0.5": "count_matched", "synthetic_only": "synthetic_only"})
    arms = []
    for name, separation in separations.items():
        arm = ArmResult(
            name=name,
            kind=kinds[name],
            description=name,
            num_train=400,
            composition={"real": 400, "synthetic": 0, "repeated_real": 0},
            class_counts={"normal": 100, "pneumonia": 300},
            synthetic_fraction=0.0,
            augmentation="none",
            control="count_matched@0.5" if name == "real+synthetic@0.5" else None,
        )
        for seed in (0, 1):
            probabilities = _probabilities(labels, separation, rng)
            arm.runs.append(
                {
                    "seed": seed,
                    "metrics": classification_metrics(labels, probabilities, class_names=NAMES),
                    "test_probabilities": probabilities,
                    "epochs_trained": epochs_trained,
                }
            )
        arms.append(arm)
    settings = {"seeds": [0, 1], "epochs": epochs, "effect_size": 0.02}
    counts = {"num_examples": num_test, "class_counts": {}}
    data = {"class_names": NAMES, "train": {"num_examples": 400}, "test": counts}
    return StudyResult(arms=arms, settings=settings, data=data, test_labels=labels)


def test_metric_interval_and_learning_check():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    good = [_probabilities(labels, 0.6, rng)[:, 1] for _ in range(2)]
    chance = [_probabilities(labels, 0.0, rng)[:, 1] for _ in range(2)]
    interval = metric_interval(labels, good, num_resamples=300)
    assert interval["ci_low"] < interval["mean"] < interval["ci_high"] and interval["ci_low"] > 0.8
    assert learning_check(labels, good, num_resamples=300)["learned"] is True
    check = learning_check(labels, chance, num_resamples=300)
    assert check["learned"] is False and check["auc"]["ci_low"] < 0.5 < check["auc"]["ci_high"]
    assert "not above chance (0.5)" in check["reasons"][0]
    # Good ranking but every image called the largest class: accuracy = the majority rate, not learned.
    always = [np.where(labels == 1, 0.45, 0.05)]  # AUC 1, yet the most probable class is always class 0
    check = learning_check(labels, always, num_resamples=50)
    assert check["auc"]["mean"] == 1.0 and check["learned"] is False
    assert check["reasons"] == [
        f"its test accuracy {check['accuracy']:.3f} is not above the {check['majority_rate']:.3f} of always "
        "answering the largest class"
    ]


def test_a_baseline_forced_to_chance_gets_no_verdict():
    study = _study({"real": 0.0, "real_aug": 0.5, "real+synthetic@0.5": 0.9, "count_matched@0.5": 0.5})
    learning = study.learning()
    assert learning["real"]["learned"] is False and learning["real_aug"]["learned"] is True
    comparisons = {(c["arm"], c["baseline"]): c for c in study.comparisons("auc")}
    against_real = comparisons[("real+synthetic@0.5", "real")]
    # The synthetic arm is far better than a chance classifier, yet that is no evidence.
    assert against_real["mean_difference"] > 0.2 and against_real["ci_low"] > 0
    assert against_real["verdict"] == NO_VERDICT and against_real["not_learned"] == ["real"]
    assert against_real["verdict_line"].startswith("real+synthetic@0.5 vs real: no verdict - the real classifier")
    assert comparisons[("real+synthetic@0.5", "real_aug")]["verdict"] == "helps"  # learned baselines still judged
    assert study.verdicts()[0]["verdict"] == NO_VERDICT

    data = {"study": study.to_dict(), "settings": {"quick": False}, "quality": {"rows": []}}
    verdict = plain_verdict(data)
    assert verdict["verdict"] == NO_VERDICT and verdict["headline"].startswith("No verdict")
    assert not any("better than real images only" in s for s in verdict["sentences"])
    assert verdict["sentences"][0].startswith("The real-only classifier did not learn: its test AUC")
    assert verdict["sentences"][1].startswith("Likely causes: too few epochs (its runs stopped at the limit of 3")
    assert "no verdict against real images only, which did not learn" in " ".join(verdict["sentences"])
    lines = summary_lines(data)
    assert any("The real-only classifier did not learn" in line for line in lines)
    assert [arm["learning"]["learned"] for arm in data["study"]["arms"]] == [False, True, True, True]


def test_every_classifier_learned_keeps_the_verdicts_and_quick_says_smoke_test():
    study = _study({"real": 0.5, "real_aug": 0.5, "real+synthetic@0.5": 0.9, "count_matched@0.5": 0.5})
    assert all(check["learned"] for check in study.learning().values())
    assert study.verdicts()[0]["verdict"] == "helps"
    data = {"study": study.to_dict(), "settings": {"quick": True}, "quality": {"rows": []}}
    verdict = plain_verdict(data)
    assert verdict["verdict"] == "helps" and verdict["smoke_test"] is True
    assert verdict["headline"].startswith("Smoke test (--quick), not a verdict.")
    assert verdict["sentences"][0] == SMOKE_TEST and summary_lines(data)[0] == SMOKE_TEST
    # An arm that did not learn is never said to help, whatever its baselines.
    weak = _study({"real": 0.5, "real+synthetic@0.5": 0.0}, epochs_trained=2, epochs=20)
    comparison = weak.comparisons("auc")[0]
    assert comparison["not_learned"] == ["real+synthetic@0.5"] and comparison["verdict"] == "hurts"
    sentences = plain_verdict({"study": weak.to_dict(), "settings": {}})["sentences"]
    assert any(s.startswith("Likely causes: training stopped early (before the limit of 20") for s in sentences)
