"""Can the synthetic set be shared? Membership-inference attacks on a generator, as pure NumPy maths.

A data-protection officer's question is not only "are these copies?" (the memorisation audit) but
"can someone holding the synthetic images tell *which patients* the generator was trained on?".
A membership-inference attack answers it: it scores every candidate image, the higher the more
likely a training image, and is judged on real training images (members) against held-out real
images the generator never saw (non-members):

* **Black-box** (the synthetic images only; Hayes et al. 2019, Chen et al. 2020 "GAN-Leaks"): the
  score is minus the distance from the candidate to its nearest synthetic image. A generator that
  reproduces its training images, even blurred or noisy, puts synthetic images nearer the training
  images than the held-out ones.
* **White-box** (the GAN itself): the score is the discriminator's realness logit. A discriminator
  that memorised its training images scores them higher than new images of the same kind.

The attack's quality is the ROC AUC of its scores (0.5: it cannot tell members from others; 1: it
always can), with a percentile bootstrap interval that redraws the members and the non-members
(each group with replacement, :func:`ragan.evaluation.statistics.bootstrap_weights`), and the true-
positive rate at a low false-positive rate (1 % and 10 %): an attack that finds a few patients with
certainty is a leak even at an AUC near 0.5 (Carlini et al. 2022, "Membership Inference Attacks
From First Principles").

Example (a "generator" that outputs its training images plus a little noise is caught):
    >>> rng = np.random.default_rng(0)
    >>> train, held_out = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    >>> synthetic = train + rng.normal(scale=0.1, size=train.shape)
    >>> attack = distance_attack(train, held_out, synthetic, num_resamples=200)
    >>> attack["auc"], attack["ci_low"] > LEAK_AUC, attack_finding(attack)
    (1.0, True, 'leak')

Reference:
    Hayes et al., "LOGAN: Membership Inference Attacks Against Generative Models", PoPETs 2019;
    Chen et al., "GAN-Leaks: A Taxonomy of Membership Inference Attacks against Generative
    Models", CCS 2020; Carlini et al., "Membership Inference Attacks From First Principles",
    IEEE S&P 2022.
"""

from __future__ import annotations

import numpy as np

from ragan.errors import RaganError
from ragan.evaluation.statistics import BOOTSTRAP_RESAMPLES, CONFIDENCE, bootstrap_weights, weighted_auc

__all__ = [
    "ATTACK_FPRS",
    "LEAK_AUC",
    "attack_finding",
    "class_balance_weights",
    "distance_attack",
    "membership_attack",
    "membership_auc",
    "nearest_distances",
    "privacy_sentence",
    "tpr_at_fpr",
]

# False-positive rates the true-positive rate is reported at (the low-FPR regime that matters for privacy).
ATTACK_FPRS = (0.01, 0.1)
# An attack whose AUC interval lies wholly above this is flagged as a leak.
LEAK_AUC = 0.6
# Bootstrap weights are built in chunks of about this many entries (32 MiB of float64).
_CHUNK_ENTRIES = 2**22


def _as_scores(name: str, scores) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise RaganError(f"{name}: no scores given; the attack needs at least one image in each group.")
    if not np.isfinite(array).all():
        raise RaganError(f"{name}: {int(np.sum(~np.isfinite(array)))} score(s) are NaN or inf.")
    return array


def _labelled(member_scores, nonmember_scores) -> tuple[np.ndarray, np.ndarray]:
    members = _as_scores("member_scores", member_scores)
    nonmembers = _as_scores("nonmember_scores", nonmember_scores)
    labels = np.concatenate([np.ones(members.size, np.int64), np.zeros(nonmembers.size, np.int64)])
    return labels, np.concatenate([members, nonmembers])


def _weights(name: str, weights, size: int) -> np.ndarray:
    if weights is None:
        return np.ones(size)
    array = np.asarray(weights, dtype=np.float64).reshape(-1)
    if array.shape != (size,) or not np.isfinite(array).all() or (array < 0).any() or array.sum() <= 0:
        raise RaganError(f"{name}: expected {size} finite non-negative weights, not all zero.")
    return array


def class_balance_weights(member_groups, nonmember_groups) -> tuple[np.ndarray, np.ndarray]:
    """Weights giving the non-members the members' mix of groups (e.g. classes).

    Held-out splits are often balanced differently from the training split (PneumoniaMNIST's test
    split holds 38 % normal images, its training split 26 %): an attack scoring one class higher
    would then "find" members by their class alone. With these weights every group weighs as much
    among the non-members as among the members, so the AUC compares like with like. Groups found
    on one side only get weight 0 (nothing to compare them with).

    Returns:
        ``(member_weights, nonmember_weights)``; the members' are 1 (or 0), the non-members'
        ``share among members / share among non-members`` of their group.

    Example:
        >>> class_balance_weights([0, 0, 0, 1], [0, 1, 1, 2])
        (array([1., 1., 1., 1.]), array([2.25 , 0.375, 0.375, 0.   ]))
    """
    members = np.asarray(member_groups).reshape(-1)
    nonmembers = np.asarray(nonmember_groups).reshape(-1)
    shared = np.intersect1d(members, nonmembers)
    if shared.size == 0:
        raise RaganError("member_groups, nonmember_groups: no group has both members and non-members.")
    member_weights = np.isin(members, shared).astype(np.float64)
    nonmember_weights = np.zeros(nonmembers.size)
    member_total = member_weights.sum()
    nonmember_total = np.isin(nonmembers, shared).sum()
    for group in shared:
        chosen = nonmembers == group
        nonmember_weights[chosen] = (np.sum(members == group) / member_total) / (chosen.sum() / nonmember_total)
    return member_weights, nonmember_weights


def membership_auc(member_scores, nonmember_scores, *, member_weights=None, nonmember_weights=None) -> float:
    """ROC AUC of an attack: the probability that a random member scores above a random non-member.

    Ties count one half (the Mann-Whitney statistic, as :func:`sklearn.metrics.roc_auc_score`);
    with weights, each image counts as often as its weight (``sample_weight`` there).

    Args:
        member_scores: ``(M,)`` attack scores of training images (higher = "member").
        nonmember_scores: ``(N,)`` attack scores of held-out images.
        member_weights, nonmember_weights: Optional per-image weights (:func:`class_balance_weights`).

    Returns:
        The AUC in ``[0, 1]``.

    Example:
        >>> membership_auc([3.0, 2.0], [1.0, 2.0])  # 3 of the 4 pairs won, one tied
        0.875
    """
    labels, scores = _labelled(member_scores, nonmember_scores)
    weights = np.concatenate(
        [
            _weights("member_weights", member_weights, int(labels.sum())),
            _weights("nonmember_weights", nonmember_weights, int(labels.size - labels.sum())),
        ]
    )
    return float(weighted_auc(labels, scores, weights[None])[0])


def tpr_at_fpr(member_scores, nonmember_scores, fpr: float, *, member_weights=None, nonmember_weights=None) -> float:
    """The highest true-positive rate of the attack among its thresholds whose false-positive rate is at most ``fpr``.

    A threshold ``t`` calls every image scoring ``>= t`` a member; the rates are read off the ROC
    curve's corners (no interpolation), so ties between a member and a non-member are never split.

    Args:
        member_scores, nonmember_scores: As :func:`membership_auc`.
        fpr: The false-positive rate allowed, in ``[0, 1]``.
        member_weights, nonmember_weights: Optional per-image weights; the rates are weighted shares.

    Returns:
        The true-positive rate in ``[0, 1]`` (0 when no threshold keeps the false positives that low).

    Example:
        >>> members, nonmembers = [9.0, 8.0, 3.0, 1.0], [7.0, 2.0, 0.0, -1.0]
        >>> tpr_at_fpr(members, nonmembers, 0.0), tpr_at_fpr(members, nonmembers, 0.25)
        (0.5, 0.75)
    """
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float, np.floating)) or not 0 <= fpr <= 1:
        raise RaganError(f"fpr={fpr!r} is not allowed; give a false-positive rate in [0, 1], e.g. 0.01.")
    members = _as_scores("member_scores", member_scores)
    nonmembers = _as_scores("nonmember_scores", nonmember_scores)
    thresholds = np.unique(np.concatenate([members, nonmembers]))

    def share_at_or_above(scores, weights):
        # The weight of the images scoring >= t, for every distinct threshold t, by binary search.
        order = np.argsort(scores, kind="stable")
        below = np.concatenate([[0.0], np.cumsum(weights[order])])
        return 1.0 - below[np.searchsorted(scores[order], thresholds, side="left")] / below[-1]

    true_positive = share_at_or_above(members, _weights("member_weights", member_weights, members.size))
    false_positive = share_at_or_above(nonmembers, _weights("nonmember_weights", nonmember_weights, nonmembers.size))
    allowed = false_positive <= fpr + 1e-12
    return float(true_positive[allowed].max()) if allowed.any() else 0.0


def membership_attack(
    member_scores,
    nonmember_scores,
    *,
    member_groups=None,
    nonmember_groups=None,
    num_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    fprs=ATTACK_FPRS,
    seed: int = 0,
) -> dict:
    """An attack's AUC with a bootstrap interval and its true-positive rates at low false-positive rates.

    Args:
        member_scores: ``(M,)`` scores of training images (higher = "member").
        nonmember_scores: ``(N,)`` scores of held-out images.
        member_groups, nonmember_groups: Optional group (class) of every image: the non-members are
            then weighted to the members' mix of groups (:func:`class_balance_weights`).
        num_resamples: Bootstrap replicates; each redraws the members and the non-members with
            replacement (within each group), each keeping its size.
        confidence: Coverage of the percentile interval.
        fprs: False-positive rates to report the true-positive rate at.
        seed: Seed of the resampling (fixed: the same scores give the same interval).

    Returns:
        ``{"auc", "ci_low", "ci_high", "confidence", "num_resamples", "tpr_at_fpr": {"0.01": ...},
        "num_members", "num_nonmembers", "class_balanced"}``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> attack = membership_attack(rng.normal(size=300), rng.normal(size=300), num_resamples=200)
        >>> bool(attack["ci_low"] < 0.5 < attack["ci_high"]), sorted(attack["tpr_at_fpr"])
        (True, ['0.01', '0.1'])
    """
    labels, scores = _labelled(member_scores, nonmember_scores)
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or num_resamples < 10:
        raise RaganError(f"num_resamples={num_resamples!r} is not allowed; it must be an integer >= 10.")
    if not 0 < confidence < 1:
        raise RaganError(f"confidence={confidence!r} is not allowed; give a number in (0, 1), e.g. 0.95.")
    num_members = int(labels.sum())
    if (member_groups is None) != (nonmember_groups is None):
        raise RaganError("member_groups, nonmember_groups: give both or neither.")
    if member_groups is None:
        strata, weights = labels, np.ones(labels.size)
    else:
        groups = np.concatenate([np.asarray(member_groups).reshape(-1), np.asarray(nonmember_groups).reshape(-1)])
        if groups.size != labels.size:
            raise RaganError(f"member_groups, nonmember_groups: {groups.size} groups for {labels.size} scores.")
        weights = np.concatenate(class_balance_weights(groups[:num_members], groups[num_members:]))
        # Redraws within each (membership, group) stratum keep the weighted mixes exact.
        codes = np.unique(groups, return_inverse=True)[1].reshape(-1)
        strata = labels * (codes.max() + 1) + codes
    rng = np.random.default_rng(seed)
    chunk = max(1, min(num_resamples, _CHUNK_ENTRIES // labels.size))
    replicates = np.concatenate(
        [
            weighted_auc(labels, scores, bootstrap_weights(strata, min(chunk, num_resamples - start), rng) * weights)
            for start in range(0, num_resamples, chunk)
        ]
    )
    tail = 100 * (1 - confidence) / 2
    low, high = (float(v) for v in np.percentile(replicates, [tail, 100 - tail]))
    members, nonmembers = scores[:num_members], scores[num_members:]
    member_weights, nonmember_weights = weights[:num_members], weights[num_members:]
    return {
        "auc": membership_auc(members, nonmembers, member_weights=member_weights, nonmember_weights=nonmember_weights),
        "ci_low": low,
        "ci_high": high,
        "confidence": float(confidence),
        "num_resamples": int(num_resamples),
        "tpr_at_fpr": {
            f"{fpr:g}": tpr_at_fpr(
                members, nonmembers, fpr, member_weights=member_weights, nonmember_weights=nonmember_weights
            )
            for fpr in fprs
        },
        "num_members": num_members,
        "num_nonmembers": int(nonmembers.size),
        "class_balanced": member_groups is not None,
    }


def nearest_distances(queries, references) -> np.ndarray:
    """Root-mean-square difference from each query row (image or feature vector) to its nearest reference row.

    The search is :func:`ragan.evaluation.metrics.nearest_images` (blocked, exact); the square root
    only turns its mean squared error into the data's own units.

    Example:
        >>> nearest_distances(np.array([[0.0, 0.0], [3.0, 3.0]]), np.array([[1.0, 1.0], [3.0, 3.0]]))
        array([1., 0.])
    """
    from ragan.evaluation.metrics import nearest_images

    return np.sqrt(nearest_images(queries, references)[1])


def _distance_summary(distances: np.ndarray) -> dict:
    return {
        "median": float(np.median(distances)),
        "p5": float(np.percentile(distances, 5)),
        "min": float(distances.min()),
    }


def distance_attack(
    members,
    nonmembers,
    synthetic,
    *,
    member_distances=None,
    nonmember_distances=None,
    member_groups=None,
    nonmember_groups=None,
    num_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict:
    """The black-box attack: a candidate nearer to some synthetic image is more likely a training image.

    Args:
        members: ``(M, ...)`` training images or their features.
        nonmembers: ``(N, ...)`` held-out images (or features), the same kind.
        synthetic: ``(S, ...)`` synthetic images (or features), the same kind.
        member_distances, nonmember_distances: Distances already computed (``members`` and
            ``nonmembers`` may then be None).
        member_groups, nonmember_groups, num_resamples, confidence, seed: As :func:`membership_attack`.

    Returns:
        :func:`membership_attack`'s dict plus ``"member_distance"`` and ``"nonmember_distance"``
        (median, 5th percentile and minimum of the nearest-synthetic distances) and the per-image
        ``"distances"`` as ``(members, nonmembers)`` arrays (dropped from report.json).
    """
    if member_distances is None:
        member_distances = nearest_distances(members, synthetic)
    if nonmember_distances is None:
        nonmember_distances = nearest_distances(nonmembers, synthetic)
    member_distances = _as_scores("member_distances", member_distances)
    nonmember_distances = _as_scores("nonmember_distances", nonmember_distances)
    attack = membership_attack(
        -member_distances,
        -nonmember_distances,
        member_groups=member_groups,
        nonmember_groups=nonmember_groups,
        num_resamples=num_resamples,
        confidence=confidence,
        seed=seed,
    )
    attack["member_distance"] = _distance_summary(member_distances)
    attack["nonmember_distance"] = _distance_summary(nonmember_distances)
    attack["distances"] = (member_distances, nonmember_distances)
    return attack


def attack_finding(attack: dict, leak_auc: float = LEAK_AUC) -> str:
    """``"leak"`` when the AUC interval lies above ``leak_auc``, ``"above chance"`` when it lies above
    0.5, else ``"chance"`` (including an attack that does worse than chance: it finds nobody).

    Example:
        >>> [attack_finding({"ci_low": low}) for low in (0.62, 0.51, 0.5, 0.3)]
        ['leak', 'above chance', 'chance', 'chance']
    """
    if attack["ci_low"] > leak_auc:
        return "leak"
    return "above chance" if attack["ci_low"] > 0.5 else "chance"


def privacy_sentence(attack: dict, attacker: str = "an attacker with the synthetic set", where: str = "") -> str:
    """The attack's result in one plain sentence.

    Example:
        >>> print(privacy_sentence({"auc": 0.52, "ci_low": 0.47, "ci_high": 0.57}))
        An attacker with the synthetic set cannot tell the training patients from others better than chance
        (AUC 0.52 [0.47, 0.57]).
    """
    can = "can" if attack["ci_low"] > 0.5 else "cannot"
    detail = f"AUC {attack['auc']:.2f} [{attack['ci_low']:.2f}, {attack['ci_high']:.2f}]" + (
        f"; {where}" if where else ""
    )
    sentence = (
        f"{attacker[0].upper()}{attacker[1:]} {can} tell the training patients from others better than chance "
        f"({detail})."
    )
    if attack_finding(attack) == "leak":
        sentence += (
            f" LEAK: the whole interval is above {LEAK_AUC:g}; do not share this set as anonymous without "
            "further protection (e.g. differentially private training)."
        )
    return sentence
