"""Paired bootstrap intervals, the verdict and the detectable difference (pure NumPy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from ragan.errors import RaganError
from ragan.evaluation.classifier import roc_auc_one_vs_rest
from ragan.evaluation.statistics import (
    bootstrap_weights,
    detectable_difference,
    paired_difference,
    verdict,
    verdict_line,
    weighted_accuracy,
    weighted_auc,
)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_weighted_auc_is_the_auc_of_the_redrawn_images(num_classes):
    """Weights = multiplicities: the same AUC as repeating the images, ties included."""
    rng = np.random.default_rng(num_classes)
    labels = rng.integers(0, num_classes, 80)
    probabilities = np.round(rng.dirichlet(np.ones(num_classes), 80), 1)  # rounding makes many ties
    weights = rng.integers(0, 4, (6, 80)).astype(float)
    expected = []
    for row in weights:
        chosen = np.repeat(np.arange(80), row.astype(int))
        expected.append(roc_auc_one_vs_rest(labels[chosen], probabilities[chosen])[0])
    np.testing.assert_allclose(weighted_auc(labels, probabilities, weights), expected, rtol=1e-12)
    accuracy = weighted_accuracy(labels, probabilities, weights)
    for row, value in zip(weights, accuracy):
        chosen = np.repeat(np.arange(80), row.astype(int))
        assert value == pytest.approx(np.mean(probabilities[chosen].argmax(1) == labels[chosen]))


def test_bootstrap_weights_redraw_within_each_class():
    labels = np.array([0] * 7 + [1] * 13 + [2] * 3)
    weights = bootstrap_weights(labels, 50, np.random.default_rng(0))
    assert weights.shape == (50, labels.size)
    for value, count in ((0, 7), (1, 13), (2, 3)):
        assert np.all(weights[:, labels == value].sum(axis=1) == count)
    assert weights.std() > 0


def test_verdict_reads_the_interval():
    assert verdict(0.001, 0.03) == "helps"
    assert verdict(-0.03, -0.001) == "hurts"
    assert verdict(-0.01, 0.02) == "no evidence either way"
    assert verdict(0.0, 0.02) == "no evidence either way"  # touching zero is not evidence
    assert detectable_difference(0.01) == pytest.approx((1.959964 + 0.841621) * 0.01, rel=1e-5)


def _scores(labels, separation, rng):
    return np.clip(0.5 + separation * (labels - 0.5) + rng.normal(0, 0.25, labels.size), 0, 1)


def test_identical_arms_differ_by_nothing():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    arm = [_scores(labels, 0.3, rng) for _ in range(3)]
    result = paired_difference(labels, arm, [a.copy() for a in arm], num_resamples=200)
    assert result["mean_difference"] == 0 and result["ci_low"] == 0 and result["ci_high"] == 0
    assert result["verdict"] == "no evidence either way" and result["wins"] == 0


def test_clear_gain_helps_clear_loss_hurts_and_small_splits_are_underpowered():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 600)
    good = [_scores(labels, 0.6, rng) for _ in range(3)]
    poor = [_scores(labels, 0.1, rng) for _ in range(3)]
    gain = paired_difference(labels, good, poor, num_resamples=500, effect_size=0.2)
    assert gain["verdict"] == "helps" and gain["ci_low"] > 0 and gain["wins"] == 3
    assert gain["ci_low"] <= gain["mean_difference"] <= gain["ci_high"]
    assert gain["underpowered"] is False  # 600 images detect a difference of 0.2 easily
    loss = paired_difference(labels, poor, good, num_resamples=500)
    assert loss["verdict"] == "hurts" and loss["ci_high"] < 0
    # 30 test images cannot detect 0.02 AUC; the detectable difference is 2.80 x the test-only SE.
    small = paired_difference(labels[:30], [g[:30] for g in good], [p[:30] for p in poor], num_resamples=500)
    assert small["underpowered"] is True
    assert small["detectable_difference"] == pytest.approx(2.8016 * small["standard_error_test"], rel=1e-3)
    assert small["detectable_difference"] > gain["detectable_difference"]
    line = verdict_line(dict(small, arm="real+synthetic@0.2", baseline="real", verdict="no evidence either way"))
    assert line.startswith("real+synthetic@0.2 vs real: ") and "too small to detect a difference of 0.02" in line


def test_seed_spread_widens_the_interval():
    """Resampling the seeds too: seeds that disagree give a wider interval than the test images alone."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 400)
    base = [_scores(labels, 0.3, rng) for _ in range(4)]
    arm = [_scores(labels, separation, rng) for separation in (0.1, 0.5, 0.15, 0.55)]
    result = paired_difference(labels, arm, base, num_resamples=1000)
    assert result["ci_high"] - result["ci_low"] > result["ci_test_high"] - result["ci_test_low"]
    assert result["std_difference"] == pytest.approx(np.std(result["per_seed"], ddof=1))


def test_bootstrap_standard_error_of_accuracy_matches_the_paired_formula():
    """For accuracy the difference is a mean of per-image differences d_i: SE ~ std(d) / sqrt(n)."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 1000)
    arm, base = _scores(labels, 0.4, rng), _scores(labels, 0.3, rng)
    result = paired_difference(labels, [arm], [base], metric="accuracy", num_resamples=2000)
    d = ((arm > 0.5) == labels).astype(float) - ((base > 0.5) == labels).astype(float)
    # Stratified redraws remove the between-class part of the variance; within-class std is what remains.
    within = np.sqrt(sum(np.sum(labels == c) * d[labels == c].var() for c in (0, 1)) / labels.size)
    assert result["standard_error_test"] == pytest.approx(within / np.sqrt(labels.size), rel=0.1)


def test_bad_inputs_are_one_line_errors():
    labels = np.array([0, 1, 0, 1])
    scores = [np.array([0.1, 0.9, 0.2, 0.8])]
    with pytest.raises(RaganError, match="same seeds"):
        paired_difference(labels, scores, scores * 2)
    with pytest.raises(RaganError, match="effect_size=0"):
        paired_difference(labels, scores, scores, effect_size=0)
    with pytest.raises(RaganError, match="metric='f1'"):
        paired_difference(labels, scores, scores, metric="f1")
    with pytest.raises(RaganError, match="both positive and negative"):
        weighted_auc(np.zeros(4, int), scores[0], np.ones((1, 4)))
