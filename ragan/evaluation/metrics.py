"""Image-quality metric maths on plain arrays.

Everything here is a pure function of NumPy arrays: feature-space metrics (FID, KID,
precision/recall) take ``(num_images, feature_dim)`` features from any extractor in
:mod:`ragan.evaluation.features`, and pixel-space metrics (PSNR, SSIM, MS-SSIM, MS-GMSD, MDSI,
HaarPSI) take image batches.
Feature extraction is kept apart so the maths can be tested on tiny hand-computed arrays and a
metric value can always be traced to the extractor that produced its features.

The module imports only NumPy; TensorFlow is imported on first use of SSIM/MS-SSIM.

Image arguments are ``(N, H, W, C)`` batches (a single ``(H, W, C)`` image is also accepted and
gives a float) with values in ``[min_value, max_value]``: ``max_value=255`` for ``uint8``
images, ``max_value=1.0`` for ``[0, 1]`` floats, ``min_value=-1.0, max_value=1.0`` for a
generator's ``tanh`` output.
"""

from __future__ import annotations

import numpy as np

from ragan._common import check_positive_int
from ragan.errors import RaganError
from ragan.evaluation._metric_inputs import (
    as_features,
    as_image_batch,
    check_pair,
    check_same_dim,
    check_value_range,
)
from ragan.evaluation.gradient_metrics import MS_GMSD_WEIGHTS, haarpsi, mdsi, ms_gmsd
from ragan.evaluation.neighbours import BLOCK_ENTRIES, distance_blocks, nearest_neighbours

__all__ = [
    "fid_from_features",
    "frechet_distance",
    "kid_from_features",
    "kid_subset_size",
    "precision_recall_from_features",
    "psnr",
    "ssim",
    "ms_ssim",
    "ms_ssim_power_factors",
    "mean_pairwise_ms_ssim",
    "ms_gmsd",
    "mdsi",
    "haarpsi",
    "nearest_images",
    "MS_SSIM_WEIGHTS",
    "MS_GMSD_WEIGHTS",
]

# Per-scale exponents of Wang, Simoncelli & Bovik (2003), finest scale first; also TF's default.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# The Gaussian window of SSIM (Wang et al. 2004; tf.image.ssim's defaults).
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5

# Float64 values per array of nearest_images' exact recomputation: a quarter of the search's distance
# block (16 MiB each, whatever the image size), as the memorisation audit's SSIM confirmation.
_EXACT_BLOCK_VALUES = BLOCK_ENTRIES // 4


# ---------------------------------------------------------------------------------------------
# Fréchet Inception Distance


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet (2-Wasserstein) distance between two Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``d² = |mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^½)``

    The trace term is computed as ``sum(sqrt(eigvalsh(sigma1^½ sigma2 sigma1^½)))``: that matrix is
    symmetric positive semi-definite with the same eigenvalues as ``sigma1 @ sigma2``, so the
    result equals ``tr(scipy.linalg.sqrtm(sigma1 @ sigma2))`` (the form used by TTUR/pytorch-fid;
    they agree to ~1e-7 relative on 2048-d covariances) while staying real-valued,
    needing no complex Schur decomposition and running several times faster on a CPU (a 2048-d
    covariance pair: 4-11 CPU-s against 38-49 for ``sqrtm``, measured on a shared 2-core machine).
    With fewer images than feature dimensions (2048-d features of a few hundred medical images is
    the usual case) the covariances are singular and round-off leaves tiny negative eigenvalues;
    they are clipped to zero. Should an eigendecomposition still fail to converge, ``eps * I`` is
    added to both covariances and it is retried, as the reference implementations do when their
    square root fails: the ridge moves every eigenvalue away from zero and shifts the distance by
    only about ``eps * D``.

    Args:
        mu1, mu2: Mean vectors, shape ``(D,)``.
        sigma1, sigma2: Covariance matrices, shape ``(D, D)``.
        eps: Ridge added to both covariances if the eigendecomposition does not converge.

    Returns:
        The squared Fréchet distance (what papers call FID), as a float ``>= 0``.

    Example:
        >>> frechet_distance([0.0], [[1.0]], [3.0], [[4.0]])  # (0-3)² + (1-2)²
        10.0

    Reference:
        Dowson & Landau (1982); Heusel et al., "GANs Trained by a Two Time-Scale Update Rule
        Converge to a Local Nash Equilibrium", NeurIPS 2017.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    dim = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != mu1.shape:
        raise RaganError(f"mu2: shape {mu2.shape} differs from mu1's {mu1.shape}")
    for label, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (dim, dim):
            raise RaganError(f"{label}: expected shape ({dim}, {dim}) to match the means, got {sigma.shape}")
    for label, value in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise RaganError(f"{label}: contains NaN or inf")
    if not (isinstance(eps, (int, float)) and eps > 0):
        raise RaganError(f"eps={eps!r} must be a positive number")

    try:
        trace_sqrt = _trace_sqrt_product(sigma1, sigma2)
    except np.linalg.LinAlgError:
        ridge = eps * np.eye(dim)
        try:
            trace_sqrt = _trace_sqrt_product(sigma1 + ridge, sigma2 + ridge)
        except np.linalg.LinAlgError as error:
            raise RaganError(
                f"the covariances could not be decomposed even with eps={eps:g}; the features are "
                "degenerate (check for constant or duplicated features)"
            ) from error
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    # The distance is a squared norm; a negative value can only be round-off of a zero distance.
    return float(max(distance, 0.0))


def _symmetric_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    # Symmetrise first: products like A @ B @ A are symmetric only up to round-off.
    return np.linalg.eigvalsh((matrix + matrix.T) / 2.0)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((sigma1 @ sigma2)^½)`` via the symmetric matrix ``sigma1^½ sigma2 sigma1^½``."""
    values, vectors = np.linalg.eigh((sigma1 + sigma1.T) / 2.0)
    sqrt_sigma1 = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    eigenvalues = _symmetric_eigenvalues(sqrt_sigma1 @ sigma2 @ sqrt_sigma1)
    # Eigenvalues of a PSD matrix are >= 0; negative ones are round-off around zero.
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def fid_from_features(real, fake) -> float:
    """Fréchet distance between Gaussians fitted to two sets of features (FID for Inception features).

    Means and (unbiased, ``ddof=1``) covariances are computed in float64 and passed to
    :func:`frechet_distance`; with fewer rows than feature dimensions the same value comes from the
    ``N x M`` cross product of the centred rows instead (exact, and much faster for 2048-d features).
    FID is biased upwards for small sets and is only comparable between runs that use the same
    feature extractor, resize method and number of images.

    Args:
        real: ``(N, D)`` features of real images (N >= 2).
        fake: ``(M, D)`` features of generated images (M >= 2).

    Returns:
        The FID as a float ``>= 0``; 0 for identical sets.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> real = rng.normal(size=(5000, 8)); fake = rng.normal(loc=1.0, size=(5000, 8))
        >>> round(fid_from_features(real, fake))  # about |mean shift|² = 8
        8

    Reference:
        Heusel et al., NeurIPS 2017.
    """
    real = as_features("real", real)
    fake = as_features("fake", fake)
    check_same_dim(real, fake)
    for label, array in (("real", real), ("fake", fake)):
        if array.shape[0] < 2:
            raise RaganError(f"{label}: FID needs at least 2 feature rows for a covariance, got {array.shape[0]}")
    if min(real.shape[0], fake.shape[0]) < real.shape[1]:
        return _low_rank_fid(real, fake)
    return frechet_distance(
        real.mean(axis=0),
        np.cov(real, rowvar=False, ddof=1).reshape(real.shape[1], real.shape[1]),
        fake.mean(axis=0),
        np.cov(fake, rowvar=False, ddof=1).reshape(fake.shape[1], fake.shape[1]),
    )


def _low_rank_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID when a set has fewer rows than dimensions, without forming a ``D x D`` matrix.

    With ``A`` and ``B`` the centred rows scaled by ``1/sqrt(n - 1)``, the covariances are ``A^T A``
    and ``B^T B``; the nonzero eigenvalues of ``A^T A B^T B`` are those of ``M M^T`` with
    ``M = A B^T`` (``N x M``), so ``tr((sigma1 sigma2)^½)`` is the sum of ``M``'s singular values
    and ``tr(sigma) = |A|²``: exact, and for 2048-d Inception features of a few hundred images a
    fraction of a second instead of a minute of eigendecompositions on a loaded 2-core machine.
    """
    a = (real - real.mean(axis=0)) / np.sqrt(real.shape[0] - 1)
    b = (fake - fake.mean(axis=0)) / np.sqrt(fake.shape[0] - 1)
    trace_sqrt = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    diff = real.mean(axis=0) - fake.mean(axis=0)
    distance = diff @ diff + np.sum(a * a) + np.sum(b * b) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


# ---------------------------------------------------------------------------------------------
# Kernel Inception Distance


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


KID_SUBSET_SIZE = 1000


def kid_subset_size(num_real: int, num_fake: int) -> int:
    """The KID subset size used when none is given: 1000 rows (Bińkowski et al.; clean-fid and
    torch-fidelity), or half the smaller set when that has at most 1000 rows.

    Subsets as large as the whole set would all be the same set, reshuffled: the spread over
    subsets would be exactly zero and say nothing about the estimate's uncertainty, which is what
    a user of a small medical set needs to see.
    """
    smaller = min(int(num_real), int(num_fake))
    return KID_SUBSET_SIZE if smaller > KID_SUBSET_SIZE else max(2, smaller // 2)


def kid_from_features(
    real, fake, *, num_subsets: int = 100, subset_size: int | None = None, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD² with the kernel ``k(x, y) = (x·y / D + 1)³``.

    The estimate is averaged over ``num_subsets`` random subsets (drawn without replacement within
    a subset) of ``subset_size`` rows from each set; unlike FID it is unbiased, so values from
    different set sizes can be compared, and it can be slightly negative when the sets match.

    Args:
        real: ``(N, D)`` features of real images.
        fake: ``(M, D)`` features of generated images.
        num_subsets: Number of random subsets averaged.
        subset_size: Rows per subset; clipped to ``min(N, M)``, which must be at least 2.
            ``None``: :func:`kid_subset_size` of the two set sizes.
        seed: Seed of the subset sampling, so a value can be reproduced.

    Returns:
        ``(mean, std)`` of the per-subset MMD² estimates (std with ``ddof=0``).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> mean, std = kid_from_features(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 2,
        ...                               num_subsets=10, subset_size=100)
        >>> mean > 10 * std
        True

    Reference:
        Bińkowski et al., "Demystifying MMD GANs", ICLR 2018.
    """
    real = as_features("real", real)
    fake = as_features("fake", fake)
    check_same_dim(real, fake)
    check_positive_int("num_subsets", num_subsets)
    if subset_size is None:
        subset_size = kid_subset_size(real.shape[0], fake.shape[0])
    if not isinstance(subset_size, (int, np.integer)) or subset_size < 2:
        raise RaganError(f"subset_size={subset_size!r} must be an integer >= 2")
    size = min(int(subset_size), real.shape[0], fake.shape[0])
    if size < 2:
        raise RaganError(f"KID needs at least 2 rows in each set, got real={real.shape[0]}, fake={fake.shape[0]}")
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = real[rng.choice(real.shape[0], size, replace=False)]
        y = fake[rng.choice(fake.shape[0], size, replace=False)]
        k_xx = _polynomial_kernel(x, x)
        k_yy = _polynomial_kernel(y, y)
        k_xy = _polynomial_kernel(x, y)
        # Unbiased: the diagonal k(x_i, x_i) terms are left out of the within-set means.
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (size * (size - 1))
        estimates[i] = within - 2.0 * k_xy.mean()
    return float(estimates.mean()), float(estimates.std())


# ---------------------------------------------------------------------------------------------
# Improved precision and recall


def _knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest *other* point (the point itself is at 0)."""
    return nearest_neighbours(points, points, k + 1)[1][:, k]


def _fraction_inside(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Fraction of queries inside at least one ball ``|q - centre| <= radius``."""
    inside = np.zeros(queries.shape[0], dtype=bool)
    for start, stop, distances in distance_blocks(queries, centres):
        inside[start:stop] = (distances <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall_from_features(real, fake, *, k: int = 3) -> dict:
    """Improved precision and recall with k-nearest-neighbour manifolds.

    Each set's manifold is the union of balls around its points, each ball reaching the point's
    k-th nearest neighbour in the same set. Precision is the fraction of fake points inside the
    real manifold (fidelity); recall is the fraction of real points inside the fake manifold
    (coverage, which drops under mode collapse). Distances are Euclidean, computed in blocks so
    memory stays bounded.

    Args:
        real: ``(N, D)`` features of real images, N > k.
        fake: ``(M, D)`` features of generated images, M > k.
        k: Neighbour rank that sets each ball's radius (3 in the paper).

    Returns:
        ``{"precision": float, "recall": float}``, each in ``[0, 1]``.

    Example:
        >>> real = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1]])
        >>> precision_recall_from_features(real, real + 100, k=1)
        {'precision': 0.0, 'recall': 0.0}

    Reference:
        Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing Generative
        Models", NeurIPS 2019.
    """
    real = as_features("real", real)
    fake = as_features("fake", fake)
    check_same_dim(real, fake)
    check_positive_int("k", k)
    for label, array in (("real", real), ("fake", fake)):
        if array.shape[0] <= k:
            raise RaganError(
                f"{label}: precision/recall with k={k} needs more than {k} feature rows, got {array.shape[0]}"
            )
    precision = _fraction_inside(fake, real, _knn_radii(real, k))
    recall = _fraction_inside(real, fake, _knn_radii(fake, k))
    return {"precision": precision, "recall": recall}


# ---------------------------------------------------------------------------------------------
# Pixel-space similarity


def psnr(a, b, *, max_value: float, min_value: float = 0.0) -> float | np.ndarray:
    """Peak signal-to-noise ratio per image pair, ``10 log10(range² / MSE)`` in dB.

    Args:
        a, b: Image batches ``(N, H, W, C)`` of equal shape, or two single ``(H, W, C)`` images.
        max_value: Largest value the images can hold (255 for uint8, 1.0 for [0, 1]).
        min_value: Smallest value the images can hold (0, or -1 for [-1, 1] images).

    Returns:
        ``(N,)`` float64 array (a float for single images); ``inf`` where the images are identical.

    Example:
        >>> a = np.zeros((1, 4, 4, 1)); b = np.full((1, 4, 4, 1), 0.1)
        >>> psnr(a, b, max_value=1.0)
        array([20.])
    """
    check_value_range(min_value, max_value)
    a, single = as_image_batch("a", a, min_value, max_value)
    b, _ = as_image_batch("b", b, min_value, max_value)
    check_pair(a, b)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10((max_value - min_value) ** 2 / mse)
    return float(values[0]) if single else values


def _tf_batches(a: np.ndarray, b: np.ndarray, function, batch_size: int = 256) -> np.ndarray:
    """Apply a TF image-pair function over batches and return float64 values per pair.

    Batches hold at most ``batch_size`` pairs and about 4 M pixels (64 pairs of 256 px): the SSIM maps
    of a batch are ~10 float32 copies of it.
    """
    from ragan._tf import import_tf

    tf = import_tf()
    batch_size = max(1, min(batch_size, (1 << 22) // max(1, int(np.prod(a.shape[1:])))))
    values = []
    for start in range(0, a.shape[0], batch_size):
        values.append(
            function(
                tf.constant(a[start : start + batch_size], tf.float32),
                tf.constant(b[start : start + batch_size], tf.float32),
            ).numpy()
        )
    return np.concatenate(values).astype(np.float64)


def _check_ssim_size(a: np.ndarray) -> None:
    height, width = a.shape[1:3]
    if min(height, width) < SSIM_FILTER_SIZE:
        raise RaganError(
            f"a: SSIM needs images of at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} pixels "
            f"(the Gaussian window), got {height}x{width}"
        )


def _ssim_family(a, b, min_value: float, max_value: float, name: str, options_for) -> float | np.ndarray:
    """``tf.image.<name>`` (``ssim`` or ``ssim_multiscale``) per image pair, the inputs checked first.

    ``options_for(batch)`` checks the image size and returns the function's extra keywords. Images
    are shifted by ``min_value`` first because SSIM's luminance term is not shift-invariant.
    """
    check_value_range(min_value, max_value)
    a, single = as_image_batch("a", a, min_value, max_value)
    b, _ = as_image_batch("b", b, min_value, max_value)
    check_pair(a, b)
    options = options_for(a)
    from ragan._tf import import_tf

    function = getattr(import_tf().image, name)
    value_range = max_value - min_value
    values = _tf_batches(
        a - min_value,
        b - min_value,
        lambda x, y: function(
            x, y, max_val=value_range, filter_size=SSIM_FILTER_SIZE, filter_sigma=SSIM_FILTER_SIGMA, **options
        ),
    )
    return float(values[0]) if single else values


def ssim(a, b, *, max_value: float, min_value: float = 0.0) -> float | np.ndarray:
    """Structural similarity per image pair, as :func:`tf.image.ssim` computes it (separable Gaussian window).

    The local statistics use an 11x11 Gaussian window with sigma 1.5 and no padding, constants
    ``K1=0.01, K2=0.03`` (Wang et al. 2004); the SSIM map is averaged over pixels, then channels.
    Images are shifted by ``min_value`` first because SSIM's luminance term is not shift-invariant.

    Args:
        a, b: Image batches ``(N, H, W, C)`` of equal shape (H, W >= 11), or single images.
        max_value: Largest value the images can hold.
        min_value: Smallest value the images can hold.

    Returns:
        ``(N,)`` float64 array of values in ``(-1, 1]`` (a float for single images); 1 for identical.

    Example:
        >>> a = np.random.default_rng(0).uniform(size=(2, 16, 16, 1))
        >>> ssim(a, a, max_value=1.0).round(6)
        array([1., 1.])

    Reference:
        Wang, Bovik, Sheikh & Simoncelli, "Image Quality Assessment: From Error Visibility to
        Structural Similarity", IEEE TIP 2004.
    """
    check_value_range(min_value, max_value)
    a, single = as_image_batch("a", a, min_value, max_value)
    b, _ = as_image_batch("b", b, min_value, max_value)
    check_pair(a, b)
    _check_ssim_size(a)
    value_range = max_value - min_value
    values = _tf_batches(a - min_value, b - min_value, lambda x, y: _separable_ssim(x, y, value_range))
    return float(values[0]) if single else values


def _separable_ssim(x, y, value_range: float):
    """``tf.image.ssim`` (11x11 Gaussian, sigma 1.5, no padding, K1=0.01, K2=0.03), with the Gaussian
    applied as two 1-D passes: the same values to float32 round-off (~1e-7) at a third of the time at
    1024 px (measured 195 ms against 545 ms a pair on the shared 2-core machine)."""
    from ragan._tf import import_tf

    tf = import_tf()
    taps = np.arange(SSIM_FILTER_SIZE, dtype=np.float64) - (SSIM_FILTER_SIZE - 1) / 2.0
    gauss = np.exp(-(taps**2) / (2.0 * SSIM_FILTER_SIGMA**2))
    gauss = (gauss / gauss.sum()).astype(np.float32)
    channels = int(x.shape[-1])
    vertical = tf.constant(np.tile(gauss.reshape(-1, 1, 1, 1), (1, 1, channels, 1)))
    horizontal = tf.constant(np.tile(gauss.reshape(1, -1, 1, 1), (1, 1, channels, 1)))

    def blur(z):
        z = tf.nn.depthwise_conv2d(z, vertical, [1, 1, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(z, horizontal, [1, 1, 1, 1], "VALID")

    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    mean_x, mean_y = blur(x), blur(y)
    products = 2.0 * mean_x * mean_y
    squares = mean_x * mean_x + mean_y * mean_y
    luminance = (products + c1) / (squares + c1)
    contrast_structure = (2.0 * blur(x * y) - products + c2) / (blur(x * x + y * y) - squares + c2)
    # Mean over pixels, then over channels (equal counts: one mean), as tf.image.ssim.
    return tf.reduce_mean(luminance * contrast_structure, axis=[1, 2, 3])


def ms_ssim_power_factors(height: int, width: int) -> tuple[float, ...]:
    """The per-scale exponents :func:`ms_ssim` uses for ``height x width`` images.

    Each MS-SSIM scale halves the image (rounding up) and needs at least 11 pixels for the
    Gaussian window, so the standard five scales need about 161 pixels or more. Smaller images use
    as many scales as fit (28 px: 2 scales, 64 px: 3), with the first standard exponents rescaled
    to sum to 1, so values stay in SSIM's range.

    Example:
        >>> [round(w, 4) for w in ms_ssim_power_factors(28, 28)]
        [0.1356, 0.8644]
    """
    side = min(int(height), int(width))
    if side < SSIM_FILTER_SIZE:
        raise RaganError(
            f"images: MS-SSIM needs images of at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} "
            f"pixels, got {height}x{width}"
        )
    scales = 0
    while scales < len(MS_SSIM_WEIGHTS) and side >= SSIM_FILTER_SIZE:
        scales += 1
        side = -(-side // 2)
    if scales == len(MS_SSIM_WEIGHTS):
        return MS_SSIM_WEIGHTS
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    return tuple(float(w) for w in weights / weights.sum())


def ms_ssim(a, b, *, max_value: float, min_value: float = 0.0) -> float | np.ndarray:
    """Multi-scale SSIM per image pair, via :func:`tf.image.ssim_multiscale`.

    Uses the standard five scales and exponents for images of about 161 px and larger. For smaller
    images, whose coarsest scale would be narrower than the 11x11 window (where TensorFlow's
    default fails), fewer scales are used automatically with the exponents of
    :func:`ms_ssim_power_factors`; such values are comparable only between images of the same size.

    Args:
        a, b: Image batches ``(N, H, W, C)`` of equal shape (H, W >= 11), or single images.
        max_value: Largest value the images can hold.
        min_value: Smallest value the images can hold.

    Returns:
        ``(N,)`` float64 array of values in ``[0, 1]`` (a float for single images).

    Example:
        >>> a = np.random.default_rng(0).uniform(size=(2, 28, 28, 1))
        >>> ms_ssim(a, a, max_value=1.0).round(6)
        array([1., 1.])

    Reference:
        Wang, Simoncelli & Bovik, "Multiscale structural similarity for image quality
        assessment", Asilomar 2003.
    """
    return _ssim_family(
        a,
        b,
        min_value,
        max_value,
        "ssim_multiscale",
        lambda batch: {"power_factors": ms_ssim_power_factors(*batch.shape[1:3])},
    )


def mean_pairwise_ms_ssim(
    images, *, max_value: float, min_value: float = 0.0, num_pairs: int = 200, seed: int = 0
) -> float:
    """Mean MS-SSIM over random pairs of distinct images of one set: a diversity signal.

    Higher means the images look more alike. A generator whose value is well above that of the real
    training images is likely mode-collapsed; compare against the real set at the same size.

    Args:
        images: ``(N, H, W, C)`` batch with N >= 2.
        max_value: Largest value the images can hold.
        min_value: Smallest value the images can hold.
        num_pairs: Number of random pairs ``(i, j)``, ``i != j``, drawn with replacement.
        seed: Seed of the pair sampling.

    Returns:
        The mean MS-SSIM over the pairs.

    Example:
        >>> same = np.repeat(np.random.default_rng(0).uniform(size=(1, 32, 32, 1)), 5, axis=0)
        >>> round(mean_pairwise_ms_ssim(same, max_value=1.0, num_pairs=10), 6)
        1.0
    """
    check_value_range(min_value, max_value)
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[0] < 2:
        _, single = as_image_batch("images", array, min_value, max_value)
        raise RaganError(f"images: pairwise MS-SSIM needs at least 2 images, got {1 if single else array.shape[0]}")
    check_positive_int("num_pairs", num_pairs)
    rng = np.random.default_rng(seed)
    first = rng.integers(0, array.shape[0], num_pairs)
    # Drawing the second index from the other N-1 images keeps every pair distinct.
    second = (first + rng.integers(1, array.shape[0], num_pairs)) % array.shape[0]
    # Only the drawn images are checked and made float64: a float64 copy of the whole set was 0.5 GB
    # at 1,000 images of 256 px, for 50 pairs.
    drawn, position = np.unique(np.concatenate([first, second]), return_inverse=True)
    batch, _ = as_image_batch("images", array[drawn], min_value, max_value)
    values = ms_ssim(batch[position[:num_pairs]], batch[position[num_pairs:]], max_value=max_value, min_value=min_value)
    return float(np.mean(values))


def nearest_images(queries, references, *, block_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """For every query image, the index of (and the mean squared error to) the closest reference image.

    "Closest" is the smallest mean squared pixel difference, i.e. the highest PSNR.

    Args:
        queries: ``(N, H, W, C)`` images.
        references: ``(M, H, W, C)`` images in the same range.
        block_size: Most queries per block of the exact error (fewer for large images; the search
            itself is blocked by :mod:`~ragan.evaluation.neighbours`).

    Returns:
        ``(indices (N,), mse (N,))``.

    Example:
        >>> references = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))])
        >>> nearest_images(np.full((1, 4, 4, 1), 0.8), references)[0]
        array([1])
    """
    queries, references = np.asarray(queries), np.asarray(references)
    # float32 sets are searched as they are: float64 copies of 1,000 images of 256 px took 1 GB.
    dtype = np.float32 if queries.dtype == references.dtype == np.float32 else np.float64
    queries = queries.astype(dtype, copy=False).reshape(len(queries), -1)
    references = references.astype(dtype, copy=False).reshape(len(references), -1)
    if queries.shape[1] != references.shape[1]:
        raise RaganError(
            f"references: images of {references.shape[1]} values differ from the queries' "
            f"{queries.shape[1]}; compare images of the same size and channels"
        )
    indices = nearest_neighbours(queries, references, 1, metric="sqeuclidean")[0][:, 0]
    # Recomputed exactly, in float64: the expansion in the search loses precision for near-identical images.
    # At most _EXACT_BLOCK_VALUES per array: 256 queries of 256 px were four 134 MB temporaries.
    rows = max(1, min(int(block_size), _EXACT_BLOCK_VALUES // max(queries.shape[1], 1)))
    errors = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], rows):
        block = queries[start : start + rows].astype(np.float64)
        block -= references[indices[start : start + rows]]
        errors[start : start + block.shape[0]] = np.mean(np.square(block, out=block), axis=1)
    return indices, errors
