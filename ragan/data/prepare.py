"""``ragan.prepare_dataset``: turn messy medical images into a prepared dataset on disk.

The stage runs in five steps:

1. **Scan** (main process): find every source, hash its bytes, read DICOM headers when grouping
   by patient; in-memory inputs are streamed to a cache file (see :mod:`ragan.data.inputs`).
2. **Decide**: drop exact duplicates (same SHA-256; the first in input order stays), assign
   splits (stratified by class, optionally grouped by patient; or the input's own splits),
   order each split with the seed and cut it into shards of about 64 MiB.
3. **Plan**: the hash of the options and of every decision above. The output is built in a
   hidden sibling folder ``.<name>.ragan-partial/`` holding ``plan.json`` and a journal of
   finished shards (with their SHA-256). A re-run with the same plan keeps the finished shards
   and writes the rest; a different plan starts afresh.
4. **Write**: worker processes (``forkserver``/``spawn``; they import only readers and
   preprocessing, never TensorFlow) decode each file once, resize it and encode it as a finished
   TFRecord (:mod:`ragan.data.records`), in order, a bounded number of chunks ahead; the main
   process appends the records to the shards. No step imports TensorFlow (only ``export_zip``). Memory use does not
   grow with the number of images (only
   an in-memory input, an ``.npz`` split or a MedMNIST file, is loaded whole while it is scanned).
5. **Publish**: ``manifest.json`` (and the optional StyleGAN2-ADA ``dataset.zip``) are written,
   the work files removed and the folder renamed to its final name. With ``overwrite`` an
   existing output is replaced only now, when the new one is complete.

Nothing from DICOM headers reaches the output except what is needed: the patient key, as a
salted hash. The salt is derived from the source files' contents with a keyed hash that differs
from the SHA-256 listed in the manifest, so it is reproducible yet unknown to anyone who does not
hold the source files.

Example:
    >>> import ragan
    >>> manifest = ragan.prepare_dataset("sample:pneumoniamnist", "prepared", image_size=8)
    >>> manifest.splits["train"].num_examples
    400
"""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import shutil
import zipfile
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ragan._child import HiddenMainModule
from ragan._common import read_json
from ragan._files import PartialLock, publish_directory
from ragan._logging import progress_bar, stage_output
from ragan.config import takes_options
from ragan.data.decoding import (
    DecodeOptions,
    close_cached_files,
    decode_chunk,
    iter_chunks,
    pillow_block_cache,
    start_worker,
)
from ragan.data.inputs import ScannedInput, input_kind, scan_input
from ragan.data.manifest import Manifest, ShardInfo, SplitInfo, file_sha256
from ragan.data.prepare_options import (
    GROUP_BY_CHOICES,
    PrepareConfig,
    PrepareOptions,
    check_options_fit_input,
    check_output,
    resolve_options,
)
from ragan.data.prepare_plan import (
    TARGET_SHARD_BYTES,
    PlannedShard,
    drop_duplicates,
    patient_groups,
    plan_hash,
    plan_shards,
)
from ragan.data.splits import SPLIT_NAMES, grouped_split, stratified_split
from ragan.errors import RaganError

logger = logging.getLogger(__name__)

__all__ = ["prepare_dataset", "partial_dir_for", "PrepareConfig", "GROUP_BY_CHOICES", "TARGET_SHARD_BYTES"]

PARTIAL_SUFFIX = ".ragan-partial"
PLAN_FILE = "plan.json"
JOURNAL_FILE = "progress.jsonl"
CACHE_DIR = "cache"
LOCK_FILE = "lock"
ZIP_NAME = "dataset.zip"
ZIP_LABELS_NAME = "dataset.json"
# Sources per task sent to a worker, and chunks in flight per worker: enough to keep every
# worker busy, few enough that memory stays flat.
CHUNK_SIZE = 8
CHUNKS_AHEAD_PER_WORKER = 3
# Below this many sources a worker pool costs more to start than it saves.
MIN_SOURCES_FOR_POOL = 64


def partial_dir_for(out: str | os.PathLike) -> Path:
    """The hidden sibling folder where ``out`` is built: ``.<name>.ragan-partial``.

    Example:
        >>> partial_dir_for("runs/prepared").name
        '.prepared.ragan-partial'
    """
    out = Path(os.path.abspath(os.fspath(out)))
    return out.parent / f".{out.name}{PARTIAL_SUFFIX}"


@takes_options(PrepareConfig)
def prepare_dataset(input, out, *, config=None, progress: bool = True, **options) -> Manifest:
    """Prepare a dataset: validate, resize, split and shard images into TFRecords + ``manifest.json``.

    The output format is described in ``docs/prepared-format.md``. The same input, options and
    seed give a byte-identical output, whatever ``num_workers`` is.

    Args:
        input: A folder of images/DICOM (one sub-folder per class, or flat for unlabelled), a
            ``.zip`` of such a folder, a ``.npz`` (MedMNIST layout or ``images``/``labels``),
            ``"sample:pneumoniamnist"`` (bundled), ``"medmnist:NAME"`` or ``"tfds:NAME"``.
        out: The output folder; it must not exist or be empty unless ``overwrite``.
        config: The options as a :class:`~ragan.data.prepare_options.PrepareConfig`, a dict or a
            YAML/JSON file; keyword options win over it.
        progress: ``False``: warnings only, no progress bars (see :mod:`ragan._logging`).

    Returns:
        The :class:`~ragan.data.manifest.Manifest` written to ``out/manifest.json``.

    Raises:
        RaganError: a bad option (naming it, its value and what is allowed), a missing or empty
            input, a non-empty ``out`` without ``overwrite``, or with ``strict`` an unusable file.

    Example:
        >>> from PIL import Image
        >>> for index in range(20):   # 20 different 6x6 images in two class folders
        ...     folder = Path("scans", "tumour" if index % 2 else "healthy")
        ...     folder.mkdir(parents=True, exist_ok=True)
        ...     Image.new("L", (6, 6), index * 10).save(folder / f"{index}.png")
        >>> manifest = prepare_dataset("scans", "prepared", image_size=4, split=(0.8, 0.1, 0.1), seed=0)
        >>> manifest.splits["train"].class_counts
        {'healthy': 8, 'tumour': 8}
    """
    options = resolve_options(PrepareConfig.resolve(config, options))
    kind = input_kind(input)
    check_options_fit_input(input, kind, options)
    out_path = Path(os.path.abspath(os.fspath(out)))
    check_output(out_path, kind, input, options.overwrite)
    partial = partial_dir_for(out_path)
    partial.mkdir(parents=True, exist_ok=True)
    with stage_output(progress), PartialLock(partial, "prepare"):
        manifest = _build_or_clean_up(input, partial, options)
        (partial / LOCK_FILE).unlink(missing_ok=True)
        _publish(partial, out_path, options.overwrite)
    return manifest


# --------------------------------------------------------------------------- the stage


def _build_or_clean_up(input, partial: Path, options: PrepareOptions) -> Manifest:
    """:func:`_build`; on failure keep the partial folder only when it holds resumable work."""
    try:
        return _build(input, partial, options)
    except BaseException:
        if not (partial / PLAN_FILE).exists():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            shutil.rmtree(partial / CACHE_DIR, ignore_errors=True)
        raise


def _build(input, partial: Path, options: PrepareOptions) -> Manifest:
    cpu_count = _usable_cpus()
    scanned = scan_input(
        input,
        cache_dir=partial / CACHE_DIR,
        class_names=options.class_names,
        with_patient_keys=options.group_by == "dicom",
        with_salt=options.group_by is not None,
        io_threads=min(8, max(2, cpu_count)),
        selection=options.selection() if input_kind(input) in ("folder", "zip") else None,
        follow_symlinks=options.follow_symlinks,
    )
    for path, reason in scanned.skipped:
        logger.debug("skipped %s: %s", path, reason)
    if options.strict and scanned.skipped:
        path, reason = scanned.skipped[0]
        raise RaganError(f"input file '{path}' cannot be used: {reason} (strict=True stops at the first such file)")
    if options.split_given and scanned.has_splits and not options.resplit:
        raise RaganError(
            f"split={list(options.split)} needs resplit=True (--resplit) for an input with its own "
            f"splits ({scanned.kind}); without it those splits are kept as they are"
        )
    if options.group_by is not None and scanned.has_splits and not options.resplit:
        raise RaganError(
            f"group_by={options.group_by!r} needs resplit=True for an input with its own splits "
            f"({scanned.kind}): its splits were made without your patient groups"
        )

    sources, duplicates = drop_duplicates(scanned.sources, options.dedupe)
    group_hashes, group_keys = patient_groups(sources, options)
    keep_given = scanned.has_splits and not options.resplit
    if keep_given:
        split_of = [source.given_split for source in sources]
        split_names = [name for name in SPLIT_NAMES if any(s.given_split == name for s in scanned.sources)]
    else:
        labels = [source.label for source in sources]
        if group_keys is not None:
            split_of = grouped_split(labels, group_keys, options.split, options.seed)
        else:
            split_of = stratified_split(labels, options.split, options.seed)
        split_names = [name for name, ratio in zip(SPLIT_NAMES, options.split) if ratio > 0]
    planned = plan_shards(sources, split_of, split_names, options)

    description = dict(scanned.description)
    description["splits"] = "from input" if keep_given else "assigned"
    digest = plan_hash(options, description, sources, split_of, group_hashes, planned, scanned.skipped)
    done = _resume_or_reset(partial, digest, planned)

    class_index = {name: index for index, name in enumerate(scanned.class_names)}
    _write_shards(
        partial, [shard for shard in planned if shard.file not in done], sources, class_index, options, done, cpu_count
    )
    shutil.rmtree(partial / CACHE_DIR, ignore_errors=True)

    try:
        manifest = _manifest(
            scanned, description, sources, split_of, split_names, group_hashes, duplicates, planned, done, options
        )
    except RaganError:
        (partial / PLAN_FILE).unlink(missing_ok=True)  # nothing usable: nothing worth resuming
        raise
    if options.export_zip:
        _export_stylegan_zip(partial, manifest)
    for name in (PLAN_FILE, JOURNAL_FILE):
        (partial / name).unlink(missing_ok=True)
    for leftover in partial.glob("*.partial"):
        leftover.unlink()
    manifest.write(partial)
    return manifest


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _resume_or_reset(partial: Path, plan_hash: str, planned: list[PlannedShard]) -> dict[str, dict]:
    """Finished shards of an interrupted run with the same plan; otherwise a clean partial folder."""
    plan_path = partial / PLAN_FILE
    try:
        same_plan = read_json(plan_path).get("plan") == plan_hash
    except (RaganError, AttributeError):  # missing, cut short, or not an object: start afresh
        same_plan = False
    if not same_plan:
        for entry in partial.iterdir():
            if entry.name in (LOCK_FILE, CACHE_DIR):
                continue
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        _write_atomically(plan_path, json.dumps({"plan": plan_hash}) + "\n")
        return {}
    wanted = {shard.file for shard in planned}
    done: dict[str, dict] = {}
    try:
        lines = (partial / JOURNAL_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:  # a line cut short by the interruption
            continue
        if isinstance(entry, dict) and entry.get("file") in wanted:
            done[entry["file"]] = entry
    for name, entry in list(done.items()):
        path = partial / name
        if not path.is_file() or file_sha256(path) != entry.get("sha256"):
            del done[name]
    return done


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _append_journal(partial: Path, entry: dict) -> None:
    """Record a finished shard; a re-run with the same plan keeps it."""
    with open(partial / JOURNAL_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class _Decoder:
    """Decode sources in order: in this process, or in worker processes a bounded number of chunks ahead."""

    def __init__(self, options: DecodeOptions, num_workers: int):
        self.options = options
        self.num_workers = num_workers
        self.executor = None

    def __enter__(self):
        if self.num_workers > 0:
            self.executor = _worker_pool(self.num_workers)
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            if self.executor is not None:
                self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            close_cached_files()
        return False

    def results(self, tasks: Iterable[tuple[int, tuple, int]], describe) -> Iterator[tuple[int, bool, object]]:
        """``(source_id, ok, records or reason)`` per task, in task order; ``describe(id)`` names a source."""
        chunks = iter_chunks(tasks, CHUNK_SIZE)
        if self.executor is None:
            with pillow_block_cache():
                for chunk in chunks:
                    yield from decode_chunk(self.options, chunk)
            return
        pending: deque = deque()

        def submit() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            with HiddenMainModule():  # the executor starts its worker processes inside submit()
                pending.append((self.executor.submit(decode_chunk, self.options, chunk), chunk))
            return True

        for _ in range(self.num_workers * CHUNKS_AHEAD_PER_WORKER):
            if not submit():
                break
        while pending:
            future, chunk = pending.popleft()
            try:
                finished = future.result()
            except BrokenProcessPool:
                names = ", ".join(repr(describe(source_id)) for source_id, *_ in chunk)
                raise RaganError(
                    "a decoding worker process died (out of memory, or a crash inside an image decoder) while "
                    f"reading one of {names}; re-run with num_workers=0 (--workers 0) to find the file, or free "
                    "memory; finished shards are kept for the re-run"
                ) from None
            submit()
            yield from finished


def _worker_pool(num_workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers import only the decoding modules (never TensorFlow).

    ``fork`` would copy a parent that may hold TensorFlow's threads (unsafe); ``forkserver``
    forks from a small server that preloads only :mod:`ragan.data.inputs`. A
    :class:`~concurrent.futures.ProcessPoolExecutor` rather than ``multiprocessing.Pool``: when a
    worker dies, it raises instead of waiting forever.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["ragan.data.inputs", "ragan.data.tfrecord"])
    return ProcessPoolExecutor(
        max_workers=num_workers, mp_context=context, initializer=start_worker, initargs=(os.getpid(),)
    )


def _write_shards(partial, todo, sources, class_index, options, done, cpu_count) -> None:

    total = sum(len(shard.source_ids) for shard in todo)
    workers = options.num_workers
    if workers is None:
        workers = cpu_count if cpu_count > 1 and total >= MIN_SOURCES_FOR_POOL else 0
    workers = min(workers, -(-total // CHUNK_SIZE))
    decode_options = DecodeOptions(
        options.image_size, options.channels, options.bit_depth, options.resize_mode, options.window
    )
    tasks = (
        (source_id, sources[source_id].locator, class_index.get(sources[source_id].label, -1))
        for shard in todo
        for source_id in shard.source_ids
    )
    with _Decoder(decode_options, workers) as decoder:
        results = decoder.results(tasks, lambda source_id: sources[source_id].path)
        with progress_bar(total=total, desc="prepare", unit="img") as bar:
            _write_shard_files(partial, todo, results, sources, class_index, options, done, bar)


def _write_shard_files(partial, todo, results, sources, class_index, options, done, bar) -> None:
    """Write each shard from the stream of finished records and journal it once it is complete."""
    from ragan.data.tfrecord import ShardWriter

    for shard in todo:
        frames, failed, counts = [], [], Counter()
        with ShardWriter(partial / shard.file) as writer:
            for source_id in shard.source_ids:
                result_id, ok, payload = next(results)
                if result_id != source_id:  # the decoder keeps order; anything else is a bug
                    raise RuntimeError(f"decoded source {result_id} arrived in place of {source_id}")
                bar.update(1)
                source = sources[source_id]
                if not ok:
                    if options.strict:
                        raise RaganError(
                            f"input file '{source.path}' cannot be used: {payload} "
                            "(strict=True stops at the first such file)"
                        )
                    failed.append([source_id, payload])
                    frames.append([source_id, 0])
                    continue
                for record in payload:
                    writer.write_record(record)
                frames.append([source_id, len(payload)])
                if source.label is not None:
                    counts[source.label] += len(payload)
        info = writer.info()
        entry = {
            "file": info.file,
            "sha256": info.sha256,
            "num_examples": info.num_examples,
            "class_counts": dict(counts),
            "frames": frames,
            "failed": failed,
        }
        _append_journal(partial, entry)
        done[shard.file] = entry


def _manifest(
    scanned: ScannedInput, description, sources, split_of, split_names, group_hashes, duplicates, planned, done, options
) -> Manifest:
    frames = {source_id: count for entry in done.values() for source_id, count in entry["frames"]}
    failed = {source_id: reason for entry in done.values() for source_id, reason in entry["failed"]}
    labelled = bool(scanned.class_names)
    splits = {}
    for split in split_names:
        entries = [done[shard.file] for shard in planned if shard.split == split]
        totals = Counter()
        for entry in entries:
            totals.update(entry["class_counts"])
        splits[split] = SplitInfo(
            num_examples=sum(entry["num_examples"] for entry in entries),
            class_counts={name: totals.get(name, 0) for name in scanned.class_names} if labelled else {},
            shards=[ShardInfo(entry["file"], entry["num_examples"], entry["sha256"]) for entry in entries],
        )
    skipped = list(scanned.skipped) + [(sources[i].path, reason) for i, reason in sorted(failed.items())]
    total = sum(split.num_examples for split in splits.values())
    if total == 0:
        example = f"; e.g. '{skipped[0][0]}': {skipped[0][1]}" if skipped else ""
        raise RaganError(f"no image of the input could be used ({len(skipped)} files skipped{example})")
    source_entries = []
    for index, (source, split) in enumerate(zip(sources, split_of)):
        entry = {
            "path": source.path,
            "sha256": source.sha256,
            "label": source.label,
            "split": split,
            "frames": frames.get(index, 0),
        }
        if group_hashes is not None:
            entry["group"] = group_hashes[index]
        source_entries.append(entry)
    return Manifest(
        image_size=options.image_size,
        channels=options.channels,
        dtype="uint16" if options.bit_depth == 16 else "uint8",
        class_names=list(scanned.class_names),
        labelled=labelled,
        splits=splits,
        options=options.recorded(),
        source=description,
        sources=source_entries,
        skipped=[{"path": path, "reason": reason} for path, reason in sorted(skipped)],
        duplicates=duplicates,
    )


# --------------------------------------------------------------------------- StyleGAN2-ADA export


def _zip_info(name: str) -> zipfile.ZipInfo:
    # A fixed timestamp and mode: the same images give the same zip bytes.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED  # PNGs are already compressed
    info.external_attr = 0o644 << 16
    return info


def _png_bytes(image) -> bytes:
    from PIL import Image

    array = image[..., 0] if image.shape[-1] == 1 else image
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _export_stylegan_zip(partial: Path, manifest: Manifest) -> None:
    """Write the train split as StyleGAN2-ADA's ``dataset.zip`` (PNGs + ``dataset.json``)."""
    from ragan._tf import import_tf
    from ragan.data.tfrecord import decode_batch_fn

    tf = import_tf()
    files = [os.fspath(partial / shard.file) for shard in manifest.splits["train"].shards]
    labels = []
    temporary = partial / (ZIP_NAME + ".partial")
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
        if files:
            records = tf.data.TFRecordDataset(files).batch(256).map(decode_batch_fn(manifest))
            index = 0
            for images, batch_labels, _ in records.as_numpy_iterator():
                for image, label in zip(images, batch_labels):
                    name = f"{index // 1000:05d}/img{index:08d}.png"
                    archive.writestr(_zip_info(name), _png_bytes(image))
                    labels.append([name, int(label)])
                    index += 1
        text = json.dumps({"labels": labels if manifest.labelled else None}, indent=None)
        archive.writestr(_zip_info(ZIP_LABELS_NAME), text)
    os.replace(temporary, partial / ZIP_NAME)
    _write_atomically(partial / ZIP_LABELS_NAME, text + "\n")


# --------------------------------------------------------------------------- publish


def _publish(partial: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished partial folder to ``out``; replace an old ``out`` only now."""
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:  # appeared while we worked
            raise RaganError(
                f"out='{out}' is not empty; pass overwrite=True (--overwrite) to replace it; the "
                f"finished dataset waits in '{partial}'"
            )
    publish_directory(partial, out)
