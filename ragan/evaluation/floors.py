"""Floors: what two sets of *real* images score on the same metric, so a synthetic figure can be read.

A FID of 2.58 means nothing until one knows what two sets of real images of the same sizes score:
FID is biased upwards for small sets, precision and recall depend on the k-NN radii, which shrink
as a set grows, and KID's spread grows as the subsets shrink. So beside every synthetic figure the
report puts the same metric between two disjoint random subsets of the real training images, at
the same sizes as the synthetic comparison it stands beside, and the ratio of the two.

Sizes: the real set ``A`` stands in for the real reference and ``B`` for the synthetic set. Both
come from the one real pool, so they are made as large as the pool allows in the proportion of
the synthetic comparison (``num_reference : num_compared``); the synthetic figure beside the
floor is computed again at exactly these sizes (the synthetic images against the same ``A``), so
that the two differ only in what ``B`` is.

Example (two draws from one Gaussian against a shifted one):
    >>> rng = np.random.default_rng(0)
    >>> rows = feature_floors(rng.normal(size=(400, 4)), rng.normal(loc=1.0, size=(400, 4)), kid_subsets=10)
    >>> fid = next(row for row in rows if row["metric"] == "FID")
    >>> fid["num_reference"], fid["num_compared"], bool(fid["synthetic"] > 10 * fid["real"])
    (200, 200, True)
"""

from __future__ import annotations

import warnings

import numpy as np

from ragan.errors import RaganError
from ragan.evaluation._metric_inputs import as_features, check_same_dim

__all__ = ["feature_floors", "floor_ratio", "floor_sizes", "FLOOR_METRICS"]

FLOOR_METRICS = ("FID", "KID", "precision", "recall")
# Neighbour rank of precision/recall (as in the quality table).
PR_K = 3


def floor_sizes(num_reference: int, num_compared: int, available: int) -> tuple[int, int]:
    """Sizes of the two disjoint real sets: the comparison's own sizes when the pool holds both, else
    as many as the pool allows in the same proportion.

    Example:
        >>> floor_sizes(400, 400, 400), floor_sizes(100, 300, 1000), floor_sizes(4708, 1000, 4708)
        ((200, 200), (100, 300), (3883, 825))
    """
    for name, value in (("num_reference", num_reference), ("num_compared", num_compared), ("available", available)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise RaganError(f"{name}={value!r} is not allowed; it must be a positive integer.")
    if num_reference + num_compared <= available:
        return int(num_reference), int(num_compared)
    reference = int(round(available * num_reference / (num_reference + num_compared)))
    reference = min(max(reference, 1), available - 1)
    return reference, int(available - reference)


def floor_ratio(metric: str, synthetic: float, real: float, real_std: float | None = None) -> float | None:
    """``synthetic / real``, or None where the ratio would mislead: a floor at or below zero, a KID
    floor within two of its standard deviations of zero (noise, not a level), or a KID at or below
    zero (KID is unbiased, so it dips below zero where the sets match).

    Example:
        >>> floor_ratio("FID", 12.0, 3.0), floor_ratio("KID", 0.02, 0.001, 0.004), floor_ratio("recall", 0.2, 0.0)
        (4.0, None, None)
    """
    if synthetic is None or real is None or real <= 0:
        return None
    if metric == "KID" and (synthetic <= 0 or (real_std is not None and real <= 2 * real_std)):
        return None
    return float(synthetic / real)


def _metrics(reference: np.ndarray, compared: np.ndarray, kid_subsets: int, seed: int) -> dict:
    from scipy.linalg import LinAlgWarning

    from ragan.evaluation.metrics import (
        fid_from_features,
        kid_from_features,
        kid_subset_size,
        precision_recall_from_features,
    )

    subset = kid_subset_size(reference.shape[0], compared.shape[0])
    kid, kid_std = kid_from_features(reference, compared, num_subsets=kid_subsets, subset_size=subset, seed=seed)
    with warnings.catch_warnings():
        # Fewer images than feature dimensions make singular covariances: expected, and handled.
        warnings.simplefilter("ignore", LinAlgWarning)
        fid = fid_from_features(reference, compared)
    pr = precision_recall_from_features(reference, compared, k=PR_K)
    return {
        "FID": (fid, None),
        "KID": (kid, kid_std),
        "precision": (pr["precision"], None),
        "recall": (pr["recall"], None),
    }


def feature_floors(real, synthetic, *, kid_subsets: int = 100, seed: int = 0) -> list[dict]:
    """FID, KID and precision/recall of the synthetic set and of a real set, against one real set, at equal sizes.

    Args:
        real: ``(R, D)`` features of the real images (e.g. the training split) the comparison uses.
        synthetic: ``(S, D)`` features of the synthetic images, same extractor.
        kid_subsets: Random subsets KID is averaged over.
        seed: Seed of the split and of the subsets.

    Returns:
        One dict per metric: ``metric``, ``synthetic`` (synthetic ``B'`` vs real ``A``), ``real``
        (real ``B`` vs real ``A``), their ``*_std`` (KID only), ``ratio`` (:func:`floor_ratio`),
        ``num_reference`` (size of ``A``) and ``num_compared`` (size of ``B`` and ``B'``).

    Raises:
        RaganError: for fewer than ``2 * (PR_K + 1)`` real rows or ``PR_K + 1`` synthetic rows.
    """
    real = as_features("real", real)
    synthetic = as_features("synthetic", synthetic)
    check_same_dim(real, synthetic)
    if real.shape[0] < 2 * (PR_K + 1) or synthetic.shape[0] < PR_K + 1:
        raise RaganError(
            f"real, synthetic: floors need at least {2 * (PR_K + 1)} real and {PR_K + 1} synthetic feature rows, "
            f"got {real.shape[0]} and {synthetic.shape[0]}."
        )
    num_reference, num_compared = floor_sizes(real.shape[0], synthetic.shape[0], real.shape[0])
    # Each set must exceed the neighbour rank of precision/recall.
    num_compared = max(num_compared, PR_K + 1)
    num_reference = min(num_reference, real.shape[0] - num_compared)
    rng = np.random.default_rng(seed)
    order = rng.permutation(real.shape[0])
    set_a = real[np.sort(order[:num_reference])]
    set_b = real[np.sort(order[num_reference : num_reference + num_compared])]
    compared = synthetic[np.sort(rng.choice(synthetic.shape[0], size=num_compared, replace=False))]
    synthetic_values = _metrics(set_a, compared, kid_subsets, seed)
    real_values = _metrics(set_a, set_b, kid_subsets, seed)
    rows = []
    for metric in FLOOR_METRICS:
        (value, std), (floor, floor_std) = synthetic_values[metric], real_values[metric]
        rows.append(
            {
                "metric": metric,
                "synthetic": float(value),
                "synthetic_std": std,
                "real": float(floor),
                "real_std": floor_std,
                "ratio": floor_ratio(metric, value, floor, floor_std),
                "num_reference": int(num_reference),
                "num_compared": int(num_compared),
            }
        )
    return rows
