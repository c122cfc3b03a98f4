"""Nearest-neighbour search in blocks: the one implementation behind precision/recall's k-NN radii,
the nearest real image of the similarity metrics and the memorisation audit.

Distances of a block of query rows to every reference row are computed at once (a matrix product),
so memory stays at about :data:`BLOCK_ENTRIES` distances whatever the set sizes. A query may come
in several *variants* (e.g. translations of an image): its distance to a reference is the smallest
over its variants.

Why not scikit-learn's ``NearestNeighbors``: measured on the audit's and the metrics' sizes it was
not faster (its brute-force search computes the same matrix products; see the commit that added
this module), and it has no variants.

Example:
    >>> references = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    >>> indices, distances = nearest_neighbours(np.array([[0.9, 0.1]]), references, k=2)
    >>> indices, distances.round(3)
    (array([[1, 0]]), array([[0.141, 0.906]]))
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ragan.errors import check_choice

__all__ = ["BLOCK_ENTRIES", "METRICS", "distance_blocks", "nearest_neighbours"]

#: Distances held in memory at once (8 M: 64 MiB of float64).
BLOCK_ENTRIES = 2**23
#: ``euclidean``; ``sqeuclidean`` (its square); ``cosine``: ``1 - q.r`` for rows of unit length.
METRICS = ("euclidean", "sqeuclidean", "cosine")


def _squared_norms(rows: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", rows, rows)


def distance_blocks(queries, references, *, metric: str = "euclidean") -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, distances)``: the distances of query rows ``start:stop`` to every reference.

    Args:
        queries: ``(N, D)`` rows, or ``(S, N, D)``: ``S`` variants of each query (the smallest
            distance over them counts).
        references: ``(M, D)`` rows.
        metric: one of :data:`METRICS`.

    Example:
        >>> [d.tolist() for _, _, d in distance_blocks(np.array([[0.0, 3.0]]), np.array([[4.0, 0.0]]))]
        [[[5.0]]]
    """
    check_choice("metric", metric, METRICS)
    variants = queries if queries.ndim == 3 else queries[None]
    norms = None if metric == "cosine" else _squared_norms(references)
    rows = max(1, BLOCK_ENTRIES // max(variants.shape[0] * references.shape[0], 1))
    for start in range(0, variants.shape[1], rows):
        block = variants[:, start : start + rows]
        if metric == "cosine":
            similarity = block[0] @ references.T
            for variant in block[1:]:
                np.maximum(similarity, variant @ references.T, out=similarity)
            distances = np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0)
        else:
            distances = None
            for variant in block:
                squared = _squared_norms(variant)[:, None] + norms[None, :] - 2.0 * (variant @ references.T)
                distances = squared if distances is None else np.minimum(distances, squared, out=distances)
            distances = np.maximum(distances.astype(np.float64, copy=False), 0.0)
            if metric == "euclidean":
                np.sqrt(distances, out=distances)
        yield start, start + block.shape[1], distances


def nearest_neighbours(queries, references, k: int = 1, *, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest references of every query, nearest first.

    Args:
        queries: ``(N, D)`` rows, or ``(S, N, D)`` with ``S`` variants per query.
        references: ``(M, D)`` rows.
        k: neighbours per query (at most ``M``).
        metric: one of :data:`METRICS`.

    Returns:
        ``(indices, distances)``, each ``(N, k)``; of equally distant references the lower index
        comes first when ``k`` is 1.

    Example:
        >>> points = np.array([[0.0], [1.0], [3.0]])
        >>> nearest_neighbours(points, points, k=2)[1][:, 1]   # each point's nearest *other* point
        array([1., 1., 2.])
    """
    queries, references = np.asarray(queries), np.asarray(references)
    count = queries.shape[-2]
    k = min(int(k), references.shape[0])
    indices = np.empty((count, k), dtype=np.int64)
    distances = np.empty((count, k), dtype=np.float64)
    for start, stop, block in distance_blocks(queries, references, metric=metric):
        if k == 1:
            best = block.argmin(axis=1)[:, None]
        elif k < block.shape[1]:
            best = np.argpartition(block, k - 1, axis=1)[:, :k]
        else:
            best = np.broadcast_to(np.arange(block.shape[1]), block.shape)
        chosen = np.take_along_axis(block, best, axis=1)
        order = np.argsort(chosen, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(best, order, axis=1)
        distances[start:stop] = np.take_along_axis(chosen, order, axis=1)
    return indices, distances
