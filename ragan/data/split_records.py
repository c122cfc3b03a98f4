"""Random access to the records of a prepared split, and reading a split at a smaller size.

A split is a sequence of TFRecord shards, made to be read in order. At 512-1024 px reading one
whole is what runs a machine out of memory (1,000 images of 1024 px: 1 GiB as ``uint8``, 4 GiB as
``float32``), so the evaluation reads every split once, in batches of bounded size, keeping a
copy resized to its evaluation size (:func:`~ragan.data.arrays.read_split` with ``image_size``), and
fetches the few full-resolution images it shows or compares by record index
(:class:`SplitRecords`): the record framing gives each record's offset in its shard, found by
reading 12 bytes per record.

Example (needs a prepared dataset on disk, hence skipped):
    >>> records = SplitRecords("prepared/mri512", "train")      # doctest: +SKIP
    >>> records.read([3, 0]).shape                              # doctest: +SKIP
    (2, 512, 512, 1)
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ragan.errors import RaganError

__all__ = ["BATCH_BYTES", "SplitRecords", "batch_size_for", "resize_images"]

# Decoded pixels per batch while a split is streamed (16 images of 1024 px). TensorFlow holds several
# copies of a batch (records, pixels, float32 for the resize): 64 MiB batches of 512-px images raised
# the peak by ~650 MB, 16 MiB ones by ~220 MB (measured reading 2,221 MRI images).
BATCH_BYTES = 16 << 20
# The framing around every record: uint64 length, uint32 CRC of the length ... uint32 CRC of the data.
_HEADER = 12
_FOOTER = 4


def batch_size_for(image_shape, dtype, *, batch_bytes: int | None = None, most: int = 1024) -> int:
    """Images per batch so that one batch of decoded pixels stays near ``batch_bytes`` (:data:`BATCH_BYTES`).

    Example:
        >>> batch_size_for((1024, 1024, 1), "uint8"), batch_size_for((28, 28, 1), "uint8")
        (16, 1024)
    """
    batch_bytes = BATCH_BYTES if batch_bytes is None else batch_bytes
    per_image = int(np.prod(image_shape)) * np.dtype(dtype).itemsize
    return int(max(1, min(most, batch_bytes // max(per_image, 1))))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Area-resize ``(N, H, W, C)`` integer pixels to ``size x size``, keeping their dtype (rounded).

    Area resizing averages the pixels each output pixel covers (for an integer factor, a plain box
    average), so fine detail is averaged away rather than aliased.

    Example:
        >>> resize_images(np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1), 2)[0, :, :, 0].tolist()
        [[2, 4], [10, 12]]
    """
    from ragan._tf import import_tf

    tf = import_tf()
    images = np.asarray(images)
    if images.shape[1:3] == (size, size):
        return images
    top = np.iinfo(images.dtype).max
    resized = tf.image.resize(tf.cast(images, tf.float32), (size, size), method="area").numpy()
    return np.clip(np.rint(resized), 0, top).astype(images.dtype)


class SplitRecords:
    """The records of one split of a prepared dataset, readable by index.

    Args:
        path: The prepared dataset directory.
        split: The split name.
        manifest: Its manifest, if already read.

    Attributes:
        manifest: The dataset's manifest.
        image_shape: ``(H, W, C)`` of every record's image.

    Raises:
        RaganError: naming the shard, when its records disagree with the manifest (a truncated or
            replaced file).

    Example (needs a prepared dataset on disk, hence skipped):
        >>> records = SplitRecords("prepared", "test")     # doctest: +SKIP
        >>> len(records), records.read([0]).dtype            # doctest: +SKIP
        (624, dtype('uint8'))
    """

    def __init__(self, path: str | os.PathLike, split: str, manifest=None):
        from ragan.data.manifest import read_manifest

        self.path = Path(path)
        if self.path.is_file():
            self.path = self.path.parent
        self.split = split
        self.manifest = manifest if manifest is not None else read_manifest(self.path)
        self.image_shape = tuple(self.manifest.image_shape)
        self._dtype = np.uint16 if self.manifest.dtype == "uint16" else np.uint8
        self._files: list[Path] = []
        self._locations: list[tuple[int, int, int]] = []  # (file index, data offset, data length)
        for shard in self.manifest.split(split).shards:
            if shard.num_examples > 0:
                self._index_shard(self.path / shard.file, shard.num_examples)
        self._decode = None

    def _index_shard(self, file: Path, expected: int) -> None:
        size = file.stat().st_size
        file_index = len(self._files)
        self._files.append(file)
        count, position = 0, 0
        with open(file, "rb") as handle:
            while position < size:
                header = handle.read(_HEADER)
                if len(header) < _HEADER:
                    break
                (length,) = struct.unpack("<Q", header[:8])
                end = position + _HEADER + length + _FOOTER
                if end > size:
                    break
                self._locations.append((file_index, position + _HEADER, length))
                count += 1
                position = end
                handle.seek(position)
        if count != expected or position != size:
            raise RaganError(
                f"'{file}': holds {count} whole records ({size} bytes) but the manifest lists {expected}; "
                "the shard is damaged or was replaced: prepare the dataset again."
            )

    def __len__(self) -> int:
        return len(self._locations)

    def read(self, indices) -> np.ndarray:
        """The images of records ``indices`` (in that order), ``(len(indices), H, W, C)`` in the stored dtype."""
        from ragan._tf import import_tf

        tf = import_tf()
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            return np.zeros((0, *self.image_shape), self._dtype)
        if indices.min() < 0 or indices.max() >= len(self):
            raise RaganError(
                f"'{self.path}' split {self.split!r}: record index {int(indices.max())} is out of range "
                f"(the split holds {len(self)} records)."
            )
        if self._decode is None:
            from ragan.data.tfrecord import decode_batch_fn

            self._decode = decode_batch_fn(self.manifest)
        records = []
        handles: dict[int, int] = {}
        try:
            for index in indices:
                file_index, offset, length = self._locations[int(index)]
                if file_index not in handles:
                    handles[file_index] = os.open(self._files[file_index], os.O_RDONLY)
                records.append(os.pread(handles[file_index], length, offset))
        finally:
            for handle in handles.values():
                os.close(handle)
        try:
            images, _, _ = self._decode(tf.constant(records))
        except tf.errors.OpError as error:
            from ragan._common import first_line

            raise RaganError(
                f"'{self.path}': split {self.split!r} could not be read ({first_line(error)}); prepare it again."
            ) from None
        return images.numpy().astype(self._dtype, copy=False)

    def batches(self, indices=None, *, batch_bytes: int | None = None):
        """Yield ``(indices, images)`` chunks of the records ``indices`` (default: all, in order), bounded in size."""
        indices = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        step = batch_size_for(self.image_shape, self._dtype, batch_bytes=batch_bytes)
        for start in range(0, indices.size, step):
            chunk = indices[start : start + step]
            yield chunk, self.read(chunk)
