"""Memorisation audit: catch a generator that copies its training images.

For every synthetic image the audit finds its nearest training image in up to three ways and
flags it as a near-copy when it is much closer to the training set than genuinely new real images
ever get:

* **pixel** (always): images area-resized to 16x16, compared by ``1 - Pearson r`` (cosine distance
  of mean-centred pixel vectors, so brightness/contrast offsets do not hide a copy), minimised over
  small translations of the synthetic image (up to ``±max_shift`` px, default about 1/32 of the
  image side, on a grid of at most 5x5 offsets), so a shifted copy is still found. Needs no
  network and works when a feature extractor is weak.
* **feature** (when an extractor or features are given): cosine distance of feature vectors.
  Cosine rather than L2 because feature norms vary with image contrast and network, while the
  angle is comparable within a network and bounded in ``[0, 2]``.
* **ssim**: ``1 - SSIM`` on the original images, computed only against a short-list (the
  ``ssim_candidates`` nearest training images of the other two searches) to stay cheap.

**Flagging rule.** The held-out real test images give the baseline: their own nearest-training
distances, i.e. how close *independent* images from the same distribution come to the training set.
A synthetic image is flagged by a search when its distance is below ``threshold_scale`` (0.5) times
the ``baseline_percentile`` (1st) percentile of that baseline, and flagged overall when any search
flags it. At the 1st percentile itself about 1 % of independent images would be flagged by
construction; halving it leaves a margin. Measured on PneumoniaMNIST (28x28, all 4708 training
images, all 624 test images as baseline, pixel search): the baseline's minimum is 0.024 and its
1st percentile 0.036, so the threshold is 0.018. Copies with Gaussian noise of sigma 1-3 % of the
range sit at <= 0.014 and copies shifted by 1 px (also diagonally) at 0.000: all flagged; at sigma
5 % half were flagged; 2-px shifts are caught with ``max_shift=2`` (5x5 offsets: 0.000). Of the
524 validation images, the 8 exact copies of training images were flagged and none of the other
516 (closest: 0.0236). Against only 200 training images, 1 of 524 validation images was flagged.
Every threshold can be overridden.

Held-out images that are exact duplicates of training images (a train/test leak: PneumoniaMNIST's
validation split holds 8 such copies) are listed in the report and left out of the baselines,
where they would pull the threshold to zero.

Example (random 16x16 images; synthetic image 0 is a copy of training image 5):
    >>> rng = np.random.default_rng(0)
    >>> train, test = rng.uniform(size=(30, 16, 16, 1)), rng.uniform(size=(20, 16, 16, 1))
    >>> synthetic = np.concatenate([train[5:6], rng.uniform(size=(9, 16, 16, 1))])
    >>> report = memorisation_audit(train, synthetic, test)
    >>> report.fraction_flagged, report.closest_pairs(1)[0]["train_index"]
    (0.1, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ragan._common import check_positive_int
from ragan.errors import RaganError
from ragan.evaluation.neighbours import BLOCK_ENTRIES, nearest_neighbours

__all__ = ["MemorisationReport", "NearestNeighbours", "memorisation_audit", "pixel_descriptors"]

# Distances at or below this (in the pixel search) mean identical images up to float round-off.
DUPLICATE_DISTANCE = 1e-5


@dataclass
class NearestNeighbours:
    """Nearest-training-image results of one search (``pixel``, ``feature`` or ``ssim``).

    Attributes:
        space: What was compared, e.g. ``"pixels_16x16 (area resize, 1 - Pearson r, shifts ±1 px)"``.
        nearest_index: ``(num_synthetic,)`` index of the nearest training image.
        nearest_distance: ``(num_synthetic,)`` distance to it (``1 - SSIM`` for the ssim search).
        baseline: Nearest-training distances of the held-out real images (duplicates left out).
        threshold: Distances strictly below it are flagged.
        baseline_query, baseline_index: The ssim search only: the held-out image of every
            ``baseline`` entry and its nearest training image (to confirm them at full resolution).
    """

    space: str
    nearest_index: np.ndarray
    nearest_distance: np.ndarray
    baseline: np.ndarray
    threshold: float
    baseline_query: np.ndarray | None = None
    baseline_index: np.ndarray | None = None

    @property
    def flagged(self) -> np.ndarray:
        """Boolean mask over synthetic images."""
        return self.nearest_distance < self.threshold

    def copy_score(self) -> np.ndarray:
        """Distance divided by the threshold: below 1 means flagged, smaller is more copy-like."""
        if self.threshold <= 0:
            return np.full(self.nearest_distance.shape, np.inf)
        return self.nearest_distance / self.threshold

    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "threshold": _json_float(self.threshold),
            "num_flagged": int(self.flagged.sum()),
            "baseline_summary": _summary(self.baseline),
            "baseline": [_json_float(v) for v in self.baseline],
            "nearest_index": [int(v) for v in self.nearest_index],
            "nearest_distance": [_json_float(v) for v in self.nearest_distance],
        }


@dataclass
class MemorisationReport:
    """Result of :func:`memorisation_audit`.

    Attributes:
        searches: ``{"pixel": ..., "feature": ..., "ssim": ...}`` :class:`NearestNeighbours`
            (``feature`` only with an extractor or features; ``ssim`` only for images >= 11 px).
        num_train, num_synthetic, num_test: Sizes of the three sets.
        feature_name: Name of the feature extractor, or None.
        held_out_duplicates: ``[(test_index, train_index), ...]`` held-out images identical to a
            training image (a train/test leak), excluded from the baselines.
        baseline_percentile, threshold_scale: The flagging rule's parameters.
        notes: Human-readable remarks (e.g. a search that was skipped and why).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> train, test = rng.uniform(size=(30, 16, 16, 1)), rng.uniform(size=(20, 16, 16, 1))
        >>> synthetic = np.concatenate([rng.uniform(size=(3, 16, 16, 1)), train[7:8]])
        >>> memorisation_audit(train, synthetic, test).flagged
        array([3])
    """

    searches: dict
    num_train: int
    num_synthetic: int
    num_test: int
    feature_name: str | None
    held_out_duplicates: list
    baseline_percentile: float
    threshold_scale: float
    notes: list = field(default_factory=list)

    @property
    def flagged_mask(self) -> np.ndarray:
        """Boolean mask over synthetic images flagged by any search."""
        mask = np.zeros(self.num_synthetic, dtype=bool)
        for search in self.searches.values():
            mask |= search.flagged
        return mask

    @property
    def flagged(self) -> np.ndarray:
        """Indices of the synthetic images flagged as near-copies, ascending."""
        return np.flatnonzero(self.flagged_mask)

    @property
    def fraction_flagged(self) -> float:
        return float(self.flagged_mask.mean())

    def copy_scores(self) -> tuple[np.ndarray, list]:
        """Per synthetic image: the smallest distance/threshold ratio and the search giving it."""
        names = list(self.searches)
        ratios = np.stack([self.searches[name].copy_score() for name in names])
        best = np.argmin(ratios, axis=0)
        return ratios[best, np.arange(self.num_synthetic)], [names[i] for i in best]

    def closest_pairs(self, n: int = 16) -> list[dict]:
        """The ``n`` most copy-like (synthetic, training) pairs, most suspicious first, for a gallery.

        Pairs are ranked by copy score (distance / threshold of the search where the image comes
        closest relative to its threshold; below 1 means flagged).
        """
        scores, rules = self.copy_scores()
        order = np.argsort(scores, kind="stable")[: max(int(n), 0)]
        pairs = []
        for index in order:
            rule = rules[index]
            pairs.append(
                {
                    "synthetic_index": int(index),
                    "train_index": int(self.searches[rule].nearest_index[index]),
                    "search": rule,
                    "copy_score": _json_float(scores[index]),
                    "flagged": bool(scores[index] < 1.0),
                    "distances": {
                        name: _json_float(search.nearest_distance[index]) for name, search in self.searches.items()
                    },
                }
            )
        return pairs

    def to_dict(self) -> dict:
        """JSON-serialisable summary with the per-image arrays (NaN/inf written as null)."""
        return {
            "num_train": self.num_train,
            "num_synthetic": self.num_synthetic,
            "num_test": self.num_test,
            "feature_name": self.feature_name,
            "rule": (
                f"flag when distance < {self.threshold_scale:g} x the {self.baseline_percentile:g}% quantile "
                "of held-out real images' nearest-training distances, in any search"
            ),
            "baseline_percentile": self.baseline_percentile,
            "threshold_scale": self.threshold_scale,
            "num_flagged": int(self.flagged_mask.sum()),
            "fraction_flagged": self.fraction_flagged,
            "flagged": [int(i) for i in self.flagged],
            "held_out_duplicates": [[int(t), int(r)] for t, r in self.held_out_duplicates],
            "notes": list(self.notes),
            "searches": {name: search.to_dict() for name, search in self.searches.items()},
            "closest_pairs": self.closest_pairs(16),
        }


def _json_float(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _summary(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"count": 0}
    return {
        "count": int(values.size),
        "min": float(values.min()),
        "p1": float(np.percentile(values, 1)),
        "p5": float(np.percentile(values, 5)),
        "median": float(np.median(values)),
    }


# ---------------------------------------------------------------------------------------------
# Inputs


def _as_images(name: str, images) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise RaganError(f"{name}: expected images of shape (N, H, W, C) or (N, H, W), got {array.shape}")
    if array.shape[0] == 0:
        raise RaganError(f"{name}: no images given")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise RaganError(f"{name}: expected real pixel values, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise RaganError(f"{name}: images contain NaN or inf values")
    return array


def _value_range(arrays: list[np.ndarray], value_range) -> tuple[float, float]:
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise RaganError(f"value_range={value_range!r} must be (low, high) with high > low")
        return low, high
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) == 1 and np.issubdtype(next(iter(dtypes)), np.unsignedinteger):
        return 0.0, float(np.iinfo(next(iter(dtypes))).max)
    low = min(float(a.min()) for a in arrays)
    high = max(float(a.max()) for a in arrays)
    if not high > low:
        high = low + 1.0
    return low, high


# ---------------------------------------------------------------------------------------------
# Nearest neighbours


def _unit_rows(vectors: np.ndarray, centre: bool) -> np.ndarray:
    vectors = vectors.astype(np.float32, copy=True)
    if centre:
        vectors -= vectors.mean(axis=-1, keepdims=True)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    # A constant image (zero after centring) stays a zero vector: distance 1 to everything.
    return vectors / np.maximum(norms, 1e-12)


def _default_max_shift(height: int, width: int) -> int:
    return max(1, round(min(height, width) / 32))


def _shift_grid(max_shift: int) -> tuple[int, ...]:
    """Translations tried per axis: every pixel up to ±2, then 5 evenly spaced offsets.

    A residual offset of at most ``max_shift / 4`` px is under 1/8 of a pixel of the 16x16
    descriptor with the default ``max_shift``, so the coarse grid loses nothing that matters.
    """
    return tuple(sorted({int(round(v)) for v in np.linspace(-max_shift, max_shift, 2 * min(max_shift, 2) + 1)}))


def pixel_descriptors(
    images, *, size: int = 16, shifts: tuple[int, ...] = (0,), margin: int | None = None
) -> np.ndarray:
    """Unit-norm, mean-centred pixel vectors of area-downscaled images, one set per translation.

    For each ``(dy, dx)`` in ``shifts x shifts`` the window ``[margin + dy : H - margin + dy,
    margin + dx : W - margin + dx]`` is area-resized to ``size x size`` and flattened; the dot
    product of two descriptors is the Pearson correlation of the downscaled images.

    Args:
        images: ``(N, H, W, C)`` or ``(N, H, W)`` array.
        size: Side of the downscaled image.
        shifts: Translation offsets in pixels (applied in both axes).
        margin: Border cropped from every side; default ``max(|shifts|)``.

    Returns:
        Float32 array ``(len(shifts)**2, N, size * size * C)``.

    Example:
        >>> pixel_descriptors(np.random.rand(5, 28, 28), shifts=(-1, 0, 1)).shape
        (9, 5, 256)
    """
    from ragan._tf import import_tf

    tf = import_tf()
    images = _as_images("images", images)
    margin = max(abs(s) for s in shifts) if margin is None else margin
    height, width = images.shape[1:3]
    if height - 2 * margin < 2 or width - 2 * margin < 2:
        raise RaganError(f"max_shift={margin} is too large for {height}x{width} images")
    offsets = [(dy, dx) for dy in shifts for dx in shifts]
    rows = max(1, BLOCK_ENTRIES // (height * width * images.shape[3]))
    out = np.empty((len(offsets), images.shape[0], size * size * images.shape[3]), np.float32)
    for start in range(0, images.shape[0], rows):
        block = images[start : start + rows].astype(np.float32)
        for i, (dy, dx) in enumerate(offsets):
            window = block[:, margin + dy : height - margin + dy, margin + dx : width - margin + dx]
            small = tf.image.resize(window, (size, size), method="area").numpy()
            out[i, start : start + block.shape[0]] = small.reshape(block.shape[0], -1)
    return _unit_rows(out, centre=True)


def _nearest(queries: np.ndarray, train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest training rows by cosine distance, minimised over the query's variants (``(S, N, D)``
    unit vectors against ``(T, D)``): ``(indices, distances)``, each ``(N, k)``, nearest first."""
    return nearest_neighbours(queries, train, k, metric="cosine")


def _best_ssim(
    queries: np.ndarray, train: np.ndarray, candidates: np.ndarray, value_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Highest SSIM of each query against its candidate training images: ``(index, 1 - ssim)``."""
    from ragan.evaluation.metrics import ssim

    low, high = value_range
    count, per_query = candidates.shape
    flat = candidates.reshape(-1)
    values = np.empty(flat.shape[0])
    # Pairs per SSIM call, fewer for larger images: 512 pairs of 256-px images took ~1.5 GB in float64
    # copies, 128 pairs still 0.3 GB over the report's resident memory at 512 px.
    pair_block = max(1, min(512, BLOCK_ENTRIES // (4 * int(np.prod(queries.shape[1:])))))
    for start in range(0, flat.shape[0], pair_block):
        stop = min(start + pair_block, flat.shape[0])
        query_rows = np.arange(start, stop) // per_query
        values[start:stop] = ssim(
            np.clip(queries[query_rows].astype(np.float64), low, high),
            np.clip(train[flat[start:stop]].astype(np.float64), low, high),
            min_value=low,
            max_value=high,
        )
    values = values.reshape(count, per_query)
    best = np.argmax(values, axis=1)
    rows = np.arange(count)
    return candidates[rows, best], 1.0 - values[rows, best]


def _merge_candidates(*lists: np.ndarray) -> np.ndarray:
    """Row-wise union of candidate index lists, padded by repeating each row's first entry."""
    merged = [list(dict.fromkeys(np.concatenate([lst[i] for lst in lists]).tolist())) for i in range(lists[0].shape[0])]
    width = max(len(row) for row in merged)
    return np.array([row + [row[0]] * (width - len(row)) for row in merged], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# The audit


def _threshold(name: str, baseline: np.ndarray, override, percentile: float, scale: float) -> float:
    if override is not None:
        if not isinstance(override, (int, float, np.number)) or not math.isfinite(override) or override < 0:
            raise RaganError(f"{name}={override!r} must be a non-negative number")
        return float(override)
    return float(scale * np.percentile(baseline, percentile))


def _check_images(train_images, synthetic_images, test_images):
    """The three image sets as ``(N, H, W, C)`` arrays of one image shape."""
    train = _as_images("train_images", train_images)
    synthetic = _as_images("synthetic_images", synthetic_images)
    test = _as_images("test_images", test_images)
    for label, array in (("synthetic_images", synthetic), ("test_images", test)):
        if array.shape[1:] != train.shape[1:]:
            raise RaganError(
                f"{label}: image shape {array.shape[1:]} differs from train_images' "
                f"{train.shape[1:]}; resize them to the same size first"
            )
    return train, synthetic, test


def _check_rule(baseline_percentile, threshold_scale, ssim_candidates, pixel_size) -> tuple[float, float]:
    """The flagging rule ``(baseline_percentile, threshold_scale)``, with the search sizes checked."""
    if not (isinstance(baseline_percentile, (int, float)) and 0 <= baseline_percentile <= 100):
        raise RaganError(f"baseline_percentile={baseline_percentile!r} must be in [0, 100]")
    if not (isinstance(threshold_scale, (int, float)) and threshold_scale > 0):
        raise RaganError(f"threshold_scale={threshold_scale!r} must be a positive number")
    check_positive_int("ssim_candidates", ssim_candidates)
    if not isinstance(pixel_size, int) or pixel_size < 2:
        raise RaganError(f"pixel_size={pixel_size!r} must be an integer >= 2")
    return baseline_percentile, threshold_scale


def _pixel_search(train, synthetic, test, pixel_size, max_shift, ssim_candidates, pixel_threshold, rule):
    """The pixel search, ``(search, ([synthetic short-list], [test short-list]), independent, duplicates)``.

    Training images use the central window only; queries try every translation. ``independent`` masks
    the held-out images that are not exact duplicates of a training image (listed in ``duplicates``).
    """
    shifts = _shift_grid(max_shift)
    train_pixels = pixel_descriptors(train, size=pixel_size, margin=max_shift)[0]
    synthetic_idx, synthetic_dist = _nearest(
        pixel_descriptors(synthetic, size=pixel_size, shifts=shifts), train_pixels, ssim_candidates
    )
    test_idx, test_dist = _nearest(
        pixel_descriptors(test, size=pixel_size, shifts=shifts), train_pixels, ssim_candidates
    )
    duplicate = test_dist[:, 0] <= DUPLICATE_DISTANCE
    held_out_duplicates = [(int(i), int(test_idx[i, 0])) for i in np.flatnonzero(duplicate)]
    if duplicate.all():
        raise RaganError(
            f"test_images: all {test.shape[0]} held-out images are duplicates of training images; "
            "the audit needs held-out images the generator never saw"
        )
    independent = ~duplicate
    shift_text = f", shifts ±{max_shift} px" if max_shift else ""
    space = f"pixels_{pixel_size}x{pixel_size} (area resize, 1 - Pearson r{shift_text})"
    search = _search_result(
        space, synthetic_idx, synthetic_dist, test_dist[independent, 0], ("pixel_threshold", pixel_threshold), rule
    )
    return search, ([synthetic_idx], [test_idx]), independent, held_out_duplicates


def _unit_features(extractor, features, feature_name, images, batch_size) -> tuple[list, str]:
    """Unit-length ``[train, synthetic, test]`` feature rows (from ``extractor`` or ``features``) and their name."""
    if extractor is not None:
        feature_name = extractor.name
        arrays = [extractor(part, batch_size=batch_size) for part in images]
    else:
        if not isinstance(features, (tuple, list)) or len(features) != 3:
            raise RaganError("features: expected (train_features, synthetic_features, test_features)")
        arrays = list(features)
        feature_name = feature_name or "precomputed features"
    unit = []
    for label, values, part in zip(("train", "synthetic", "test"), arrays, images):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != part.shape[0]:
            raise RaganError(f"features: {label} features have shape {values.shape}, expected ({part.shape[0]}, D)")
        if not np.isfinite(values).all():
            raise RaganError(f"features: {label} features contain NaN or inf")
        unit.append(_unit_rows(values, centre=False))
    if len({f.shape[1] for f in unit}) != 1:
        raise RaganError("features: train, synthetic and test features differ in dimension")
    return unit, feature_name


def _feature_search(unit_features, feature_name, independent, ssim_candidates, threshold, rule):
    """The feature search (cosine distance) and its ``(synthetic, test)`` short-lists."""
    train_f, synthetic_f, test_f = unit_features
    synthetic_idx, synthetic_dist = _nearest(synthetic_f[None], train_f, ssim_candidates)
    test_idx, test_dist = _nearest(test_f[None], train_f, ssim_candidates)
    space = f"{feature_name} (cosine distance)"
    search = _search_result(
        space, synthetic_idx, synthetic_dist, test_dist[independent, 0], ("threshold", threshold), rule
    )
    return search, (synthetic_idx, test_idx)


def _search_result(space: str, synthetic_idx, synthetic_dist, baseline, threshold: tuple, rule) -> NearestNeighbours:
    """One search's result: each synthetic image's nearest training image, the held-out baseline and
    the threshold (``threshold``: the option's name and value, ``None`` = from the baseline by ``rule``)."""
    return NearestNeighbours(
        space=space,
        nearest_index=synthetic_idx[:, 0],
        nearest_distance=synthetic_dist[:, 0],
        baseline=baseline,
        threshold=_threshold(threshold[0], baseline, threshold[1], *rule),
    )


def _ssim_search(images, candidates, independent, value_range, ssim_candidates, ssim_threshold, rule):
    """The SSIM search on the other searches' short-lists (``1 - SSIM`` as the distance)."""
    train, synthetic, test = images
    value_low_high = _value_range([train, synthetic, test], value_range)
    synthetic_idx, synthetic_dist = _best_ssim(synthetic, train, _merge_candidates(*candidates[0]), value_low_high)
    test_idx, test_dist = _best_ssim(test, train, _merge_candidates(*candidates[1]), value_low_high)
    baseline = test_dist[independent]
    if ssim_threshold is not None:
        if not isinstance(ssim_threshold, (int, float)) or not -1 <= ssim_threshold <= 1:
            raise RaganError(f"ssim_threshold={ssim_threshold!r} must be an SSIM value in [-1, 1]")
        distance_threshold = 1.0 - float(ssim_threshold)
    else:
        distance_threshold = _threshold("ssim_threshold", baseline, None, *rule)
    return NearestNeighbours(
        space=f"1 - SSIM (11x11 Gaussian window, range {value_low_high[0]:g}..{value_low_high[1]:g}), "
        f"best of the {ssim_candidates} nearest per search",
        nearest_index=synthetic_idx,
        nearest_distance=synthetic_dist,
        baseline=baseline,
        threshold=distance_threshold,
        baseline_query=np.flatnonzero(independent),
        baseline_index=test_idx[independent],
    )


def memorisation_audit(
    train_images,
    synthetic_images,
    test_images,
    *,
    extractor=None,
    features=None,
    feature_name: str | None = None,
    threshold: float | None = None,
    pixel_threshold: float | None = None,
    ssim_threshold: float | None = None,
    baseline_percentile: float = 1.0,
    threshold_scale: float = 0.5,
    ssim_candidates: int = 5,
    pixel_size: int = 16,
    max_shift: int | None = None,
    value_range: tuple[float, float] | None = None,
    batch_size: int = 64,
) -> MemorisationReport:
    """Find synthetic images that are near-copies of training images.

    See the module documentation for the three searches and the flagging rule.

    Args:
        train_images: ``(N, H, W, C)`` or ``(N, H, W)`` training images the generator saw.
        synthetic_images: Generated images, same height, width and channels.
        test_images: Held-out real images the generator never saw (the baseline; 100+ recommended
            so the 1st percentile is meaningful).
        extractor: Optional :class:`~ragan.evaluation.features.FeatureExtractor` for the feature
            search; images are passed to it as given, so they must be in its ``input_range``.
        features: Optional ``(train_features, synthetic_features, test_features)`` instead of an
            extractor, with ``feature_name`` naming where they came from.
        feature_name: Name for precomputed ``features``.
        threshold: Feature-search cosine-distance threshold (default: from the baseline).
        pixel_threshold: Pixel-search threshold (``1 - Pearson r``; default: from the baseline).
        ssim_threshold: Flag when SSIM is *above* this (default: from the baseline, as
            ``1 - threshold_scale * percentile(1 - SSIM_baseline)``).
        baseline_percentile: Percentile of the held-out distances the thresholds derive from.
        threshold_scale: Factor applied to that percentile.
        ssim_candidates: Nearest images per search that the SSIM search considers.
        pixel_size: Side of the downscaled images of the pixel search.
        max_shift: Largest translation (px) tolerated by the pixel search; default
            ``max(1, round(side / 32))``; 0 disables the shift search. Cost grows with the grid
            (9 offsets for 1 px, 25 from 2 px on).
        value_range: ``(low, high)`` pixel range for SSIM; default from the dtype (unsigned ints)
            or the data.
        batch_size: Batch size for the extractor.

    Returns:
        A :class:`MemorisationReport`.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> train = rng.integers(0, 256, (40, 16, 16, 1), dtype=np.uint8)
        >>> test = rng.integers(0, 256, (20, 16, 16, 1), dtype=np.uint8)
        >>> synthetic = np.concatenate([train[:2], rng.integers(0, 256, (8, 16, 16, 1), dtype=np.uint8)])
        >>> report = memorisation_audit(train, synthetic, test)
        >>> sorted(report.searches), [pair["synthetic_index"] for pair in report.closest_pairs(2)]
        (['pixel', 'ssim'], [0, 1])
    """
    train, synthetic, test = _check_images(train_images, synthetic_images, test_images)
    if extractor is not None and features is not None:
        raise RaganError("extractor and features: pass one of them, not both")
    if extractor is None and features is None and threshold is not None:
        raise RaganError("threshold: applies to the feature search; pass extractor= or features=")
    rule = _check_rule(baseline_percentile, threshold_scale, ssim_candidates, pixel_size)
    height, width = train.shape[1:3]
    if max_shift is None:
        max_shift = _default_max_shift(height, width)
    if not isinstance(max_shift, int) or max_shift < 0:
        raise RaganError(f"max_shift={max_shift!r} must be a non-negative integer")

    pixel, candidates, independent, held_out_duplicates = _pixel_search(
        train, synthetic, test, pixel_size, max_shift, ssim_candidates, pixel_threshold, rule
    )
    searches = {"pixel": pixel}
    notes = []
    if held_out_duplicates:
        notes.append(
            f"{len(held_out_duplicates)} held-out images are exact duplicates of training images "
            "(a train/test leak); they are left out of the baselines"
        )
    if extractor is not None or features is not None:
        unit_features, feature_name = _unit_features(
            extractor, features, feature_name, (train, synthetic, test), batch_size
        )
        searches["feature"], feature_candidates = _feature_search(
            unit_features, feature_name, independent, ssim_candidates, threshold, rule
        )
        candidates = [a + [b] for a, b in zip(candidates, feature_candidates)]

    from ragan.evaluation.metrics import SSIM_FILTER_SIZE

    if min(height, width) >= SSIM_FILTER_SIZE:
        searches["ssim"] = _ssim_search(
            (train, synthetic, test), candidates, independent, value_range, ssim_candidates, ssim_threshold, rule
        )
    else:
        notes.append(f"SSIM search skipped: {height}x{width} images are smaller than its 11x11 window")

    return MemorisationReport(
        searches=searches,
        num_train=int(train.shape[0]),
        num_synthetic=int(synthetic.shape[0]),
        num_test=int(test.shape[0]),
        feature_name=feature_name if "feature" in searches else None,
        held_out_duplicates=held_out_duplicates,
        baseline_percentile=float(baseline_percentile),
        threshold_scale=float(threshold_scale),
        notes=notes,
    )
