"""A split of a prepared dataset as NumPy arrays: :func:`read_split` and :class:`SplitArrays`.

What the evaluation (the classifier study, ``ragan mix``, the tuner's objective) and users' own
tools read a prepared dataset into, in record order, with the pixels in their stored dtype.
``read_split(..., image_size=256)`` reads a high-resolution split in batches and keeps a copy
resized to 256 px; its full-resolution images stay on disk, read by index with
:meth:`SplitArrays.full_images`.

Example (needs a prepared dataset on disk, hence skipped):
    >>> from ragan.data.arrays import read_split
    >>> test = read_split("prepared", "test")      # doctest: +SKIP
    >>> test.images.shape, test.labels[:3]          # doctest: +SKIP
    ((624, 28, 28, 1), array([0, 1, 1]))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
        full_size: The stored side when ``images`` were resized on reading (``read_split``'s
            ``image_size``), else None.
    """

    images: np.ndarray
    labels: np.ndarray
    source_ids: np.ndarray
    manifest: Manifest
    path: Path
    split: str
    full_size: int | None = None
    _records: object = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        """The side of ``images`` (the stored side unless resized on reading)."""
        return int(self.images.shape[1]) if self.images.ndim == 4 else self.manifest.image_size

    @property
    def resized(self) -> bool:
        """Whether ``images`` are a resized copy (the full-resolution images stay on disk)."""
        return self.full_size is not None and self.full_size != self.image_size

    def full_images(self, indices) -> np.ndarray:
        """The images ``indices`` at the stored resolution (read from the shards when ``images`` are resized).

        Example (needs a prepared dataset on disk, hence skipped):
            >>> split = read_split("prepared/mri512", "train", image_size=256)    # doctest: +SKIP
            >>> split.images.shape[1:], split.full_images([0, 5]).shape          # doctest: +SKIP
            ((256, 256, 1), (2, 512, 512, 1))
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if not self.resized:
            return self.images[indices]
        if self._records is None:
            from ragan.data.split_records import SplitRecords

            self._records = SplitRecords(self.path, self.split, self.manifest)
        return self._records.read(indices)

    def unit_range(self) -> np.ndarray:
        """The images as float32 in ``[-1, 1]``."""
        return self.images.astype(np.float32) * (2.0 / self.manifest.max_value) - 1.0


def read_split(
    path: str | os.PathLike, split: str = "train", *, limit: int | None = None, image_size: int | None = None
) -> SplitArrays:
    """Read one split of a prepared dataset into NumPy arrays, in record order.

    The records are decoded in batches of about 64 MiB, so with ``image_size`` the memory held is
    the resized copy plus one batch, whatever the stored size.

    Args:
        path: The prepared dataset directory.
        split: Split name.
        limit: Read only the first ``limit`` records.
        image_size: Keep the images area-resized to this side (in the stored dtype, rounded); the
            full-resolution ones are then read by index with :meth:`SplitArrays.full_images`.
            None or the stored side: as stored.

    Raises:
        RaganError: when the path is not a prepared dataset, the split is missing, or the files
            disagree with the manifest.

    Example (needs a prepared dataset on disk, hence skipped):
        >>> test = read_split("prepared", "test")      # doctest: +SKIP
        >>> test.images.shape, test.labels[:3]          # doctest: +SKIP
        ((624, 28, 28, 1), array([0, 1, 1]))
    """
    from ragan._tf import import_tf
    from ragan.data.split_records import batch_size_for, resize_images
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
    if image_size is not None:
        image_size = int(image_size)
        if not 1 <= image_size <= manifest.image_size:
            raise RaganError(
                f"image_size={image_size} is not allowed for '{directory}', whose images are "
                f"{manifest.image_size}x{manifest.image_size}; give a side from 1 to {manifest.image_size}."
            )
    resize = image_size is not None and image_size != manifest.image_size
    if not files:
        shape = (0, image_size, image_size, channels) if resize else (0, height, width, channels)
        empty = np.zeros(shape, dtype)
        full_size = manifest.image_size if resize else None
        return SplitArrays(empty, np.zeros(0, np.int64), np.zeros(0, np.int64), manifest, directory, split, full_size)
    records = tf.data.TFRecordDataset(files)
    if limit is not None:
        records = records.take(int(limit))
    decode = decode_batch_fn(manifest)
    images, labels, sources = [], [], []
    try:
        for batch_images, batch_labels, batch_sources in records.batch(batch_size_for(manifest.image_shape, dtype)).map(
            decode
        ):
            images.append(resize_images(batch_images.numpy(), image_size) if resize else batch_images.numpy())
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
        full_size=manifest.image_size if resize else None,
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
