"""Metric maths: hand-computed cases and independent NumPy/SciPy reference implementations."""

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from ragan.errors import RaganError
from ragan.evaluation import metrics, neighbours
from ragan.evaluation.metrics import (
    MS_SSIM_WEIGHTS,
    fid_from_features,
    frechet_distance,
    kid_from_features,
    mean_pairwise_ms_ssim,
    ms_ssim,
    ms_ssim_power_factors,
    precision_recall_from_features,
    psnr,
    ssim,
)

# --------------------------------------------------------------------------------------------
# Independent references (written from the papers' formulas, not from the module)


def reference_fid(real, fake):
    """FID with tr(sqrt(S1 S2)) from the eigenvalues of S1 S2 instead of a matrix square root."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    eigenvalues = np.linalg.eigvals(s1 @ s2).real
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def reference_fid_sqrtm(real, fake):
    """FID the way TTUR/pytorch-fid compute it: scipy's sqrtm of the covariance product."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


def reference_mmd2_unbiased(x, y):
    """Unbiased MMD² with the cubic polynomial kernel, by explicit double loops."""
    dim = x.shape[1]

    def kernel(a, b):
        return (float(np.dot(a, b)) / dim + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def reference_precision_recall(real, fake, k):
    """Kynkäänniemi et al. with plain loops over points."""

    def radii(points):
        out = []
        for p in points:
            distances = sorted(np.linalg.norm(points - p, axis=1))
            out.append(distances[k])  # distances[0] is the point itself
        return np.array(out)

    def inside(queries, centres, r):
        return np.mean([any(np.linalg.norm(c - q) <= rc for c, rc in zip(centres, r)) for q in queries])

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def gaussian_window(size=11, sigma=1.5):
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    window = np.outer(g, g)
    return window / window.sum()


def reference_ssim_and_cs(x, y, value_range):
    """Mean SSIM and mean contrast-structure term of two 2-D images (valid 11x11 Gaussian window)."""
    window = gaussian_window()

    def local_mean(img):
        return scipy.signal.correlate2d(img, window, mode="valid")

    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return float(np.mean(luminance * contrast_structure)), float(np.mean(contrast_structure))


def smooth_images(count, size, seed, channels=1):
    """Random images with some spatial structure, in [0, 1]."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(size=(count, size, size, channels))
    kernel = np.ones((3, 3)) / 9
    out = np.stack(
        [
            np.stack(
                [scipy.signal.convolve2d(img[..., c], kernel, mode="same", boundary="symm") for c in range(channels)],
                axis=-1,
            )
            for img in noise
        ]
    )
    return np.clip(out, 0, 1)


# --------------------------------------------------------------------------------------------
# FID


def test_frechet_distance_of_1d_gaussians_has_closed_form():
    # (mu1 - mu2)^2 + (s1 - s2)^2 with variances 1 and 4 (std 1 and 2)
    assert frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10.0)
    # Diagonal covariances: sum over dimensions of the 1-D formula.
    value = frechet_distance([0, 1], np.diag([1.0, 9.0]), [2, 1], np.diag([4.0, 1.0]))
    assert value == pytest.approx(4 + (1 - 2) ** 2 + (3 - 1) ** 2)


def test_fid_from_1d_features_matches_sample_statistics():
    rng = np.random.default_rng(1)
    real = rng.normal(2.0, 1.5, size=(400, 1))
    fake = rng.normal(-1.0, 0.5, size=(300, 1))
    expected = (real.mean() - fake.mean()) ** 2 + (real.std(ddof=1) - fake.std(ddof=1)) ** 2
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-9)


def test_fid_of_identical_sets_is_zero():
    features = np.random.default_rng(2).normal(size=(200, 16))
    assert fid_from_features(features, features.copy()) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_eigenvalue_reference_with_correlated_features():
    rng = np.random.default_rng(3)
    mixing_real, mixing_fake = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    real = rng.normal(size=(300, 6)) @ mixing_real
    fake = rng.normal(size=(250, 6)) @ mixing_fake + 0.5
    assert fid_from_features(real, fake) == pytest.approx(reference_fid(real, fake), rel=1e-7)
    assert fid_from_features(real, fake) == pytest.approx(reference_fid_sqrtm(real, fake), rel=1e-7)


def test_fid_with_singular_covariances_fewer_images_than_dimensions():
    # 12 images in 40 dimensions: both covariances have rank 11.
    rng = np.random.default_rng(4)
    real = rng.normal(size=(12, 40))
    fake = rng.normal(size=(12, 40)) + 0.3
    value = fid_from_features(real, fake)
    assert math.isfinite(value) and value > 0
    assert value == pytest.approx(reference_fid(real, fake), rel=1e-6)
    assert value == pytest.approx(reference_fid_sqrtm(real, fake), rel=1e-6)
    # The low-rank path (fewer rows than dimensions) equals the covariance path, also with unequal sizes.
    fake = rng.normal(size=(7, 40)) * 2.0
    assert fid_from_features(real, fake) == pytest.approx(
        metrics.frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)),
        rel=1e-7,  # the covariance path clips round-off eigenvalues around zero: about 1e-8 here
    )


def test_frechet_distance_retries_with_eps_ridge_when_decomposition_fails(monkeypatch):
    calls = []
    real_trace_sqrt = metrics._trace_sqrt_product

    def failing_once(sigma1, sigma2):
        calls.append((sigma1.copy(), sigma2.copy()))
        if len(calls) == 1:
            raise np.linalg.LinAlgError("Eigenvalues did not converge")
        return real_trace_sqrt(sigma1, sigma2)

    monkeypatch.setattr(metrics, "_trace_sqrt_product", failing_once)
    value = frechet_distance([0.0], [[1.0]], [3.0], [[4.0]], eps=1e-6)
    assert len(calls) == 2
    assert calls[1][0][0, 0] == 1 + 1e-6 and calls[1][1][0, 0] == 4 + 1e-6
    assert value == pytest.approx(10.0, abs=1e-5)


@pytest.mark.parametrize(
    "real, fake, match",
    [
        (np.zeros((5, 3)), np.zeros((5, 4)), "fake: feature dimension 4"),
        (np.zeros(5), np.zeros((5, 1)), "real: expected a 2-D array"),
        (np.zeros((0, 3)), np.zeros((5, 3)), "real: the feature array is empty"),
        (np.array([[0.0, np.nan], [1, 1]]), np.zeros((2, 2)), "real: 1 feature rows contain NaN"),
        (np.zeros((1, 3)), np.zeros((5, 3)), "real: FID needs at least 2"),
    ],
)
def test_fid_input_errors_name_the_argument(real, fake, match):
    with pytest.raises(RaganError, match=match):
        fid_from_features(real, fake)


def test_frechet_distance_shape_errors():
    with pytest.raises(RaganError, match="sigma2"):
        frechet_distance([0.0, 0.0], np.eye(2), [0.0, 0.0], np.eye(3))


# --------------------------------------------------------------------------------------------
# KID


def test_kid_matches_double_loop_reference_on_whole_sets():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(6, 3))
    fake = rng.normal(size=(6, 3)) + 0.7
    # subset_size equal to the set sizes: every subset is a permutation of the whole set.
    mean, std = kid_from_features(real, fake, num_subsets=4, subset_size=6)
    assert mean == pytest.approx(reference_mmd2_unbiased(real, fake), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)


def test_kid_near_zero_for_same_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(400, 8))
    same = rng.normal(size=(400, 8))
    shifted = rng.normal(size=(400, 8)) + 0.5
    same_mean, same_std = kid_from_features(real, same, num_subsets=20, subset_size=200)
    shifted_mean, shifted_std = kid_from_features(real, shifted, num_subsets=20, subset_size=200)
    assert abs(same_mean) < 3 * same_std + 1e-3
    assert shifted_mean > 10 * abs(same_mean)
    assert shifted_mean > 5 * shifted_std


def test_kid_subset_size_is_clipped_and_seeded():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(30, 4)), rng.normal(size=(20, 4))
    first = kid_from_features(real, fake, num_subsets=5, subset_size=1000, seed=3)
    again = kid_from_features(real, fake, num_subsets=5, subset_size=20, seed=3)
    assert first == again
    assert kid_from_features(real, fake, num_subsets=5, seed=4) != first


def test_kid_default_subsets_of_small_sets_have_a_spread():
    """Subsets as large as the whole set are the same set reshuffled: their spread would be 0."""
    from ragan.evaluation.metrics import kid_subset_size

    assert kid_subset_size(400, 400) == 200 and kid_subset_size(5000, 1000) == 500
    assert kid_subset_size(5000, 1001) == 1000 and kid_subset_size(3, 50) == 2
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(400, 6)), rng.normal(size=(400, 6)) + 0.3
    mean, std = kid_from_features(real, fake, num_subsets=20)
    assert mean > 0 and std > 1e-3 * mean
    whole_mean, whole_std = kid_from_features(real, fake, num_subsets=20, subset_size=400)
    assert whole_std == pytest.approx(0.0, abs=1e-12)
    assert mean == pytest.approx(whole_mean, rel=0.2)  # unbiased at any subset size


def test_kid_errors():
    with pytest.raises(RaganError, match="at least 2 rows"):
        kid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(RaganError, match="num_subsets"):
        kid_from_features(np.zeros((5, 3)), np.zeros((5, 3)), num_subsets=0)


# --------------------------------------------------------------------------------------------
# Precision / recall


def test_precision_recall_hand_computed_2d():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # k=1 radius: 1 each
    fake = np.array([[0.5, 0.0], [5.0, 5.0]])
    # (0.5, 0) lies in the ball of (0, 0); (5, 5) is more than 1 from every corner -> 1/2.
    # The fake balls (k=1) reach each other: radius |(5,5)-(0.5,0)| = 6.73, covering all corners.
    result = precision_recall_from_features(real, fake, k=1)
    assert result == {"precision": 0.5, "recall": 1.0}


def test_precision_recall_far_away_fake_is_zero_and_identical_is_one():
    real = np.random.default_rng(8).normal(size=(50, 2))
    assert precision_recall_from_features(real, real + 100.0) == {"precision": 0.0, "recall": 0.0}
    assert precision_recall_from_features(real, real.copy()) == {"precision": 1.0, "recall": 1.0}


def test_precision_recall_mode_collapse_lowers_recall_not_precision():
    rng = np.random.default_rng(9)
    real = np.concatenate([rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + 8])
    collapsed = rng.normal(size=(200, 2)) * 0.5  # only the first mode
    result = precision_recall_from_features(real, collapsed)
    assert result["precision"] > 0.9
    assert result["recall"] < 0.55


def test_precision_recall_matches_loop_reference_with_tiny_blocks(monkeypatch):
    rng = np.random.default_rng(10)
    real, fake = rng.normal(size=(40, 5)), rng.normal(size=(35, 5)) * 1.3 + 0.2
    expected = reference_precision_recall(real, fake, k=3)
    monkeypatch.setattr(neighbours, "BLOCK_ENTRIES", 7)  # forces one row per block
    result = precision_recall_from_features(real, fake, k=3)
    assert (result["precision"], result["recall"]) == pytest.approx(expected)
    assert 0 < result["precision"] < 1 and 0 < result["recall"] < 1


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("block_entries", [1, 50, 2**23])
def test_nearest_neighbours_match_a_brute_force_reference(monkeypatch, metric, block_entries):
    """The one k-NN search (precision/recall radii, nearest images, the memorisation audit)."""
    monkeypatch.setattr(neighbours, "BLOCK_ENTRIES", block_entries)
    rng = np.random.default_rng(3)
    queries, references = rng.normal(size=(3, 17, 6)), rng.normal(size=(23, 6))  # 3 variants of 17 queries
    if metric == "cosine":
        queries /= np.linalg.norm(queries, axis=-1, keepdims=True)
        references /= np.linalg.norm(references, axis=-1, keepdims=True)
        full = np.min([1.0 - q @ references.T for q in queries], axis=0)
    else:
        full = np.min([((q[:, None, :] - references[None]) ** 2).sum(-1) for q in queries], axis=0)
        full = np.sqrt(full) if metric == "euclidean" else full
    for k in (1, 4, 23, 30):
        indices, distances = neighbours.nearest_neighbours(queries, references, k, metric=metric)
        expected = np.sort(full, axis=1)[:, : min(k, 23)]
        np.testing.assert_allclose(distances, expected, atol=1e-9)
        np.testing.assert_allclose(np.take_along_axis(full, indices, axis=1), expected, atol=1e-9)
    one = neighbours.nearest_neighbours(queries[0], references, 1, metric=metric)[0][:, 0]
    full_one = (
        ((queries[0][:, None] - references[None]) ** 2).sum(-1) if metric != "cosine" else -queries[0] @ references.T
    )
    np.testing.assert_array_equal(one, full_one.argmin(axis=1))


def test_precision_recall_needs_more_points_than_k():
    with pytest.raises(RaganError, match="fake: precision/recall with k=3"):
        precision_recall_from_features(np.zeros((10, 2)), np.zeros((3, 2)), k=3)


# --------------------------------------------------------------------------------------------
# PSNR / SSIM / MS-SSIM


def test_psnr_matches_formula_and_is_inf_for_identical():
    a = smooth_images(3, 16, seed=11) * 255
    b = np.clip(a + np.random.default_rng(12).normal(0, 5, a.shape), 0, 255)
    expected = [10 * np.log10(255**2 / np.mean((x - y) ** 2)) for x, y in zip(a, b)]
    np.testing.assert_allclose(psnr(a, b, max_value=255), expected, rtol=1e-12)
    assert psnr(a[0], a[0], max_value=255) == math.inf
    assert isinstance(psnr(a[0], b[0], max_value=255), float)


def test_psnr_uses_the_value_range_for_minus_one_to_one_images():
    a = np.zeros((1, 4, 4, 1))
    b = np.full((1, 4, 4, 1), 0.2)
    # range 2: 10 log10(4 / 0.04) = 20 dB
    assert psnr(a, b, min_value=-1.0, max_value=1.0)[0] == pytest.approx(20.0)


def test_image_metric_errors_name_the_argument():
    with pytest.raises(RaganError, match="b: image shape"):
        psnr(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 9, 1)), max_value=1.0)
    with pytest.raises(RaganError, match="a: pixel values span"):
        psnr(np.full((1, 4, 4, 1), 200.0), np.zeros((1, 4, 4, 1)), max_value=1.0)
    with pytest.raises(RaganError, match="a: the image array is empty"):
        ssim(np.zeros((0, 16, 16, 1)), np.zeros((0, 16, 16, 1)), max_value=1.0)
    with pytest.raises(RaganError, match="at least 11x11"):
        ssim(np.zeros((1, 10, 10, 1)), np.zeros((1, 10, 10, 1)), max_value=1.0)
    with pytest.raises(RaganError, match="max_value"):
        ssim(np.zeros((1, 16, 16, 1)), np.zeros((1, 16, 16, 1)), max_value=0.0)


def test_ssim_matches_numpy_gaussian_window_reference():
    a = smooth_images(3, 24, seed=13)
    b = np.clip(a * 0.8 + smooth_images(3, 24, seed=14) * 0.2, 0, 1)
    expected = [reference_ssim_and_cs(x[..., 0], y[..., 0], 1.0)[0] for x, y in zip(a, b)]
    np.testing.assert_allclose(ssim(a, b, max_value=1.0), expected, atol=2e-5)
    # uint8-range and [-1, 1] versions of the same images give the same SSIM.
    np.testing.assert_allclose(ssim(a * 255, b * 255, max_value=255), expected, atol=2e-5)
    np.testing.assert_allclose(ssim(a * 2 - 1, b * 2 - 1, min_value=-1, max_value=1), expected, atol=2e-5)
    assert ssim(a[0], a[0], max_value=1.0) == pytest.approx(1.0, abs=1e-6)


def test_ms_ssim_power_factors_follow_image_size():
    assert ms_ssim_power_factors(176, 176) == MS_SSIM_WEIGHTS
    assert ms_ssim_power_factors(161, 200) == MS_SSIM_WEIGHTS  # 161 -> 81 -> 41 -> 21 -> 11
    assert len(ms_ssim_power_factors(160, 160)) == 4
    assert len(ms_ssim_power_factors(64, 64)) == 3
    weights = ms_ssim_power_factors(28, 28)
    assert len(weights) == 2 and sum(weights) == pytest.approx(1.0)
    assert weights[0] / weights[1] == pytest.approx(MS_SSIM_WEIGHTS[0] / MS_SSIM_WEIGHTS[1])
    with pytest.raises(RaganError, match="at least 11x11"):
        ms_ssim_power_factors(8, 8)


def test_ms_ssim_two_scales_matches_numpy_reference_at_32px():
    a = smooth_images(2, 32, seed=15)
    b = np.clip(a * 0.7 + smooth_images(2, 32, seed=16) * 0.3, 0, 1)
    w0, w1 = ms_ssim_power_factors(32, 32)
    expected = []
    for x, y in zip(a[..., 0], b[..., 0]):
        _, cs_fine = reference_ssim_and_cs(x, y, 1.0)
        pool = lambda img: img.reshape(16, 2, 16, 2).mean(axis=(1, 3))  # noqa: E731
        ssim_coarse, _ = reference_ssim_and_cs(pool(x), pool(y), 1.0)
        expected.append(max(cs_fine, 0) ** w0 * max(ssim_coarse, 0) ** w1)
    np.testing.assert_allclose(ms_ssim(a, b, max_value=1.0), expected, atol=5e-5)


def test_ms_ssim_single_scale_equals_ssim_and_full_scale_runs():
    a = smooth_images(2, 16, seed=17)
    b = np.clip(a + 0.05, 0, 1)
    # ssim filters separably, tf.image.ssim_multiscale in 2-D: float32 round-off apart (1.5e-6 here).
    np.testing.assert_allclose(ms_ssim(a, b, max_value=1.0), ssim(a, b, max_value=1.0), atol=5e-6)
    big = smooth_images(1, 176, seed=18)
    noisy = np.clip(big + np.random.default_rng(19).normal(0, 0.05, big.shape), 0, 1)
    value = ms_ssim(big, noisy, max_value=1.0)
    assert value.shape == (1,) and 0.5 < value[0] < 1.0
    assert ms_ssim(big[0], big[0], max_value=1.0) == pytest.approx(1.0, abs=1e-6)


def test_mean_pairwise_ms_ssim_detects_mode_collapse():
    diverse = smooth_images(12, 32, seed=20)
    collapsed = np.clip(diverse[:1] + np.random.default_rng(21).normal(0, 0.01, (12, 32, 32, 1)), 0, 1)
    diverse_score = mean_pairwise_ms_ssim(diverse, max_value=1.0, num_pairs=30)
    collapsed_score = mean_pairwise_ms_ssim(collapsed, max_value=1.0, num_pairs=30)
    assert collapsed_score > 0.9 > 0.3 > diverse_score
    assert mean_pairwise_ms_ssim(diverse, max_value=1.0, num_pairs=30) == diverse_score  # seeded
    with pytest.raises(RaganError, match="at least 2 images"):
        mean_pairwise_ms_ssim(diverse[:1], max_value=1.0)


def test_mean_pairwise_ms_ssim_converts_only_the_drawn_images():
    import tracemalloc

    images = smooth_images(400, 64, seed=22).astype(np.float32)
    ms_ssim(images[:2], images[2:4], max_value=1.0)  # TensorFlow's first call, outside the measurement
    tracemalloc.start()
    try:
        value = mean_pairwise_ms_ssim(images, max_value=1.0, num_pairs=8, seed=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A float64 copy of the set would be 13 MB; the 16 drawn images are 0.5 MB.
    assert peak < images.nbytes / 2, peak
    rng = np.random.default_rng(3)
    first = rng.integers(0, 400, 8)
    second = (first + rng.integers(1, 400, 8)) % 400
    expected = np.mean(ms_ssim(images[first].astype(np.float64), images[second].astype(np.float64), max_value=1.0))
    assert value == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# MS-GMSD, MDSI, HaarPSI


def _structured_pair(height, width, channels):
    """Two different smooth-plus-texture images in [0, 1], built from closed-form patterns."""
    i, j = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    a = np.stack(
        [
            0.5 + 0.25 * np.sin(0.7 * i + 0.3 * k) * np.cos(0.45 * j) + 0.2 * np.sin(1.9 * i * j / (height + k + 1))
            for k in range(channels)
        ],
        -1,
    )
    b = np.stack(
        [
            0.5 + 0.25 * np.sin(0.7 * i + 0.5 + 0.3 * k) * np.cos(0.4 * j) + 0.1 * np.cos(1.3 * (i + 2 * j))
            for k in range(channels)
        ],
        -1,
    )
    return np.clip(a, 0, 1), np.clip(b, 0, 1)


# Values of the reference implementation, piq 0.8.0 (multi_scale_gmsd, mdsi, haarpsi with their
# defaults, data_range=1) on the pairs above; test_gradient_metrics_match_piq recomputes them.
PIQ_REFERENCE = {
    (28, 28, 1): (0.1692426807597058, 0.4100642853717987, 0.4212894280903301),
    (33, 30, 1): (0.17647382984167237, 0.40983065211497777, 0.4250281326609398),
    (32, 32, 3): (0.1645985760803135, 0.4360476703056787, 0.5093347568564703),
}


@pytest.mark.parametrize("shape", list(PIQ_REFERENCE))
def test_gradient_metrics_reproduce_the_reference_values(shape):
    from ragan.evaluation.metrics import haarpsi, mdsi, ms_gmsd

    a, b = _structured_pair(*shape)
    for function, expected in zip((ms_gmsd, mdsi, haarpsi), PIQ_REFERENCE[shape]):
        assert function(a, b, max_value=1.0) == pytest.approx(expected, rel=1e-6), function.__name__
        # The same pixels stored as [-1, 1] or 0..255 give the same value.
        assert function(a * 2 - 1, b * 2 - 1, min_value=-1.0, max_value=1.0) == pytest.approx(expected, rel=1e-6)
        assert function(a * 255, b * 255, max_value=255) == pytest.approx(expected, rel=1e-6)


def test_gradient_metrics_match_piq():
    """Against the reference implementation itself, on random batches (skipped without piq/torch)."""
    torch = pytest.importorskip("torch")
    try:
        import piq
    except Exception as error:  # noqa: BLE001 - e.g. a torchvision built for another torch
        pytest.skip(f"piq does not import here: {type(error).__name__}: {error}")
    from ragan.evaluation.metrics import haarpsi, mdsi, ms_gmsd

    rng = np.random.default_rng(0)
    for shape in ((3, 28, 28, 1), (2, 37, 32, 1), (2, 32, 32, 3)):
        a = rng.uniform(size=shape)
        b = np.clip(a + rng.normal(0, 0.1, shape), 0, 1)
        x, y = (torch.tensor(np.moveaxis(v, -1, 1)) for v in (a, b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # piq warns that MDSI is defined for colour images
            expected = [
                piq.multi_scale_gmsd(x, y, reduction="none"),
                piq.mdsi(x, y, reduction="none"),
                piq.haarpsi(x, y, reduction="none"),
            ]
        for function, reference in zip((ms_gmsd, mdsi, haarpsi), expected):
            np.testing.assert_allclose(
                function(a, b, max_value=1.0), reference.numpy(), rtol=1e-5, err_msg=function.__name__
            )


def test_gradient_metrics_properties():
    from ragan.evaluation.metrics import haarpsi, mdsi, ms_gmsd

    rng = np.random.default_rng(1)
    a = rng.uniform(size=(4, 32, 32, 1))
    # Identical images: the perfect score.
    np.testing.assert_allclose(ms_gmsd(a, a, max_value=1.0), 0.0, atol=1e-12)
    np.testing.assert_allclose(mdsi(a, a, max_value=1.0), 0.0, atol=1e-12)
    np.testing.assert_allclose(haarpsi(a, a, max_value=1.0), 1.0, atol=1e-9)
    # MS-GMSD and HaarPSI are symmetric in the two images; MDSI is not (a: distorted, b: reference).
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    for function in (ms_gmsd, haarpsi):
        np.testing.assert_allclose(function(a, b, max_value=1.0), function(b, a, max_value=1.0), rtol=1e-9)
    assert not np.allclose(mdsi(a, b, max_value=1.0), mdsi(b, a, max_value=1.0))
    # More distortion, worse scores: MS-GMSD and MDSI grow, HaarPSI falls.
    worse = np.clip(a + rng.normal(0, 0.3, a.shape), 0, 1)
    assert np.all(ms_gmsd(a, worse, max_value=1.0) > ms_gmsd(a, b, max_value=1.0))
    assert np.all(mdsi(a, worse, max_value=1.0) > mdsi(a, b, max_value=1.0))
    assert np.all(haarpsi(a, worse, max_value=1.0) < haarpsi(a, b, max_value=1.0))
    assert np.all((haarpsi(a, worse, max_value=1.0) > 0) & (haarpsi(a, worse, max_value=1.0) < 1))
    # A single image gives a float; too-small images a one-line error.
    assert isinstance(haarpsi(a[0], b[0], max_value=1.0), float)
    with pytest.raises(RaganError, match="MS-GMSD needs images of at least 17x17"):
        ms_gmsd(a[:, :16, :16], a[:, :16, :16], max_value=1.0)
    with pytest.raises(RaganError, match="HaarPSI needs images of at least 16x16"):
        haarpsi(a[:, :12, :12], a[:, :12, :12], max_value=1.0)
    with pytest.raises(RaganError, match="pixel values span"):
        mdsi(a * 255, a * 255, max_value=1.0)


def test_nearest_images_is_the_highest_psnr_match():
    from ragan.evaluation.metrics import nearest_images, psnr

    rng = np.random.default_rng(2)
    references = rng.uniform(size=(50, 8, 8, 1))
    queries = np.clip(references[[7, 3, 41]] + rng.normal(0, 0.02, (3, 8, 8, 1)), 0, 1)
    indices, errors = nearest_images(queries, references, block_size=2)
    assert indices.tolist() == [7, 3, 41]
    for query, index, error in zip(queries, indices, errors):
        values = psnr(np.repeat(query[None], 50, axis=0), references, max_value=1.0)
        assert index == int(np.argmax(values)) and error == pytest.approx(np.mean((query - references[index]) ** 2))


def test_nearest_images_searches_float32_sets_without_float64_copies():
    import tracemalloc

    from ragan.evaluation.metrics import nearest_images

    rng = np.random.default_rng(5)
    references = rng.uniform(-1, 1, size=(120, 64, 64, 1)).astype(np.float32)
    queries = references[[5, 77, 119]] + np.float32(1e-4)  # near-copies: the exact recomputation matters
    queries = np.concatenate([queries, rng.uniform(-1, 1, size=(117, 64, 64, 1)).astype(np.float32)])
    exact_indices, exact_errors = nearest_images(queries.astype(np.float64), references.astype(np.float64))
    tracemalloc.start()
    try:
        indices, errors = nearest_images(queries, references, block_size=16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A float64 copy of either set would be 3.9 MB.
    assert peak < queries.nbytes, peak
    assert indices[:3].tolist() == [5, 77, 119]
    np.testing.assert_array_equal(indices, exact_indices)
    np.testing.assert_allclose(errors, exact_errors, rtol=1e-6, atol=0)
    assert errors[:3] == pytest.approx(1e-8, rel=1e-3)


def test_nearest_images_bounds_its_exact_recomputation_at_large_image_sizes():
    import tracemalloc

    from ragan.evaluation.metrics import nearest_images

    rng = np.random.default_rng(6)
    references = rng.uniform(-1, 1, size=(48, 256, 256, 1)).astype(np.float32)
    queries = references[::-1] + np.float32(1e-3)
    tracemalloc.start()
    try:
        indices, errors = nearest_images(queries, references)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # All 48 queries in one float64 block, with its temporaries, were 4 x 25 MB.
    assert peak < 40e6, peak
    assert indices.tolist() == list(range(47, -1, -1))
    np.testing.assert_allclose(errors, 1e-6, rtol=1e-3)
