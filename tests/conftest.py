"""Shared pytest fixtures.

Real data lives outside the repository in ``../shared/data`` (see its README); tests that need
it skip with a reason where it is absent, e.g. on a user's machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder ``../shared/data`` (skips the test when it is absent)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (the ../shared/data folder)")
    return SHARED_DATA


def _shared_file(shared_data: Path, relative: str) -> Path:
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"real test data not found: {path}")
    return path


@pytest.fixture(scope="session")
def pneumonia_npz(shared_data) -> Path:
    """PneumoniaMNIST (28x28 uint8, MedMNIST v2 layout) as the official .npz file."""
    return _shared_file(shared_data, "pneumoniamnist/pneumoniamnist.npz")


@pytest.fixture(scope="session")
def brain_mri_dir(shared_data) -> Path:
    """The brain tumour MRI folder with ``Training/<class>/*.jpg`` and ``Testing/<class>/*.jpg``."""
    return _shared_file(shared_data, "brain_tumor_mri")


@pytest.fixture(scope="session")
def brain_mri_subset(brain_mri_dir, tmp_path_factory) -> Path:
    """A small labelled folder: the first 8 images (by name) of each class of ``brain_tumor_mri/Training``.

    Real JPEGs (mostly 512x512, names with spaces and parentheses), copied so tests stay fast.
    Treat it as read-only: it is shared by the whole test session.
    """
    import shutil

    root = tmp_path_factory.mktemp("brain_mri_subset")
    for class_dir in sorted(p for p in (brain_mri_dir / "Training").iterdir() if p.is_dir()):
        target = root / class_dir.name
        target.mkdir()
        for image in sorted(class_dir.iterdir())[:8]:
            shutil.copyfile(image, target / image.name)
    return root
