"""A split of a prepared dataset as NumPy arrays: :func:`read_split` and :class:`SplitArrays`.

What the evaluation (the classifier study, ``ragan mix``, the tuner's objective) and users' own
tools read a prepared dataset into, in record order, with the pixels in their stored dtype.

Example (needs a prepared dataset on disk, hence skipped):
    >>> from ragan.data.arrays import read_split
    >>> test = read_split("prepared", "test")      # doctest: +SKIP
    >>> test.images.shape, test.labels[:3]          # doctest: +SKIP
    ((624, 28, 28, 1), array([0, 1, 1]))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragan._common import first_line
from ragan.data.manifest import Manifest, read_manifest, verify_dataset
from ragan.errors import RaganError

__all__ = ["SplitArrays", "convert_dtype", "read_split"]


@dataclass
class SplitArrays:
    """One split of a prepared dataset, in memory.

    Attributes:
        images: ``(N, H, W, C)`` pixels in the stored dtype (uint8 or uint16), in record order.
        labels: ``(N,)`` int64 class indices (``-1`` when unlabelled).
        source_ids: ``(N,)`` int64 ``source_id`` of every record.
        manifest: The dataset's manifest.
        path: The dataset directory.
        split: The split name.
    """

    images: np.ndarray
    labels: np.ndarray
    source_ids: np.ndarray
    manifest: Manifest
    path: Path
    split: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def unit_range(self) -> np.ndarray:
        """The images as float32 in ``[-1, 1]``."""
        return self.images.astype(np.float32) * (2.0 / self.manifest.max_value) - 1.0


def read_split(path: str | os.PathLike, split: str = "train", *, limit: int | None = None) -> SplitArrays:
    """Read one split of a prepared dataset into NumPy arrays, in record order.

    Args:
        path: The prepared dataset directory.
        split: Split name.
        limit: Read only the first ``limit`` records.

    Raises:
        RaganError: when the path is not a prepared dataset, the split is missing, or the files
            disagree with the manifest.

    Example (needs a prepared dataset on disk, hence skipped):
        >>> test = read_split("prepared", "test")      # doctest: +SKIP
        >>> test.images.shape, test.labels[:3]          # doctest: +SKIP
        ((624, 28, 28, 1), array([0, 1, 1]))
    """
    from ragan._tf import import_tf
    from ragan.data.tfrecord import decode_batch_fn

    tf = import_tf()
    directory = Path(path)
    manifest = read_manifest(directory)
    if directory.is_file():
        directory = directory.parent
    verify_dataset(directory, manifest, splits=[split])
    info = manifest.split(split)
    files = [str(directory / shard.file) for shard in info.shards if shard.num_examples > 0]
    height, width, channels = manifest.image_shape
    dtype = np.uint16 if manifest.dtype == "uint16" else np.uint8
    if not files:
        empty = np.zeros((0, height, width, channels), dtype)
        return SplitArrays(empty, np.zeros(0, np.int64), np.zeros(0, np.int64), manifest, directory, split)
    records = tf.data.TFRecordDataset(files)
    if limit is not None:
        records = records.take(int(limit))
    decode = decode_batch_fn(manifest)
    images, labels, sources = [], [], []
    try:
        for batch_images, batch_labels, batch_sources in records.batch(1024).map(decode):
            images.append(batch_images.numpy())
            labels.append(batch_labels.numpy())
            sources.append(batch_sources.numpy())
    except tf.errors.OpError as error:
        message = first_line(error)
        raise RaganError(f"'{directory}': split {split!r} could not be read ({message}); prepare it again.") from None
    return SplitArrays(
        images=np.concatenate(images).astype(dtype, copy=False),
        labels=np.concatenate(labels).astype(np.int64),
        source_ids=np.concatenate(sources).astype(np.int64),
        manifest=manifest,
        path=directory,
        split=split,
    )


def convert_dtype(images: np.ndarray, target: str) -> np.ndarray:
    """Exact 8 <-> 16-bit conversion: v16 = 257 * v8 maps 0..255 onto 0..65535.

    Example:
        >>> convert_dtype(np.array([0, 1, 255], np.uint8), "uint16")
        array([    0,   257, 65535], dtype=uint16)
    """
    if target == "uint16" and images.dtype == np.uint8:
        return images.astype(np.uint16) * np.uint16(257)
    if target == "uint8" and images.dtype == np.uint16:
        return np.rint(images.astype(np.float64) / 257.0).astype(np.uint8)
    return images
