"""Mix real and synthetic prepared datasets, for training with synthetic augmentation.

``ragan mix --real DIR --synthetic DIR --synthetic-fraction 0.3 --out DIR`` writes a new prepared
dataset whose ``train`` split holds every real training image plus synthetic images, and whose
other splits (``val``, ``test``) are the real ones, copied unchanged: a classifier trained on the
mix is still validated and tested on real images only. Every record keeps a traceable origin
(see "Mixed datasets" in ``docs/prepared-format.md``).

How many synthetic images are added (one rule per mix):

* ``synthetic_fraction=f``: the synthetic images make up the fraction ``f`` of the new training
  split; the real set stays whole, so ``round(f / (1 - f) * n_real)`` images are added.
* ``add_per_class=N``: ``N`` synthetic images of every class the synthetic set holds.
* ``rebalance=True``: synthetic images of each smaller class until every class has as many
  training images as the largest.

For ``synthetic_fraction`` the added images are spread over the classes the synthetic set holds
in proportion to the real training class counts, so the mix changes the amount of data, not the
class balance (when the synthetic set covers every class). Images are drawn without replacement;
asking for more images of a class than the synthetic set holds is an error.

This module also reads splits into memory (:func:`read_split`), which the classifier study uses.

Example (needs two prepared datasets on disk, hence skipped):
    >>> from ragan.evaluation.mix import mix_datasets
    >>> mix_datasets("prepared", "synthetic", "mixed", synthetic_fraction=0.3, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ragan._common import check_positive_int
from ragan._files import publish_directory
from ragan.data.arrays import SplitArrays, convert_dtype, read_split
from ragan.data.manifest import Manifest, SplitInfo, read_manifest, shard_name, verify_dataset
from ragan.errors import RaganError, did_you_mean

# SplitArrays, read_split and convert_dtype live in ragan.data.arrays; imported from here they still work.
__all__ = [
    "SplitArrays",
    "MixResult",
    "read_split",
    "check_geometry",
    "synthetic_label_map",
    "synthetic_addition_counts",
    "choose_per_class",
    "convert_dtype",
    "mix_datasets",
    "real_labels_of_synthetic",
]

# Shards of the mixed train split are cut at about this many bytes of pixels.
_SHARD_BYTES = 128 << 20


# ---------------------------------------------------------------------------------------------
# Compatibility checks and label mapping


def check_geometry(real: Manifest, real_path, synthetic: Manifest, synthetic_path) -> None:
    """Raise a one-line RaganError unless both datasets hold images of the same size and channels.

    Example (needs two prepared datasets on disk, hence skipped):
        >>> real, synthetic = read_manifest("prepared"), read_manifest("synthetic")  # doctest: +SKIP
        >>> check_geometry(real, "prepared", synthetic, "synthetic")  # doctest: +SKIP
    """
    if (real.image_size, real.channels) != (synthetic.image_size, synthetic.channels):
        raise RaganError(
            f"synthetic dataset '{synthetic_path}' holds {synthetic.image_size}x{synthetic.image_size}x"
            f"{synthetic.channels} images but real dataset '{real_path}' holds {real.image_size}x"
            f"{real.image_size}x{real.channels}; generate at the real data's size and channels "
            "(or prepare the real data to match)."
        )


def synthetic_label_map(
    real: Manifest, real_path, synthetic: Manifest, synthetic_path, synthetic_class: str | None = None
) -> np.ndarray:
    """Map the synthetic dataset's class indices to the real dataset's, by class name.

    Args:
        real, real_path: The real dataset's manifest and path (named in errors).
        synthetic, synthetic_path: The synthetic dataset's manifest and path.
        synthetic_class: For an unlabelled synthetic set (an unconditional GAN trained on one
            class): the real class name all its images belong to.

    Returns:
        An int64 array: entry ``i`` is the real class index of synthetic class ``i``. For an
        unlabelled set with ``synthetic_class``, a one-entry array used for every image.

    Raises:
        RaganError: for class names the real set does not have, an unlabelled real set, or an
            unlabelled synthetic set without ``synthetic_class``.

    Example (needs two prepared datasets' manifests, hence skipped):
        >>> synthetic_label_map(real, "prepared", synthetic, "synthetic")   # doctest: +SKIP
        array([0, 1])
    """
    if not real.labelled:
        raise RaganError(
            f"real dataset '{real_path}' is unlabelled; the classifier study and mixing need class labels "
            "(prepare it from class folders or a labelled .npz)."
        )
    if synthetic_class is not None:
        if synthetic_class not in real.class_names:
            raise RaganError(
                f"synthetic_class={synthetic_class!r} is not a class of real dataset '{real_path}'; its classes: "
                f"{', '.join(real.class_names)}.{did_you_mean(synthetic_class, real.class_names)}"
            )
        if synthetic.labelled:
            raise RaganError(
                f"synthetic_class={synthetic_class!r} was given but synthetic dataset '{synthetic_path}' is "
                "labelled already; drop synthetic_class (--synthetic-class)."
            )
        return np.array([real.class_names.index(synthetic_class)], dtype=np.int64)
    if not synthetic.labelled:
        raise RaganError(
            f"synthetic dataset '{synthetic_path}' is unlabelled (an unconditional GAN); name the real class "
            "its images belong to with synthetic_class (--synthetic-class), or generate with a conditional GAN."
        )
    unknown = [name for name in synthetic.class_names if name not in real.class_names]
    if unknown:
        raise RaganError(
            f"synthetic dataset '{synthetic_path}' has classes {unknown!r} that real dataset '{real_path}' lacks "
            f"(real classes: {', '.join(real.class_names)}); class names must match."
            f"{did_you_mean(unknown[0], real.class_names)}"
        )
    return np.array([real.class_names.index(name) for name in synthetic.class_names], dtype=np.int64)


def real_labels_of_synthetic(split: SplitArrays, label_map: np.ndarray) -> np.ndarray:
    """The real class index of every synthetic image (``label_map`` from :func:`synthetic_label_map`)."""
    if label_map.size == 1 and not split.manifest.labelled:
        return np.full(len(split), int(label_map[0]), dtype=np.int64)
    return label_map[split.labels]


# ---------------------------------------------------------------------------------------------
# How many synthetic images, and which


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (Hamilton's method)."""
    weights = np.asarray(weights, dtype=np.float64)
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(weights.shape, dtype=np.int64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    remainder = total - int(counts.sum())
    # Ties broken by class index, so the split is deterministic.
    order = np.lexsort((np.arange(weights.size), -(exact - counts)))
    counts[order[:remainder]] += 1
    return counts


def synthetic_addition_counts(
    real_counts,
    available_counts,
    *,
    synthetic_fraction: float | None = None,
    add_per_class: int | None = None,
    rebalance: bool = False,
    class_names=None,
    synthetic_name: str = "synthetic",
) -> np.ndarray:
    """How many synthetic images of each class to add to a real training set (one rule at a time).

    Args:
        real_counts: ``(K,)`` real training images per class.
        available_counts: ``(K,)`` synthetic images per class (in real class indices).
        synthetic_fraction: Fraction ``f`` in ``[0, 1)`` of the *resulting* training set that is
            synthetic: ``round(f / (1 - f) * n_real)`` images, spread over the classes the synthetic
            set has in proportion to their real counts.
        add_per_class: ``N`` images of every class the synthetic set has.
        rebalance: Enough images of each smaller class to match the largest class.
        class_names: Names for error messages.
        synthetic_name: The synthetic dataset's name for error messages.

    Returns:
        ``(K,)`` int64 counts.

    Raises:
        RaganError: when not exactly one rule is given, a value is out of range, or the synthetic
            set holds too few images of a class.

    Example:
        >>> synthetic_addition_counts([100, 300], [500, 500], synthetic_fraction=0.5)
        array([100, 300])
        >>> synthetic_addition_counts([100, 300], [500, 500], rebalance=True)
        array([200,   0])
    """
    real_counts = np.asarray(real_counts, dtype=np.int64)
    available = np.asarray(available_counts, dtype=np.int64)
    names = list(class_names) if class_names is not None else [f"class_{c}" for c in range(real_counts.size)]
    rules = [synthetic_fraction is not None, add_per_class is not None, bool(rebalance)]
    if sum(rules) != 1:
        raise RaganError(
            "give exactly one of synthetic_fraction (--synthetic-fraction), add_per_class (--add-per-class) "
            "and rebalance (--rebalance)."
        )
    has_synthetic = available > 0
    if synthetic_fraction is not None:
        if (
            isinstance(synthetic_fraction, bool)
            or not isinstance(synthetic_fraction, numbers.Real)
            or not 0.0 <= float(synthetic_fraction) < 1.0
        ):
            raise RaganError(
                f"synthetic_fraction={synthetic_fraction!r} is not allowed; it must be in [0, 1) "
                "(the fraction of the mixed training set that is synthetic)."
            )
        fraction = float(synthetic_fraction)
        total = int(round(fraction / (1.0 - fraction) * int(real_counts.sum())))
        if total and not has_synthetic.any():
            raise RaganError(f"synthetic dataset '{synthetic_name}' holds no images.")
        counts = _largest_remainder(total, np.where(has_synthetic, real_counts, 0))
        if total and counts.sum() == 0:
            counts = _largest_remainder(total, has_synthetic.astype(np.float64))
        rule = f"synthetic_fraction={fraction:g}"
    elif add_per_class is not None:
        check_positive_int("add_per_class", add_per_class)
        counts = np.where(has_synthetic, int(add_per_class), 0).astype(np.int64)
        rule = f"add_per_class={add_per_class}"
    else:
        counts = (real_counts.max() - real_counts).astype(np.int64)
        rule = "rebalance"
    short = np.flatnonzero(counts > available)
    if short.size:
        c = int(short[0])
        raise RaganError(
            f"synthetic dataset '{synthetic_name}' holds {int(available[c])} images of class '{names[c]}' but "
            f"{rule} needs {int(counts[c])}; generate more images of that class or ask for fewer."
        )
    return counts


def choose_per_class(labels, counts, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``counts[c]`` images of each class ``c``, drawn without replacement, sorted.

    Example:
        >>> choose_per_class(np.array([0, 0, 1, 1, 1]), np.array([1, 2]), np.random.default_rng(0)).size
        3
    """
    labels = np.asarray(labels)
    chosen = []
    for c, count in enumerate(np.asarray(counts, dtype=np.int64)):
        if count <= 0:
            continue
        candidates = np.flatnonzero(labels == c)
        if count > candidates.size:
            raise RaganError(f"class index {c}: {int(count)} images asked but only {candidates.size} exist.")
        chosen.append(rng.choice(candidates, size=int(count), replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Mixing


@dataclass
class MixResult:
    """What :func:`mix_datasets` wrote.

    Attributes:
        out: The mixed dataset directory.
        manifest: Its manifest.
        num_real: Real training records.
        num_synthetic: Synthetic training records.
        synthetic_class_counts: Synthetic records added per class name.
    """

    out: Path
    manifest: Manifest
    num_real: int
    num_synthetic: int
    synthetic_class_counts: dict = field(default_factory=dict)

    @property
    def synthetic_fraction(self) -> float:
        total = self.num_real + self.num_synthetic
        return self.num_synthetic / total if total else 0.0


def _partial_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.ragan-partial"


def _check_mix_output(out: Path, real_path: Path, synthetic_path: Path, seed, overwrite: bool) -> None:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise RaganError(f"seed={seed!r} is not allowed; it must be an integer.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise RaganError(f"output '{out}' exists and is not empty; pass overwrite=True (--overwrite) to replace it.")
    for label, path in (("real", real_path), ("synthetic", synthetic_path)):
        if out.resolve() == path.resolve():
            raise RaganError(f"out='{out}' is the {label} dataset; write the mix to a new directory.")


@dataclass
class _MixInputs:
    """Both datasets' manifests and training splits, and the real class of every synthetic image."""

    real_manifest: Manifest
    synthetic_manifest: Manifest
    real_train: SplitArrays
    synthetic_train: SplitArrays
    synthetic_labels: np.ndarray


def _read_mix_inputs(real_path: Path, synthetic_path: Path, synthetic_class) -> _MixInputs:
    """Read and check both datasets (geometry, class names, non-empty training splits)."""
    real_manifest = read_manifest(real_path)
    synthetic_manifest = read_manifest(synthetic_path)
    check_geometry(real_manifest, real_path, synthetic_manifest, synthetic_path)
    label_map = synthetic_label_map(real_manifest, real_path, synthetic_manifest, synthetic_path, synthetic_class)
    if "train" not in synthetic_manifest.splits:
        raise RaganError(f"synthetic dataset '{synthetic_path}' has no 'train' split (the generated images).")
    real_train = read_split(real_path, "train")
    synthetic_train = read_split(synthetic_path, "train")
    if len(real_train) == 0:
        raise RaganError(f"real dataset '{real_path}': the 'train' split is empty.")
    if len(synthetic_train) == 0:
        raise RaganError(f"synthetic dataset '{synthetic_path}': the 'train' split is empty.")
    synthetic_labels = real_labels_of_synthetic(synthetic_train, label_map)
    return _MixInputs(real_manifest, synthetic_manifest, real_train, synthetic_train, synthetic_labels)


def _mixed_sources(real_manifest: Manifest, chosen: np.ndarray, synthetic_labels: np.ndarray) -> tuple[list, int]:
    """The real ``sources`` (marked ``origin: real``), then one entry per chosen synthetic record; and the
    index of the first synthetic entry."""
    sources = [dict(entry, origin="real") for entry in real_manifest.sources]
    first_synthetic_source = len(sources)
    for index in chosen:
        sources.append(
            {
                "path": f"train[{int(index)}]",
                "origin": "synthetic",
                "label": real_manifest.class_names[int(synthetic_labels[index])],
                "split": "train",
            }
        )
    return sources, first_synthetic_source


def _write_train_shards(folder: Path, inputs: _MixInputs, chosen, order, first_synthetic_source: int) -> list:
    """The mixed ``train`` split's shards in ``order`` (indices below the real count are real records);
    synthetic pixels converted to the real dataset's bit depth. Returns the shards' infos."""
    from ragan.data.tfrecord import ShardWriter

    real_manifest, real_train = inputs.real_manifest, inputs.real_train
    synthetic_images = convert_dtype(inputs.synthetic_train.images[chosen], real_manifest.dtype)
    synthetic_labels = inputs.synthetic_labels[chosen]
    num_real = len(real_train)
    bytes_per_image = int(np.prod(real_manifest.image_shape)) * (2 if real_manifest.dtype == "uint16" else 1)
    per_shard = max(1, _SHARD_BYTES // bytes_per_image)
    num_shards = max(1, math.ceil(len(order) / per_shard))
    shards = []
    for shard_index in range(num_shards):
        records = order[shard_index * per_shard : (shard_index + 1) * per_shard]
        with ShardWriter(folder / shard_name("train", shard_index, num_shards)) as writer:
            for record in records:
                if record < num_real:
                    writer.write(
                        real_train.images[record], int(real_train.labels[record]), int(real_train.source_ids[record])
                    )
                else:
                    k = int(record - num_real)
                    writer.write(synthetic_images[k], int(synthetic_labels[k]), first_synthetic_source + k)
        shards.append(writer.info())
    return shards


def mix_datasets(
    real: str | os.PathLike,
    synthetic: str | os.PathLike,
    out: str | os.PathLike,
    *,
    synthetic_fraction: float | None = None,
    add_per_class: int | None = None,
    rebalance: bool = False,
    synthetic_class: str | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> MixResult:
    """Write a prepared dataset: real train + synthetic images, real val/test unchanged.

    The new ``train`` split holds every real training record (pixels, label and ``source_id``
    unchanged) and the chosen synthetic records, shuffled together with ``seed``. Synthetic
    records get a ``source_id`` pointing at a new ``sources`` entry with ``"origin": "synthetic"``
    and the record's index in the synthetic dataset; real ``sources`` entries are kept (marked
    ``"origin": "real"``), so every record's origin is known. The manifest's ``source`` describes
    the mix (inputs, rule, seed, counts). Other splits' shard files are copied byte for byte.
    Synthetic pixels are converted exactly to the real dataset's bit depth when they differ.

    Args:
        real: The real prepared dataset (labelled, with a ``train`` split).
        synthetic: A prepared dataset of synthetic images (its ``train`` split), e.g. from
            ``ragan generate --format tfrecord``.
        out: The output directory; it appears atomically (written aside, then renamed).
        synthetic_fraction: Fraction of the mixed training split that is synthetic, in ``[0, 1)``.
        add_per_class: Or: this many synthetic images per class.
        rebalance: Or: synthetic images of the smaller classes until all classes are equal.
        synthetic_class: For an unlabelled synthetic set: the real class its images belong to.
        seed: Seed of the choice of synthetic images and of the record order.
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        A :class:`MixResult`.

    Raises:
        RaganError: for mismatched image size or channels, unknown class names, empty datasets,
            not enough synthetic images, or an existing ``out``.

    Example (needs two prepared datasets on disk, hence skipped):
        >>> result = mix_datasets("prepared", "synthetic", "mixed", synthetic_fraction=0.3)   # doctest: +SKIP
        >>> result.num_real, result.num_synthetic                                             # doctest: +SKIP
        (4708, 2018)
    """
    real_path, synthetic_path, out = Path(real), Path(synthetic), Path(out)
    _check_mix_output(out, real_path, synthetic_path, seed, overwrite)
    inputs = _read_mix_inputs(real_path, synthetic_path, synthetic_class)
    manifest_in = inputs.real_manifest
    counts = synthetic_addition_counts(
        np.bincount(inputs.real_train.labels, minlength=manifest_in.num_classes),
        np.bincount(inputs.synthetic_labels, minlength=manifest_in.num_classes),
        synthetic_fraction=synthetic_fraction,
        add_per_class=add_per_class,
        rebalance=rebalance,
        class_names=manifest_in.class_names,
        synthetic_name=str(synthetic_path),
    )
    rng = np.random.default_rng(int(seed))
    chosen = choose_per_class(inputs.synthetic_labels, counts, rng)
    sources, first_synthetic_source = _mixed_sources(manifest_in, chosen, inputs.synthetic_labels)
    num_real, num_synthetic = len(inputs.real_train), int(chosen.size)
    # Record order: one permutation of (real records, then synthetic records), fixed by the seed.
    order = rng.permutation(num_real + num_synthetic)
    added = {name: int(counts[c]) for c, name in enumerate(manifest_in.class_names) if counts[c]}
    rule = (
        {"synthetic_fraction": float(synthetic_fraction)}
        if synthetic_fraction is not None
        else {"add_per_class": int(add_per_class)}
        if add_per_class is not None
        else {"rebalance": True}
    )

    partial = _partial_dir(out)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        shards = _write_train_shards(partial, inputs, chosen, order, first_synthetic_source)
        train_counts = np.bincount(inputs.real_train.labels, minlength=manifest_in.num_classes) + counts
        splits = {
            "train": SplitInfo(
                num_examples=num_real + num_synthetic,
                class_counts={name: int(train_counts[c]) for c, name in enumerate(manifest_in.class_names)},
                shards=shards,
            )
        }
        for split_name, info in manifest_in.splits.items():
            if split_name == "train":
                continue
            for shard in info.shards:
                shutil.copyfile(real_path / shard.file, partial / shard.file)
            splits[split_name] = info
        source = {
            "kind": "mix",
            "real": str(real_path),
            "synthetic": str(synthetic_path),
            "rule": rule,
            "seed": int(seed),
            "synthetic_class": synthetic_class,
            "train_origins": {"real": num_real, "synthetic": num_synthetic},
            "synthetic_class_counts": added,
            "synthetic_source_ids": [first_synthetic_source, first_synthetic_source + num_synthetic],
            "real_source": manifest_in.source,
            "generator": inputs.synthetic_manifest.generator,
        }
        manifest = Manifest(
            image_size=manifest_in.image_size,
            channels=manifest_in.channels,
            dtype=manifest_in.dtype,
            class_names=list(manifest_in.class_names),
            labelled=True,
            splits=splits,
            options=dict(manifest_in.options, mix={**rule, "seed": int(seed)}),
            source=source,
            sources=sources,
            skipped=list(manifest_in.skipped),
            duplicates=list(manifest_in.duplicates),
            synthetic=False,
            generator=None,
        )
        manifest.write(partial)
        verify_dataset(partial, manifest, check_hashes=False)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    publish_directory(partial, out)
    return MixResult(
        out=out, manifest=manifest, num_real=num_real, num_synthetic=num_synthetic, synthetic_class_counts=added
    )
