"""The report's measurements of the synthetic images: quality (FID, KID, precision/recall), diversity
(pairwise MS-SSIM) and similarity to the nearest real training image (PSNR, SSIM, MS-GMSD, MDSI, HaarPSI).

Each function takes the compared sets as float images in [-1, 1] (``{"real train", "synthetic",
"real test"}``) and returns the JSON-ready section of ``report.json``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> sets = {name: rng.uniform(-1, 1, (6, 8, 8, 1)).astype(np.float32) for name in ("real train", "synthetic")}
    >>> diversity(sets, num_pairs=4, seed=0)["skipped"]
    'MS-SSIM diversity skipped: 8x8 images are smaller than its 11x11 window'
"""

from __future__ import annotations

import numpy as np

__all__ = ["diversity", "quality_rows", "similarity_table", "subsample"]


def subsample(images: np.ndarray, labels, limit: int, rng):
    """At most ``limit`` images (and their labels), a random subset in the original order.

    Example:
        >>> images, labels = subsample(np.arange(10), np.arange(10), 3, np.random.default_rng(0))
        >>> len(images), bool(np.all(np.diff(images) > 0))
        (3, True)
    """
    if images.shape[0] <= limit:
        return images, labels
    chosen = np.sort(rng.choice(images.shape[0], size=limit, replace=False))
    return images[chosen], (None if labels is None else labels[chosen])


def quality_rows(extractor, sets: dict, kid_subsets: int, seed: int, *, features: dict | None = None) -> list[dict]:
    """FID, KID, precision and recall of each compared set against the real training images.

    ``features``: the extractor's features of ``sets`` when already computed.
    """
    import warnings

    from scipy.linalg import LinAlgWarning

    from ragan.evaluation.metrics import (
        fid_from_features,
        kid_from_features,
        kid_subset_size,
        precision_recall_from_features,
    )

    if features is None:
        features = {name: extractor(images) for name, images in sets.items()}
    reference = features["real train"]
    rows = []
    for name in ("synthetic", "real test"):
        if name not in features:
            continue
        fake = features[name]
        described = {
            "extractor": extractor.name,
            "resize": extractor.resize,
            "feature_dim": extractor.feature_dim,
            "compared": f"{name} vs real train",
            "num_real": int(reference.shape[0]),
            "num_compared": int(fake.shape[0]),
            "reference": name != "synthetic",
        }
        subset = kid_subset_size(reference.shape[0], fake.shape[0])
        kid_mean, kid_std = kid_from_features(reference, fake, num_subsets=kid_subsets, subset_size=subset, seed=seed)
        pr = precision_recall_from_features(reference, fake, k=3)
        with warnings.catch_warnings():
            # Fewer images than feature dimensions make singular covariances: expected, and handled.
            warnings.simplefilter("ignore", LinAlgWarning)
            fid = fid_from_features(reference, fake)
        rows.append({"metric": "FID", "value": fid, "std": None, **described})
        rows.append(
            {
                "metric": "KID",
                "value": kid_mean,
                "std": kid_std,
                "detail": f"{kid_subsets} subsets of {subset}",
                **described,
            }
        )
        rows.append({"metric": "precision", "value": pr["precision"], "std": None, "detail": "k=3", **described})
        rows.append({"metric": "recall", "value": pr["recall"], "std": None, "detail": "k=3", **described})
    return rows


def diversity(sets: dict, num_pairs: int, seed: int) -> dict:
    """Mean pairwise MS-SSIM of the synthetic and real training sets, or why it was skipped."""
    from ragan.evaluation.metrics import SSIM_FILTER_SIZE, mean_pairwise_ms_ssim

    height, width = sets["real train"].shape[1:3]
    if min(height, width) < SSIM_FILTER_SIZE:
        # Like the memorisation audit's SSIM search: too small for the window is a note, not an error.
        return {
            "synthetic_ms_ssim": None,
            "real_ms_ssim": None,
            "ratio": None,
            "num_pairs": 0,
            "skipped": f"MS-SSIM diversity skipped: {height}x{width} images are smaller than its "
            f"{SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} window",
        }
    synthetic = mean_pairwise_ms_ssim(sets["synthetic"], min_value=-1.0, max_value=1.0, num_pairs=num_pairs, seed=seed)
    real = mean_pairwise_ms_ssim(sets["real train"], min_value=-1.0, max_value=1.0, num_pairs=num_pairs, seed=seed)
    return {
        "synthetic_ms_ssim": synthetic,
        "real_ms_ssim": real,
        "ratio": synthetic / real if real > 0 else None,
        "num_pairs": num_pairs,
        "note": "mean MS-SSIM over random pairs of distinct images within each set (the real training images' "
        "value is the floor: a mean over pairs does not depend on the set's size); a synthetic value well "
        "above the real one suggests mode collapse, one well below it suggests noise.",
    }


# metric -> (function name in ragan.evaluation.metrics, smallest image side, which way is better)
SIMILARITY_METRICS = {
    "PSNR": ("psnr", 1, "higher"),
    "SSIM": ("ssim", 11, "higher"),
    "MS-GMSD": ("ms_gmsd", 17, "lower"),
    "MDSI": ("mdsi", 1, "lower"),
    "HaarPSI": ("haarpsi", 16, "higher"),
}
SIMILARITY_PAIRING = (
    "each image is paired with its nearest real training image: the one with the smallest mean squared pixel "
    "difference (the highest PSNR) among all real training images; the held-out real test images, paired the same "
    "way, give the level new real images reach"
)
SIMILARITY_WHY = (
    "Pairing random images, as the AIDL21 project did, compares two unrelated patients: the scores then measure how "
    "much real images differ from one another (anatomy, position, exposure), nearly the same for any plausible "
    "generator, and say little about the synthetic images. Against the nearest real image the scores ask whether a "
    "synthetic image is as close to some real image as a new real image is: much closer suggests copies (see the "
    "memorisation audit), much further suggests images unlike any real one."
)


def similarity_table(sets: dict, train_all, seed: int) -> dict:
    """PSNR, SSIM, MS-GMSD, MDSI and HaarPSI of synthetic and held-out real images against their
    nearest real training image.

    Args:
        sets: ``{"synthetic": ..., "real test": ...}``: float arrays in ``[-1, 1]`` or
            :class:`~ragan.evaluation.full_resolution.UnitImages` (at the evaluation size, with their
            full-resolution images).
        train_all: Every real training image, the same way.
        seed: Seed of the subsets scored.

    The nearest training image is searched at the given size
    (:func:`~ragan.evaluation.full_resolution.nearest_training`); the scores are computed at full
    resolution on at most :func:`~ragan.evaluation.full_resolution.similarity_images` images per set.
    """
    from ragan.evaluation import full_resolution
    from ragan.evaluation import metrics as pixel_metrics
    from ragan.evaluation.full_resolution import UnitImages

    def units(images):
        return images if isinstance(images, UnitImages) else UnitImages(images, None)

    train = units(train_all)
    rng = np.random.default_rng(seed)
    side = train.full_size
    limit = full_resolution.similarity_images(side)
    rows, skipped, counts = [], [], {}
    pairs = {}
    for name in ("synthetic", "real test"):
        images = units(sets[name])
        chosen = np.arange(len(images))
        if len(images) > limit:
            chosen = np.sort(rng.choice(len(images), size=limit, replace=False))
        indices, _ = full_resolution.nearest_training(images[chosen], train)
        pairs[name] = (images, chosen, indices)
        counts[name] = int(chosen.size)
    values = {metric: {name: [] for name in pairs} for metric in SIMILARITY_METRICS}
    for metric, (_, minimum, _) in SIMILARITY_METRICS.items():
        if side < minimum:
            skipped.append(f"{metric} skipped: {side}x{side} images are smaller than its {minimum}x{minimum} minimum")
            values.pop(metric)
    for name, (images, chosen, indices) in pairs.items():
        # Full-resolution pairs a batch at a time: 1,000 pairs of 1024-px images would be 8 GB as float32.
        for part in full_resolution.pair_batches(chosen.size, side, train.shape[3]):
            compared, nearest = images.full(chosen[part]), train.full(indices[part])
            for metric in values:
                function = getattr(pixel_metrics, SIMILARITY_METRICS[metric][0])
                # MDSI is not symmetric: the compared image first, the training image as the reference.
                values[metric][name].append(
                    np.asarray(function(compared, nearest, min_value=-1.0, max_value=1.0), dtype=np.float64)
                )
    for metric, per_set in values.items():
        row = {"metric": metric, "better": SIMILARITY_METRICS[metric][2]}
        for name, parts in per_set.items():
            scores = np.concatenate(parts)
            finite = scores[np.isfinite(scores)]
            key = "synthetic" if name == "synthetic" else "real_test"
            row[key] = {
                "mean": float(finite.mean()) if finite.size else None,
                "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
                "median": float(np.median(finite)) if finite.size else None,
                "n": int(finite.size),
                "identical": int(np.sum(~np.isfinite(scores))),
            }
        rows.append(row)
    table = {
        "pairing": SIMILARITY_PAIRING,
        "why_not_random_pairs": SIMILARITY_WHY,
        "rows": rows,
        "num_images": counts,
        "num_train": int(len(train)),
        "skipped": skipped,
        "value_range": [-1.0, 1.0],
        "image_size": side,
    }
    search_side = train.shape[1]
    if search_side != side or search_side > full_resolution.SHORTLIST_SIDE:
        table["search"] = (
            f"nearest image searched at {search_side}x{search_side} (a short-list of {full_resolution.SHORTLIST} "
            f"by mean squared difference at {full_resolution.SHORTLIST_SIDE}x{full_resolution.SHORTLIST_SIDE}, "
            f"area resize, then the exact nearest); scores at full resolution ({side}x{side})"
            + (f", on at most {limit} images per set" if limit < full_resolution.SIMILARITY_MOST else "")
        )
    return table
