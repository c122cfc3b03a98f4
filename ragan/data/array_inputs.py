"""The in-memory inputs of ``prepare``: ``.npz`` files, the bundled sample, MedMNIST and TFDS.

Their images are hashed and streamed into a cache file as they are read, so that worker processes
can read any image by offset without the main process holding them all. Imports no TensorFlow at
module level (TFDS inputs import it when they are scanned).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ragan._common import first_line
from ragan._logging import progress_bar
from ragan.data.sources import Hasher, ScannedInput, Source, display_path
from ragan.errors import RaganError

__all__ = ["scan_array_input"]

_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def scan_array_input(kind: str, text: str, cache: Path, hasher: Hasher) -> ScannedInput:
    """Scan the in-memory input ``text`` of ``kind`` ``"npz"``, ``"sample"``, ``"medmnist"`` or ``"tfds"``."""
    if kind == "npz":
        return _scan_arrays(
            "npz", {"kind": "npz", "path": display_path(Path(text))}, _npz_arrays(Path(text)), cache, hasher, None
        )
    if kind == "sample":
        from ragan.datasets import medmnist_info, sample_path

        name = text.split(":", 1)[1].strip().lower()
        path = sample_path(name)
        known = medmnist_info(name)["class_names"]
        return _scan_arrays("sample", {"kind": "sample", "name": name}, _npz_arrays(path), cache, hasher, known)
    if kind == "medmnist":
        from ragan.datasets import load_medmnist, medmnist_info

        name = text.split(":", 1)[1].strip().lower()
        known = medmnist_info(name)["class_names"]
        arrays = load_medmnist(name, download=True)
        return _scan_arrays(
            "medmnist",
            {"kind": "medmnist", "name": name},
            _split_arrays(arrays, f"medmnist:{name}"),
            cache,
            hasher,
            known,
        )
    return _scan_tfds(text.split(":", 1)[1].strip(), cache, hasher)


class _ArraySet(NamedTuple):
    """Lazily loaded image/label arrays of one split of an in-memory input."""

    split: str | None  # given split, or None for an unsplit input
    key: str  # name of the images in source paths ("train_images", "train" for TFDS)
    load: Callable[[], tuple[np.ndarray, np.ndarray | None]]


def _npz_arrays(path: Path) -> tuple[list[_ArraySet], bool]:
    """The image/label arrays of an npz, one split at a time (each loaded only when needed)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise RaganError(f"input='{path}' is not a readable .npz file ({error})") from None

    def loader(image_key, label_key):
        def load():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    return npz[image_key], (npz[label_key] if label_key else None)
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
                raise RaganError(f"input='{path}': cannot read '{image_key}' ({error})") from None

        return load

    split_sets = []
    for split in ("train", "val", "test"):
        if f"{split}_images" in keys:
            label_key = f"{split}_labels" if f"{split}_labels" in keys else None
            split_sets.append(_ArraySet(split, f"{split}_images", loader(f"{split}_images", label_key)))
    if split_sets:
        return split_sets, True
    for image_key, label_key in (("images", "labels"), ("x", "y")):
        if image_key in keys:
            return [_ArraySet(None, image_key, loader(image_key, label_key if label_key in keys else None))], False
    raise RaganError(
        f"input='{path}' has keys {', '.join(keys) or 'none'}; expected MedMNIST-style "
        "'train_images'/'train_labels' (and 'val_*', 'test_*'), or 'images' with optional 'labels'"
    )


def _split_arrays(arrays: dict, name: str) -> tuple[list[_ArraySet], bool]:
    sets = [
        _ArraySet(
            split, f"{split}_images", (lambda s=split: (arrays.pop(f"{s}_images"), arrays.pop(f"{s}_labels", None)))
        )
        for split in ("train", "val", "test")
        if f"{split}_images" in arrays
    ]
    if not sets:
        raise RaganError(f"input='{name}' returned no train/val/test images")
    return sets, True


class _ArrayCache:
    """Append-only file of raw arrays; workers read an array back by offset."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "arrays.bin"
        self._handle = open(self.path, "wb")
        self._offset = 0

    def append(self, array: np.ndarray) -> tuple:
        array = np.ascontiguousarray(array)
        data = memoryview(array).cast("B")
        self._handle.write(data)
        locator = ("array", os.fspath(self.path), self._offset, tuple(array.shape), array.dtype.str)
        self._offset += len(data)
        return locator

    def close(self) -> None:
        self._handle.close()


def _label_values(labels: np.ndarray | None, count: int, where: str) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != count:
        raise RaganError(
            f"{where}: labels of shape {labels.shape} do not fit {count} images; expected one class index "
            "per image (multi-label datasets are not supported)"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise RaganError(f"{where}: labels must be class indices (integers >= 0), got dtype {labels.dtype}")
    return labels.astype(np.int64)


def _scan_arrays(kind, description, array_sets, cache_dir: Path, hasher: Hasher, known_names) -> ScannedInput:
    sets, has_splits = array_sets
    cache = _ArrayCache(cache_dir)
    sources: list[Source] = []
    label_indices: list[int | None] = []
    try:
        for array_set in sets:
            images, labels = array_set.load()
            labels = _label_values(
                labels, len(images), f"input {description.get('path') or description.get('name')} ({array_set.key})"
            )
            for index in range(len(images)):
                sources.append(
                    _array_source(f"{array_set.key}[{index}]", images[index], array_set.split, hasher, cache)
                )
                label_indices.append(None if labels is None else int(labels[index]))
            del images, labels  # one split in memory at a time
    finally:
        cache.close()
    names = _integer_class_names(label_indices, known_names)
    for source, index in zip(sources, label_indices):
        source.label = None if index is None else names[index]
    return ScannedInput(
        kind=kind,
        description=description,
        sources=sources,
        class_names=names if any(i is not None for i in label_indices) else [],
        has_splits=has_splits,
    )


def _array_source(path: str, image: np.ndarray, given_split, hasher: Hasher, cache: _ArrayCache) -> Source:
    """One in-memory image as a :class:`Source`: hashed, and appended to the cache file the workers read."""
    sha256, salt = hasher.array_digests(image)
    return Source(
        path=path, sha256=sha256, label=None, locator=cache.append(image), given_split=given_split, salt_digest=salt
    )


def _integer_class_names(label_indices: list[int | None], known_names) -> list[str]:
    present = [i for i in label_indices if i is not None]
    if not present:
        return []
    count = max(present) + 1
    if known_names is not None:
        if count > len(known_names):
            raise RaganError(f"the input has label {count - 1} but only {len(known_names)} known class names")
        return list(known_names)
    return [str(i) for i in range(count)]


def _scan_tfds(name: str, cache_dir: Path, hasher: Hasher) -> ScannedInput:
    from ragan._tf import import_tf

    import_tf()  # quietly, before tensorflow_datasets imports it noisily
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name)
    except Exception as error:  # noqa: BLE001 - DatasetNotFoundError, bad config names ...: the user's name
        raise RaganError(f"input='tfds:{name}' is not a TensorFlow Datasets dataset ({first_line(error)})") from None
    if not builder.is_prepared():
        try:
            builder.download_and_prepare()
        except Exception as error:  # noqa: BLE001 - offline, manual download required, ...
            raise RaganError(
                f"input='tfds:{name}' is not in the local TFDS data folder ('{builder.data_dir}') and could "
                f"not be downloaded ({first_line(error)}); download it where you are online "
                "(tfds build) and copy the folder, or set TFDS_DATA_DIR"
            ) from None
    info = builder.info
    image_key, label_key = _tfds_keys(info, name)
    split_names = list(info.splits.keys())
    if not split_names:
        raise RaganError(f"input='tfds:{name}' lists no splits in its dataset_info; prepare it with 'tfds build'")
    mapped = {split: _SPLIT_ALIASES.get(split) for split in split_names}
    kept = [split for split in split_names if mapped[split]]
    if not kept:  # e.g. only "extra": use everything and split by ratio
        kept, has_splits = split_names, False
    else:
        has_splits = len(kept) > 1
    ignored = sorted(set(split_names) - set(kept))
    known_names = list(info.features[label_key].names) if label_key else None

    cache = _ArrayCache(cache_dir)
    sources: list[Source] = []
    label_indices: list[int | None] = []
    order = sorted(kept, key=lambda s: ("train", "val", "test").index(mapped[s]) if mapped[s] else 3)
    try:
        with progress_bar(desc="scan", unit="file") as bar:
            for split in order:
                dataset = builder.as_dataset(split=split, shuffle_files=False)
                for index, example in enumerate(tfds.as_numpy(dataset)):
                    bar.update(1)
                    image = np.asarray(example[image_key])
                    given_split = mapped[split] if has_splits else None
                    sources.append(_array_source(f"{split}[{index}]", image, given_split, hasher, cache))
                    label_indices.append(int(example[label_key]) if label_key else None)
    finally:
        cache.close()
    names = _integer_class_names(label_indices, known_names)
    for source, index in zip(sources, label_indices):
        source.label = None if index is None else names[index]
    description = {"kind": "tfds", "name": name, "version": str(info.version)}
    if ignored:
        description["ignored_splits"] = ignored
    return ScannedInput(
        kind="tfds",
        description=description,
        sources=sources,
        class_names=names if label_key else [],
        has_splits=has_splits,
    )


def _tfds_keys(info, name: str) -> tuple[str, str | None]:
    import tensorflow_datasets as tfds

    features = info.features
    supervised = info.supervised_keys if isinstance(info.supervised_keys, tuple) else None
    image_key = supervised[0] if supervised and isinstance(supervised[0], str) else None
    if image_key is None or not isinstance(features[image_key], tfds.features.Image):
        images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
        if not images:
            raise RaganError(f"input='tfds:{name}' has no image feature (features: {', '.join(features.keys())})")
        image_key = "image" if "image" in images else images[0]
    label_key = supervised[1] if supervised and isinstance(supervised[1], str) else None
    if label_key is None or not isinstance(features[label_key], tfds.features.ClassLabel):
        labels = [key for key, feature in features.items() if isinstance(feature, tfds.features.ClassLabel)]
        label_key = "label" if "label" in labels else (labels[0] if labels else None)
    return image_key, label_key
