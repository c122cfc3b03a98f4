"""Small prepared datasets for training tests, written with the real shard writer and manifest.

``tiny_prepared``: 64 greyscale 16x16 images in two classes (``disc``: a bright disc,
``bar``: a bright vertical bar, each at a random position with noise), in two train shards, so
a conditional GAN has something class-dependent to learn. Import the fixture into a test module::

    from training_fixtures import tiny_prepared  # noqa: F401  (pytest fixture)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragan.data.manifest import Manifest, SplitInfo, shard_name
from ragan.data.tfrecord import ShardWriter

__all__ = [
    "checkpoint_arrays",
    "make_prepared",
    "tiny_generator_run",
    "tiny_images",
    "tiny_prepared",
    "tiny_unlabelled",
]


def tiny_images(count: int = 64, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` uint8 images ``(count, size, size, 1)`` and labels 0 (disc) / 1 (bar), alternating."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    images = np.empty((count, size, size, 1), np.uint8)
    labels = (np.arange(count) % 2).astype(np.int64)
    for index in range(count):
        centre_r, centre_c = rng.integers(size // 4, 3 * size // 4, size=2)
        if labels[index] == 0:
            shape = (rows - centre_r) ** 2 + (cols - centre_c) ** 2 <= (size // 4) ** 2
        else:
            shape = np.abs(cols - centre_c) <= size // 8
        picture = 30 + 180 * shape + rng.normal(0, 12, size=(size, size))
        images[index, :, :, 0] = np.clip(picture, 0, 255).astype(np.uint8)
    return images, labels


def make_prepared(
    directory: str | Path,
    images: np.ndarray,
    labels: np.ndarray | None,
    class_names: list[str],
    *,
    shards: int = 2,
) -> Path:
    """Write ``images`` (uint8 ``(N, S, S, C)``) as the ``train`` split of a prepared dataset.

    ``labels=None`` makes an unlabelled dataset. Returns the dataset directory.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = len(images)
    infos = []
    for shard in range(shards):
        indices = range(shard, count, shards)
        with ShardWriter(directory / shard_name("train", shard, shards)) as writer:
            for index in indices:
                label = int(labels[index]) if labels is not None else -1
                writer.write(images[index], label=label, source_id=index)
        infos.append(writer.info())
    class_counts = {name: int(np.sum(labels == k)) for k, name in enumerate(class_names)} if labels is not None else {}
    manifest = Manifest(
        image_size=int(images.shape[1]),
        channels=int(images.shape[3]),
        dtype="uint8",
        class_names=list(class_names) if labels is not None else [],
        labelled=labels is not None,
        splits={"train": SplitInfo(num_examples=count, class_counts=class_counts, shards=infos)},
        source={"kind": "test", "path": "tiny_images"},
        sources=[{"path": f"tiny[{i}]", "sha256": "0" * 64} for i in range(count)],
    )
    manifest.write(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A labelled prepared dataset: 64 images, 16 px, 1 channel, classes ``disc`` and ``bar``."""
    images, labels = tiny_images()
    return make_prepared(tmp_path_factory.mktemp("tiny_prepared"), images, labels, ["disc", "bar"])


@pytest.fixture(scope="session")
def tiny_unlabelled(tmp_path_factory) -> Path:
    """The same images without labels."""
    images, _ = tiny_images()
    return make_prepared(tmp_path_factory.mktemp("tiny_unlabelled"), images, None, [])


def checkpoint_arrays(path) -> dict:
    """A ragan checkpoint's arrays by key (its JSON record left out)."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files if key != "__meta__"}


def tiny_generator_run(directory) -> Path:
    """A run folder holding a tiny untrained conditional DCGAN (for tests about files, not quality)."""
    import json

    from ragan.models import DCGAN

    run = Path(directory)
    gan = DCGAN({"latent_dim": 8, "base_filters": 8, "conditional": True}, image_size=16, channels=1, num_classes=2)
    gan.compile()
    gan.save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({"model": "model.keras", "class_names": ["normal", "pneumonia"]}))
    return run
