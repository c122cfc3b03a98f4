"""TFRecord shards and the tf.data reader: exact round trips, order, caching, distribution, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ragan.data.manifest import MANIFEST_NAME, Manifest, SplitInfo, file_sha256, shard_name
from ragan.data.pipeline import dataset_info, from_unit_range, load_dataset
from ragan.data.tfrecord import ShardWriter, decode_batch_fn, encode_example
from ragan.errors import RaganError

REPO = Path(__file__).resolve().parents[1]


def make_images(count, size=8, channels=1, dtype=np.uint8, seed=0):
    """Random images whose first pixel is their index, so order can be read back from pixels."""
    rng = np.random.default_rng(seed)
    high = np.iinfo(dtype).max
    images = rng.integers(0, high, size=(count, size, size, channels), endpoint=True, dtype=dtype)
    images[:, 0, 0, 0] = np.arange(count)
    return images


def write_prepared(directory, splits, class_names=("a", "b"), labelled=True):
    """Write a prepared dataset with ShardWriter + Manifest.

    ``splits`` maps a split name to ``(images, labels, shard_sizes)``; labels may be None.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    split_infos = {}
    first_images = None
    for split, (images, labels, shard_sizes) in splits.items():
        first_images = images if first_images is None else first_images
        assert sum(shard_sizes) == len(images)
        shards, start = [], 0
        for index, count in enumerate(shard_sizes):
            with ShardWriter(directory / shard_name(split, index, len(shard_sizes))) as writer:
                for offset in range(start, start + count):
                    label = int(labels[offset]) if labelled else -1
                    writer.write(images[offset], label, offset)
            shards.append(writer.info())
            start += count
        counts = {}
        if labelled:
            counts = {name: int(np.sum(labels == i)) for i, name in enumerate(class_names)}
        split_infos[split] = SplitInfo(len(images), counts, shards)
    manifest = Manifest(
        image_size=first_images.shape[1],
        channels=first_images.shape[3],
        dtype=str(first_images.dtype),
        class_names=list(class_names) if labelled else [],
        labelled=labelled,
        splits=split_infos,
    )
    manifest.write(directory)
    return manifest


def collect(dataset, max_value, pixel_dtype):
    images, labels = [], []
    for batch in dataset:
        if isinstance(batch, tuple):
            batch_images, batch_labels = batch
            labels.append(batch_labels.numpy())
        else:
            batch_images = batch
        images.append(from_unit_range(batch_images, max_value, pixel_dtype).numpy())
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


@pytest.fixture(scope="module")
def labelled_dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("labelled")
    images = make_images(20)
    labels = np.arange(20) % 2
    write_prepared(directory, {"train": (images, labels, [12, 8]), "val": (images[:5], labels[:5], [5])})
    return directory, images, labels


# ---------------------------------------------------------------------------------- records
def test_encode_example_is_deterministic_and_parses_back():
    import tensorflow as tf

    image = make_images(1, size=4, channels=3, dtype=np.uint16)[0]
    first = encode_example(image, 1, 7)
    assert first == encode_example(image.copy(), 1, 7)
    example = tf.train.Example.FromString(first)
    feature = example.features.feature
    assert feature["label"].int64_list.value == [1] and feature["source_id"].int64_list.value == [7]
    # Raw little-endian uint16, row-major (H, W, C).
    assert feature["image"].bytes_list.value[0] == image.astype("<u2").tobytes()


def test_encode_rejects_float_images():
    with pytest.raises(RaganError, match="uint8 or uint16"):
        encode_example(np.zeros((4, 4, 1), np.float32), 0, 0)


def test_shard_writer_renames_on_success_and_cleans_up_on_error(tmp_path):
    target = tmp_path / "train-00000-of-00001.tfrecord"
    with ShardWriter(target) as writer:
        for image in make_images(3):
            writer.write(image, 0, 0)
    info = writer.info()
    assert target.is_file() and not list(tmp_path.glob("*.partial"))
    assert (info.file, info.num_examples, info.sha256) == (target.name, 3, file_sha256(target))

    failed = tmp_path / "val-00000-of-00001.tfrecord"
    with pytest.raises(RuntimeError, match="disk on fire"):
        with ShardWriter(failed) as writer:
            writer.write(make_images(1)[0], 0, 0)
            raise RuntimeError("disk on fire")
    assert not failed.exists() and not list(tmp_path.glob("*.partial"))


def test_decode_batch_fn(tmp_path):
    import tensorflow as tf

    images = make_images(5, size=6, channels=3, dtype=np.uint16)
    manifest = write_prepared(tmp_path, {"train": (images, np.zeros(5, int), [5])})
    files = [str(tmp_path / f) for f in manifest.splits["train"].shard_files]
    batches = list(tf.data.TFRecordDataset(files).batch(2).map(decode_batch_fn(manifest)))
    decoded = np.concatenate([b[0].numpy() for b in batches])
    source_ids = np.concatenate([b[2].numpy() for b in batches])
    assert batches[0][0].dtype == tf.uint16
    np.testing.assert_array_equal(decoded, images)
    np.testing.assert_array_equal(source_ids, np.arange(5))


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    "dtype, channels, labelled",
    [(np.uint8, 1, True), (np.uint16, 3, True), (np.uint8, 3, False), (np.uint16, 1, False)],
)
def test_round_trip_is_exact(tmp_path, dtype, channels, labelled):
    images = make_images(10, size=8, channels=channels, dtype=dtype)
    labels = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 1])
    manifest = write_prepared(tmp_path, {"train": (images, labels, [6, 4])}, labelled=labelled)
    dataset = load_dataset(tmp_path, "train", batch_size=4, shuffle=False, with_labels=labelled)

    first = next(iter(dataset))
    batch_images = first[0] if labelled else first
    assert tuple(batch_images.shape) == (4, 8, 8, channels)
    assert batch_images.dtype.name == "float32"
    assert -1.0 <= float(batch_images.numpy().min()) and float(batch_images.numpy().max()) <= 1.0

    read_images, read_labels = collect(dataset, manifest.max_value, dtype)
    np.testing.assert_array_equal(read_images, images)
    if labelled:
        assert first[1].dtype.name == "int32"
        np.testing.assert_array_equal(read_labels, labels)


def test_scaling_reaches_both_ends(tmp_path):
    images = np.zeros((2, 4, 4, 1), np.uint16)
    images[1] = 65535
    write_prepared(tmp_path, {"train": (images, None, [2])}, labelled=False)
    batch = next(iter(load_dataset(tmp_path, batch_size=2, shuffle=False, with_labels=False))).numpy()
    assert np.all(batch[0] == -1.0) and np.all(batch[1] == 1.0)


def test_one_hot_and_float_dtypes(labelled_dataset):
    directory, _, labels = labelled_dataset
    images, one_hot = next(iter(load_dataset(directory, batch_size=20, shuffle=False, one_hot=True)))
    assert one_hot.shape == (20, 2) and one_hot.dtype.name == "float32"
    np.testing.assert_array_equal(np.argmax(one_hot.numpy(), axis=1), labels)
    np.testing.assert_array_equal(one_hot.numpy().sum(axis=1), np.ones(20))
    for dtype in ("float16", "bfloat16"):
        batch_images, batch_labels = next(iter(load_dataset(directory, batch_size=4, dtype=dtype, one_hot=True)))
        assert batch_images.dtype.name == dtype and batch_labels.dtype.name == dtype


def test_other_split_and_dataset_info(labelled_dataset):
    directory, images, labels = labelled_dataset
    read, read_labels = collect(load_dataset(directory, "val", batch_size=3, shuffle=False), 255, np.uint8)
    np.testing.assert_array_equal(read, images[:5])
    np.testing.assert_array_equal(read_labels, labels[:5])
    assert dataset_info(directory).splits["val"].num_examples == 5


# ---------------------------------------------------------------------------------- order
def read_order(dataset):
    """Indices of the images in reading order (the first pixel holds the index)."""
    images, _ = collect(dataset, 255, np.uint8)
    return images[:, 0, 0, 0].tolist()


def test_deterministic_shuffle_is_reproducible(labelled_dataset):
    directory, _, _ = labelled_dataset

    def make(seed):
        return load_dataset(directory, batch_size=6, shuffle=True, deterministic=True, seed=seed)

    order = read_order(make(3))
    assert order == read_order(make(3)), "same seed, same order"
    assert sorted(order) == list(range(20)), "every image once per epoch"
    assert order != list(range(20)), "shuffled order differs from the written order"
    assert order != read_order(make(4)), "another seed gives another order"
    # Batches of a reproducible run are identical too, labels included.
    for (a_images, a_labels), (b_images, b_labels) in zip(make(3), make(3)):
        np.testing.assert_array_equal(a_images.numpy(), b_images.numpy())
        np.testing.assert_array_equal(a_labels.numpy(), b_labels.numpy())


def test_default_shuffle_covers_every_image_once(labelled_dataset):
    directory, _, _ = labelled_dataset
    assert sorted(read_order(load_dataset(directory, batch_size=7))) == list(range(20))
    # A buffer smaller than the split reads the shards round-robin.
    small_buffer = read_order(load_dataset(directory, batch_size=7, shuffle_buffer=3, deterministic=True))
    assert sorted(small_buffer) == list(range(20)) and small_buffer != list(range(20))


def test_repeat_and_drop_remainder(labelled_dataset):
    directory, _, _ = labelled_dataset
    dataset = load_dataset(directory, batch_size=6, repeat=True, drop_remainder=True, shuffle=False)
    assert dataset.element_spec[0].shape.as_list() == [6, 8, 8, 1]
    batches = list(dataset.take(7))  # 42 images from a 20-image split: it repeats
    order = np.concatenate([b[0][:, 0, 0, 0].numpy() for b in batches])
    assert len(order) == 42
    not_repeated = load_dataset(directory, batch_size=6, shuffle=False)
    assert [b[0].shape[0] for b in not_repeated] == [6, 6, 6, 2]


def test_take_reads_the_first_examples(labelled_dataset):
    directory, _, _ = labelled_dataset
    assert read_order(load_dataset(directory, batch_size=4, take=7, shuffle=False)) == list(range(7))
    assert sorted(read_order(load_dataset(directory, batch_size=4, take=7, seed=1))) == list(range(7))


@pytest.mark.parametrize("cache", [True, "file"])
def test_cache_gives_the_same_data(labelled_dataset, tmp_path, cache):
    directory, images, labels = labelled_dataset
    if cache == "file":
        cache = tmp_path / "cache" / "train"
    dataset = load_dataset(directory, batch_size=8, shuffle=False, cache=cache)
    for _ in range(2):  # the second epoch is served from the cache
        read, read_labels = collect(dataset, 255, np.uint8)
        np.testing.assert_array_equal(read, images)
        np.testing.assert_array_equal(read_labels, labels)
    if not isinstance(cache, bool):
        assert list(cache.parent.glob("train*.index")), "file cache written"
    shuffled = load_dataset(directory, batch_size=8, cache=True, deterministic=True, seed=2)
    assert sorted(read_order(shuffled)) == list(range(20))


def test_real_images_from_the_bundled_sample(tmp_path):
    from ragan.datasets import load_sample

    arrays = load_sample("pneumoniamnist")
    images = arrays["val_images"][..., None]
    labels = arrays["val_labels"][:, 0]
    write_prepared(tmp_path, {"val": (images, labels, [30, 30])}, class_names=("normal", "pneumonia"))
    read, read_labels = collect(load_dataset(tmp_path, "val", batch_size=16, shuffle=False), 255, np.uint8)
    np.testing.assert_array_equal(read, images)
    np.testing.assert_array_equal(read_labels, labels)


# ---------------------------------------------------------------------------------- errors
def test_unknown_split_lists_available(labelled_dataset):
    directory, _, _ = labelled_dataset
    with pytest.raises(RaganError, match=r"split='tarin'.*'train', 'val'.*Did you mean 'train'"):
        load_dataset(directory, "tarin")


def test_labels_of_unlabelled_dataset(tmp_path):
    write_prepared(tmp_path, {"train": (make_images(4), None, [4])}, labelled=False)
    # By default the manifest decides: images only.
    batch = next(iter(load_dataset(tmp_path, batch_size=4, shuffle=False)))
    assert tuple(batch.shape) == (4, 8, 8, 1)
    with pytest.raises(RaganError, match="unlabelled.*with_labels=False"):
        load_dataset(tmp_path, with_labels=True)
    with pytest.raises(RaganError, match="unlabelled"):
        load_dataset(tmp_path, one_hot=True)
    with pytest.raises(RaganError, match="one_hot=True"):
        load_dataset(tmp_path, with_labels=False, one_hot=True)


@pytest.mark.parametrize(
    "argument, message",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"dtype": "int8"}, "dtype='int8'"),
        ({"take": -1}, "take=-1"),
        ({"cache": 3}, "cache=3"),
    ],
)
def test_bad_arguments(labelled_dataset, argument, message):
    directory, _, _ = labelled_dataset
    with pytest.raises(RaganError, match=message):
        load_dataset(directory, **argument)


def test_not_a_dataset(tmp_path):
    with pytest.raises(RaganError, match="not a prepared ragan dataset"):
        load_dataset(tmp_path)


def _corrupt(directory, how):
    manifest_path = directory / MANIFEST_NAME
    data = json.loads(manifest_path.read_text())
    if how == "missing shard":
        (directory / data["splits"]["train"]["shards"][1]["file"]).unlink()
    elif how == "wrong count":
        data["splits"]["train"]["shards"][0]["num_examples"] += 1
    elif how == "stray shard":
        (directory / "train-00002-of-00003.tfrecord").write_bytes(b"old")
    manifest_path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing shard", r"train-00001-of-00002.tfrecord' listed in the manifest .* is missing"),
        ("wrong count", "num_examples=10 but its shards hold 11"),
        ("stray shard", r"train-00002-of-00003.tfrecord' is not listed"),
    ],
)
def test_inconsistent_dataset_is_a_clear_error(tmp_path, how, message):
    write_prepared(tmp_path, {"train": (make_images(10), np.zeros(10, int), [6, 4])})
    _corrupt(tmp_path, how)
    with pytest.raises(RaganError, match=message):
        load_dataset(tmp_path)


# ---------------------------------------------------------------------------------- distribution
DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ragan._tf import import_tf
    tf = import_tf()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from ragan.data.pipeline import from_unit_range, load_dataset

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    for directory in sys.argv[1:]:
        dataset = strategy.distribute_datasets_from_function(
            lambda context: load_dataset(directory, batch_size=8, seed=0, input_context=context))
        seen, shapes = [], set()
        for images, labels in dataset:
            for replica_images in strategy.experimental_local_results(images):
                shapes.add(int(replica_images.shape[0]))
                seen += from_unit_range(replica_images, 255).numpy()[:, 0, 0, 0].tolist()
        print(directory, "per-replica", sorted(shapes), "seen", sorted(seen))
        # Without an input context, tf.distribute splits each global batch itself.
        plain = strategy.experimental_distribute_dataset(load_dataset(directory, batch_size=8))
        images, labels = next(iter(plain))
        print(directory, "split", [int(t.shape[0]) for t in strategy.experimental_local_results(images)])
    """
)


def test_mirrored_strategy_gets_per_replica_batches(tmp_path):
    # Two logical CPU devices must be configured before TF initialises its devices, so this runs
    # in a fresh interpreter.
    images = make_images(32)
    labels = np.arange(32) % 2
    by_file, by_record = tmp_path / "four_shards", tmp_path / "one_shard"
    write_prepared(by_file, {"train": (images, labels, [8, 8, 8, 8])})
    write_prepared(by_record, {"train": (images, labels, [32])})
    script = tmp_path / "distributed.py"
    script.write_text(DISTRIBUTED_SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), str(by_file), str(by_record)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    everything = str(sorted(range(32)))
    for directory in (by_file, by_record):
        assert f"{directory} per-replica [4] seen {everything}" in result.stdout, result.stdout
        assert f"{directory} split [4, 4]" in result.stdout, result.stdout


@pytest.mark.parametrize("shard_sizes", [[8, 8, 8, 8], [32]], ids=["by_file", "by_record"])
def test_input_pipelines_read_disjoint_parts(tmp_path, shard_sizes):
    # What each worker of a multi-worker strategy gets: two input pipelines, one replica each.
    import tensorflow as tf

    images = make_images(32)
    write_prepared(tmp_path, {"train": (images, np.arange(32) % 2, shard_sizes)})
    parts = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        dataset = load_dataset(tmp_path, batch_size=8, input_context=context, seed=0)
        assert {int(b[0].shape[0]) for b in dataset} == {4}, "per-replica batch size"
        parts.append(read_order(dataset))
    assert len(parts[0]) == len(parts[1]) == 16
    assert sorted(parts[0] + parts[1]) == list(range(32)), "together they read everything once"


def test_batch_size_must_divide_over_replicas(labelled_dataset):
    import tensorflow as tf

    directory, _, _ = labelled_dataset
    context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=4)
    with pytest.raises(RaganError, match="batch_size=6 cannot be split evenly over 4 replicas"):
        load_dataset(directory, batch_size=6, input_context=context)


def test_the_readers_run_without_the_tf_data_autotuning_thread(labelled_dataset):
    # With it, the iterator's destructor at the end of fit/evaluate/predict waits for that thread's
    # optimisation period at random (measured on TensorFlow 2.21: 7 of 60 short fits waited 1.2 s,
    # one StyleGAN2 tick 35 s; none of 60 without it). See ragan.data.pipeline.no_autotune_thread.
    from ragan._tf import import_tf
    from ragan.evaluation.classifier import _as_dataset, array_dataset

    tf = import_tf()
    directory = labelled_dataset[0]
    images = np.zeros((4, 8, 8, 1), np.uint8)
    user_dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(4, np.int32))).batch(2)
    readers = {
        "load_dataset": load_dataset(directory, batch_size=4),
        "load_dataset, ordered": load_dataset(directory, batch_size=4, shuffle=False, deterministic=True),
        "classifier arrays": array_dataset(images, np.arange(4) % 2, batch_size=2, shuffle=True, seed=0),
        "classifier tf.data input": _as_dataset(user_dataset, "data", 2),
    }
    for name, dataset in readers.items():
        assert dataset.options().autotune.enabled is False, name
        assert len(list(dataset.take(1))) == 1, name
