"""The evaluation of high-resolution images: what runs at the evaluation size, what at full resolution.

At 512-1024 px the report keeps every split in memory only as a copy area-resized to the
evaluation size (``eval_size``, default 256 px; :func:`~ragan.evaluation.config.eval_size_for`):
the classifier study, the feature extractors, the MS-SSIM diversity and the memorisation searches
run on it. What a reader looks at, or what measures the pixels themselves, uses the images at
full resolution, read back from the shards by record index a batch at a time:

* the **similarity table** (PSNR, SSIM, MS-GMSD, MDSI, HaarPSI against the nearest real training
  image): the nearest image is searched at the evaluation size (a short-list by mean squared
  difference at 64 px, then the exact one among it), the scores are computed at full resolution,
  on at most :func:`similarity_images` images per set (fewer as the images grow, so the pixels
  compared stay the same as 1,000 images of 256 px);
* the **memorisation audit's SSIM search**: each image's best candidate is chosen at the
  evaluation size and confirmed at full resolution (:func:`confirm_ssim`), the threshold coming
  from the held-out images confirmed the same way;
* the **sample grids and the memorisation gallery** (thumbnails in the page, full-size PNG files
  beside it; see :mod:`~ragan.evaluation.render`).

Example:
    >>> similarity_images(256), similarity_images(512), similarity_images(1024)
    (1000, 250, 62)
    >>> rng = np.random.default_rng(0)
    >>> train = rng.uniform(-1, 1, (20, 96, 96, 1)).astype(np.float32)
    >>> nearest_training(train[[3, 7]] * 0.9, train)[0].tolist()
    [3, 7]
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ConcatenatedImages",
    "SHORTLIST",
    "SHORTLIST_SIDE",
    "SIMILARITY_PIXELS",
    "UnitImages",
    "confirm_ssim",
    "nearest_training",
    "pair_batches",
    "similarity_images",
]

# The similarity table compares at most as many pixels per set as 1,000 images of 256 px.
SIMILARITY_PIXELS = 1000 * 256 * 256
SIMILARITY_MOST = 1000
# The nearest-image search of the similarity table: a short-list of SHORTLIST images by mean squared
# difference at SHORTLIST_SIDE px (area resize), then the exact nearest among them at the evaluation size.
SHORTLIST_SIDE = 64
SHORTLIST = 16
# Full-resolution pixels per batch of image pairs scored at once (2 pairs of 1024 px; the metrics'
# float64 temporaries of 4 pairs rose 0.2 GB above the report's resident memory at 512 px).
PAIR_BATCH_PIXELS = 1 << 21
# Queries per block of the short-list search (x the training images' count of float32 distances).
_QUERY_BLOCK = 256


def similarity_images(side: int) -> int:
    """How many images of each set the similarity table scores at ``side`` px (see :data:`SIMILARITY_PIXELS`)."""
    return int(min(SIMILARITY_MOST, max(1, SIMILARITY_PIXELS // (int(side) * int(side)))))


class UnitImages:
    """A set's images as float32 in ``[-1, 1]``, converted a block at a time, and its full-resolution images.

    Args:
        images: ``(N, H, W, C)`` stored pixels (``uint8``/``uint16``) at the evaluation size, or
            floats in ``[-1, 1]``.
        max_value: The stored dtype's largest value (255, 65535), or None for float images.
        split: The :class:`~ragan.data.arrays.SplitArrays` the images came from, for
            :meth:`full`; None when ``images`` are at full resolution.
        positions: The split record index of every row (a subsample), default ``arange(N)``.

    Example:
        >>> images = UnitImages(np.array([[[[0]]], [[[255]]]], np.uint8), 255)
        >>> images[[1, 0]].ravel().tolist(), images.full([1]).ravel().tolist()
        ([1.0, -1.0], [1.0])
    """

    def __init__(self, images, max_value, *, split=None, positions=None):
        self.images = images
        self.scale = None if max_value is None else 2.0 / float(max_value)
        self.split = split if split is not None and getattr(split, "resized", False) else None
        self.positions = None if positions is None else np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple:
        return tuple(self.images.shape)

    @staticmethod
    def _unit(pixels: np.ndarray, scale) -> np.ndarray:
        if scale is None:
            return np.asarray(pixels, dtype=np.float32)
        return pixels.astype(np.float32) * np.float32(scale) - np.float32(1.0)

    def __getitem__(self, key) -> np.ndarray:
        return self._unit(self.images[key], self.scale)

    @property
    def full_size(self) -> int:
        """The side of :meth:`full`'s images."""
        return int(self.split.full_size) if self.split is not None else int(self.images.shape[1])

    @property
    def full_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of :meth:`full`'s images."""
        return (self.full_size, self.full_size, int(self.images.shape[3]))

    def full(self, rows) -> np.ndarray:
        """Rows ``rows`` at full resolution, float32 in ``[-1, 1]`` (read from the shards when resized)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.split is None:
            return self[rows]
        records = rows if self.positions is None else self.positions[rows]
        return self._unit(self.split.full_images(records), 2.0 / self.split.manifest.max_value)

    def full_pixels(self, rows) -> np.ndarray:
        """Rows ``rows`` at full resolution in the stored dtype (for pictures)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self.split is None:
            return self.images[rows]
        records = rows if self.positions is None else self.positions[rows]
        return self.split.full_images(records)


class ConcatenatedImages:
    """Several :class:`UnitImages` one after the other, read at full resolution by row.

    Example:
        >>> both = ConcatenatedImages([UnitImages(np.zeros((2, 1, 1, 1), np.uint8), 255),
        ...                            UnitImages(np.full((1, 1, 1, 1), 255, np.uint8), 255)])
        >>> len(both), both.full([2, 0]).ravel().tolist()
        (3, [1.0, -1.0])
    """

    def __init__(self, parts):
        self.parts = list(parts)
        self.ends = np.cumsum([len(part) for part in self.parts])
        self.full_shape = self.parts[0].full_shape

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def full(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((rows.size, *self.full_shape), np.float32)
        part_of = np.searchsorted(self.ends, rows, side="right")
        for index, part in enumerate(self.parts):
            chosen = np.flatnonzero(part_of == index)
            if chosen.size:
                start = self.ends[index - 1] if index else 0
                out[chosen] = part.full(rows[chosen] - start)
        return out


def _area(images: np.ndarray, side: int) -> np.ndarray:
    from ragan._tf import import_tf

    tf = import_tf()
    if images.shape[1] == side:
        return np.asarray(images, dtype=np.float32)
    return tf.image.resize(tf.constant(images, tf.float32), (side, side), method="area").numpy()


def _flat_blocks(images, side: int, block: int = _QUERY_BLOCK):
    """``images`` (an array or :class:`UnitImages`) area-resized to ``side``, flattened, float32."""
    out = np.empty((len(images), side * side * images.shape[3]), np.float32)
    for start in range(0, len(images), block):
        part = images[start : start + block]
        out[start : start + part.shape[0]] = _area(part, side).reshape(part.shape[0], -1)
    return out


def nearest_training(queries, train, *, shortlist_side: int = SHORTLIST_SIDE, shortlist: int = SHORTLIST):
    """For every query image, the training image with the smallest mean squared difference, and that MSE.

    Images larger than ``shortlist_side`` are first compared area-resized to it (float32, in
    blocks), which keeps the ``shortlist`` nearest; the exact mean squared difference at the given
    size then picks the nearest among them. Memory: the resized training images plus one block of
    distances, whatever the size.

    Args:
        queries: ``(N, H, W, C)`` float images in ``[-1, 1]``.
        train: ``(M, H, W, C)`` training images in the same range: an array or a :class:`UnitImages`.
        shortlist_side: Side of the short-list search.
        shortlist: Candidates kept per query.

    Returns:
        ``(indices (N,), mse (N,))``.
    """
    from ragan.evaluation.metrics import nearest_images

    queries = np.asarray(queries, dtype=np.float32)
    side = int(queries.shape[1])
    if side <= shortlist_side or len(train) <= shortlist:
        return nearest_images(queries, train[np.arange(len(train))] if isinstance(train, UnitImages) else train)
    train_small = _flat_blocks(train, shortlist_side)
    query_small = _flat_blocks(queries, shortlist_side)
    train_norms = np.einsum("ij,ij->i", train_small, train_small)
    rows = max(1, (1 << 23) // max(len(train), 1))
    indices = np.empty(len(queries), np.int64)
    errors = np.empty(len(queries))
    for start in range(0, len(queries), rows):
        block = query_small[start : start + rows]
        distances = train_norms[None, :] - 2.0 * block @ train_small.T
        candidates = np.argpartition(distances, shortlist - 1, axis=1)[:, :shortlist]
        for offset, row in enumerate(candidates):
            query = queries[start + offset].astype(np.float64).ravel()
            order = np.sort(row)
            exact = np.mean((np.asarray(train[order], dtype=np.float64).reshape(order.size, -1) - query) ** 2, axis=1)
            best = int(np.argmin(exact))
            indices[start + offset] = order[best]
            errors[start + offset] = exact[best]
    return indices, errors


def pair_batches(count: int, side: int, channels: int = 1):
    """Yield ``slice`` objects over ``count`` image pairs, each batch near :data:`PAIR_BATCH_PIXELS` full-size pixels.

    Example:
        >>> [(s.start, s.stop) for s in pair_batches(10, 1024)]
        [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    """
    step = max(1, PAIR_BATCH_PIXELS // (int(side) * int(side) * int(channels)))
    for start in range(0, count, step):
        yield slice(start, min(start + step, count))


def _ssim_pairs(first: UnitImages, first_rows, train: UnitImages, train_rows) -> np.ndarray:
    """SSIM at full resolution of ``first.full(first_rows[i])`` and ``train.full(train_rows[i])``, batch by batch."""
    from ragan.evaluation.metrics import ssim

    values = np.empty(len(first_rows))
    for part in pair_batches(len(first_rows), first.full_size, first.shape[3]):
        values[part] = ssim(
            np.clip(first.full(first_rows[part]), -1.0, 1.0),
            np.clip(train.full(train_rows[part]), -1.0, 1.0),
            min_value=-1.0,
            max_value=1.0,
        )
    return values


def confirm_ssim(report, synthetic: UnitImages, test: UnitImages, train: UnitImages) -> None:
    """Replace the audit's SSIM search by the same search confirmed at full resolution, in place.

    The audit chose each image's best training candidate by SSIM at the evaluation size; here
    ``1 - SSIM`` of that pair is recomputed at full resolution, for the synthetic images and for
    the held-out baseline alike, and the threshold is derived again from the new baseline with the
    audit's rule (``threshold_scale`` x its ``baseline_percentile``). Nothing changes when the
    images are at full resolution already, or without an SSIM search.

    Args:
        report: The :class:`~ragan.evaluation.memorisation.MemorisationReport` (from the sets below).
        synthetic, test, train: The audit's synthetic queries, held-out images and training images.
    """
    from ragan.evaluation.memorisation import NearestNeighbours

    search = report.searches.get("ssim")
    if search is None or train.split is None or search.baseline_query is None:
        return
    distance = 1.0 - _ssim_pairs(synthetic, np.arange(len(synthetic)), train, search.nearest_index)
    baseline = 1.0 - _ssim_pairs(test, search.baseline_query, train, search.baseline_index)
    threshold = float(report.threshold_scale * np.percentile(baseline, report.baseline_percentile))
    side = train.full_size
    report.searches["ssim"] = NearestNeighbours(
        space=f"{search.space}; confirmed at full resolution ({side}x{side}): 1 - SSIM of each image and its "
        f"candidate at {side}x{side}",
        nearest_index=search.nearest_index,
        nearest_distance=distance,
        baseline=baseline,
        threshold=threshold,
        baseline_query=search.baseline_query,
        baseline_index=search.baseline_index,
    )
    report.notes.append(
        f"the SSIM search chose each image's candidate at the evaluation size ({synthetic.shape[1]}x"
        f"{synthetic.shape[1]}) and scored it at full resolution ({side}x{side}); its threshold comes from the "
        "held-out images scored the same way"
    )
