"""Images/s through ``ragan.load_dataset`` vs a folder of PNGs vs a .zip of PNGs.

The same images (PneumoniaMNIST train, at 28 px and upsampled to 64 px) are stored three ways
in temporary folders and read with the same batch size, in the same run, on the same machine:

* ``prepared``: raw-pixel TFRecord shards + manifest, read by ``load_dataset`` (shuffled);
* ``prepared+cache``: the same with ``cache=True`` (decoded images kept in memory);
* ``png folder``: ``<class>/<n>.png`` files read with tf.data (``list_files`` shuffled ->
  ``read_file`` -> ``decode_png`` -> ``resize`` + scale to [-1, 1] -> ``batch`` -> ``prefetch``),
  the label taken from the folder name;
* ``png zip``: one ``.zip`` of the PNGs read by a Python generator with ``zipfile`` + PIL, wrapped
  in ``tf.data.Dataset.from_generator`` (the StyleGAN2-ADA ``dataset.zip`` way).

Each reader runs one warm-up epoch, then ``--epochs`` timed epochs consumed in-graph (as
``Model.fit`` does); the median epoch is reported. Run by hand::

    .venv/bin/python benchmarks/data_pipeline.py --npz ../shared/data/pneumoniamnist/pneumoniamnist.npz

Without ``--npz`` it uses ``../shared/data/...`` when present, else the small bundled sample.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from ragan._tf import import_tf
from ragan.data.manifest import Manifest, SplitInfo, shard_name
from ragan.data.pipeline import load_dataset
from ragan.data.tfrecord import ShardWriter
from ragan.datasets import load_medmnist, medmnist_info, sample_path

CLASS_NAMES = medmnist_info("pneumoniamnist")["class_names"]
DEFAULT_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "pneumoniamnist" / "pneumoniamnist.npz"


def resized(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC)) for im in images])


def write_prepared(directory: Path, images: np.ndarray, labels: np.ndarray, num_shards: int) -> None:
    directory.mkdir(parents=True)
    shards = []
    for index, part in enumerate(np.array_split(np.arange(len(images)), num_shards)):
        with ShardWriter(directory / shard_name("train", index, num_shards)) as writer:
            for i in part:
                writer.write(images[i][:, :, None], int(labels[i]), int(i))
        shards.append(writer.info())
    counts = {name: int(np.sum(labels == k)) for k, name in enumerate(CLASS_NAMES)}
    Manifest(
        image_size=images.shape[1],
        channels=1,
        dtype="uint8",
        class_names=CLASS_NAMES,
        labelled=True,
        splits={"train": SplitInfo(len(images), counts, shards)},
    ).write(directory)


def write_pngs(directory: Path, zip_path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for name in CLASS_NAMES:
        (directory / name).mkdir(parents=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, (image, label) in enumerate(zip(images, labels)):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            member = f"{CLASS_NAMES[label]}/{i:06d}.png"
            (directory / member).write_bytes(buffer.getvalue())
            archive.writestr(member, buffer.getvalue())


def png_folder_dataset(directory: Path, size: int, batch_size: int):
    tf = import_tf()

    def load(path):
        image = tf.io.decode_png(tf.io.read_file(path), channels=1)
        image = tf.image.resize(image, [size, size])
        label = tf.cast(tf.strings.regex_full_match(path, ".*/pneumonia/.*"), tf.int32)
        return image / 127.5 - 1.0, label

    files = tf.data.Dataset.list_files(str(directory / "*" / "*.png"), shuffle=True)
    return files.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def png_zip_dataset(zip_path: Path, size: int, batch_size: int):
    tf = import_tf()

    def generate():
        with zipfile.ZipFile(zip_path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".png")]
            for index in np.random.permutation(len(names)):
                name = names[index]
                image = np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("L"), np.float32)
                yield image[:, :, None] / 127.5 - 1.0, CLASS_NAMES.index(name.split("/")[0])

    signature = (tf.TensorSpec((size, size, 1), tf.float32), tf.TensorSpec((), tf.int32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def images_per_second(dataset, epochs: int) -> float:
    """Median images/s over ``epochs`` epochs, consumed inside the TF runtime.

    ``Dataset.reduce`` iterates in a compiled loop, as ``Model.fit`` does, so Python's per-batch
    overhead (the same for every reader) does not blur the comparison. The median epoch resists
    the noise of other processes on a shared machine.
    """
    tf = import_tf()

    def count(dataset):
        return int(
            dataset.reduce(
                tf.constant(0, tf.int64), lambda total, batch: total + tf.cast(tf.shape(batch[0])[0], tf.int64)
            )
        )

    count(dataset)  # warm-up: builds the pipeline, fills caches (OS and tf.data)
    speeds = []
    for _ in range(epochs):
        start = time.perf_counter()
        images = count(dataset)
        speeds.append(images / (time.perf_counter() - start))
    return float(np.median(speeds))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, default=None, help="MedMNIST pneumoniamnist.npz to read.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per reader")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train images")
    args = parser.parse_args(argv)

    npz = args.npz or (DEFAULT_NPZ if DEFAULT_NPZ.is_file() else sample_path())
    arrays = load_medmnist("pneumoniamnist", path=npz)
    images, labels = arrays["train_images"], arrays["train_labels"][:, 0].astype(int)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    tf = import_tf()
    print(
        f"data: {npz} ({len(images)} train images); batch {args.batch_size}; "
        f"median of {args.epochs} timed epochs after 1 warm-up"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; TensorFlow {tf.__version__}\n"
    )

    rows = []
    with tempfile.TemporaryDirectory(prefix="ragan-bench-") as tmp:
        for size in args.sizes:
            sized = resized(images, size)
            root = Path(tmp) / f"{size}px"
            write_prepared(root / "prepared", sized, labels, args.shards)
            write_pngs(root / "png", root / "dataset.zip", sized, labels)
            readers = {
                "prepared (load_dataset)": load_dataset(root / "prepared", batch_size=args.batch_size),
                "prepared, cache=True": load_dataset(root / "prepared", batch_size=args.batch_size, cache=True),
                "png folder (tf.data)": png_folder_dataset(root / "png", size, args.batch_size),
                "png zip (zipfile+PIL)": png_zip_dataset(root / "dataset.zip", size, args.batch_size),
            }
            speeds = {name: images_per_second(dataset, args.epochs) for name, dataset in readers.items()}
            baseline = speeds["png folder (tf.data)"]
            for name, speed in speeds.items():
                rows.append((size, name, speed, speed / baseline))

    print(f"{'size':>5}  {'reader':<26} {'images/s':>10}  {'vs png folder':>13}")
    for size, name, speed, ratio in rows:
        print(f"{size:>4}px  {name:<26} {speed:>10,.0f}  {ratio:>12.2f}x")


if __name__ == "__main__":
    main()
