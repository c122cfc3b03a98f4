"""Is a difference between two arms of the classifier study real? Paired bootstrap intervals and a verdict.

Two arms are tested on the *same* real test images, so their difference is measured pairwise:
per seed, ``metric(arm) - metric(baseline)`` on the test split, then averaged over seeds. Its
uncertainty has two sources, and the interval covers both:

* **Which test images happened to be drawn.** A bootstrap replicate redraws the test images with
  replacement, within each class (so every replicate keeps the test split's class counts and the
  AUC stays defined), gives *both* arms the same redraw and recomputes the difference. The
  redraw is carried as per-image weights (how often each image was drawn), so the AUC of a
  replicate is the weighted Mann-Whitney statistic and no image array is ever copied.
* **Which training seeds happened to be run.** With two or more seeds each replicate also
  redraws the seeds with replacement (the same seeds for both arms). With one seed only the
  test images vary, and the report says so.

The interval is the percentile interval of the replicates (95 % by default). The verdict reads:
``helps`` when the whole interval is above zero, ``hurts`` when it is below zero, ``no evidence
either way`` otherwise.

**Is the test split large enough?** The smallest difference the test split can detect is
``(z_{1-alpha/2} + z_{power}) * SE``, with ``SE`` the bootstrap standard error of the difference
over test images alone (seeds held fixed), ``alpha = 0.05`` and ``power = 0.8`` (normal
approximation; ``2.80 * SE``): a true difference of that size is found, by an interval that
excludes zero, in about 80 % of studies. When it exceeds the difference the user cares about
(``effect_size``, default 0.02 AUC) the comparison is flagged ``underpowered`` and the report
warns that a "no evidence" verdict says little.

Example:
    >>> labels = np.array([0, 0, 0, 1, 1, 1])
    >>> arm = [np.array([.1, .2, .3, .7, .8, .9])]          # one seed, the positive class's probability
    >>> baseline = [np.array([.1, .6, .3, .4, .8, .9])]
    >>> result = paired_difference(labels, arm, baseline, num_resamples=200)
    >>> round(result["mean_difference"], 3), result["verdict"] in VERDICTS
    (0.111, True)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from ragan.errors import RaganError

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "NO_VERDICT",
    "learning_check",
    "metric_interval",
    "CONFIDENCE",
    "DETECTION_POWER",
    "EFFECT_SIZE",
    "VERDICTS",
    "bootstrap_weights",
    "detectable_difference",
    "check_effect_size",
    "paired_difference",
    "verdict",
    "verdict_line",
    "weighted_accuracy",
    "weighted_auc",
]

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
DETECTION_POWER = 0.8
# The smallest AUC difference worth detecting, unless the user asks for another.
EFFECT_SIZE = 0.02
VERDICTS = ("helps", "no evidence either way", "hurts")
# The verdict of a comparison whose baseline classifier did not learn: no helps/hurts either way.
NO_VERDICT = "no verdict"
METRICS = ("auc", "accuracy")
# Bootstrap weights are built in chunks of about this many entries (32 MiB of float64).
_CHUNK_ENTRIES = 2**22


def verdict(low: float, high: float) -> str:
    """``"helps"`` when the interval ``[low, high]`` lies above zero, ``"hurts"`` below, else no evidence."""
    if low > 0:
        return "helps"
    if high < 0:
        return "hurts"
    return "no evidence either way"


def detectable_difference(
    standard_error: float, *, confidence: float = CONFIDENCE, power: float = DETECTION_POWER
) -> float:
    """``(z_{1-alpha/2} + z_power) * SE``: the true difference found with probability ``power``.

    Example:
        >>> round(detectable_difference(0.01), 4)
        0.028
    """
    normal = NormalDist()
    return float((normal.inv_cdf(1 - (1 - confidence) / 2) + normal.inv_cdf(power)) * standard_error)


def bootstrap_weights(labels, num_resamples: int, rng) -> np.ndarray:
    """``(num_resamples, N)`` counts: how often each test image is drawn, redrawn within each class.

    Every row keeps the class counts of ``labels``.
    """
    labels = np.asarray(labels).reshape(-1)
    weights = np.zeros((num_resamples, labels.size), dtype=np.float64)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        weights[:, members] = rng.multinomial(
            members.size, np.full(members.size, 1.0 / members.size), size=num_resamples
        )
    return weights


def _weighted_binary_auc(positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC per row of ``weights`` (ties count one half)."""
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    is_positive = positive[order]
    weights = weights[:, order]
    # Tied scores form contiguous groups once sorted: the first and one-past-last position of each.
    _, first, inverse, counts = np.unique(sorted_scores, return_index=True, return_inverse=True, return_counts=True)
    group_start = first[inverse]
    group_end = group_start + counts[inverse]
    negative_weights = weights * ~is_positive
    cumulative = np.zeros((weights.shape[0], weights.shape[1] + 1))
    np.cumsum(negative_weights, axis=1, out=cumulative[:, 1:])
    columns = np.flatnonzero(is_positive)
    below = cumulative[:, group_start[columns]]
    tied = cumulative[:, group_end[columns]] - below
    positive_weights = weights[:, columns]
    numerator = (positive_weights * (below + 0.5 * tied)).sum(axis=1)
    return numerator / (positive_weights.sum(axis=1) * negative_weights.sum(axis=1))


def weighted_auc(labels, probabilities, weights) -> np.ndarray:
    """ROC AUC per row of ``weights`` (image multiplicities), as ``classification_metrics`` defines it.

    Binary: the AUC of class 1's probability; more classes: the macro one-vs-rest AUC over the
    classes present. With all weights 1 it equals :func:`~ragan.evaluation.classifier.roc_auc`.

    Args:
        labels: ``(N,)`` class indices.
        probabilities: ``(N, K)`` class probabilities, or ``(N,)`` class-1 probabilities (binary).
        weights: ``(B, N)`` non-negative weights, e.g. from :func:`bootstrap_weights`.

    Returns:
        ``(B,)`` AUCs.
    """
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if probabilities.ndim == 1:
        probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
    if probabilities.shape[0] != labels.size or weights.shape[1] != labels.size:
        raise RaganError(
            f"weighted_auc: {labels.size} labels, {probabilities.shape[0]} predictions and "
            f"{weights.shape[1]} weights per replicate must agree."
        )
    num_classes = probabilities.shape[1]
    present = [c for c in range(num_classes) if 0 < np.sum(labels == c) < labels.size]
    if not present:
        raise RaganError("weighted_auc: the AUC needs both positive and negative test images.")
    if num_classes == 2:
        return _weighted_binary_auc(labels == 1, probabilities[:, 1], weights)
    return np.mean([_weighted_binary_auc(labels == c, probabilities[:, c], weights) for c in present], axis=0)


def weighted_accuracy(labels, probabilities, weights) -> np.ndarray:
    """Accuracy (most probable class) per row of ``weights``."""
    labels = np.asarray(labels).reshape(-1)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim == 1:
        probabilities = np.stack([1.0 - probabilities, probabilities], axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    return weights @ correct / weights.sum(axis=1)


_METRIC_FUNCTIONS = {"auc": weighted_auc, "accuracy": weighted_accuracy}


def _check_count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise RaganError(f"{name}={value!r} is not allowed; it must be an integer >= {minimum}.")
    return int(value)


def check_effect_size(effect_size) -> float:
    """``effect_size`` as a float in (0, 1), or a one-line RaganError."""
    if isinstance(effect_size, bool) or not isinstance(effect_size, numbers.Real) or not 0 < effect_size < 1:
        raise RaganError(
            f"effect_size={effect_size!r} is not allowed; give the smallest difference worth "
            "detecting, a number in (0, 1), e.g. 0.02 (AUC)."
        )
    return float(effect_size)


def paired_difference(
    labels,
    arm: Sequence,
    baseline: Sequence,
    *,
    metric: str = "auc",
    num_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    effect_size: float = EFFECT_SIZE,
    seed: int = 0,
) -> dict:
    """The seed-paired difference ``metric(arm) - metric(baseline)`` on one test set, with its interval.

    Args:
        labels: ``(N,)`` class indices of the test images.
        arm, baseline: One prediction array per seed (same seeds, same order): ``(N, K)``
            probabilities or ``(N,)`` class-1 probabilities.
        metric: ``"auc"`` or ``"accuracy"``.
        num_resamples: Bootstrap replicates.
        confidence: Interval coverage, e.g. 0.95.
        effect_size: The smallest difference worth detecting (for the ``underpowered`` flag).
        seed: Seed of the resampling (fixed: the same study gives the same interval).

    Returns:
        ``{"metric", "per_seed", "mean_difference", "std_difference", "wins", "num_seeds",
        "ci_low", "ci_high", "ci_test_low", "ci_test_high", "standard_error",
        "standard_error_test", "detectable_difference", "effect_size", "underpowered",
        "confidence", "num_resamples", "num_test", "verdict"}``. ``ci_*`` resample test images
        and seeds (the verdict's interval); ``ci_test_*`` resample the test images only.
    """
    if metric not in _METRIC_FUNCTIONS:
        raise RaganError(f"metric={metric!r} is not allowed; choose one of {', '.join(map(repr, METRICS))}.")
    num_resamples = _check_count("num_resamples", num_resamples, 10)
    if not 0 < confidence < 1:
        raise RaganError(f"confidence={confidence!r} is not allowed; give a number in (0, 1), e.g. 0.95.")
    effect_size = check_effect_size(effect_size)
    labels = np.asarray(labels).reshape(-1)
    if len(arm) != len(baseline) or not arm:
        raise RaganError(
            f"paired_difference: {len(arm)} arm and {len(baseline)} baseline seeds; give the same "
            "seeds (one or more) for both."
        )
    function = _METRIC_FUNCTIONS[metric]
    ones = np.ones((1, labels.size))
    per_seed = np.array([function(labels, a, ones)[0] - function(labels, b, ones)[0] for a, b in zip(arm, baseline)])
    num_seeds = per_seed.size
    rng = np.random.default_rng(seed)
    chunk = max(1, min(num_resamples, _CHUNK_ENTRIES // max(labels.size, 1)))
    differences = []  # (B, seeds): the per-seed difference under each redraw of the test images
    for start in range(0, num_resamples, chunk):
        weights = bootstrap_weights(labels, min(chunk, num_resamples - start), rng)
        differences.append(
            np.stack(
                [function(labels, a, weights) - function(labels, b, weights) for a, b in zip(arm, baseline)], axis=1
            )
        )
    differences = np.concatenate(differences)
    test_only = differences.mean(axis=1)
    if num_seeds > 1:
        seed_counts = rng.multinomial(num_seeds, np.full(num_seeds, 1.0 / num_seeds), size=num_resamples)
        joint = (differences * seed_counts).sum(axis=1) / num_seeds
    else:
        joint = test_only
    tail = 100 * (1 - confidence) / 2
    low, high = (float(v) for v in np.percentile(joint, [tail, 100 - tail]))
    test_low, test_high = (float(v) for v in np.percentile(test_only, [tail, 100 - tail]))
    standard_error_test = float(test_only.std(ddof=1))
    detectable = detectable_difference(standard_error_test, confidence=confidence)
    return {
        "metric": metric,
        "per_seed": [float(v) for v in per_seed],
        "mean_difference": float(per_seed.mean()),
        "std_difference": float(per_seed.std(ddof=1)) if num_seeds > 1 else 0.0,
        "wins": int(np.sum(per_seed > 0)),
        "num_seeds": int(num_seeds),
        "ci_low": low,
        "ci_high": high,
        "ci_test_low": test_low,
        "ci_test_high": test_high,
        "standard_error": float(joint.std(ddof=1)),
        "standard_error_test": standard_error_test,
        "detectable_difference": detectable,
        "effect_size": effect_size,
        "underpowered": bool(detectable > effect_size),
        "confidence": float(confidence),
        "num_resamples": num_resamples,
        "num_test": int(labels.size),
        "verdict": verdict(low, high),
    }


def verdict_line(comparison: dict) -> str:
    """One line: ``"real+synthetic@0.2 vs real: helps (AUC +0.031, 95 % CI +0.012 to +0.050; 3 seeds)"``."""
    name = "AUC" if comparison["metric"] == "auc" else comparison["metric"]
    seeds = comparison["num_seeds"]
    if comparison["verdict"] == NO_VERDICT:
        names = comparison.get("not_learned") or [comparison["baseline"]]
        who = " and ".join(names) + (" classifiers" if len(names) > 1 else " classifier")
        return (
            f"{comparison['arm']} vs {comparison['baseline']}: {NO_VERDICT} - the {who} did not learn "
            f"({name} difference {comparison['mean_difference']:+.3f} is not evidence)"
        )
    text = (
        f"{comparison['arm']} vs {comparison['baseline']}: {comparison['verdict']} ({name} "
        f"{comparison['mean_difference']:+.3f}, {_percent(comparison['confidence'])} CI "
        f"{comparison['ci_low']:+.3f} to {comparison['ci_high']:+.3f}; better in {comparison['wins']} of "
        f"{seeds} seed{'s' if seeds != 1 else ''})"
    )
    # The size warning matters where the interval straddles zero: "no evidence" may then mean "too few images".
    if comparison.get("underpowered") and comparison["verdict"] == VERDICTS[1]:
        text += (
            f" - the test split ({comparison['num_test']} images) is too small to detect a difference of "
            f"{comparison['effect_size']:g}: it detects about {comparison['detectable_difference']:.3f} or more"
        )
    return text


def _percent(confidence: float) -> str:
    value = 100 * confidence
    return f"{value:.0f} %" if math.isclose(value, round(value)) else f"{value:g} %"


def metric_interval(
    labels,
    predictions: Sequence,
    *,
    metric: str = "auc",
    num_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict:
    """One arm's seed-mean test metric with its percentile bootstrap interval.

    The replicates redraw the test images within each class and, with two or more seeds, the
    seeds, as :func:`paired_difference` does for a difference.

    Args:
        labels: ``(N,)`` class indices of the test images.
        predictions: One prediction array per seed: ``(N, K)`` probabilities or ``(N,)``
            class-1 probabilities.
        metric: ``"auc"`` or ``"accuracy"``.
        num_resamples, confidence, seed: As :func:`paired_difference`.

    Returns:
        ``{"metric", "mean", "ci_low", "ci_high", "confidence", "num_seeds", "num_test"}``.

    Example:
        >>> labels = np.array([0, 0, 0, 1, 1, 1] * 10)
        >>> guessing = [np.full(60, 0.5)]
        >>> result = metric_interval(labels, guessing, num_resamples=100)
        >>> result["mean"], result["ci_low"], result["ci_high"]
        (0.5, 0.5, 0.5)
    """
    if metric not in _METRIC_FUNCTIONS:
        raise RaganError(f"metric={metric!r} is not allowed; choose one of {', '.join(map(repr, METRICS))}.")
    num_resamples = _check_count("num_resamples", num_resamples, 10)
    if not 0 < confidence < 1:
        raise RaganError(f"confidence={confidence!r} is not allowed; give a number in (0, 1), e.g. 0.95.")
    labels = np.asarray(labels).reshape(-1)
    if not predictions:
        raise RaganError("metric_interval: no predictions; give one array per seed.")
    function = _METRIC_FUNCTIONS[metric]
    ones = np.ones((1, labels.size))
    per_seed = np.array([function(labels, p, ones)[0] for p in predictions])
    rng = np.random.default_rng(seed)
    chunk = max(1, min(num_resamples, _CHUNK_ENTRIES // max(labels.size, 1)))
    values = []  # (B, seeds)
    for start in range(0, num_resamples, chunk):
        weights = bootstrap_weights(labels, min(chunk, num_resamples - start), rng)
        values.append(np.stack([function(labels, p, weights) for p in predictions], axis=1))
    values = np.concatenate(values)
    if per_seed.size > 1:
        seed_counts = rng.multinomial(per_seed.size, np.full(per_seed.size, 1.0 / per_seed.size), size=num_resamples)
        joint = (values * seed_counts).sum(axis=1) / per_seed.size
    else:
        joint = values[:, 0]
    tail = 100 * (1 - confidence) / 2
    low, high = (float(v) for v in np.percentile(joint, [tail, 100 - tail]))
    return {
        "metric": metric,
        "mean": float(per_seed.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": float(confidence),
        "num_seeds": int(per_seed.size),
        "num_test": int(labels.size),
    }


def learning_check(labels, predictions: Sequence, *, num_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """Did a classifier learn anything? Its AUC interval must exclude chance (0.5) and its accuracy
    must beat always answering the largest class of the test split.

    A comparison with a baseline that learned nothing is not evidence: the report gives it no
    helps/hurts verdict.

    Args:
        labels: ``(N,)`` class indices of the test images.
        predictions: One prediction array per seed (as :func:`metric_interval`).
        num_resamples, seed: Of the AUC's bootstrap interval.

    Returns:
        ``{"learned": bool, "auc": metric_interval dict, "accuracy": float (seed mean),
        "majority_rate": float, "reasons": [str, ...]}`` (``reasons`` says why it did not learn).

    Example:
        >>> labels = np.array([0] * 40 + [1] * 60)
        >>> check = learning_check(labels, [np.full(100, 0.7)], num_resamples=100)
        >>> check["learned"], check["majority_rate"], len(check["reasons"])
        (False, 0.6, 2)
    """
    labels = np.asarray(labels).reshape(-1)
    auc = metric_interval(labels, predictions, metric="auc", num_resamples=num_resamples, seed=seed)
    ones = np.ones((1, labels.size))
    accuracy = float(np.mean([weighted_accuracy(labels, p, ones)[0] for p in predictions]))
    majority = float(np.bincount(labels.astype(np.int64)).max() / labels.size)
    reasons = []
    if not auc["ci_low"] > 0.5:
        reasons.append(
            f"its test AUC {auc['mean']:.3f} (95 % interval {auc['ci_low']:.3f} to {auc['ci_high']:.3f}) "
            "is not above chance (0.5)"
        )
    if not accuracy > majority:
        reasons.append(
            f"its test accuracy {accuracy:.3f} is not above the {majority:.3f} of always answering the largest class"
        )
    return {"learned": not reasons, "auc": auc, "accuracy": accuracy, "majority_rate": majority, "reasons": reasons}
