"""Read a prepared dataset as a fast ``tf.data`` pipeline.

The pipeline reads several TFRecord shards round-robin, shuffles the serialized records,
batches them *before* parsing (one vectorised ``parse_example`` + ``decode_raw`` per batch is
far cheaper than one per image), decodes batches in parallel and prefetches, so a GAN step on
an accelerator does not wait for input. Images come out scaled to ``[-1, 1]``, the range a
``tanh`` generator produces.

Example (needs TensorFlow, whose import alone is too slow for a docstring example):
    >>> import ragan
    >>> dataset = ragan.load_dataset("prepared", "train", batch_size=64)   # doctest: +SKIP
    >>> images, labels = next(iter(dataset))                            # doctest: +SKIP
    >>> images.shape, labels.dtype                                      # doctest: +SKIP
    (TensorShape([64, 64, 64, 1]), tf.int32)
"""

from __future__ import annotations

import os
from pathlib import Path

from ragan._common import check_positive_int
from ragan._tf import import_tf
from ragan.data.manifest import Manifest, read_manifest, verify_dataset
from ragan.data.tfrecord import decode_batch_fn
from ragan.errors import RaganError, check_choice

__all__ = ["load_dataset", "dataset_info", "to_unit_range", "from_unit_range"]

FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")
# Read-ahead per open shard. Shards are read sequentially, so a large buffer turns many small
# reads into few big ones (notably on network file systems).
READ_BUFFER_BYTES = 4 << 20
# Shards read round-robin when shuffling.
INTERLEAVE_SHARDS = 8
# Records parsed per batch on the cached path, before the cache stores single images.
_CACHE_PARSE_BATCH = 1024


def dataset_info(path: str | os.PathLike) -> Manifest:
    """Return the validated :class:`~ragan.data.manifest.Manifest` of a prepared dataset.

    Example:
        >>> import ragan
        >>> _ = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
        >>> dataset_info("prepared").image_shape
        (8, 8, 1)
    """
    return read_manifest(path)


def to_unit_range(images, max_value: int, dtype="float32"):
    """Scale integer pixels ``0..max_value`` to floats in ``[-1, 1]``.

    Args:
        images: a uint8/uint16 tensor.
        max_value: 255 for uint8 data, 65535 for uint16 data.
        dtype: the float dtype of the result.

    Example:
        >>> float(to_unit_range(import_tf().constant([0, 255], "uint8"), 255)[1])
        1.0
    """
    tf = import_tf()
    # Scale in float32 whatever the output type: float16 cannot represent 65535 exactly.
    scaled = tf.cast(images, tf.float32) * (2.0 / max_value) - 1.0
    return tf.cast(scaled, dtype)


def from_unit_range(images, max_value: int, dtype="uint8"):
    """Invert :func:`to_unit_range`: floats in ``[-1, 1]`` back to rounded, clipped integers.

    Example:
        >>> tf = import_tf()
        >>> int(from_unit_range(tf.constant([1.0]), 255)[0])
        255
    """
    tf = import_tf()
    pixels = (tf.cast(images, tf.float32) + 1.0) * (max_value / 2.0)
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, float(max_value)), dtype)


def load_dataset(
    path: str | os.PathLike,
    split: str = "train",
    batch_size: int = 64,
    *,
    shuffle: bool = True,
    shuffle_buffer: int = 10_000,
    repeat: bool = False,
    cache: bool | str | os.PathLike = False,
    dtype: str = "float32",
    one_hot: bool = False,
    with_labels: bool | None = None,
    deterministic: bool = False,
    seed: int | None = None,
    drop_remainder: bool = False,
    take: int | None = None,
    input_context=None,
):
    """Return a batched ``tf.data.Dataset`` of one split of a prepared dataset.

    Args:
        path: the prepared dataset directory (made by ``ragan prepare``).
        split: which split to read, e.g. ``"train"``, ``"val"``, ``"test"``.
        batch_size: the global batch size (per replica it is divided by the number of replicas
            when ``input_context`` is given).
        shuffle: shuffle the shard order and the records (with a buffer of ``shuffle_buffer``
            records). With ``shuffle=False`` records come in the order they were written.
        shuffle_buffer: records held in the shuffle buffer; at least the split size shuffles fully.
        repeat: repeat forever (for step-based training).
        cache: ``True`` keeps the decoded integer images in memory after the first epoch; a path
            caches them to files with that prefix; ``False`` reads the shards every epoch.
        dtype: float dtype of the images: ``"float32"``, ``"float16"``, ``"bfloat16"`` or
            ``"float64"``. Images are scaled to ``[-1, 1]``.
        one_hot: give labels as one-hot vectors of ``dtype`` instead of int32 class indices.
        with_labels: yield ``(images, labels)``; ``False`` yields images only. ``None`` (the
            default) follows the manifest: pairs for a labelled dataset, images only for an
            unlabelled one. ``True`` on an unlabelled dataset is an error.
        deterministic: a fixed order given ``seed`` (0 when not given); can be slower than the
            default, which lets parallel decoding deliver batches in whatever order finishes first.
        seed: seed of the shuffles.
        drop_remainder: drop the last, smaller batch of an epoch (static batch shape).
        take: read only the first ``take`` records of the split (in written order); shuffling
            then happens within them. For quick runs and tests.
        input_context: a ``tf.distribute.InputContext``, as passed by
            ``strategy.distribute_datasets_from_function``; each input pipeline then reads its own
            part of the data (whole shards when there are enough, records otherwise) with the
            per-replica batch size.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` or of ``images``; images have shape
        ``(batch, H, W, C)``.

    Raises:
        RaganError: for a path that is not a prepared dataset, an inconsistent manifest, an
            unknown split, labels asked of an unlabelled dataset, or an invalid argument.

    Example (needs TensorFlow and several devices, not run as a test):
        >>> strategy = tf.distribute.MirroredStrategy()                       # doctest: +SKIP
        >>> dataset = strategy.distribute_datasets_from_function(             # doctest: +SKIP
        ...     lambda context: load_dataset("prepared", batch_size=128, repeat=True,
        ...                                  input_context=context))
    """
    tf = import_tf()
    manifest = read_manifest(path)
    directory = Path(path) if Path(path).is_dir() else Path(path).parent
    verify_dataset(directory, manifest, splits=[split])
    split_info = manifest.split(split)
    with_labels = _check_arguments(
        manifest, directory, batch_size, shuffle_buffer, take, dtype, one_hot, with_labels, cache
    )
    if deterministic and seed is None:
        seed = 0
    files = [str(directory / shard.file) for shard in split_info.shards if shard.num_examples > 0]
    if not files:
        raise RaganError(f"split {split!r} of '{directory}' holds no examples.")
    batch_size, num_pipelines, pipeline_id = _per_pipeline(input_context, batch_size)
    # Whole shards per pipeline when each gets at least one; otherwise every pipeline reads all
    # shards and keeps every n-th record. `take` means the first records, so it needs the latter.
    shard_by_file = num_pipelines > 1 and len(files) >= num_pipelines and take is None
    if shard_by_file:
        files = files[pipeline_id::num_pipelines]

    shuffle_files = shuffle and take is None and len(files) > 1
    buffer = max(1, min(shuffle_buffer, split_info.num_examples))
    records = _read_records(files, shuffle_files, buffer < split_info.num_examples, seed)
    records = _take_and_shard(records, take, num_pipelines, pipeline_id, shard_by_file)

    ordered = deterministic or not shuffle
    dataset = _batches(
        records,
        decode_batch_fn(manifest),
        _model_inputs_fn(manifest, dtype, with_labels, one_hot),
        cache=cache,
        shuffle_buffer=buffer if shuffle else None,
        seed=seed,
        repeat=repeat,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        ordered=ordered,
    )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(
        _dataset_options(ordered, sharded=input_context is not None, by_record=shuffle_files and seed is None)
    )


def _check_arguments(manifest, directory, batch_size, shuffle_buffer, take, dtype, one_hot, with_labels, cache) -> bool:
    """One-line errors for :func:`load_dataset`'s arguments; returns whether to yield labels."""
    check_positive_int("batch_size", batch_size)
    check_positive_int("shuffle_buffer", shuffle_buffer)
    check_positive_int("take", take, allow_none=True)
    check_choice("dtype", dtype, FLOAT_DTYPES)
    if with_labels is None:  # one_hot asks for labels: on an unlabelled dataset that is the error below
        with_labels = manifest.labelled or one_hot
    if with_labels and not manifest.labelled:
        raise RaganError(
            f"the dataset '{directory}' is unlabelled, so it has no labels to give; "
            "leave with_labels at its default (images only) or pass with_labels=False (and one_hot=False)."
        )
    if one_hot and not with_labels:
        raise RaganError("one_hot=True asks for labels but with_labels=False; drop one of them.")
    if not isinstance(cache, (bool, str, os.PathLike)):
        raise RaganError(f"cache={cache!r} is not allowed; use True, False or a file path prefix.")
    return with_labels


def _per_pipeline(input_context, batch_size: int) -> tuple[int, int, int]:
    """``(batch size per replica, number of input pipelines, this pipeline's index)``."""
    if input_context is None:
        return batch_size, 1, 0
    try:
        per_replica = input_context.get_per_replica_batch_size(batch_size)
    except ValueError as error:
        raise RaganError(
            f"batch_size={batch_size} cannot be split evenly over "
            f"{input_context.num_replicas_in_sync} replicas; use a multiple of it."
        ) from error
    return per_replica, input_context.num_input_pipelines, input_context.input_pipeline_id


def _read_records(files: list[str], shuffle_files: bool, interleave: bool, seed):
    """The serialized records of ``files``: in written order, or from shuffled shards."""
    tf = import_tf()
    file_dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        file_dataset = file_dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if shuffle_files and interleave:
        # The shuffle buffer holds only part of the split: read a few shards round-robin so it
        # mixes records of several shards. Plain (not parallel) interleave: records are tiny and
        # read in 4 MiB blocks, and on a 2-core machine a parallel interleave cost 15-20 %.
        return file_dataset.interleave(
            lambda file: tf.data.TFRecordDataset(file, buffer_size=READ_BUFFER_BYTES),
            cycle_length=min(len(files), INTERLEAVE_SHARDS),
            block_length=1,
        )
    # Sequential reading: the written order (shuffle=False, or take=N meaning the first N
    # records), or a split that fits in the shuffle buffer, where interleaving adds nothing.
    return tf.data.TFRecordDataset(file_dataset, buffer_size=READ_BUFFER_BYTES)


def _take_and_shard(records, take: int | None, num_pipelines: int, pipeline_id: int, shard_by_file: bool):
    """The first ``take`` records, then this pipeline's share when the shards were not split by file."""
    if take is not None:
        records = records.take(take)
    if num_pipelines > 1 and not shard_by_file:
        records = records.shard(num_pipelines, pipeline_id)
    return records


def _model_inputs_fn(manifest: Manifest, dtype: str, with_labels: bool, one_hot: bool):
    """``(images, labels) -> images`` or ``(images, labels)`` as the model takes them."""
    tf = import_tf()
    max_value, num_classes = manifest.max_value, manifest.num_classes

    def to_model_inputs(images, labels):
        images = to_unit_range(images, max_value, dtype)
        if not with_labels:
            return images
        if one_hot:
            return images, tf.one_hot(labels, num_classes, dtype=dtype)
        return images, tf.cast(labels, tf.int32)

    return to_model_inputs


def _batches(
    records, decode, to_model_inputs, *, cache, shuffle_buffer, seed, repeat, batch_size, drop_remainder, ordered
):
    """Shuffle, repeat, batch and decode ``records``; with ``cache``, the decoded integer images are cached."""
    autotune = import_tf().data.AUTOTUNE

    def decode_and_convert(serialized):
        return to_model_inputs(*decode(serialized)[:2])

    if cache is False:
        items, convert = records, decode_and_convert
    else:
        # Cache the decoded integer images, not the floats: 4x less memory for uint8 data, and
        # the cheap scaling is redone per batch.
        items = records.batch(_CACHE_PARSE_BATCH).map(
            lambda serialized: decode(serialized)[:2], num_parallel_calls=autotune, deterministic=True
        )
        items = items.unbatch()
        if cache is True:
            items = items.cache()
        else:
            cache_prefix = Path(cache)
            cache_prefix.parent.mkdir(parents=True, exist_ok=True)
            items = items.cache(str(cache_prefix))
        convert = to_model_inputs
    if shuffle_buffer is not None:
        items = items.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        items = items.repeat()
    return items.batch(batch_size, drop_remainder=drop_remainder).map(
        convert, num_parallel_calls=autotune, deterministic=ordered
    )


def no_autotune_thread(options=None):
    """``options`` (``tf.data.Options``; new ones by default) without tf.data's autotuning thread.

    With it, an iterator's destructor, run when ``fit``, ``evaluate`` or ``predict`` returns,
    waits for that thread to wake from its optimisation period: measured on TensorFlow 2.21 (gdb:
    ``RootDataset::Iterator::~Iterator`` waiting on ``Model::OptimizeLoop``), at random, 1 to 35 s
    after a call that took 1 to 30 s. Without it, ``num_parallel_calls=AUTOTUNE`` runs at the
    default parallelism (the CPU count) and ``prefetch(AUTOTUNE)`` sizes its buffer itself.
    """
    options = import_tf().data.Options() if options is None else options
    options.autotune.enabled = False
    return options


def _dataset_options(ordered: bool, *, sharded: bool, by_record: bool):
    """``tf.data.Options``: the order, and how ``tf.distribute`` may shard the dataset."""
    tf = import_tf()
    options = no_autotune_thread(tf.data.Options())
    options.deterministic = ordered
    policy = tf.data.experimental.AutoShardPolicy
    if sharded:
        # Already sharded above; tf.distribute must not shard again.
        options.experimental_distribute.auto_shard_policy = policy.OFF
    elif by_record:
        # Workers would shuffle the shard list differently, so sharding by file could give two
        # workers the same shard; sharding by record is always correct.
        options.experimental_distribute.auto_shard_policy = policy.DATA
    else:
        options.experimental_distribute.auto_shard_policy = policy.AUTO
    return options
