"""What a scan of ``prepare``'s input produces: :class:`Source` items in a :class:`ScannedInput`.

Shared by the scans of files (folders and zips, :mod:`ragan.data.inputs`) and of in-memory arrays
(npz, MedMNIST, TFDS, :mod:`ragan.data.array_inputs`), with the hashing and progress bar they
both use. Imports neither TensorFlow nor anything from ragan that does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Hasher", "ScannedInput", "Source", "display_path"]

# Keyed BLAKE2b of the content: the per-dataset salt for hashing patient keys. Outsiders see
# only SHA-256 hashes in the manifest, so they cannot derive it without the source files.
_SALT_KEY = b"ragan-patient-key-salt-v1"


@dataclass
class Source:
    """One input image (or multi-frame file) and how to get its pixels.

    Args:
        path: Its name in the manifest: path relative to the input with ``/``, a zip member
            name, ``"<key>[<index>]"`` for an npz, ``"<split>[<index>]"`` for TFDS.
        sha256: Hex SHA-256 of the content (file bytes; dtype, shape and bytes for arrays).
        label: Class name, or ``None`` when the input is unlabelled.
        locator: What a worker needs to read it (see :func:`ragan.data.decoding.decode_source`).
        given_split: The split the input assigns (npz keys, TFDS splits), else ``None``.
        patient_key: Raw DICOM PatientID when asked for; never written anywhere.
        salt_digest: Keyed BLAKE2b of the content when asked for (salt of the group hashes).
        frames_hint: Expected number of frames (DICOM NumberOfFrames), to size shards.

    Example:
        >>> Source("a/1.png", "0" * 64, "a", ("file", "/data/a/1.png", "image")).frames_hint
        1
    """

    path: str
    sha256: str
    label: str | None
    locator: tuple
    given_split: str | None = None
    patient_key: str | None = None
    salt_digest: bytes | None = None
    frames_hint: int = 1


@dataclass
class ScannedInput:
    """The result of :func:`ragan.data.inputs.scan_input`.

    Args:
        kind: ``"folder"``, ``"zip"``, ``"npz"``, ``"sample"``, ``"medmnist"`` or ``"tfds"``.
        description: What the manifest records under ``"source"`` (no absolute paths).
        sources: Usable sources in input order (sorted paths for folders and zips).
        skipped: ``(path, reason)`` for files that are not usable images.
        class_names: Class names in label-index order; empty when unlabelled.
        has_splits: Whether the input defines its own train/val/test splits.

    Example:
        >>> from ragan.data.inputs import scan_input
        >>> scanned = scan_input("sample:pneumoniamnist", cache_dir="cache")   # bundled with ragan
        >>> scanned.class_names, scanned.has_splits
        (['normal', 'pneumonia'], True)
    """

    kind: str
    description: dict
    sources: list[Source]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    has_splits: bool = False


class Hasher:
    """The content hashes of a scan: SHA-256 always, the keyed salt digest when ``with_salt``."""

    def __init__(self, with_salt: bool):
        self.with_salt = with_salt

    def salt_hash(self):
        """A fresh keyed BLAKE2b for the salt digest, or ``None`` when no salt is wanted."""
        return hashlib.blake2b(key=_SALT_KEY, digest_size=32) if self.with_salt else None

    def digests(self, chunks: Iterable[bytes]) -> tuple[str, bytes | None]:
        """Hex SHA-256 and salt digest (or ``None``) of the concatenated ``chunks``."""
        sha = hashlib.sha256()
        salt = self.salt_hash()
        for chunk in chunks:
            sha.update(chunk)
            if salt is not None:
                salt.update(chunk)
        return sha.hexdigest(), (salt.digest() if salt is not None else None)

    def array_digests(self, array: np.ndarray) -> tuple[str, bytes | None]:
        """:meth:`digests` of an array: its dtype and shape, then its bytes."""
        array = np.ascontiguousarray(array)
        header = f"{array.dtype.str}{tuple(array.shape)}".encode()
        return self.digests([header, memoryview(array).cast("B")])


def display_path(path: Path) -> str:
    """The last two components of a path: enough to recognise it, no home folder or user name."""
    parts = path.resolve().parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else path.name
