"""Data: readers of medical image inputs, ``prepare`` (:func:`~ragan.data.prepare.prepare_dataset`), the
prepared format (:mod:`~ragan.data.manifest`, TFRecord shards) and the ways to read it back: a
``tf.data`` pipeline (:mod:`~ragan.data.pipeline`) or NumPy arrays (:func:`read_split`).

Names are imported on first use: ``import ragan.data`` imports neither NumPy nor TensorFlow.
"""

from __future__ import annotations

from ragan._lazy import lazy_attributes

_LAZY = {
    "prepare_dataset": "prepare",
    "PrepareConfig": "prepare_options",
    "read_manifest": "manifest",
    "Manifest": "manifest",
    "load_dataset": "pipeline",
    "read_split": "arrays",
    "SplitArrays": "arrays",
}
_SUBMODULES = ("arrays", "manifest", "pipeline", "prepare", "prepare_options")

__all__ = [*_LAZY, *_SUBMODULES]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, _SUBMODULES)
