"""Assign images to train/val/test splits and to shards: stratified, grouped, seeded.

Pure functions of labels, group keys and a seed; no file access. ``prepare`` uses them, and the
rules are simple enough to state:

* **Stratified** (no groups): the items of each class are put in input order, shuffled with
  the seed and the class name, and cut at ``round(n * train)`` and ``round(n * (train + val))``,
  so every class is split in the same proportions (as far as whole images allow).
* **Grouped** (a patient key per item): a group never spans two splits. Each group belongs to
  the class most of its items have; per class, groups are shuffled with the seed, then sorted by
  size (largest first, ties in shuffled order) and each goes to the split that is furthest below
  its target count (greedy). Large groups make the proportions coarser; that is the price of
  keeping a patient in one split.
* **Order**: the items of a split are shuffled with the seed and the split name, then cut into
  contiguous shards.

Seeded shuffles use :class:`random.Random` seeded with a string, which Python hashes with
SHA-512: the same seed gives the same order on every platform and Python version.

Example:
    >>> stratified_split(["a"] * 10 + ["b"] * 10, (0.8, 0.1, 0.1), seed=0).count("train")
    16
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence

from ragan.errors import RaganError

__all__ = [
    "SPLIT_NAMES",
    "parse_split_ratios",
    "seeded_shuffle",
    "stratified_split",
    "grouped_split",
    "shard_count",
    "shard_ranges",
]

SPLIT_NAMES = ("train", "val", "test")
_TOLERANCE = 1e-6


def parse_split_ratios(value) -> tuple[float, float, float]:
    """Turn ``"0.8,0.1,0.1"`` or ``(0.8, 0.1, 0.1)`` into three fractions (train, val, test).

    Each fraction is a number in ``[0, 1]``; train must be above 0 and the three must add up to 1.

    Raises:
        RaganError: naming the value and what is allowed.

    Example:
        >>> parse_split_ratios("0.7, 0.15, 0.15")
        (0.7, 0.15, 0.15)
    """
    text = value if isinstance(value, str) else None
    parts = value.split(",") if isinstance(value, str) else value
    problem = "use three fractions train,val,test that add up to 1, e.g. 0.8,0.1,0.1 (val and test may be 0)"
    try:
        ratios = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        raise RaganError(f"split={text if text is not None else value!r} is not allowed; {problem}") from None
    shown = text if text is not None else value
    if len(ratios) != 3:
        raise RaganError(f"split={shown!r} has {len(ratios)} values; {problem}")
    if not all(math.isfinite(r) and 0.0 <= r <= 1.0 for r in ratios) or ratios[0] <= 0.0:
        raise RaganError(f"split={shown!r} is not allowed; {problem} (train above 0)")
    if abs(sum(ratios) - 1.0) > _TOLERANCE:
        raise RaganError(f"split={shown!r} adds up to {sum(ratios):g}, not 1; {problem}")
    return ratios  # type: ignore[return-value]


def seeded_shuffle(items: Sequence, seed: int, purpose: str) -> list:
    """Return a copy of ``items`` shuffled by ``seed``; ``purpose`` gives independent orders.

    Example:
        >>> seeded_shuffle([1, 2, 3, 4], seed=0, purpose="demo") == seeded_shuffle([1, 2, 3, 4], 0, "demo")
        True
    """
    shuffled = list(items)
    random.Random(f"ragan:{purpose}:{seed}").shuffle(shuffled)
    return shuffled


def _cut_points(count: int, ratios: Sequence[float]) -> tuple[int, int]:
    # floor(x + 0.5) rather than round(): Python's round() goes to even on .5, which would make
    # the cut depend on the parity of the count.
    first = math.floor(count * ratios[0] + 0.5)
    second = math.floor(count * (ratios[0] + ratios[1]) + 0.5)
    return first, max(first, min(count, second))


def stratified_split(labels: Sequence[Hashable], ratios: Sequence[float], seed: int) -> list[str]:
    """Assign each item a split name, in the same proportions within every class.

    Args:
        labels: one class key per item (``None`` for unlabelled items: one stratum).
        ratios: ``(train, val, test)`` fractions, see :func:`parse_split_ratios`.
        seed: the shuffle seed.

    Returns:
        A split name (``"train"``, ``"val"`` or ``"test"``) per item, in item order.

    Example:
        >>> splits = stratified_split(["x"] * 8 + ["y"] * 8, (0.5, 0.25, 0.25), seed=1)
        >>> Counter(zip(["x"] * 8 + ["y"] * 8, splits))[("y", "val")]
        2
    """
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    assigned = [""] * len(labels)
    for label in sorted(by_class, key=_class_sort_key):
        members = seeded_shuffle(by_class[label], seed, f"stratify:{label}")
        first, second = _cut_points(len(members), ratios)
        for position, index in enumerate(members):
            assigned[index] = SPLIT_NAMES[0 if position < first else 1 if position < second else 2]
    return assigned


def grouped_split(
    labels: Sequence[Hashable], groups: Sequence[Hashable], ratios: Sequence[float], seed: int
) -> list[str]:
    """Assign splits so that all items of a group (a patient) land in the same split.

    Args:
        labels: one class key per item (``None`` for unlabelled items).
        groups: one group key per item; items with the same key stay together.
        ratios: ``(train, val, test)`` fractions.
        seed: the shuffle seed (orders groups of equal size).

    Returns:
        A split name per item, in item order.

    Example:
        >>> labels = ["a"] * 6
        >>> groups = ["p1", "p1", "p2", "p2", "p3", "p4"]
        >>> splits = grouped_split(labels, groups, (0.5, 0.25, 0.25), seed=0)
        >>> splits[0] == splits[1] and splits[2] == splits[3]
        True
    """
    if len(labels) != len(groups):
        raise ValueError(f"labels ({len(labels)}) and groups ({len(groups)}) must have the same length")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)

    # A group (patient) may hold images of several classes; it counts towards its majority class.
    groups_by_class: dict[Hashable, list[Hashable]] = defaultdict(list)
    for group, indices in members.items():
        counts = Counter(labels[i] for i in indices)
        majority = min(counts, key=lambda label: (-counts[label], _class_sort_key(label)))
        groups_by_class[majority].append(group)

    assigned = [""] * len(labels)
    usable = [i for i, ratio in enumerate(ratios) if ratio > 0]
    for label in sorted(groups_by_class, key=_class_sort_key):
        class_groups = sorted(groups_by_class[label], key=_class_sort_key)
        class_groups = seeded_shuffle(class_groups, seed, f"group:{label}")
        class_groups.sort(key=lambda group: -len(members[group]))  # stable: ties keep shuffled order
        total = sum(len(members[group]) for group in class_groups)
        targets = [ratio * total for ratio in ratios]
        filled = [0] * len(ratios)
        for group in class_groups:
            split = max(usable, key=lambda s: (targets[s] - filled[s], -s))
            filled[split] += len(members[group])
            for index in members[group]:
                assigned[index] = SPLIT_NAMES[split]
    return assigned


def _class_sort_key(value) -> tuple:
    # Sort None, numbers and strings together without comparing unlike types.
    return (value is not None, type(value).__name__, str(value))


def shard_count(
    num_items: int, estimated_bytes: int, *, target_bytes: int = 64 << 20, requested: int | None = None
) -> int:
    """Number of shards for a split: about ``target_bytes`` each, at least 1, at most ``num_items``.

    Args:
        num_items: source items in the split (a shard never splits one item).
        estimated_bytes: expected size of the split's records.
        target_bytes: wanted size of one shard (64 MiB).
        requested: an explicit shard count (``--shards-per-split``), capped at ``num_items``.

    Example:
        >>> shard_count(1000, 200 << 20), shard_count(3, 0, requested=8), shard_count(0, 0)
        (4, 3, 0)
    """
    if num_items <= 0:
        return 0
    wanted = requested if requested is not None else math.ceil(estimated_bytes / target_bytes)
    return max(1, min(int(wanted), num_items))


def shard_ranges(num_items: int, num_shards: int) -> list[range]:
    """Cut ``range(num_items)`` into ``num_shards`` contiguous, near-equal ranges.

    Example:
        >>> shard_ranges(7, 3)
        [range(0, 2), range(2, 4), range(4, 7)]
    """
    return [range(i * num_items // num_shards, (i + 1) * num_items // num_shards) for i in range(num_shards)]
