"""TFRecord records of a prepared dataset: encode, write shards, decode batches.

Every record is a ``tf.train.Example`` with three features (see ``docs/prepared-format.md``):
``image`` (raw pixel bytes, row-major ``(H, W, C)``; ``uint16`` little-endian), ``label`` (int64,
``-1`` when unlabelled) and ``source_id`` (int64 index into the manifest's ``sources``).

Raw bytes rather than PNG because decoding dominates the cost of reading small images; see
``benchmarks/data_pipeline.py`` for the measured difference.

Example:
    >>> image = np.zeros((8, 8, 1), np.uint8)
    >>> with ShardWriter("train-00000-of-00001.tfrecord") as writer:
    ...     writer.write(image, label=1, source_id=0)
    >>> writer.info()
    ShardInfo(file='train-00000-of-00001.tfrecord', num_examples=1, sha256='...')
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ragan._tf import import_tf
from ragan.data.manifest import Manifest, ShardInfo
from ragan.data.records import example_bytes, frame_record
from ragan.errors import RaganError

__all__ = ["encode_example", "encode_record", "ShardWriter", "decode_batch_fn", "FEATURE_KEYS"]

FEATURE_KEYS = ("image", "label", "source_id")
_DTYPES = {np.dtype(np.uint8): "<u1", np.dtype(np.uint16): "<u2"}


def _image_bytes(image: np.ndarray) -> bytes:
    image = np.asarray(image)
    if image.dtype not in _DTYPES:
        raise RaganError(f"image dtype must be uint8 or uint16, got {image.dtype}.")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise RaganError(f"image must have shape (height, width, channels), got {image.shape}.")
    # astype to an explicit little-endian dtype makes the bytes the same on any machine.
    return np.ascontiguousarray(image.astype(_DTYPES[image.dtype], copy=False)).tobytes(order="C")


def encode_example(image: np.ndarray, label: int, source_id: int) -> bytes:
    """Serialise one image as a ``tf.train.Example`` (without importing TensorFlow).

    Args:
        image: ``uint8`` or ``uint16`` array of shape ``(H, W, C)`` (or ``(H, W)`` for one channel).
        label: class index, or ``-1`` for an unlabelled image.
        source_id: index into the manifest's ``sources``, or ``-1`` for a generated image.

    Returns:
        The serialized record, the bytes of TensorFlow's ``SerializeToString(deterministic=True)``;
        the same inputs always give the same bytes.

    Example:
        >>> record = encode_example(np.zeros((4, 4, 1), np.uint8), label=0, source_id=3)
        >>> isinstance(record, bytes)
        True
    """
    return example_bytes(_image_bytes(image), label, source_id)


def encode_record(image: np.ndarray, label: int, source_id: int) -> bytes:
    """One image as a complete TFRecord (framing and checksums included), for :meth:`ShardWriter.write_record`.

    The decoding workers of ``prepare`` call this, so the CRC work is spread over them.

    Example:
        >>> image = np.zeros((4, 4, 1), np.uint8)
        >>> len(encode_record(image, 0, 0)) - len(encode_example(image, 0, 0))
        16
    """
    return frame_record(encode_example(image, label, source_id))


class ShardWriter:
    """Write one TFRecord shard, appearing under its final name only when complete.

    Records go to ``path + ".partial"``; a clean :meth:`close` (or leaving the ``with`` block
    without an exception) renames it to ``path`` and hashes it. On an exception the partial file
    is deleted, so an interrupted run leaves no shard that looks finished. The file is written
    without TensorFlow (see :mod:`ragan.data.records`), with the bytes ``tf.io.TFRecordWriter`` writes.

    Args:
        path: the shard's final path, e.g. ``prepared/train-00000-of-00004.tfrecord``.

    Attributes:
        path: the final path.
        num_examples: records written so far.
        sha256: hex SHA-256 of the finished file (set by :meth:`close`).

    Example:
        >>> import tempfile, numpy as np
        >>> shard = Path(tempfile.mkdtemp()) / "train-00000-of-00001.tfrecord"
        >>> with ShardWriter(shard) as writer:
        ...     writer.write(np.zeros((8, 8, 1), np.uint8), label=0, source_id=0)
        >>> writer.info().num_examples
        1
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self.num_examples = 0
        self.sha256: str | None = None
        self._file = open(self.partial_path, "wb")
        self._hash = hashlib.sha256()
        self._closed = False

    def write(self, image: np.ndarray, label: int, source_id: int) -> None:
        """Append one image (see :func:`encode_example` for the arguments)."""
        self.write_record(encode_record(image, label, source_id))

    def write_record(self, record: bytes) -> None:
        """Append one complete record made by :func:`encode_record`."""
        if self._closed:
            raise RuntimeError(f"ShardWriter for '{self.path}' is already closed.")
        self._file.write(record)
        self._hash.update(record)
        self.num_examples += 1

    def close(self) -> None:
        """Finish the shard: close, rename to the final name, keep its SHA-256."""
        if self._closed:
            return
        self._file.close()
        self._closed = True
        os.replace(self.partial_path, self.path)
        self.sha256 = self._hash.hexdigest()

    def abort(self) -> None:
        """Stop writing and delete the partial file."""
        if not self._closed:
            self._file.close()
            self._closed = True
        self.partial_path.unlink(missing_ok=True)

    def info(self) -> ShardInfo:
        """The :class:`ShardInfo` for the manifest (after :meth:`close`)."""
        if self.sha256 is None:
            raise RuntimeError(f"ShardWriter for '{self.path}' must be closed before info().")
        return ShardInfo(file=self.path.name, num_examples=self.num_examples, sha256=self.sha256)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def decode_batch_fn(manifest: Manifest) -> Callable:
    """Return a function mapping a batch of serialized records to decoded tensors.

    The function takes a 1-D string tensor of serialized ``tf.train.Example`` records and
    returns ``(images, labels, source_ids)``: ``images`` of shape ``(B, H, W, C)`` in the
    manifest's dtype (``uint8`` or ``uint16``), ``labels`` and ``source_ids`` int64 of shape
    ``(B,)``. It is meant for ``tf.data.Dataset.map`` after ``batch``: parsing a batch at once is
    much faster than parsing record by record.

    Args:
        manifest: the dataset's manifest (gives shape and dtype).

    Example (needs TensorFlow and a prepared dataset's manifest and shard files, not run as a test):
        >>> decode = decode_batch_fn(manifest)                             # doctest: +SKIP
        >>> dataset = tf.data.TFRecordDataset(files).batch(64).map(decode)  # doctest: +SKIP
    """
    tf = import_tf()
    height, width, channels = manifest.image_shape
    out_type = tf.uint16 if manifest.dtype == "uint16" else tf.uint8
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "source_id": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }

    def decode(serialized):
        parsed = tf.io.parse_example(serialized, features)
        pixels = tf.io.decode_raw(parsed["image"], out_type, little_endian=True)
        images = tf.reshape(pixels, [-1, height, width, channels])
        # Keep a static batch size (drop_remainder=True) visible to Keras and XLA.
        images.set_shape([serialized.shape[0], height, width, channels])
        return images, parsed["label"], parsed["source_id"]

    return decode
