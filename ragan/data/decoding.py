"""The worker side of ``prepare``: decode sources found by :func:`ragan.data.inputs.scan_input`.

Worker processes run :func:`decode_chunk`: read each source (a file, a zip member, or an array in
the scan's cache file), preprocess its frames to the output size and encode finished TFRecords.
This module is what they import, so it must never import TensorFlow at module level.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np

from ragan._common import first_line
from ragan.data.preprocess import draft_size, preprocess_eight_bit, preprocess_frame
from ragan.data.readers import EightBitRead, ImageReadError, array_to_frame, read_file

__all__ = [
    "PILLOW_CACHED_BLOCKS",
    "DecodeOptions",
    "close_cached_files",
    "decode_chunk",
    "decode_source",
    "error_summary",
    "iter_chunks",
    "pillow_block_cache",
    "start_worker",
    "watch_parent",
]


class DecodeOptions(NamedTuple):
    """What a worker needs besides the locator; sent with every chunk (it is small)."""

    image_size: int
    channels: int
    bit_depth: int
    resize_mode: str
    window: object  # DicomWindow | "auto" | "minmax" | None


def error_summary(error: BaseException) -> str:
    """``'TypeName: first line of the message'``, or just the type's name when there is no message."""
    name = type(error).__name__
    return f"{name}: {first_line(error, 120)}" if str(error).strip() else name


_open_zips: dict[str, zipfile.ZipFile] = {}


def _zip_member_bytes(zip_path: str, member: str) -> bytes:
    archive = _open_zips.get(zip_path)
    if archive is None:
        archive = _open_zips[zip_path] = zipfile.ZipFile(zip_path)
    try:
        return archive.read(member)
    except KeyError:
        raise ImageReadError("zip member disappeared since the scan") from None
    except Exception as error:  # noqa: BLE001 - zlib/CRC errors of a damaged archive: skip the member
        raise ImageReadError(f"corrupt zip member ({type(error).__name__})") from None


def close_cached_files() -> None:
    """Close zip files opened by :func:`decode_source` in this process."""
    while _open_zips:
        _open_zips.popitem()[1].close()


def decode_source(locator: tuple, options: DecodeOptions) -> list[np.ndarray]:
    """Read one source and return its frames preprocessed to square ``uint8``/``uint16`` arrays.

    Locators: ``("file", path, kind)``, ``("zip", zip_path, member, kind)``,
    ``("array", cache_path, offset, shape, dtype)``.

    Raises:
        ImageReadError: the source cannot be used; ``str(error)`` says why.

    Example:
        >>> options = DecodeOptions(32, 1, 8, "crop", "auto")
        >>> from PIL import Image
        >>> Image.new("RGB", (48, 40)).save("photo.jpg")
        >>> decode_source(("file", "photo.jpg", "image"), options)[0].shape
        (32, 32, 1)
    """
    source_kind = locator[0]
    eight_bit = None
    if options.bit_depth == 8:  # 8-bit images stay 8-bit: one reduced decode, integer resizing
        eight_bit = EightBitRead(
            grey=options.channels == 1,
            draft_size=lambda width, height: draft_size(width, height, options.image_size, options.resize_mode),
        )
    try:
        if source_kind == "file":
            frames = read_file(locator[1], kind=locator[2], window=options.window, eight_bit=eight_bit)
        elif source_kind == "zip":
            frames = read_file(
                locator[2],
                kind=locator[3],
                window=options.window,
                data=_zip_member_bytes(locator[1], locator[2]),
                eight_bit=eight_bit,
            )
        elif source_kind == "array":
            _, path, offset, shape, dtype = locator
            count = int(np.prod(shape))
            array = np.fromfile(path, dtype=np.dtype(dtype), count=count, offset=offset)
            if array.size != count:
                raise ImageReadError("array cache is truncated")
            frames = [array_to_frame(array.reshape(shape))]
        else:
            raise ValueError(f"unknown source locator {locator!r}")
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError("too large to decode in memory") from None
    except Exception as error:  # noqa: BLE001 - a reader failing in an unforeseen way: skip the file, keep the run
        raise ImageReadError(f"cannot be read ({error_summary(error)})") from None
    images = []
    for frame in frames:
        try:
            images.append(_preprocess(frame.pixels, options))
        except ValueError as error:  # NaN pixels and the like: a property of the file
            raise ImageReadError(f"cannot be preprocessed ({first_line(error, 120)})") from None
    return images


def _preprocess(pixels: np.ndarray, options: DecodeOptions) -> np.ndarray:
    """Resize one frame's pixels to the output: in 8 bits when it was read as 8 bits, else from floats."""
    size = {"image_size": options.image_size, "channels": options.channels, "resize_mode": options.resize_mode}
    if pixels.dtype == np.uint8:  # read with eight_bit
        return preprocess_eight_bit(pixels, **size)
    return preprocess_frame(pixels, bit_depth=options.bit_depth, **size)


def decode_chunk(options: DecodeOptions, chunk: Sequence[tuple[int, tuple, int]]) -> list[tuple[int, bool, object]]:
    """Decode a chunk of ``(source_id, locator, label)`` into finished TFRecords.

    Returns ``(source_id, True, records)`` with one complete record per frame (see
    :func:`ragan.data.tfrecord.encode_record`; the label is the class index or -1), or
    ``(source_id, False, reason)``. This is the function the worker processes run: the CRC and
    serialisation work is spread over them, and the main process only appends bytes.

    Example:
        >>> decode_chunk(DecodeOptions(32, 1, 8, "crop", "auto"), [(0, ("file", "missing.png", "image"), -1)])
        [(0, False, 'file not found')]
    """
    from ragan.data.tfrecord import encode_record

    results = []
    for source_id, locator, label in chunk:
        try:
            images = decode_source(locator, options)
        except ImageReadError as error:
            results.append((source_id, False, str(error)))
            continue
        results.append((source_id, True, [encode_record(image, label, source_id) for image in images]))
    return results


# Pillow frees its image memory blocks after every image by default; keeping a few (16 MiB each)
# spares the page faults of mapping them again: about 10 % less CPU per decoded X-ray.
PILLOW_CACHED_BLOCKS = 4


class pillow_block_cache:
    """Keep :data:`PILLOW_CACHED_BLOCKS` of Pillow's memory blocks while decoding; restored on exit."""

    def __enter__(self):
        from PIL import Image

        self._previous = Image.core.get_blocks_max()
        Image.core.set_blocks_max(max(self._previous, PILLOW_CACHED_BLOCKS))
        return self

    def __exit__(self, *exc):
        from PIL import Image

        Image.core.set_blocks_max(self._previous)
        return False


def start_worker(parent_pid: int) -> None:
    """Worker initializer: Pillow's block cache on, and exit when the parent is gone (see :func:`watch_parent`)."""
    pillow_block_cache().__enter__()  # for the worker's whole life
    watch_parent(parent_pid)


def watch_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Worker initializer: exit this worker when the process that started ``prepare`` is gone.

    A killed parent (SIGKILL, the OOM killer, a job scheduler) cannot shut its pool down, and
    idle workers would otherwise wait for work forever.
    """
    import threading
    import time

    def watch():
        while True:
            time.sleep(interval)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # the pid now belongs to another user's process: ours is gone
                os._exit(1)

    threading.Thread(target=watch, name="ragan-watch-parent", daemon=True).start()


def iter_chunks(items: Iterable, size: int) -> Iterator[list]:
    """Yield lists of up to ``size`` consecutive items."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
